"""scBERT* (chapter 5): the book's tiny scBERT and the paper's condition embeddings.

* :func:`pretrain_tiny`: ``tiny_scbert``, pretrained by the book on the control cells
  with scBERT's masked-bin objective, written in scBERT's released layout.
* :func:`condition_embeddings`: the paper's ``run_scbert.py`` +
  ``finetune_modified.py`` + ``attn_sum_save_modified.py``: one vector per condition.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InputError
from ..log import TrainingLog

__all__ = ["QUICK", "TINY", "condition_embeddings", "pool_cells", "pretrain_tiny"]

#: the tiny model's size and pretraining (book settings, not scBERT's 6 x 200)
TINY = dict(
    dim=32, depth=2, heads=2, dim_head=16, bins=5, steps=40, batch_size=4, lr=1e-3
)
#: the quick profile's shortening of :func:`condition_embeddings`: no fine-tuning
#: (paper: <= 100 epochs on <= 5,000 cells; its first epoch runs at lr 1e-6, the
#: schedule's floor, so one short epoch would change nothing visible)
QUICK = dict(finetune_epochs=0)


def pretrain_tiny(
    adata, folder, seed: int = 0, *, threads: int | None = 1, **settings
) -> TrainingLog:
    """Pretrain ``tiny_scbert`` on the control cells and write it in scBERT's layout.

    Parameters
    ----------
    adata : the book's canonical AnnData (``layers["counts"]`` raw counts,
        ``obs["condition"]`` with "ctrl").
    folder : destination: ``panglao_pretrain.pth`` (``{"model_state_dict": ...}``),
        ``panglao_human.h5ad`` (gene order = ``adata.var_names``),
        ``gene2vec_16906.npy`` (a SYNTHETIC stand-in: a seeded standard-normal gene
        table, genes x dim) and ``tiny_scbert.json`` (the settings).
    seed : seeds weights, stand-in table, cell draws and masks (same seed, same bytes).
    threads : torch CPU threads while training (1: fastest on a shared machine).
    settings : keyword overrides of :data:`TINY` (dim, depth, heads, dim_head, bins,
        steps, batch_size, lr).

    The network is scBERT's Performer (same tensor names) over the data's genes plus
    the closing token; the objective is scBERT's (15 % of non-zero bins masked, 90 %
    of them replaced by the mask token, cross-entropy on the masked bins).
    """
    import torch

    from .network import PerformerNet
    from .training import cell_values, pretrain, torch_threads, write_folder

    unknown = set(settings) - set(TINY)
    if unknown:
        raise InputError(
            f"unknown setting {sorted(unknown)[0]!r}: use one of {sorted(TINY)}"
        )
    cfg = {**TINY, **settings}
    _check_conditions(adata)
    genes = [str(g) for g in adata.var_names]
    ctrl = adata[np.asarray(adata.obs["condition"] == "ctrl")]
    values, _ = cell_values(ctrl, genes)
    if values.shape[0] == 0:
        raise InputError(
            "no control cell has 200 detected genes: pass cells with raw counts in"
            " layers['counts']"
        )
    table = np.random.default_rng(seed).normal(size=(len(genes), cfg["dim"]))
    table = table.astype(np.float32)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]), torch_threads(threads):
        torch.manual_seed(seed)
        net = PerformerNet(
            num_tokens=cfg["bins"] + 2,
            max_seq_len=len(genes) + 1,
            dim=cfg["dim"],
            depth=cfg["depth"],
            heads=cfg["heads"],
            dim_head=cfg["dim_head"],
            gene_table=table,
        )
        log = pretrain(
            net,
            values,
            bins=cfg["bins"],
            steps=cfg["steps"],
            batch_size=cfg["batch_size"],
            lr=cfg["lr"],
            seed=seed,
        )
    settings_out = {
        "model": "tiny_scbert",
        "seed": seed,
        "control_cells": int(values.shape[0]),
        "gene2vec_16906.npy": "synthetic stand-in (seeded normal), not gene2vec",
        **cfg,
    }
    write_folder(folder, net, genes=genes, gene_table=table, settings=settings_out)
    log.seconds = time.perf_counter() - start
    return log


def _check_conditions(adata) -> None:
    if "condition" not in adata.obs:
        raise InputError(
            "adata.obs has no 'condition' column: pass the book's canonical AnnData"
            " ('ctrl', 'A', 'A+B')"
        )
    if not (adata.obs["condition"] == "ctrl").any():
        raise InputError(
            "adata has no 'ctrl' cells: scBERT* needs control cells to paste the"
            " targets into"
        )


def condition_embeddings(
    folder,
    adata,
    conditions,
    *,
    seed: int = 0,
    n_control: int = 100,
    n_pooled: int = 3,
    finetune_epochs: int | None = None,
    finetune_cells: int = 5000,
    finetune_seed: int = 2021,
    threads: int | None = 1,
    device: str | None = None,
) -> pd.DataFrame:
    """One scBERT embedding per condition, as the paper's scripts computed it.

    Parameters
    ----------
    folder : a scBERT model folder (released layout; :func:`pretrain_tiny` writes one).
    adata : the book's canonical AnnData (raw counts in ``layers["counts"]``).
    conditions : condition labels to embed ("ctrl", "A", "A+B").
    seed : numpy seed of the protocol's draws (the paper's ``--seed``, default 1
        there).
    n_control : control cells drawn with replacement (paper 100).
    n_pooled : cells actually encoded (paper 3, the script's loop).
    finetune_epochs : fine-tuning epochs (paper 100; 0 skips it). ``None``: the
        paper's 100 for a released model, the quick setting :data:`QUICK` (0: no
        fine-tuning) for a folder :func:`pretrain_tiny` wrote (``tiny_scbert.json``).
    finetune_cells : cells subsampled for fine-tuning (paper 5,000).
    finetune_seed : scBERT's fine-tuning seed (2021).
    threads : torch CPU threads (1: fastest for the tiny model on a shared machine;
        ``None`` keeps torch's setting, for the released model).
    device : where fine-tuning and encoding run (``None``: a GPU when there is one,
        :func:`helpers.models.device.device_for`).

    Steps (paper): counts in the model's gene order, cells with < 200 genes dropped,
    scaled to 1e4, log2(1 + x); fine-tuning as a condition classifier on cells of all
    conditions (gene2vec on; see :func:`.training.finetune_classifier`); reload without
    the gene position embedding, ``strict=False``; draw ``n_control`` control cells;
    for a condition, its targets' values in these cells are replaced by those of
    random cells of the condition ("ctrl" keeps them); each of the first ``n_pooled``
    cells is encoded alone (bins ``int(min(v, bins))`` + a closing 0), its
    last-layer states averaged over positions, and the embedding is

        e = (sum over the n_pooled cells of mean_positions(h)) / n_control

    Returns a DataFrame (index: the embeddable ``conditions`` in their order, columns
    ``dim_0..``, float64); ``attrs["not_embedded"]`` maps each left-out condition to
    its reason (a target not in the model's genes, no cells); ``attrs["finetune"]``
    is the fine-tuning's :class:`~helpers.models.log.TrainingLog` as a plain dict
    (JSON-ready: losses per epoch, best epoch, steps, seconds, note).
    """
    from ..device import device_for
    from .training import torch_threads

    _check_conditions(adata)
    if finetune_epochs is None:
        tiny = (Path(folder) / "tiny_scbert.json").is_file()
        finetune_epochs = int(QUICK["finetune_epochs"]) if tiny else 100
    with torch_threads(threads):
        return _embed(
            folder,
            adata,
            conditions,
            seed,
            n_control=n_control,
            n_pooled=n_pooled,
            finetune_epochs=finetune_epochs,
            finetune_cells=finetune_cells,
            finetune_seed=finetune_seed,
            device=device_for(device),
        )


def _embed(
    folder,
    adata,
    conditions,
    seed,
    *,
    n_control,
    n_pooled,
    finetune_epochs,
    finetune_cells,
    finetune_seed,
    device,
):
    import torch

    from .checkpoint import load_network
    from .training import cell_values, finetune_classifier, tokens

    conditions = [str(c) for c in conditions]
    if n_pooled > n_control or n_pooled < 1:
        raise InputError(
            f"n_pooled={n_pooled} must lie in 1..n_control={n_control}: the paper"
            " encodes 3 of 100 cells"
        )
    net = load_network(folder, gene_positions=True)
    genes = [str(g) for g in net_genes(folder)]
    bins = net.token_emb.weight.shape[0] - 2
    values, kept = cell_values(adata, genes)
    labels = np.asarray(adata.obs["condition"].astype(str))[kept]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(finetune_seed)
        best, ft_log = (None, TrainingLog(note="no fine-tuning"))
        if finetune_epochs > 0:
            best, ft_log = finetune_classifier(
                net,
                values,
                labels,
                bins=bins,
                epochs=finetune_epochs,
                max_cells=finetune_cells,
                seed=finetune_seed,
                device=device,
            )
        torch.manual_seed(finetune_seed + 1)
        embedder = load_network(folder, gene_positions=False)
    embedder.to(device)
    if best is not None:
        own = embedder.state_dict()
        embedder.load_state_dict(
            {
                k: v.to(device)
                for k, v in best.items()
                if k in own and own[k].shape == v.shape
            },
            strict=False,
        )
    elif finetune_epochs > 0:
        ft_log.note += "; the pretrained weights are used"
    embedder.eval()

    rng = np.random.RandomState(seed)
    ctrl_rows = np.flatnonzero(labels == "ctrl")
    if len(ctrl_rows) == 0:
        raise InputError(
            "no control cell has 200 detected genes: pass raw counts in"
            " layers['counts']"
        )
    base = values[ctrl_rows[rng.choice(len(ctrl_rows), size=n_control)]]
    base = base[:n_pooled].toarray()
    position = {g: i for i, g in enumerate(genes)}
    rows, index, skipped = [], [], {}
    for condition in conditions:
        targets = sorted(set(condition.split("+")) - {"ctrl"})
        missing = [g for g in targets if g not in position]
        cells = np.flatnonzero(labels == condition)
        if missing:
            skipped[condition] = f"{missing[0]} is not among the model's genes"
            continue
        if len(cells) == 0:
            skipped[condition] = "no cell of this condition with >= 200 genes"
            continue
        cell_block = base.copy()
        if targets:
            cols = np.sort([position[g] for g in targets])
            draw = rng.choice(len(cells), size=n_control)
            pasted = values[cells][:, cols].toarray()[draw]
            cell_block[:, cols] = pasted[:n_pooled]
        rows.append(pool_cells(embedder, tokens(cell_block, bins), n_control))
        index.append(condition)
    dim = embedder.token_emb.weight.shape[1]
    table = pd.DataFrame(
        np.vstack(rows) if rows else np.zeros((0, dim)),
        index=pd.Index(index, name="condition"),
        columns=[f"dim_{i}" for i in range(dim)],
    )
    table.attrs["not_embedded"] = skipped
    table.attrs["finetune"] = dataclasses.asdict(ft_log)
    return table


def pool_cells(embedder, ids, n_control: int) -> np.ndarray:
    """attn_sum_save_modified.py's pooling: each cell encoded alone, its states averaged
    over positions, the cells summed and divided by ``n_control``.

    Parameters
    ----------
    embedder : :class:`.network.PerformerNet` in eval mode.
    ids : long tensor of tokens (cells x positions), the cells to encode.
    n_control : rows of the script's zero matrix (paper 100: the cells drawn, of which
        only the first 3 are filled).

    ``e = sum_c mean_p h[c, p] / n_control`` (float64). One cell per call matters:
    the key features' stabiliser is a maximum over the whole batch.
    """
    import torch

    ids = ids.to(embedder.token_emb.weight.device)
    with torch.no_grad():
        total = sum(
            embedder(ids[i : i + 1], return_encodings=True)[0].mean(dim=0)
            for i in range(ids.shape[0])
        )
    return (total / n_control).double().cpu().numpy()


def net_genes(folder) -> list[str]:
    """The model's genes in position order (``panglao_human.h5ad``'s ``var_names``).

    Parameters
    ----------
    folder : the model folder.
    """
    from .checkpoint import gene_order

    return gene_order(folder)
