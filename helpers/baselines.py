"""The simple baselines of the paper (introduced in chapter 2).

Each baseline sees only **training** pseudobulks (pass ``train_pb =
pb.subset(split.train)``), so it cannot peek at held-out conditions, and returns
:class:`helpers.predictions.Predictions`.

* ``no_change``: predict the control profile for every condition, ``y_hat_p = ctrl``.
* ``additive``: for a double ``A+B``, ``y_hat = x_A + x_B - ctrl`` (the sum of the two
  single changes added to control, in log1p space); needs both singles in training.
* ``mean``: the average training pseudobulk (``ctrl`` included), ``y_hat_p = mean_{q in
  train} x_q``.

The functions take ``(train_pb, conditions, *, seed)``; :data:`BASELINES` holds them as
:class:`helpers.models.contract.Method` objects (made by
:func:`helpers.models.contract.from_pseudobulk`), which are still callable as the
functions are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .conditions import condition_genes
from .models.contract import from_pseudobulk
from .predictions import PredictionError, Predictions
from .pseudobulk import Pseudobulk

__all__ = ["no_change", "additive", "mean_baseline", "BASELINES"]


def _frame(rows: np.ndarray, conditions, genes) -> pd.DataFrame:
    return pd.DataFrame(
        rows, index=pd.Index(list(conditions), name="condition"), columns=genes
    )


def no_change(
    train_pb: Pseudobulk, conditions, *, seed: int | None = None
) -> Predictions:
    """Predict the control pseudobulk for every condition.

    ``train_pb``: training pseudobulks (``ctrl`` included); ``conditions``: the
    conditions to predict; ``seed``: the split seed the predictions are labelled with.
    """
    conditions = list(conditions)
    rows = np.tile(train_pb.ctrl.to_numpy(), (len(conditions), 1))
    return Predictions(
        _frame(rows, conditions, train_pb.genes), "no_change", train_pb.dataset, seed
    )


def additive(
    train_pb: Pseudobulk, conditions, *, seed: int | None = None
) -> Predictions:
    """Predict each double ``A+B`` as ``x_A + x_B - ctrl`` from the training singles.

    ``train_pb``: training pseudobulks (both singles of each double and ``ctrl``);
    ``conditions``: the doubles to predict; ``seed``: the split seed of the predictions.
    """
    conditions = list(conditions)
    ctrl = train_pb.ctrl.to_numpy()
    rows = []
    for condition in conditions:
        genes = condition_genes(condition)
        if len(genes) != 2:
            raise PredictionError(
                "The additive baseline predicts double perturbations 'A+B'; "
                f"{condition!r} is not one."
            )
        absent = [g for g in genes if g not in train_pb.conditions]
        if absent:
            raise PredictionError(
                f"Double {condition!r}: single perturbation(s) {absent} are not in the "
                "training data, so the additive baseline cannot predict it. Keep both "
                "singles in training or drop this double."
            )
        rows.append(
            train_pb.means.loc[genes[0]].to_numpy()
            + train_pb.means.loc[genes[1]].to_numpy()
            - ctrl
        )
    return Predictions(
        _frame(np.array(rows).reshape(len(conditions), -1), conditions, train_pb.genes),
        "additive",
        train_pb.dataset,
        seed,
    )


def mean_baseline(
    train_pb: Pseudobulk, conditions, *, seed: int | None = None
) -> Predictions:
    """Predict the mean of all training pseudobulks (``ctrl`` included) for every
    condition.

    ``train_pb``: training pseudobulks; ``conditions``: the conditions to predict;
    ``seed``: the split seed the predictions are labelled with.
    """
    conditions = list(conditions)
    mean = train_pb.means.mean(axis=0).to_numpy()
    return Predictions(
        _frame(np.tile(mean, (len(conditions), 1)), conditions, train_pb.genes),
        "mean",
        train_pb.dataset,
        seed,
    )


#: The baselines by name, as methods of the one contract (callable as the functions
#: are).
BASELINES = {
    name: from_pseudobulk(function, name=name)
    for name, function in (
        ("no_change", no_change),
        ("additive", additive),
        ("mean", mean_baseline),
    )
}
