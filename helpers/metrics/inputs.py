"""What every metric family receives: one method's predictions on one split, with the
truth.

:func:`metric_input` builds a :class:`MetricInput` from the book's objects (predictions,
the truth's pseudobulks, the split, optionally the truth's cells); each family module of
:mod:`helpers.metrics` turns it into per-condition columns with its ``score(inp)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from ..conditions import CONTROL
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk
from ..splits import Split

__all__ = ["MetricInput", "metric_input"]


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
