"""Running methods over splits and collecting metrics (introduced in chapter 2).

``run_baselines`` is the loop every chapter uses: for each split, restrict the pseudobulk to the
training conditions, let each baseline predict the held-out conditions, and score the predictions
with :func:`helpers.metrics.evaluate`. Later chapters add models through the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from .baselines import BASELINES
from .metrics import evaluate
from .predictions import Predictions
from .pseudobulk import Pseudobulk
from .splits import Split

__all__ = ["run_methods", "run_baselines"]

Method = Callable[..., Predictions]


def run_methods(truth: Pseudobulk, splits: Iterable[Split], methods: dict[str, Method], *, n_top: int = 1000,
                **evaluate_kwargs) -> tuple[pd.DataFrame, list[Predictions]]:
    """Run ``methods`` (name -> ``f(train_pb, conditions, seed=...) -> Predictions``) on every split.

    Each method only sees ``truth.subset(split.train)``. Returns the per-perturbation metrics of all
    methods and splits, and the predictions.
    """
    tables, predictions = [], []
    for split in splits:
        train_pb = truth.subset(split.train)
        for name, method in methods.items():
            pred = method(train_pb, split.held_out, seed=split.seed)
            if pred.method != name:
                pred = Predictions(pred.values, name, pred.dataset, pred.seed)
            predictions.append(pred)
            tables.append(evaluate(pred, truth, split, n_top=n_top, **evaluate_kwargs))
    return pd.concat(tables, ignore_index=True), predictions


def run_baselines(truth: Pseudobulk, splits: Iterable[Split], names=("no_change", "additive", "mean"),
                  **kwargs) -> tuple[pd.DataFrame, list[Predictions]]:
    """:func:`run_methods` with the paper's baselines (see :mod:`helpers.baselines`)."""
    unknown = set(names) - set(BASELINES)
    if unknown:
        raise ValueError(f"Unknown baseline(s) {sorted(unknown)}; available: {sorted(BASELINES)}.")
    return run_methods(truth, splits, {n: BASELINES[n] for n in names}, **kwargs)
