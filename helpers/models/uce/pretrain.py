"""The book's tiny UCE (``tiny_uce``): pretrained on control cells, saved in the
released layout (chapter 5, UCE*).

Everything about the token table is SYNTHETIC: UCE's tokens are ESM2 protein
embeddings of each gene's protein and its chromosome/start come from Ensembl; the
book's quick task has made-up genes (SIM0001...), so each gene gets a random token
vector, a random chromosome (``1``..``22``, ``X``, ``Y``, ``MT``, drawn in proportion
to the human protein-coding genes per chromosome, so that small chromosomes are often
missing from a sentence and sentence lengths vary as with real cells) and a random
distinct start (all from ``seed``). The network is the real
``uce.model.TransformerModel`` at a small size (:data:`TINY_ARGS`: 4 layers, width 16,
2 heads, token dimension 16, output 16, 128 genes per sentence; the released model:
width 1,280, 20 heads, tokens 5,120, 1,024 genes).

The objective: ``uce-model`` ships no training loop, so this follows the UCE paper's
description as far as it goes (Rosen et al. 2023): a share of each cell's expressed
genes (20 %) is left out of its sentence; from the CLS embedding and a gene's token
the network's own ``binary_decoder`` (the layers of ``TransformerModel.predict``)
predicts whether the gene is expressed, for left-out expressed genes (label 1) and
unexpressed genes (label 0), with binary cross-entropy. ``binary_decoder`` takes
1,280 gene columns (hard-coded in the package); the tiny model's narrower gene
embedding is padded with zeros to that width.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ...errors import InputError
from ..log import TrainingLog
from .files import UceArgs, build_network, torch_threads, write_files
from .sentences import batches, cell_sentence

__all__ = ["pretrain_tiny", "TINY_ARGS"]

# approximate human protein-coding genes per chromosome, for the synthetic draws
CHROM_SIZES = {
    **{
        str(k): n
        for k, n in zip(
            range(1, 23),
            (
                2050,
                1300,
                1080,
                750,
                880,
                1040,
                930,
                680,
                780,
                730,
                1300,
                1030,
                320,
                610,
                600,
                850,
                1180,
                270,
                1470,
                540,
                230,
                440,
            ),
        )
    },
    "X": 840,
    "Y": 60,
    "MT": 13,
}
N_CHROM = len(CHROM_SIZES)
GENE_OFFSET = 4  # rows 0-3: pad, chromosome-left, chromosome-right, CLS
TINY_ARGS = dict(
    token_dim=16,
    d_model=16,
    nhead=2,
    d_hid=32,
    nlayers=4,
    output_dim=16,
    sample_size=128,
)


def _control_counts(adata) -> np.ndarray:
    if "condition" not in adata.obs or "counts" not in adata.layers:
        raise InputError(
            "adata lacks obs['condition'] or layers['counts']; pass the book's "
            "canonical AnnData"
        )
    ctrl = np.flatnonzero(adata.obs["condition"].astype(str).to_numpy() == "ctrl")
    if len(ctrl) < 2:
        raise InputError("adata has fewer than 2 'ctrl' cells; UCE* pretrains on them")
    c = adata.layers["counts"][ctrl]
    c = c.toarray() if sp.issparse(c) else np.asarray(c)
    return np.rint(c).astype(np.int64)


def _predict_logits(model, cell: torch.Tensor, gene_tokens: torch.Tensor):
    # TransformerModel.predict with the gene embedding zero-padded to 1,280 columns
    g = model.pe_embedding(gene_tokens)
    g = model.gene_embedding_layer(torch.nn.functional.normalize(g, dim=-1))
    g = torch.nn.functional.pad(g, (0, 1280 - g.shape[-1]))
    return model.binary_decoder(torch.hstack((cell, g)))[:, 0]


def pretrain_tiny(
    adata,
    folder,
    seed: int = 0,
    *,
    steps: int = 20,
    cells_per_step: int = 8,
    genes_per_cell: int = 8,
    mask_share: float = 0.2,
    lr: float = 1e-3,
    threads: int | None = 1,
) -> TrainingLog:
    """Pretrain the book's tiny UCE on the control cells; write the released layout.

    ``adata``: the book's canonical AnnData (``layers['counts']``,
    ``obs['condition']``, gene symbols as ``var_names``; every gene gets a token);
    ``folder``: where the ``model_files/`` layout goes (see :mod:`.files`); ``seed``:
    seeds the synthetic token table, the draws and the network (same seed, same
    bytes). Keyword-only: ``steps`` optimiser steps (Adam, ``lr``) of
    ``cells_per_step`` control cells; per cell ``mask_share`` of its expressed genes
    are left out of the sentence and ``genes_per_cell`` of them (label 1) plus as many
    unexpressed genes (label 0) are scored: loss = mean BCE(sigmoid(logit), label).
    ``threads``: torch threads (1 is fastest for this tiny network on a shared CPU;
    ``None`` keeps torch's setting). Returns a
    :class:`~helpers.models.log.TrainingLog` (loss per step).
    """
    with torch_threads(threads):
        return _pretrain(
            adata,
            folder,
            seed,
            steps=steps,
            cells_per_step=cells_per_step,
            genes_per_cell=genes_per_cell,
            mask_share=mask_share,
            lr=lr,
        )


def _pretrain(
    adata, folder, seed, *, steps, cells_per_step, genes_per_cell, mask_share, lr
) -> TrainingLog:
    t0 = time.perf_counter()
    counts = _control_counts(adata)
    genes = [str(g) for g in adata.var_names]
    if len({g.upper() for g in genes}) != len(genes):
        raise InputError("adata.var_names repeat a gene symbol; make them unique first")
    n_genes = len(genes)
    rng = np.random.RandomState(seed)
    names = list(CHROM_SIZES)
    share = np.array([CHROM_SIZES[n] for n in names], dtype=float)
    chrom_idx = rng.choice(N_CHROM, size=n_genes, p=share / share.sum())
    starts = rng.permutation(n_genes).astype(np.int64) * 1000 + 1
    chromosomes = [names[k] for k in chrom_idx]
    offset = GENE_OFFSET + n_genes
    args = UceArgs(**TINY_ARGS, CHROM_TOKEN_OFFSET=offset)
    gen = torch.Generator().manual_seed(int(seed))
    tokens = torch.randn(offset + N_CHROM, args.token_dim, generator=gen)
    torch.manual_seed(int(seed))
    model = build_network(args)
    model.pe_embedding = torch.nn.Embedding.from_pretrained(tokens.clone())
    # chromosome codes as the real code numbers them: categories sorted by name
    cats = sorted({f"human_{c}" for c in chromosomes})
    code = {n: i for i, n in enumerate(cats)}
    vocab = dict(
        tokens=np.arange(GENE_OFFSET, offset, dtype=np.int64),
        chroms=np.array([code[f"human_{c}"] for c in chromosomes], dtype=np.int8),
        starts=starts,
        sample_size=args.sample_size,
        pad_length=args.pad_length,
        cls=args.cls_token_idx,
        pad=args.pad_token_idx,
        right=args.chrom_token_right_idx,
        offset=offset,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    log = TrainingLog(device="cpu", note="tiny_uce: synthetic tokens; UCE paper loss")
    model.train()
    for _ in range(int(steps)):
        cells = rng.choice(counts.shape[0], int(cells_per_step), replace=False)
        sent, lens, gene_tok, labels = [], [], [], []
        for c in cells:
            row = counts[c].copy()
            expressed = np.flatnonzero(row > 0)
            silent = np.flatnonzero(row == 0)
            n_mask = max(1, int(round(mask_share * len(expressed))))
            masked = rng.choice(expressed, n_mask, replace=False)
            row[masked] = 0
            s, n = cell_sentence(row, rng, vocab)
            sent.append(s)
            lens.append(n)
            pos = rng.choice(masked, genes_per_cell, replace=True)
            neg = rng.choice(silent if len(silent) else masked, genes_per_cell)
            gene_tok.append(GENE_OFFSET + np.concatenate([pos, neg]))
            labels.append([1.0] * genes_per_cell + [0.0] * genes_per_cell)
        t, m = next(batches(np.stack(sent), np.array(lens), len(cells)))
        src = torch.nn.functional.normalize(model.pe_embedding(t.T.long()), dim=2)
        _, emb = model.forward(src, mask=m)
        cell = emb.repeat_interleave(2 * genes_per_cell, dim=0)
        gt = torch.from_numpy(np.concatenate(gene_tok))
        y = torch.tensor(np.concatenate(labels), dtype=torch.float32)
        loss = loss_fn(_predict_logits(model, cell, gt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.train_loss.append(float(loss.detach()))
        log.cells_seen += len(cells)
        log.steps += 1
    model.eval()
    write_files(
        Path(folder),
        model.state_dict(),
        tokens,
        genes=genes,
        chromosomes=chromosomes,
        starts=starts,
        args=args,
        gene_offset=GENE_OFFSET,
    )
    log.best_epoch = len(log.train_loss)
    log.seconds = time.perf_counter() - t0
    return log
