"""What every metric family receives: one method's predictions on one split, with the
truth.

:func:`metric_input` builds a :class:`MetricInput` from the book's objects (predictions,
the truth's pseudobulks, the split, optionally the truth's cells); each family module of
:mod:`helpers.metrics` turns it into per-condition columns with its ``score(inp)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from ..conditions import CONTROL
from ..errors import InputError
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk
from ..splits import Split

__all__ = ["MetricInput", "metric_input", "check_same_perturbations"]


@dataclass
class MetricInput:
    """One method's predictions for the held-out conditions of one split, and what to
    score them on.

    * ``pred``, ``obs``: held-out conditions x evaluation genes (prediction; observed
      pseudobulk), same index and columns, float64;
    * ``ctrl``: the control pseudobulk over the evaluation genes (all control cells);
    * ``train``: the training perturbations' pseudobulks over the evaluation genes
      (control excluded) - what a model could see; Systema's reference is their
      equal-weight mean;
    * ``cells``: the truth's cells in memory (canonical ``obs["condition"]``, ``ctrl``
      included), for the families that need cell-level statistics (DE weights, DE sets);
      else None;
    * ``cache``: a dict shared by all methods of one task, for truth-only quantities (DE
      statistics of the observed cells) so they are computed once;
    * ``exclude_target``: True drops each condition's own target gene(s) from the genes
      that the metrics which rank or correlate across genes use (each family's
      docstring says which honour it; :func:`helpers.metrics.paper.non_target_mask`);
    * ``pred_cells``: the method's predicted cells (canonical ``obs["condition"]``),
      where it predicted cells, for the ``distribution`` family; else None.
    """

    method: str
    seed: int | None
    genes: pd.Index
    pred: pd.DataFrame
    obs: pd.DataFrame
    ctrl: pd.Series
    train: pd.DataFrame
    cells: ad.AnnData | None = None
    cache: dict = field(default_factory=dict)
    exclude_target: bool = False
    pred_cells: ad.AnnData | None = None

    @property
    def conditions(self) -> list[str]:
        return list(self.pred.index)


def metric_input(
    predictions: Predictions,
    truth: Pseudobulk,
    split: Split,
    genes,
    *,
    conditions=None,
    cells: ad.AnnData | None = None,
    cache: dict | None = None,
    exclude_target: bool = False,
    pred_cells: ad.AnnData | None = None,
) -> MetricInput:
    """The :class:`MetricInput` of ``predictions`` on ``split`` (``conditions``: default
    the held-out conditions the predictions cover, in the split's order; ``pred_cells``:
    the method's predicted cells, if any)."""
    genes = pd.Index(genes)
    if conditions is None:
        conditions = [c for c in split.held_out if c in predictions.conditions]
    conditions = [c for c in conditions if c != CONTROL]
    train = [c for c in split.train if c != CONTROL and c in truth.conditions]
    return MetricInput(
        method=predictions.method,
        seed=predictions.seed if predictions.seed is not None else split.seed,
        genes=genes,
        pred=predictions.values.loc[conditions, genes].astype(np.float64),
        obs=truth.means.loc[conditions, genes].astype(np.float64),
        ctrl=truth.ctrl[genes].astype(np.float64),
        train=truth.means.loc[train, genes].astype(np.float64),
        cells=cells,
        cache={} if cache is None else cache,
        exclude_target=exclude_target,
        pred_cells=pred_cells,
    )


def check_same_perturbations(
    real: Mapping[str, str] | Iterable[str],
    pred: Mapping[str, str] | Iterable[str],
    *,
    lacking: str,
    surplus: str,
) -> None:
    """Raise one :class:`helpers.errors.InputError` line where the predictions lack a
    perturbation of the real data, or hold one the real data do not.

    ``real``, ``pred``: the perturbations of each side (control excluded), as keys to
    compare, or a mapping key -> the label a message shows; ``lacking``, ``surplus``:
    the two messages, with ``{n}`` (how many) and ``{examples}`` (the first three
    labels, sorted by key). Missing perturbations are checked first.
    """
    real_shown = real if isinstance(real, Mapping) else {c: c for c in real}
    pred_shown = pred if isinstance(pred, Mapping) else {c: c for c in pred}
    for message, keys, shown in (
        (lacking, set(real_shown) - set(pred_shown), real_shown),
        (surplus, set(pred_shown) - set(real_shown), pred_shown),
    ):
        if keys:
            first = [shown[c] for c in sorted(keys)[:3]]
            raise InputError(message.format(n=len(keys), examples=first))
