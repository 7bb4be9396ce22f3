"""UCE* condition embeddings as the paper's ``run_uce.py`` computed them (chapter 5).

Per condition: the same ``n_cells`` control cells (drawn with replacement), their
counts rebuilt from the log-normalised matrix; for a perturbation, the targets'
columns are overwritten with the target genes' *log-normalised* values of cells of
that condition (drawn with replacement); the result goes through UCE's
``eval_single_anndata.py`` (filters, cell sentences, the real network) and the
condition's embedding is the mean of the cells' ``X_uce``. ``ctrl`` gets the
unmodified control cells. A condition whose target is not measured is not embedded.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ...errors import InputError
from .files import UceFiles, load_files, torch_threads
from .sentences import batches, cell_sentences, counts_from_lognorm, process_like_uce

__all__ = [
    "QUICK_SETTINGS",
    "condition_embeddings",
    "embed_cells",
    "paper_cells",
    "vocab_for",
    "sentence_seed",
    "PADDING_MASKS",
]

PADDING_MASKS = ("additive", "boolean")
# the quick profile's setting (the paper's is n_cells=100, batch_size=100): 20 control
# cells per condition, all in one batch as in the paper; with the tiny model's 128
# genes per sentence, 225 conditions take about 30 s on 2 shared cores
QUICK_SETTINGS = {"n_cells": 20, "batch_size": 20}


def sentence_seed(seed: int, condition: str) -> int:
    """The seed of a condition's sentence draws: ``crc32("<seed>:<condition>")``.

    ``seed``: the run's seed; ``condition``: the label. (The paper's script ran UCE in
    a child process whose draws were not seeded; the book seeds them per condition so
    that a condition's embedding does not depend on the others asked for.)
    """
    return zlib.crc32(f"{int(seed)}:{condition}".encode()) & 0xFFFFFFFF


def vocab_for(files: UceFiles, genes: list) -> dict:
    """The sentence settings of :func:`~.sentences.cell_sentence` for ``genes``.

    ``files``: a loaded model folder; ``genes``: the kept genes' symbols (their token
    rows, chromosome codes and starts, with the model's special tokens)."""
    up = [str(g).upper() for g in genes]
    a = files.args
    return dict(
        tokens=np.array([files.gene_rows[g] for g in up], dtype=np.int64),
        chroms=files.chrom_codes.loc[up].to_numpy(),
        starts=files.starts.loc[up].to_numpy(),
        sample_size=a.sample_size,
        pad_length=a.pad_length,
        cls=a.cls_token_idx,
        pad=a.pad_token_idx,
        right=a.chrom_token_right_idx,
        offset=a.CHROM_TOKEN_OFFSET,
    )


def _forward_boolean(model, src: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # TransformerModel.forward with a boolean key-padding mask (pads ignored)
    src = model.encoder(src) * np.sqrt(model.d_model)
    src = model.pos_encoder(src)
    out = model.transformer_encoder(src, src_key_padding_mask=mask == 0)
    emb = model.decoder(out)[0, :, :]
    return torch.nn.functional.normalize(emb, dim=1)


def embed_cells(
    files: UceFiles,
    counts: np.ndarray,
    genes: list,
    *,
    rng: np.random.RandomState,
    batch_size: int = 100,
    padding_mask: str = "additive",
) -> np.ndarray:
    """UCE embeddings (``X_uce``) of cells, as ``uce.evaluate.run_eval`` computes them.

    ``files``: :func:`~.files.load_files`' result; ``counts``: cells x ``genes`` int64
    counts (after :func:`~.sentences.process_like_uce`); ``genes``: their symbols;
    ``rng``: generator of the sentence draws; ``batch_size``: cells per forward pass
    (the batch is cut to its longest sentence, so under the package's mask a cell's
    embedding depends on its batch-mates); ``padding_mask``: ``"additive"`` (the
    package on torch >= 2: ``1 - mask`` is *added* to the attention logits, pads get
    +1) or ``"boolean"`` (a corrected key-padding mask; not what the paper ran).
    Returns a cells x output_dim float32 array (unit rows).
    """
    if padding_mask not in PADDING_MASKS:
        raise InputError(
            f"padding_mask={padding_mask!r} is unknown; use one of {PADDING_MASKS}"
        )
    tokens, lengths = cell_sentences(counts, rng, vocab_for(files, genes))
    model = files.model
    out = []
    with torch.no_grad():
        for t, m in batches(tokens, lengths, int(batch_size)):
            src = model.pe_embedding(t.permute(1, 0).long())
            src = torch.nn.functional.normalize(src, dim=2)
            if padding_mask == "additive":
                _, emb = model.forward(src, mask=m)
            else:
                emb = _forward_boolean(model, src, m)
            out.append(emb.numpy())
    return np.vstack(out)


def _rows_by_condition(adata) -> dict:
    if "condition" not in adata.obs:
        raise InputError(
            "adata.obs has no 'condition' column; pass the book's canonical AnnData "
            "(obs['condition'] = 'ctrl', 'A', 'A+B')"
        )
    labels = adata.obs["condition"].astype(str).to_numpy()
    order = np.argsort(labels, kind="stable")
    uniq, first = np.unique(labels[order], return_index=True)
    return dict(zip(uniq, np.split(order, first[1:])))


def paper_cells(
    adata,
    conditions,
    seed: int = 0,
    *,
    n_cells: int = 100,
    gene_rows: dict,
    unknown_targets: str = "skip",
):
    """Yield ``(condition, cells, reason)``: the matrix ``run_uce.py`` hands to UCE.

    ``adata``, ``conditions``, ``seed``, ``n_cells``, ``unknown_targets``: as in
    :func:`condition_embeddings`; ``gene_rows``: the model's vocabulary (symbol ->
    token row). ``cells``: n_cells x genes float64 (rebuilt counts of the drawn
    control cells, the targets' columns overwritten with log-normalised values of
    cells of the condition, drawn with replacement from one ``RandomState(seed)``
    stream in the order of ``conditions``); ``None`` with a ``reason`` when the
    condition is not embedded.
    """
    rows = _rows_by_condition(adata)
    x = sp.csr_matrix(adata.X)
    var = np.asarray(adata.var_names.astype(str))
    rng = np.random.RandomState(seed)
    ctrl = rows["ctrl"]
    pick = rng.choice(range(len(ctrl)), int(n_cells))
    base = counts_from_lognorm(x[ctrl[pick]])
    for cond in conditions:
        if cond == "ctrl":
            yield cond, base, ""
            continue
        targets = set(cond.split("+")) - {"ctrl"}
        matches = np.isin(var, list(targets))
        if matches.sum() != len(targets):
            yield cond, None, "target gene not measured in adata"
            continue
        unknown = sorted(t for t in targets if t.upper() not in gene_rows)
        if unknown and unknown_targets != "paper":
            if unknown_targets == "raise":
                raise InputError(
                    f"target {unknown[0]} of {cond} has no UCE token in the model; "
                    "use a model whose vocabulary has it or unknown_targets='skip'"
                )
            yield cond, None, f"target {unknown[0]} has no UCE token"
            continue
        pert = x[rows[cond]][:, matches].toarray()
        cells = base.copy()
        cells[:, matches] = pert[rng.choice(range(pert.shape[0]), len(cells))]
        yield cond, cells, ""


def condition_embeddings(
    folder,
    adata,
    conditions,
    *,
    seed: int = 0,
    n_cells: int = 100,
    batch_size: int = 100,
    sample_size: int | None = None,
    padding_mask: str = "additive",
    model_file: str | None = None,
    unknown_targets: str = "skip",
    threads: int | None = 1,
) -> pd.DataFrame:
    """One UCE embedding per condition, as the paper's ``run_uce.py`` made them.

    ``folder``: a UCE ``model_files/`` folder (released, or from
    :func:`~.pretrain.pretrain_tiny`); ``adata``: the book's canonical AnnData (``X``
    log-normalised, ``obs['condition']``); ``conditions``: labels to embed (``"ctrl"``
    included). Keyword-only: ``seed`` seeds the draws (paper: ``np.random.seed(1)`` for
    the control cells and the pasted cells); ``n_cells`` control cells per condition
    (paper 100); ``batch_size`` (paper: 100 for the 4-layer model, 25 for the
    33-layer one; with 100 cells and batch 100 all cells share one batch);
    ``sample_size``: genes per sentence (default: the model folder's, 1,024 for the
    released models, 128 for the book's tiny one); ``padding_mask``: ``"additive"``
    (the package's behaviour, the default, what the paper ran) or ``"boolean"``
    (corrected, opt-in); ``model_file``: the state-dict file; ``unknown_targets``:
    a target measured but without a UCE token: ``"skip"`` (leave the condition out,
    reason in ``attrs``), ``"raise"`` or ``"paper"`` (embed it as the paper's
    script did: UCE drops genes without a token, so the cells look unperturbed);
    ``threads``: torch threads while embedding (1: fastest for the tiny model on a
    shared CPU; ``None`` keeps torch's setting, for the released models).

    Quick setting (the paper's 100 cells do not fit the quick profile's time budget on
    2 shared cores with the tiny model): ``n_cells=20, batch_size=20`` (still one
    batch per condition, as the paper's 100/100) and the tiny model's 128 genes per
    sentence.

    Embedding of condition k: ``mean_i X_uce(cell_i)`` over its ``n_cells`` modified
    control cells (cells UCE's filter drops excluded). Returns a DataFrame (index: the
    embedded conditions in the given order; columns: dimensions 0..d-1; float64);
    ``attrs['not_embedded']``: {condition: reason}.
    """
    conditions = [str(c) for c in conditions]
    if len(set(conditions)) != len(conditions):
        raise InputError("conditions lists a label twice; pass each condition once")
    if unknown_targets not in ("skip", "raise", "paper"):
        raise InputError(
            f"unknown_targets={unknown_targets!r}; use 'skip', 'raise' or 'paper'"
        )
    if padding_mask not in PADDING_MASKS:
        raise InputError(
            f"padding_mask={padding_mask!r} is unknown; use one of {PADDING_MASKS}"
        )
    with torch_threads(threads):
        return _condition_embeddings(
            folder,
            adata,
            conditions,
            seed=seed,
            n_cells=n_cells,
            batch_size=batch_size,
            sample_size=sample_size,
            padding_mask=padding_mask,
            model_file=model_file,
            unknown_targets=unknown_targets,
        )


def _condition_embeddings(
    folder,
    adata,
    conditions,
    *,
    seed,
    n_cells,
    batch_size,
    sample_size,
    padding_mask,
    model_file,
    unknown_targets,
) -> pd.DataFrame:
    rows = _rows_by_condition(adata)
    if "ctrl" not in rows:
        raise InputError(
            "adata has no 'ctrl' cells; UCE* embeds modified control cells"
        )
    missing = [c for c in conditions if c not in rows]
    if missing:
        raise InputError(
            f"condition(s) {missing[:3]} have no cells in adata; pass labels of "
            "adata.obs['condition']"
        )
    files = load_files(folder, model_file=model_file)
    if sample_size is not None:
        files.args = replace(files.args, sample_size=int(sample_size))
    var = np.asarray(adata.var_names.astype(str))
    table, not_embedded = {}, {}
    for cond, cells, reason in paper_cells(
        adata,
        conditions,
        seed,
        n_cells=n_cells,
        gene_rows=files.gene_rows,
        unknown_targets=unknown_targets,
    ):
        if cells is None:
            not_embedded[cond] = reason
            continue
        counts, kept, _ = process_like_uce(cells, var, files.gene_rows)
        if counts.shape[0] == 0 or counts.shape[1] == 0:
            not_embedded[cond] = "UCE's filter (>= 10 cells, >= 25 genes) kept nothing"
            continue
        emb = embed_cells(
            files,
            counts,
            kept,
            rng=np.random.RandomState(sentence_seed(seed, cond)),
            batch_size=batch_size,
            padding_mask=padding_mask,
        )
        table[cond] = emb.mean(axis=0).astype(np.float64)
    out = pd.DataFrame.from_dict(table, orient="index")
    out.index.name = "condition"
    out.attrs["not_embedded"] = not_embedded
    out.attrs["model_file"] = files.model_file
    out.attrs["settings"] = dict(
        n_cells=int(n_cells),
        batch_size=int(batch_size),
        sample_size=files.args.sample_size,
        padding_mask=padding_mask,
        seed=int(seed),
    )
    return out
