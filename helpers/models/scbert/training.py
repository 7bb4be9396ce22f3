"""scBERT's inputs and training: expression bins, masked-bin pretraining of the book's
tiny model, and the paper's fine-tuning as a condition classifier.

Inputs as the paper's ``run_scbert.py`` builds them: raw counts put in the model's gene
order (genes the data lacks stay 0), cells with fewer than 200 detected genes dropped,
each cell scaled to 1e4 and ``log2(1 + x)`` taken; token = ``int(min(value, bins))``
(scBERT truncates the value: bins 0..5 for ``bins=5``), one token 0 appended.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...errors import InputError
from ..log import TrainingLog

__all__ = [
    "MIN_GENES",
    "torch_threads",
    "cell_values",
    "finetune_classifier",
    "mask_bins",
    "pretrain",
    "tokens",
]

MIN_GENES = 200  # sc.pp.filter_cells(min_genes=200) in run_scbert.py


@contextmanager
def torch_threads(threads: int | None):
    """Run torch with ``threads`` CPU threads inside the block, then restore.

    Parameters
    ----------
    threads : thread count; ``None`` leaves torch's setting. One thread is fastest for
        the tiny model on a shared 2-core machine (several threads contend).
    """
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cell_values(adata, genes: list[str], *, min_genes: int = MIN_GENES):
    """log2-normalised expression in the model's gene order, as run_scbert.py makes it.

    Parameters
    ----------
    adata : AnnData with raw counts in ``layers["counts"]``.
    genes : the model's genes in position order.
    min_genes : cells with fewer detected genes (of ``genes``) are dropped.

    Returns ``(values, kept)``: a CSR matrix (kept cells x genes, float32) with
    ``log2(1 + 1e4 c / sum(c))`` and the boolean mask of kept cells. Genes of ``genes``
    that ``adata`` lacks are 0.
    """
    if "counts" not in adata.layers:
        raise InputError(
            "adata has no layers['counts']: pass the book's canonical AnnData (raw"
            " counts in layers['counts'])"
        )
    position = {g: i for i, g in enumerate(genes)}
    cols = np.array([position.get(str(g), -1) for g in adata.var_names])
    have = np.flatnonzero(cols >= 0)
    counts = sp.csr_matrix(adata.layers["counts"], dtype=np.float32)[:, have]
    mapper = sp.csr_matrix(
        (np.ones(len(have), np.float32), (np.arange(len(have)), cols[have])),
        shape=(len(have), len(genes)),
    )
    aligned = sp.csr_matrix(counts @ mapper)
    aligned.eliminate_zeros()
    kept = np.diff(aligned.indptr) >= min_genes
    aligned = aligned[kept]
    totals = np.asarray(aligned.sum(axis=1)).ravel().astype(np.float32)
    scale = sp.diags((np.float32(1e4) / totals).astype(np.float32))
    values = sp.csr_matrix(scale @ aligned, dtype=np.float32)
    values.data = (np.log1p(values.data) / np.log(2)).astype(np.float32)
    return values, kept


def tokens(values, bins: int):
    """scBERT's tokens of dense cell rows: ``int(min(v, bins))`` and a closing 0.

    Parameters
    ----------
    values : cells x genes (dense array).
    bins : the number of expression bins (``num_tokens - 2``).
    """
    import torch

    clipped = np.minimum(np.asarray(values, dtype=np.float32), np.float32(bins))
    ids = torch.from_numpy(clipped).long()
    return torch.cat([ids, torch.zeros((ids.shape[0], 1), dtype=torch.long)], dim=1)


def mask_bins(
    batch, *, mask_token: int, generator, prob: float = 0.15, replace_prob: float = 0.9
):
    """scBERT's masked-bin objective: mask ``ceil(prob * n)`` of each cell's ``n``
    non-zero bins at random; a masked bin becomes the mask token with probability
    ``replace_prob``; labels are the true bins there and ``mask_token`` (ignored)
    elsewhere.

    Parameters
    ----------
    batch : long tensor of tokens (cells x positions).
    mask_token : id of the mask token (``num_tokens - 1``).
    generator : torch generator.
    prob, replace_prob : scBERT's 0.15 and 0.9.
    """
    import torch

    candidates = (batch != 0) & (batch != mask_token)
    rand = torch.rand(batch.shape, generator=generator).masked_fill(~candidates, -1.0)
    order = rand.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(batch.shape[1]).expand_as(order))
    quota = torch.ceil(candidates.sum(dim=1, keepdim=True) * prob)
    mask = (rank < quota) & candidates
    replace = torch.rand(batch.shape, generator=generator) < replace_prob
    masked = batch.masked_fill(mask & replace, mask_token)
    labels = batch.masked_fill(~mask, mask_token)
    return masked, labels


def pretrain(
    net, values, *, bins: int, steps: int, batch_size: int, lr: float, seed: int
) -> TrainingLog:
    """Masked-bin pretraining (scBERT's objective, Adam) of ``net`` on cell rows.

    Parameters
    ----------
    net : :class:`.network.PerformerNet` (trained in place).
    values : CSR matrix of log2 values (cells x genes).
    bins : expression bins.
    steps : optimiser steps (one batch each).
    batch_size : cells per step, drawn at random with replacement as scBERT's
        data set does.
    lr : Adam's learning rate.
    seed : seeds the cell draws and the masks.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=bins + 1)
    log = TrainingLog(note="masked-bin pretraining (scBERT's objective)")
    start = time.perf_counter()
    net.train()
    for _ in range(steps):
        rows = rng.integers(0, values.shape[0], size=batch_size)
        batch = tokens(values[rows].toarray(), bins)
        masked, labels = mask_bins(batch, mask_token=bins + 1, generator=generator)
        loss = loss_fn(net(masked).transpose(1, 2), labels)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1e2)
        optimiser.step()
        log.train_loss.append(float(loss.detach()))
        log.steps += 1
        log.cells_seen += batch_size
    net.eval()
    log.seconds = time.perf_counter() - start
    log.best_epoch = len(log.train_loss)
    return log


class _WarmupCosine:
    """scBERT's CosineAnnealingWarmupRestarts (first cycle 15, mult 2, warm-up 5,
    gamma 0.9, 1e-6 .. lr), stepped once per epoch: the learning rate of epoch ``e``."""

    def __init__(
        self,
        max_lr: float,
        min_lr: float = 1e-6,
        first: int = 15,
        mult: float = 2.0,
        warmup: int = 5,
        gamma: float = 0.9,
    ):
        self.base_max, self.min_lr, self.warmup = max_lr, min_lr, warmup
        self.mult, self.gamma = mult, gamma
        self.cycle_steps, self.cycle, self.step_in_cycle = first, 0, 0
        self.lr = min_lr  # scBERT resets to min_lr after construction

    def step(self) -> float:
        self.step_in_cycle += 1
        if self.step_in_cycle >= self.cycle_steps:
            self.cycle += 1
            self.step_in_cycle -= self.cycle_steps
            self.cycle_steps = (
                int((self.cycle_steps - self.warmup) * self.mult) + self.warmup
            )
        top = self.base_max * self.gamma**self.cycle
        s, low = self.step_in_cycle, self.min_lr
        if s < self.warmup:
            self.lr = (top - low) * s / self.warmup + low
        else:
            phase = math.pi * (s - self.warmup) / (self.cycle_steps - self.warmup)
            self.lr = low + (top - low) * (1 + math.cos(phase)) / 2
        return self.lr


class _ClassifierHead:
    """Factory of scBERT fine-tuning's head (``Identity`` in finetune.py: conv over the
    embedding width, then fc1 (positions -> 512), fc2 (-> 128), fc3 (-> classes))."""

    @staticmethod
    def build(dim: int, positions: int, classes: int, hidden: int = 128):
        from torch import nn

        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 1, (1, dim))
                self.fc1 = nn.Linear(positions, 512)
                self.fc2 = nn.Linear(512, hidden)
                self.fc3 = nn.Linear(hidden, classes)

            def forward(self, x):
                x = self.conv1(x[:, None, :, :]).relu().view(x.shape[0], -1)
                return self.fc3(self.fc2(self.fc1(x).relu()).relu())

        return Head()


def finetune_classifier(
    net,
    values,
    labels,
    *,
    bins: int,
    epochs: int,
    max_cells: int,
    batch_size: int = 3,
    grad_acc: int = 60,
    lr: float = 1e-4,
    patience: int = 10,
    seed: int = 2021,
    split_seed: int = 0,
    device=None,
):
    """The paper's fine-tuning (finetune_modified.py): ``net`` learns the condition.

    Parameters
    ----------
    net : :class:`.network.PerformerNet` with gene positions (changed in place).
    values : CSR log2 values of the cells (rows aligned with ``labels``).
    labels : condition label per cell.
    bins : expression bins.
    epochs : at most this many epochs (paper 100).
    max_cells : cells subsampled first (paper 5,000, drawn as ``sc.pp.subsample``
        with ``random_state=split_seed`` draws them); conditions with <= 5 of them are
        dropped.
    batch_size, grad_acc, lr, patience, seed : scBERT's 3, 60, 1e-4, 10, 2021.
    split_seed : seed of the subsample.
    device : torch device to train on (``None``: where ``net`` is).

    Only the last norm, the second-to-last Performer block and the new head train; an
    80/20 stratified split; each item is a random cell (scBERT's data set ignores the
    index); Adam, gradient accumulation, the warm-up cosine schedule per epoch, best
    validation accuracy kept. Returns ``(state or None, TrainingLog)``: the state dict
    of the best epoch (``None`` when no epoch beat accuracy 0, where the paper's script
    would have written no checkpoint).
    """
    import torch
    from sklearn.model_selection import StratifiedShuffleSplit

    labels = np.asarray(labels).astype(str)
    n_cells = min(max_cells, values.shape[0])
    pick = np.random.RandomState(split_seed).choice(
        values.shape[0], size=n_cells, replace=False
    )
    names, counts = np.unique(labels[pick], return_counts=True)
    keep = set(names[counts > 5])
    pick = pick[np.isin(labels[pick], list(keep))]
    log = TrainingLog(note="fine-tuning as condition classifier (paper's settings)")
    if len(keep) < 2:
        log.note += f"; skipped: {len(keep)} condition(s) with > 5 cells"
        return None, log
    classes, y = np.unique(labels[pick], return_inverse=True)
    data = values[pick]
    split = StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
    train_idx, val_idx = next(split.split(np.zeros(len(y)), y))
    py_random = random.Random(seed)
    torch.manual_seed(seed)
    for p in net.parameters():
        p.requires_grad = False
    for p in list(net.norm.parameters()) + list(
        net.performer.net.layers[-2].parameters()
    ):
        p.requires_grad = True
    dim = net.token_emb.weight.shape[1]
    net.to_out = _ClassifierHead.build(dim, net.max_seq_len, len(classes))
    if device is None:
        device = net.token_emb.weight.device
    net.to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = _WarmupCosine(lr)
    for group in optimiser.param_groups:
        group["lr"] = schedule.lr
    loss_fn = torch.nn.CrossEntropyLoss()

    def draw(index):
        rows = [index[py_random.randint(0, len(index) - 1)] for _ in range(batch_size)]
        x = tokens(data[rows].toarray(), bins).to(device)
        return x, torch.from_numpy(y[rows]).to(device)

    best, best_acc, strikes = None, 0.0, 0
    start = time.perf_counter()
    optimiser.zero_grad()
    for epoch in range(1, epochs + 1):
        net.train()
        losses = []
        n_batches = math.ceil(len(train_idx) / batch_size)
        for index in range(1, n_batches + 1):
            x, target = draw(train_idx)
            loss = loss_fn(net(x), target)
            loss.backward()
            if index % grad_acc == 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), int(1e6))
                optimiser.step()
                optimiser.zero_grad()
                log.steps += 1
            losses.append(float(loss.detach()))
            log.cells_seen += batch_size
        log.train_loss.append(float(np.mean(losses)))
        for group in optimiser.param_groups:
            group["lr"] = schedule.step()
        net.eval()
        correct, seen, val_losses = 0, 0, []
        with torch.no_grad():
            for _ in range(math.ceil(len(val_idx) / batch_size)):
                x, target = draw(val_idx)
                logits = net(x)
                val_losses.append(float(loss_fn(logits, target)))
                correct += int((logits.argmax(dim=-1) == target).sum())
                seen += len(target)
        log.val_loss.append(float(np.mean(val_losses)))
        accuracy = correct / seen
        if accuracy > best_acc:
            best_acc, strikes, log.best_epoch = accuracy, 0, epoch
            best = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        else:
            strikes += 1
            if strikes > patience:
                break
    log.seconds = time.perf_counter() - start
    log.note += f"; {len(classes)} conditions, best validation accuracy {best_acc:.3f}"
    return best, log


def write_folder(folder, net, *, genes, gene_table, settings: dict) -> None:
    """Write a model folder in scBERT's released layout (see :mod:`.checkpoint`).

    Parameters
    ----------
    folder : destination (created).
    net : the trained :class:`.network.PerformerNet`.
    genes : gene symbols in position order.
    gene_table : the gene2vec table (genes x dim).
    settings : recorded in ``tiny_scbert.json`` next to the released files.
    """
    import json

    from .checkpoint import GENE2VEC, save_state, write_gene_order

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_state(net.state_dict(), folder / "panglao_pretrain.pth")
    np.save(folder / GENE2VEC, gene_table)
    write_gene_order(genes, folder)
    (folder / "tiny_scbert.json").write_text(json.dumps(settings, indent=1) + "\n")
