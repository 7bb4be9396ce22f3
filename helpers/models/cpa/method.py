"""CPA as a benchmark method (chapter 4), and the two protocol choices of the paper.

The paper's ``run_cpa.py`` trains cpa-tools' CPA on counts rebuilt from the
log-normalised data, predicts every held-out condition from control cells and scores
the per-condition mean of ``log1p`` of CPA's **raw predicted counts**, while the truth
it is compared with is log-normalised (``log1p(counts / size * 1e4)``). Its early
stopping watches the **test** conditions (``valid_split='test'``).

- :func:`counts_from_lognorm`: the counts and size factors behind log-normalised data;
- :func:`train_cpa`: the paper's CPA (:mod:`.training`, the paper's settings) trained
  on a split's training cells, early-stopped on the validation conditions
  (``watch="val"``) or, as the paper did, on the test conditions (``watch="test"``,
  which reads held-out cells: only for showing the protocol's effect);
- :func:`scale_profiles`: per-condition means of predicted counts on the paper's scale
  (``"paper"``: ``mean log1p(pred)``) or on the truth's (``"normalised"``:
  ``mean log1p(pred / size * 1e4)``, ``size`` the input control cell's total count);
- :class:`CpaMethod` (name ``cpa_book``): the contract's method
  (:mod:`helpers.models.contract`), trained on the training cells only, early-stopped
  on a seeded share of the training perturbations, scored on the normalised scale.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ...conditions import CONTROL
from ...errors import InputError
from ...predictions import Predictions
from ...resources import peak_rss_gb
from ...simulate import counts_from_log_normalised
from ...splits import Split
from ..contract import TaskData, validation_split
from .checkpoint import CPAModel
from .training import PAPER_MODEL, new_model, train

__all__ = [
    "SCALES",
    "CpaMethod",
    "CpaRun",
    "counts_from_lognorm",
    "scale_profiles",
    "train_cpa",
]

SCALES = ("normalised", "paper")
TARGET_SUM = 1e4


def counts_from_lognorm(x, size=None) -> tuple[np.ndarray, np.ndarray]:
    """Counts and size factors behind log-normalised data ``x = log1p(c / s * 1e4)``,
    dense, for CPA (:func:`helpers.simulate.counts_from_log_normalised`, the one
    recipe).

    With ``size`` (each cell's total count ``s``, e.g. ``obs["ncounts"]``):
    ``c = round(expm1(x) * s / 1e4)``. Without it, the paper's recipe
    (``run_cpa.py``): ``c = round(expm1(x) / m)`` with ``m`` the cell's smallest
    non-zero ``expm1(x)``, which assumes the cell's rarest measured gene had 1 count,
    and then ``s = 1e4 / m``.

    Parameters
    ----------
    x
        ``(cells, genes)`` log-normalised values (dense or scipy sparse).
    size
        One total count per cell, or ``None`` for the paper's recipe.
    """
    counts, size = counts_from_log_normalised(x, size, target_sum=TARGET_SUM)
    if not np.isfinite(size).all():
        raise InputError(
            "a cell has no non-zero value; drop empty cells before rebuilding "
            "counts for CPA"
        )
    return counts.toarray().astype(np.float32), size


def scale_profiles(
    pred_counts, size, labels, scale: str = "normalised"
) -> pd.DataFrame:
    """Per-condition mean of CPA's predicted counts on one of two scales.

    ``"paper"`` (``run_cpa.py``): ``mean_i log1p(pred_i)``; ``"normalised"`` (the
    truth's scale): ``mean_i log1p(pred_i / s_i * 1e4)``, with ``s_i`` the total count
    of the control cell that row ``i`` was predicted from.

    Parameters
    ----------
    pred_counts
        ``(rows, genes)`` predicted NB means (``obsm["CPA_pred"]``).
    size
        One size factor per row (the input control cell's total count).
    labels
        One condition label per row; the result has one row per label, in order of
        first appearance.
    scale
        ``"normalised"`` or ``"paper"``.
    """
    if scale not in SCALES:
        raise InputError(f"scale={scale!r}; choose 'normalised' or 'paper'")
    pred = np.asarray(pred_counts, dtype=np.float64)
    if scale == "normalised":
        size = np.asarray(size, dtype=np.float64).reshape(-1, 1)
        pred = pred / size * TARGET_SUM
    frame = pd.DataFrame(np.log1p(pred))
    frame["_label"] = np.asarray(labels).astype(str)
    out = frame.groupby("_label", sort=False).mean()
    out.index.name = None
    return out


@dataclass
class CpaRun:
    """A CPA trained on one split, with the control cells it predicts from.

    ``model``: the trained :class:`.checkpoint.CPAModel`; ``history``: losses and the
    validation metric per epoch; ``watched``: the conditions the early stopping
    watched; ``control_counts``, ``control_size``: the training control cells (counts
    in the model's gene order, total counts); ``seconds``, ``peak_rss_gb``,
    ``epochs``: the training's cost.
    """

    model: CPAModel
    history: pd.DataFrame
    watched: list[str]
    control_counts: np.ndarray = field(repr=False)
    control_size: np.ndarray = field(repr=False)
    dataset: str = ""
    seconds: float = 0.0
    peak_rss_gb: float = 0.0
    epochs: int = 0

    @property
    def best_epoch(self) -> int | None:
        """The validated epoch whose weights were kept (``None``: none validated)."""
        valid = self.history[self.history["mode"] == "valid"]
        if valid.empty or not np.isfinite(valid["cpa_metric"]).any():
            return None
        kept = valid[valid["epoch"] > 0]
        return (
            int(kept.loc[kept["cpa_metric"].idxmax(), "epoch"]) if len(kept) else None
        )

    def predict(
        self,
        conditions: Sequence[str],
        *,
        scale: str = "normalised",
        pool_size: int = 100,
        seed: int = 0,
        method: str = "cpa_book",
        split_seed: int | None = None,
    ) -> Predictions:
        """Mean predicted profile of each condition from a seeded pool of control cells.

        Every condition is predicted from the same ``pool_size`` training control cells
        (drawn with ``seed``), then averaged with :func:`scale_profiles`.

        Parameters
        ----------
        conditions
            Condition labels to predict.
        scale
            ``"normalised"`` (the truth's scale) or ``"paper"`` (``log1p`` of counts).
        pool_size
            Control cells per condition (fewer if fewer exist).
        seed
            Seeds the pool.
        method
            The predictions' name.
        split_seed
            The split's seed (labels the predictions).
        """
        conditions = list(conditions)
        rng = np.random.default_rng(seed)
        n = min(pool_size, len(self.control_counts))
        pool = np.sort(rng.choice(len(self.control_counts), size=n, replace=False))
        x = np.tile(self.control_counts[pool], (len(conditions), 1))
        size = np.tile(self.control_size[pool], len(conditions))
        labels = np.repeat(conditions, n)
        pred = self.model.predict_counts(x, labels)
        values = scale_profiles(pred, size, labels, scale)
        values.columns = list(self.model.var_names)
        return Predictions(values.loc[conditions], method, self.dataset, split_seed)


def train_cpa(
    adata,
    split: Split,
    *,
    watch: str = "val",
    seed: int = PAPER_MODEL["seed"],
    max_epochs: int = 2000,
    **settings,
) -> CpaRun:
    """Train the paper's CPA on ``split``'s training cells (the paper's settings).

    Parameters
    ----------
    adata
        Cells with ``obs["condition"]`` and log-normalised ``X``; counts and size
        factors are rebuilt with the paper's recipe (:func:`counts_from_lognorm`).
    split
        Which conditions are trained on (``train``) and watched.
    watch
        ``"val"``: early stopping watches the split's validation conditions;
        ``"test"``: its test conditions, as the paper's ``valid_split='test'`` (this
        reads held-out cells; use it only to measure that protocol).
    seed
        CPA's seed (initial weights and every random draw of the training).
    max_epochs
        Most epochs (the paper: 2000; early stopping usually ends sooner).
    **settings
        Other settings of :func:`.training.train`.
    """
    if watch not in ("val", "test"):
        raise InputError(f"watch={watch!r}; choose 'val' or 'test'")
    watched = split.conditions(watch)
    if not watched:
        raise InputError(
            f"the split has no {watch} conditions for CPA's early stopping; give a "
            "split with some (splits.holdout_split(..., val=...))"
        )
    obs = adata.obs["condition"].astype(str).to_numpy()
    train_set = set(split.train)
    keep = np.flatnonzero(np.isin(obs, list(train_set | set(watched))))
    part = adata[keep]
    part = part.to_memory() if getattr(part, "isbacked", False) else part
    counts, size = counts_from_lognorm(part.X)
    labels = obs[keep]
    roles = np.where(np.isin(labels, list(train_set)), "train", "valid")
    start = time.perf_counter()
    model = new_model(list(adata.var_names), list(split.assignment), seed=seed)
    history = train(
        model, counts, labels, split=roles, max_epochs=max_epochs, **settings
    )
    seconds = time.perf_counter() - start
    ctrl = (labels == CONTROL) & (roles == "train")
    if not ctrl.any():
        raise InputError(
            "no control cells among the training cells; CPA predicts from control "
            "cells: keep 'ctrl' in the split's training conditions"
        )
    dataset = adata.uns.get("perturbbook", {}).get("dataset", "")
    return CpaRun(
        model,
        history,
        list(watched),
        counts[ctrl],
        size[ctrl],
        dataset=str(dataset),
        seconds=seconds,
        peak_rss_gb=peak_rss_gb(),
        epochs=int(history["epoch"].max()) + 1,
    )


@dataclass
class CpaMethod:
    """Train the paper's CPA on each split's training cells, then predict.

    ``name``: the method's name (not ``cpa``, the published CPA results' name);
    ``max_epochs``: most epochs (the paper: 2000); ``val_fraction``: the share of
    training perturbations the early stopping watches (at least one; the held-out
    conditions are never read); ``scale``: ``"normalised"`` (the truth's scale) or
    ``"paper"``; ``pool_size``: control cells per prediction; ``seed``: seeds the
    validation choice and the control pool; ``cpa_seed``: CPA's own seed (the paper:
    8206); ``settings``: other settings of :func:`.training.train`. ``runs`` collects
    the :class:`CpaRun` of every split.
    """

    name: str = "cpa_book"
    max_epochs: int = 2000
    val_fraction: float = 0.1
    scale: str = "normalised"
    pool_size: int = 100
    seed: int = 0
    cpa_seed: int = PAPER_MODEL["seed"]
    settings: dict = field(default_factory=dict)
    runs: list[CpaRun] = field(default_factory=list, repr=False)

    def predict(self, train: TaskData, conditions: Sequence[str]) -> Predictions:
        """Train on ``train``'s cells and predict ``conditions`` (the contract's call).

        ``train``: the training data of one split (with cells); ``conditions``: the
        held-out conditions to predict.
        """
        conditions = list(conditions)
        perturbed = [c for c in train.split.train if c != CONTROL]
        if not perturbed:
            raise InputError(
                "no perturbed training condition to watch; CPA's early stopping needs "
                "one: give a split with perturbed training conditions"
            )
        split = validation_split(
            train.split,
            conditions,
            fraction=self.val_fraction,
            seed=self.seed,
            note="CPA watches {n} training perturbations",
        )
        torch.manual_seed(self.cpa_seed)
        run = train_cpa(
            train.cells(),
            split,
            watch="val",
            seed=self.cpa_seed,
            max_epochs=self.max_epochs,
            **self.settings,
        )
        self.runs.append(run)
        pred = run.predict(
            conditions,
            scale=self.scale,
            pool_size=self.pool_size,
            seed=self.seed,
            method=self.name,
            split_seed=train.seed,
        )
        return Predictions(pred.values, self.name, train.dataset, train.seed)
