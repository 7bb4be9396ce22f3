"""How UCE turns a cell into a sentence, as the real ``uce-model`` 0.1.4 does it
(chapter 5, UCE*).

``eval_single_anndata.py`` (via ``uce.data_proc.data_utils.process_raw_anndata``)
keeps genes counted in at least 10 cells and cells with at least 25 genes, keeps the
genes with a protein embedding, and stores the matrix as int64 (values are truncated
towards zero). ``uce.eval_data.sample_cell_sentences`` then, per cell, draws
``sample_size`` genes with replacement with probability ``log1p(c_g) / sum log1p(c)``,
groups them by chromosome (chromosomes in a random order), orders each group by genomic
start and writes ``[CLS] ([CHR_k] genes... [CHR_RIGHT])* [PAD]...``. The real code
draws from numpy's global generator; here a :class:`numpy.random.RandomState` is
passed, which gives the same draws as ``np.random.seed(s)`` followed by the real code.
The collator cuts a batch to its longest sentence; the mask is 1 on tokens, 0 on pads.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "counts_from_lognorm",
    "process_like_uce",
    "cell_sentence",
    "cell_sentences",
    "batches",
]


def counts_from_lognorm(x) -> np.ndarray:
    """Counts back from log-normalised values, as the paper's ``run_uce.py`` does.

    ``x``: a cells x genes scipy sparse matrix of ``log1p(c / s * 1e4)``. Returns
    ``expm1(x) / 1e4`` divided, per cell, by its smallest non-zero value (which "used
    to be a 1"), as a dense array of ``x``'s arithmetic (float32 for float32 input).
    """
    counts = np.expm1(x) / 1e4
    counts = counts.tocsr()
    one_equiv = np.array([np.min(counts[i, :].data) for i in range(counts.shape[0])])
    return np.asarray((counts / one_equiv[:, np.newaxis]).tocsr().todense())


def process_like_uce(x: np.ndarray, genes, gene_rows: dict):
    """The real script's preprocessing of one AnnData (``--filter True``).

    ``x``: cells x genes values (what the ``.h5ad`` holds); ``genes``: their symbols;
    ``gene_rows``: symbol (upper case) -> token row. Returns ``(counts, kept_genes,
    kept_cells)``: int64 counts (truncated like the real ``np.memmap`` copy) of the
    cells with >= 25 genes over the genes seen in >= 10 cells that have a token.
    """
    x = np.asarray(x)
    genes = np.asarray(genes, dtype=object)
    gene_keep = (x > 0).sum(axis=0) >= 10
    x, genes = x[:, gene_keep], genes[gene_keep]
    cell_keep = np.flatnonzero((x > 0).sum(axis=1) >= 25)
    x = x[cell_keep]
    known = np.array([str(g).upper() in gene_rows for g in genes], dtype=bool)
    x, genes = x[:, known], genes[known]
    counts = np.empty(x.shape, dtype=np.int64)
    counts[:] = torch.from_numpy(np.ascontiguousarray(x)).float().numpy()
    return counts, list(genes), cell_keep


def cell_sentence(counts: np.ndarray, rng: np.random.RandomState, vocab: dict):
    """One cell's sentence, draw for draw as ``uce.eval_data.sample_cell_sentences``.

    ``counts``: the cell's int64 counts over the kept genes; ``rng``: the generator;
    ``vocab``: ``tokens`` (token row per gene), ``chroms`` (chromosome code per gene,
    the real code's integer dtype), ``starts`` (start per gene), ``sample_size``,
    ``pad_length``, ``cls``, ``pad``, ``right``, ``offset`` (first chromosome token).
    Returns ``(tokens, length)``: the padded token rows and the sentence length.
    """
    w = torch.log1p(torch.from_numpy(np.asarray(counts)).unsqueeze(0))
    w = (w / torch.sum(w))[0].numpy()
    w = w / sum(w)
    chroms, starts = vocab["chroms"], vocab["starts"]
    choice = rng.choice(np.arange(len(w)), size=vocab["sample_size"], p=w, replace=True)
    choice = choice[np.argsort(chroms[choice])]
    new_chrom = chroms[choice]
    chosen_starts = starts[choice]
    out = np.full(vocab["pad_length"], vocab["cls"])
    i = 1
    uq = np.unique(new_chrom)
    rng.shuffle(uq)
    for chrom in uq:
        out[i] = int(chrom) + vocab["offset"]
        i += 1
        loc = np.where(new_chrom == chrom)[0]
        to_add = choice[loc[np.argsort(chosen_starts[loc])]]
        out[i : i + len(to_add)] = vocab["tokens"][to_add]
        i += len(to_add)
        out[i] = vocab["right"]
        i += 1
    out[i:] = vocab["pad"]
    return out, i


def cell_sentences(counts: np.ndarray, rng: np.random.RandomState, vocab: dict):
    """Sentences of all cells in order (one generator stream, as the real data loader
    walks the cells). ``counts``: cells x kept genes int64; ``rng``, ``vocab``: as in
    :func:`cell_sentence`. Returns ``(tokens, lengths)``."""
    tokens = np.empty((counts.shape[0], vocab["pad_length"]), dtype=np.int64)
    lengths = np.empty(counts.shape[0], dtype=np.int64)
    for c in range(counts.shape[0]):
        tokens[c], lengths[c] = cell_sentence(counts[c], rng, vocab)
    return tokens, lengths


def batches(tokens: np.ndarray, lengths: np.ndarray, batch_size: int):
    """Yield ``(tokens, mask)`` per batch as ``MultiDatasetSentenceCollator`` builds
    them: cut to the batch's longest sentence; mask float 1 on tokens, 0 on pads.
    ``tokens``, ``lengths``: from :func:`cell_sentences`; ``batch_size``: cells per
    batch."""
    for lo in range(0, tokens.shape[0], batch_size):
        t = tokens[lo : lo + batch_size]
        n = lengths[lo : lo + batch_size]
        max_len = int(n.max())
        mask = (np.arange(max_len)[None, :] < n[:, None]).astype(np.float32)
        yield torch.from_numpy(t[:, :max_len].copy()), torch.from_numpy(mask)
