"""Pretraining, fine-tuning and prediction for the scGPT perturbation architecture (chapter 4).

Fine-tuning follows the benchmark's recipe (scGPT 0.2.1 perturbation tutorial): each training example
pairs a **random control cell** (the input values) with a **perturbed cell** of a training condition (the
target), with the perturbed genes flagged; the loss is the MSE over the genes; Adam (lr 1e-4), StepLR
(gamma 0.9 per epoch), gradient-norm clipping 1.0 and early stopping on the validation loss. A
prediction for a condition is the mean output over a pool of control cells (the benchmark used 100).

Genes: every measured gene is a token. Target genes that are not measured (the Norman subset keeps 500
highly variable genes, which miss most targets) are added as **flag-only tokens** with input value 0,
so the model knows which gene was perturbed; they are never part of the loss or the output. GEARS' Norman
processing solves the same problem by adding the perturbed genes to the gene list.

Pretraining (:func:`pretrain`) is a small masked-expression objective on control cells, so the book can
run pretrain -> save -> load -> fine-tune -> predict offline; the paper profile loads the released
``scGPT_human`` checkpoint through the same loader instead. The model the book pretrains itself is a
*tiny transformer* of scGPT's architecture, not scGPT: name its results accordingly (``book_transformer``).

The architecture version (``ScGPTConfig.version``, default ``"0.2.1"``, the paper's) decides whether the
summed embeddings go through BatchNorm (0.2.1) and which decoder is used; see :mod:`helpers.models.scgpt`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from ..loaders import CONTROL, condition_genes
from ..predictions import Predictions
from ..resources import peak_rss_gb as _peak_rss_gb
from ..splits import Split
from .scgpt import ScGPTConfig, ScGPTPerturbationModel, map_genes

__all__ = ["CellData", "prepare_cells", "TrainingLog", "pretrain", "fine_tune", "predict", "device_for", "build_vocab"]


def device_for(device: str | None = None) -> torch.device:
    """``cuda`` when a GPU is available (or asked for), otherwise ``cpu``."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class CellData:
    """Dense cells x genes values with their conditions and the token layout of the model."""

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


def build_vocab(genes) -> dict[str, int]:
    """A vocabulary for the book's own pretraining: the genes, then ``<pad>``, ``<cls>``, ``<eoc>``."""
    genes = list(dict.fromkeys(genes))
    vocab = {g: i for i, g in enumerate(genes)}
    for token in ("<pad>", "<cls>", "<eoc>"):
        vocab[token] = len(vocab)
    return vocab


def prepare_cells(adata, vocab: dict[str, int], conditions=None, *, max_cells_per_condition: int | None = None,
                  seed: int = 0) -> CellData:
    """Dense values of the cells of ``conditions`` (default: all) and the token layout for ``vocab``.

    ``max_cells_per_condition`` keeps a random subset of each condition's cells (seeded), which bounds
    memory on the full Norman data (85k cells x 19k genes would be 6.5 GB dense).
    """
    obs_conditions = adata.obs["condition"].astype(str).to_numpy()
    all_conditions = pd.unique(obs_conditions)
    mask = np.isin(obs_conditions, list(conditions)) if conditions is not None else np.ones(len(obs_conditions), bool)
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
    flag_genes = sorted({g for c in all_conditions for g in condition_genes(c)} - measured)
    ids, missing = map_genes([*genes, *flag_genes], vocab)
    return CellData(X.astype(np.float32), obs_conditions[mask], genes, flag_genes, ids, missing)


@dataclass
class TrainingLog:
    """Loss per epoch, the chosen epoch, wall time, throughput and peak memory of a run."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    cells_seen: int = 0
    steps: int = 0  # optimiser steps (counted by pretrain)
    peak_rss_gb: float = 0.0
    device: str = "cpu"
    note: str = ""

    @property
    def cells_per_second(self) -> float:
        return self.cells_seen / self.seconds if self.seconds else float("nan")

    def to_frame(self) -> pd.DataFrame:
        n = max(len(self.train_loss), len(self.val_loss))
        pad = lambda xs: list(xs) + [np.nan] * (n - len(xs))  # noqa: E731
        return pd.DataFrame({"epoch": range(1, n + 1), "train_loss": pad(self.train_loss), "val_loss": pad(self.val_loss)})


def _batch_tensors(data: CellData, inputs: np.ndarray, flags: np.ndarray, device, gene_idx: np.ndarray | None = None) -> tuple:
    """Token ids, input values and flags of a batch; ``gene_idx`` restricts the measured genes (flag-only
    tokens are always kept)."""
    n_genes, n_flag = len(data.genes), len(data.flag_genes)
    if gene_idx is None:
        gene_idx = np.arange(n_genes)
    token_idx = np.concatenate([gene_idx, n_genes + np.arange(n_flag)])
    values = np.concatenate([inputs[:, gene_idx], np.zeros((len(inputs), n_flag), np.float32)], axis=1)
    ids = np.broadcast_to(data.token_ids[token_idx], values.shape)
    return (torch.as_tensor(np.ascontiguousarray(ids), device=device), torch.as_tensor(values, device=device),
            torch.as_tensor(np.ascontiguousarray(flags[:, token_idx]), device=device))


def _gene_subset(rng, n_genes: int, max_seq_len: int | None) -> np.ndarray:
    if max_seq_len is None or max_seq_len >= n_genes:
        return np.arange(n_genes)
    return np.sort(rng.choice(n_genes, size=max_seq_len, replace=False))


def pretrain(model: ScGPTPerturbationModel, data: CellData, *, epochs: int = 3, batch_size: int = 32,
             mask_ratio: float = 0.25, mask_value: float = -1.0, lr: float = 1e-3, max_seq_len: int | None = 256,
             seed: int = 0, device: str | None = None, progress: bool = True) -> TrainingLog:
    """Masked-expression pretraining on the cells of ``data`` (typically control cells).

    A random ``mask_ratio`` of the measured genes of each cell get the input value ``mask_value``; the
    model predicts their values; the loss is the MSE on the masked genes. Flags are all 0. Each batch
    uses a random subset of ``max_seq_len`` genes (scGPT pretrained on 1,200-gene subsets).
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
            idx = order[i:i + batch_size]
            genes = _gene_subset(rng, n_genes, max_seq_len)
            target = data.X[idx][:, genes]
            masked = rng.random(target.shape) < mask_ratio
            inputs = np.zeros((len(idx), n_genes), np.float32)
            inputs[:, genes] = np.where(masked, mask_value, target)
            ids, values, flags = _batch_tensors(data, inputs, np.zeros((len(idx), len(data.tokens)), np.int64), dev, genes)
            out = model(ids, values, flags)[:, :len(genes)]
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


def _loss_on(model, data: CellData, cells: np.ndarray, controls: np.ndarray, rng, batch_size: int, dev, amp: bool,
             train: bool, optimiser=None, scaler=None, max_seq_len: int | None = None) -> float:
    n_genes, losses = len(data.genes), []
    order = rng.permutation(cells) if train else cells
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        genes = _gene_subset(rng, n_genes, max_seq_len)
        inputs = data.X[rng.choice(controls, size=len(idx))]
        flags = np.stack([data.flags(c) for c in data.conditions[idx]])
        ids, values, flag_t = _batch_tensors(data, inputs, flags, dev, genes)
        target = torch.as_tensor(data.X[idx][:, genes], device=dev)
        with torch.autocast(device_type=dev.type, enabled=amp):
            out = model(ids, values, flag_t)[:, :len(genes)]
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


def fine_tune(model: ScGPTPerturbationModel, data: CellData, split: Split, *, epochs: int = 15, batch_size: int = 64,
              lr: float = 1e-4, gamma: float = 0.9, patience: int = 5, max_seq_len: int | None = 1536,
              max_cells_per_condition: int | None = None, seed: int = 0, device: str | None = None,
              progress: bool = True) -> TrainingLog:
    """Fine-tune on the perturbed cells of the training conditions (see the module docstring).

    Each training batch uses a random subset of ``max_seq_len`` measured genes (the benchmark: 1,536 of
    the dataset's genes); validation uses all genes. ``max_cells_per_condition`` subsamples the training
    cells of each condition once (for quick runs).
    Early stopping on the loss of the ``val`` conditions' cells; the weights of the best epoch are kept.
    Without ``val`` conditions, all ``epochs`` are run and the last weights kept (the log says so).
    Deterministic on CPU for a given seed; mixed precision on CUDA.
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
        keep = [rng.permutation(train_cells[data.conditions[train_cells] == c])[:max_cells_per_condition]
                for c in pd.unique(data.conditions[train_cells])]
        train_cells = np.sort(np.concatenate(keep))
    val_cells = _examples(data, split.conditions("val"))
    controls = np.flatnonzero(data.conditions == CONTROL)
    if len(train_cells) == 0 or len(controls) == 0:
        raise ValueError("Fine-tuning needs perturbed training cells and control cells.")
    log = TrainingLog(device=str(dev))
    if len(val_cells) == 0:
        log.note = "no validation conditions: ran all epochs without early stopping"
    best, best_state, waited, start = np.inf, None, 0, time.perf_counter()
    for epoch in tqdm(range(epochs), desc="fine-tuning", disable=not progress):
        model.train()
        log.train_loss.append(_loss_on(model, data, train_cells, controls, rng, batch_size, dev, amp, True,
                                       optimiser, scaler, max_seq_len))
        log.cells_seen += len(train_cells)
        scheduler.step()
        if len(val_cells):
            model.eval()
            with torch.no_grad():
                val = _loss_on(model, data, val_cells, controls, np.random.default_rng(seed + 1), batch_size, dev, amp, False)
            log.val_loss.append(val)
            if val < best:
                best, waited, log.best_epoch = val, 0, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
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
def predict(model: ScGPTPerturbationModel, data: CellData, conditions, *, pool_size: int = 100, seed: int = 0,
            method: str = "book_transformer", dataset: str = "", split_seed: int | None = None,
            device: str | None = None, batch_size: int = 64) -> Predictions:
    """Mean predicted expression of each condition over a pool of control cells (the benchmark's recipe)."""
    if pool_size < 1:
        raise ValueError("pool_size must be at least 1 control cell.")
    conditions = list(conditions)
    tokens = set(data.tokens)
    unflaggable = [c for c in conditions if c != CONTROL and not set(condition_genes(c)) <= tokens]
    if unflaggable:
        raise ValueError(
            f"Target genes of {unflaggable[:5]} are not tokens of this model input, so their perturbation could not be "
            "flagged and the prediction would silently be control-like. Build the CellData with prepare_cells on an "
            "AnnData that contains these conditions (their targets then become flag-only tokens)."
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
            ids, values, flag_t = _batch_tensors(data, data.X[pool[i:i + batch_size]], flags[i:i + batch_size], dev)
            outs.append(model(ids, values, flag_t)[:, :n_genes].float().cpu().numpy())
        rows.append(np.concatenate(outs).mean(axis=0))
    frame = pd.DataFrame(np.array(rows), index=pd.Index(list(conditions), name="condition"), columns=data.genes)
    return Predictions(frame, method, dataset, split_seed)


TINY_NOTE = "tiny configuration trained by the book (not scGPT_human)"


def tiny_config(ntoken: int, *, embsize: int = 32, nheads: int = 2, d_hid: int = 64, nlayers: int = 2,
                dropout: float = 0.1, version: str = "0.2.1") -> ScGPTConfig:
    """A small configuration that trains in minutes on a CPU (the real scGPT_human: 512 / 8 / 512 / 12).

    ``args.json`` of a checkpoint saved from it carries ``"note": TINY_NOTE`` (see :func:`is_book_checkpoint`).
    """
    return ScGPTConfig(ntoken=ntoken, embsize=embsize, nheads=nheads, d_hid=d_hid, nlayers=nlayers, dropout=dropout,
                       version=version, extra={"note": TINY_NOTE})


def is_book_checkpoint(folder) -> bool:
    """Whether a checkpoint folder holds a model the book pretrained itself (its args.json carries TINY_NOTE)."""
    import json
    from pathlib import Path

    path = Path(folder) / "args.json"
    return path.is_file() and json.loads(path.read_text()).get("note") == TINY_NOTE


def pretrain_tiny_checkpoint(adata, folder, *, epochs: int = 5, max_seq_len: int = 256, seed: int = 1,
                             version: str = "0.2.1"):
    """Pretrain a tiny transformer of scGPT's architecture (``version``) on the control cells of ``adata`` and
    save it in the released layout.

    The vocabulary covers the measured genes and every target gene. Returns (folder, pretraining log).
    Used by chapters 4 and 5 (quick profile).
    """
    from .scgpt import save_checkpoint

    conditions = adata.obs["condition"].astype(str).unique()
    targets = sorted({g for c in conditions for g in condition_genes(c)})
    vocab = build_vocab([*map(str, adata.var_names), *targets])
    torch.manual_seed(seed)
    model = ScGPTPerturbationModel(tiny_config(max(vocab.values()) + 1, version=version), pad_id=vocab["<pad>"])
    controls = prepare_cells(adata, vocab, conditions=[CONTROL])
    log = pretrain(model, controls, epochs=epochs, max_seq_len=max_seq_len, seed=seed, progress=False)
    return save_checkpoint(model, vocab, folder), log


__all__ += ["tiny_config", "pretrain_tiny_checkpoint", "is_book_checkpoint", "TINY_NOTE"]
