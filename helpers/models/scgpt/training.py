"""Pretraining, fine-tuning and prediction for the scGPT perturbation architecture
(chapter 4).

Fine-tuning follows the benchmark's recipe (scGPT 0.2.1 perturbation tutorial): each
training example pairs a **random control cell** (the input values) with a **perturbed
cell** of a training condition (the target), with the perturbed genes flagged; the loss
is the MSE over the genes; Adam (lr 1e-4), StepLR (gamma 0.9 per epoch), gradient-norm
clipping 1.0 and early stopping on the validation loss. A prediction for a condition is
the mean output over a pool of control cells (the benchmark used 100).

Genes: every measured gene is a token. Target genes that are not measured (the Norman
subset keeps 500 highly variable genes, which miss most targets) are added as
**flag-only tokens** with input value 0, so the model knows which gene was perturbed;
they are never part of the loss or the output. GEARS' Norman processing solves the same
problem by adding the perturbed genes to the gene list.

Pretraining (:func:`pretrain`) is a small masked-expression objective on control cells,
so the book can run pretrain -> save -> load -> fine-tune -> predict offline; the paper
profile loads the released ``scGPT_human`` checkpoint through the same loader instead.
The model the book pretrains itself is a *tiny transformer* of scGPT's architecture, not
scGPT: name its results accordingly (``book_transformer``).

The architecture version (``ScGPTConfig.version``, default ``"0.2.1"``, the paper's)
decides whether the summed embeddings go through BatchNorm (0.2.1) and which decoder is
used; see :mod:`.network`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from ...errors import InputError
from ...loaders import CONTROL, condition_genes
from ...predictions import Predictions
from ...resources import peak_rss_gb as _peak_rss_gb
from ...splits import Split
from ..device import device_for
from ..log import TrainingLog
from .checkpoint import build_vocab, map_genes, save_checkpoint
from .network import ScGPTPerturbationModel, tiny_config

__all__ = [
    "CellData",
    "prepare_cells",
    "pretrain",
    "fine_tune",
    "predict",
    "pretrain_tiny_checkpoint",
]


@dataclass
class CellData:
    """Dense cells x genes values with their conditions and the token layout of the
    model."""

    X: np.ndarray  # cells x measured genes, float32, log-normalised
    conditions: np.ndarray  # condition of each cell
    genes: list[str]  # measured genes (output tokens)
    flag_genes: list[str]  # target genes that are not measured (input-only tokens)
    token_ids: np.ndarray  # vocabulary ids of genes + flag_genes
    genes_missing_from_vocab: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> list[str]:
        return [*self.genes, *self.flag_genes]

    def flags(self, condition: str) -> np.ndarray:
        """0/1 flag per token: 1 for the target genes of ``condition``."""
        targets = set(condition_genes(condition))
        return np.array([1 if g in targets else 0 for g in self.tokens], dtype=np.int64)


def prepare_cells(
    adata,
    vocab: dict[str, int],
    conditions=None,
    *,
    max_cells_per_condition: int | None = None,
    seed: int = 0,
    flag_conditions=(),
) -> CellData:
    """Dense values of the cells of ``conditions`` (default: all) and the token layout
    for ``vocab``.

    ``adata``: the book's canonical AnnData (``obs["condition"]``, log-normalised
    ``X``); ``vocab``: the checkpoint's vocabulary. ``max_cells_per_condition`` keeps a
    random subset of each condition's cells (``seed``), which bounds memory on the full
    Norman data (85k cells x 19k genes would be 6.5 GB dense). The target genes of every
    condition of ``adata`` and of ``flag_conditions`` (e.g. held-out conditions whose
    cells the model must not see) that are not measured become flag-only tokens.
    """
    obs_conditions = adata.obs["condition"].astype(str).to_numpy()
    all_conditions = pd.unique(obs_conditions)
    mask = (
        np.isin(obs_conditions, list(conditions))
        if conditions is not None
        else np.ones(len(obs_conditions), bool)
    )
    if max_cells_per_condition is not None:
        rng = np.random.default_rng(seed)
        keep = np.zeros_like(mask)
        for condition in pd.unique(obs_conditions[mask]):
            cells = np.flatnonzero(mask & (obs_conditions == condition))
            keep[rng.permutation(cells)[:max_cells_per_condition]] = True
        mask = keep
    X = adata.X[np.flatnonzero(mask)] if adata.isbacked else adata.X[mask]
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    genes = list(map(str, adata.var_names))
    measured = set(genes)
    flag_genes = sorted(
        {g for c in [*all_conditions, *flag_conditions] for g in condition_genes(c)}
        - measured
    )
    ids, missing = map_genes([*genes, *flag_genes], vocab)
    return CellData(
        X.astype(np.float32), obs_conditions[mask], genes, flag_genes, ids, missing
    )


def _batch_tensors(
    data: CellData,
    inputs: np.ndarray,
    flags: np.ndarray,
    device,
    gene_idx: np.ndarray | None = None,
) -> tuple:
    """Token ids, input values and flags of a batch; ``gene_idx`` restricts the measured
    genes (flag-only tokens are always kept)."""
    n_genes, n_flag = len(data.genes), len(data.flag_genes)
    if gene_idx is None:
        gene_idx = np.arange(n_genes)
    token_idx = np.concatenate([gene_idx, n_genes + np.arange(n_flag)])
    values = np.concatenate(
        [inputs[:, gene_idx], np.zeros((len(inputs), n_flag), np.float32)], axis=1
    )
    ids = np.broadcast_to(data.token_ids[token_idx], values.shape)
    return (
        torch.as_tensor(np.ascontiguousarray(ids), device=device),
        torch.as_tensor(values, device=device),
        torch.as_tensor(np.ascontiguousarray(flags[:, token_idx]), device=device),
    )


def _gene_subset(rng, n_genes: int, max_seq_len: int | None) -> np.ndarray:
    if max_seq_len is None or max_seq_len >= n_genes:
        return np.arange(n_genes)
    return np.sort(rng.choice(n_genes, size=max_seq_len, replace=False))


def pretrain(
    model: ScGPTPerturbationModel,
    data: CellData,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    mask_ratio: float = 0.25,
    mask_value: float = -1.0,
    lr: float = 1e-3,
    max_seq_len: int | None = 256,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> TrainingLog:
    """Masked-expression pretraining on the cells of ``data`` (typically control cells).

    A random ``mask_ratio`` of the measured genes of each cell get the input value
    ``mask_value``; the model predicts their values; the loss is the MSE on the masked
    genes. Flags are all 0. Each batch uses a random subset of ``max_seq_len`` genes
    (scGPT pretrained on 1,200-gene subsets).
    """
    from tqdm.auto import tqdm

    dev = device_for(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.to(dev).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    log, start = TrainingLog(device=str(dev)), time.perf_counter()
    n_genes = len(data.genes)
    for _ in tqdm(range(epochs), desc="pretraining", disable=not progress):
        order, losses = rng.permutation(len(data.X)), []
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            genes = _gene_subset(rng, n_genes, max_seq_len)
            target = data.X[idx][:, genes]
            masked = rng.random(target.shape) < mask_ratio
            inputs = np.zeros((len(idx), n_genes), np.float32)
            inputs[:, genes] = np.where(masked, mask_value, target)
            ids, values, flags = _batch_tensors(
                data,
                inputs,
                np.zeros((len(idx), len(data.tokens)), np.int64),
                dev,
                genes,
            )
            out = model(ids, values, flags)[:, : len(genes)]
            m = torch.as_tensor(masked, device=dev)
            loss = ((out - torch.as_tensor(target, device=dev))[m] ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            losses.append(loss.item())
            log.cells_seen += len(idx)
            log.steps += 1
        log.train_loss.append(float(np.mean(losses)))
    log.seconds, log.peak_rss_gb = time.perf_counter() - start, _peak_rss_gb()
    model.eval()
    return log


def _examples(data: CellData, conditions) -> np.ndarray:
    conditions = set(conditions) - {CONTROL}
    return np.flatnonzero(np.isin(data.conditions, list(conditions)))


def _loss_on(
    model,
    data: CellData,
    cells: np.ndarray,
    controls: np.ndarray,
    rng,
    batch_size: int,
    dev,
    amp: bool,
    train: bool,
    optimiser=None,
    scaler=None,
    max_seq_len: int | None = None,
) -> float:
    n_genes, losses = len(data.genes), []
    order = rng.permutation(cells) if train else cells
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        genes = _gene_subset(rng, n_genes, max_seq_len)
        inputs = data.X[rng.choice(controls, size=len(idx))]
        flags = np.stack([data.flags(c) for c in data.conditions[idx]])
        ids, values, flag_t = _batch_tensors(data, inputs, flags, dev, genes)
        target = torch.as_tensor(data.X[idx][:, genes], device=dev)
        with torch.autocast(device_type=dev.type, enabled=amp):
            out = model(ids, values, flag_t)[:, : len(genes)]
            loss = nn.functional.mse_loss(out.float(), target)
        if train:
            optimiser.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimiser)
            scaler.update()
        losses.append(loss.item() * len(idx))
    return float(np.sum(losses) / max(len(cells), 1))


def fine_tune(
    model: ScGPTPerturbationModel,
    data: CellData,
    split: Split,
    *,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 1e-4,
    gamma: float = 0.9,
    patience: int = 5,
    max_seq_len: int | None = 1536,
    max_cells_per_condition: int | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> TrainingLog:
    """Fine-tune on the perturbed cells of the training conditions (see the module
    docstring).

    Each training batch uses a random subset of ``max_seq_len`` measured genes (the
    benchmark: 1,536 of the dataset's genes); validation uses all genes.
    ``max_cells_per_condition`` subsamples the training cells of each condition once
    (for quick runs). Early stopping on the loss of the ``val`` conditions' cells; the
    weights of the best epoch are kept. Without ``val`` conditions, all ``epochs`` are
    run and the last weights kept (the log says so). Deterministic on CPU for a given
    seed; mixed precision on CUDA.

    ``model``: the network to fine-tune in place
    (:class:`.network.ScGPTPerturbationModel`); ``data``: the cells
    (:func:`prepare_cells`); ``split``: its ``train`` conditions are fitted, its ``val``
    conditions pick the epoch; ``epochs``, ``batch_size``, ``lr``, ``gamma`` (StepLR
    factor per epoch), ``patience`` (epochs without improvement before stopping): the
    recipe; ``seed``: seeds weights' updates and sampling; ``device``: ``None`` picks
    one (:func:`helpers.models.device.device_for`); ``progress``: show a progress bar.
    """
    from tqdm.auto import tqdm

    dev = device_for(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    amp = dev.type == "cuda"
    model.to(dev)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=1, gamma=gamma)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    train_cells = _examples(data, split.conditions("train"))
    if max_cells_per_condition is not None:
        keep = [
            rng.permutation(train_cells[data.conditions[train_cells] == c])[
                :max_cells_per_condition
            ]
            for c in pd.unique(data.conditions[train_cells])
        ]
        train_cells = np.sort(np.concatenate(keep))
    val_cells = _examples(data, split.conditions("val"))
    controls = np.flatnonzero(data.conditions == CONTROL)
    if len(train_cells) == 0 or len(controls) == 0:
        raise InputError(
            "Fine-tuning needs perturbed training cells and control cells."
        )
    log = TrainingLog(device=str(dev))
    if len(val_cells) == 0:
        log.note = "no validation conditions: ran all epochs without early stopping"
    best, best_state, waited, start = np.inf, None, 0, time.perf_counter()
    for epoch in tqdm(range(epochs), desc="fine-tuning", disable=not progress):
        model.train()
        log.train_loss.append(
            _loss_on(
                model,
                data,
                train_cells,
                controls,
                rng,
                batch_size,
                dev,
                amp,
                True,
                optimiser,
                scaler,
                max_seq_len,
            )
        )
        log.cells_seen += len(train_cells)
        scheduler.step()
        if len(val_cells):
            model.eval()
            with torch.no_grad():
                val = _loss_on(
                    model,
                    data,
                    val_cells,
                    controls,
                    np.random.default_rng(seed + 1),
                    batch_size,
                    dev,
                    amp,
                    False,
                )
            log.val_loss.append(val)
            if val < best:
                best, waited, log.best_epoch = val, 0, epoch + 1
                best_state = {
                    k: v.detach().clone() for k, v in model.state_dict().items()
                }
            else:
                waited += 1
                if waited >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        log.best_epoch = len(log.train_loss)
    log.seconds, log.peak_rss_gb = time.perf_counter() - start, _peak_rss_gb()
    model.eval()
    return log


@torch.no_grad()
def predict(
    model: ScGPTPerturbationModel,
    data: CellData,
    conditions,
    *,
    pool_size: int = 100,
    seed: int = 0,
    method: str = "book_transformer",
    dataset: str = "",
    split_seed: int | None = None,
    device: str | None = None,
    batch_size: int = 64,
) -> Predictions:
    """Mean predicted expression of each condition over a pool of control cells (the
    benchmark's recipe).

    ``model``: the fine-tuned network; ``data``: the cells (:func:`prepare_cells`, with
    the control cells); ``conditions``: the conditions to predict; ``pool_size``:
    control cells per condition; ``seed``: seeds the pool; ``method``, ``dataset``,
    ``split_seed``: the labels of the returned
    :class:`~helpers.predictions.Predictions`; ``device``: ``None`` picks one;
    ``batch_size``: cells per forward pass.
    """
    if pool_size < 1:
        raise InputError("pool_size must be at least 1 control cell.")
    conditions = list(conditions)
    tokens = set(data.tokens)
    unflaggable = [
        c for c in conditions if c != CONTROL and not set(condition_genes(c)) <= tokens
    ]
    if unflaggable:
        raise InputError(
            f"Target genes of {unflaggable[:5]} are not tokens of this model "
            "input, so their perturbation could not be "
            "flagged and the prediction would silently be control-like. Build "
            "the CellData with prepare_cells on an "
            "AnnData that contains these conditions (their targets then become "
            "flag-only tokens)."
        )
    dev = device_for(device)
    model.to(dev).eval()
    rng = np.random.default_rng(seed)
    controls = np.flatnonzero(data.conditions == CONTROL)
    pool = rng.choice(controls, size=min(pool_size, len(controls)), replace=False)
    n_genes, rows = len(data.genes), []
    for condition in conditions:
        flags = np.tile(data.flags(condition), (len(pool), 1))
        outs = []
        for i in range(0, len(pool), batch_size):
            ids, values, flag_t = _batch_tensors(
                data, data.X[pool[i : i + batch_size]], flags[i : i + batch_size], dev
            )
            outs.append(model(ids, values, flag_t)[:, :n_genes].float().cpu().numpy())
        rows.append(np.concatenate(outs).mean(axis=0))
    frame = pd.DataFrame(
        np.array(rows),
        index=pd.Index(list(conditions), name="condition"),
        columns=data.genes,
    )
    return Predictions(frame, method, dataset, split_seed)


def pretrain_tiny_checkpoint(
    adata,
    folder,
    *,
    epochs: int = 5,
    max_seq_len: int = 256,
    seed: int = 1,
    version: str = "0.2.1",
):
    """Pretrain a tiny transformer of scGPT's architecture (``version``) on the control
    cells of ``adata`` and save it in the released layout.

    The vocabulary covers the measured genes and every target gene. Returns (folder,
    pretraining log). Used by chapters 4 and 5 (quick profile).

    ``adata``: the canonical AnnData; ``folder``: where the checkpoint is written;
    ``epochs``, ``max_seq_len`` (genes per batch), ``seed``: pretraining settings
    (:func:`pretrain`); ``version``: the architecture.
    """
    conditions = adata.obs["condition"].astype(str).unique()
    targets = sorted({g for c in conditions for g in condition_genes(c)})
    vocab = build_vocab([*map(str, adata.var_names), *targets])
    torch.manual_seed(seed)
    model = ScGPTPerturbationModel(
        tiny_config(max(vocab.values()) + 1, version=version), pad_id=vocab["<pad>"]
    )
    controls = prepare_cells(adata, vocab, conditions=[CONTROL])
    log = pretrain(
        model,
        controls,
        epochs=epochs,
        max_seq_len=max_seq_len,
        seed=seed,
        progress=False,
    )
    return save_checkpoint(model, vocab, folder), log
