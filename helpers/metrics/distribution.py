"""Metric family ``distribution``: predicted cells against observed cells (chapter 8).

The energy distance (V-statistic) between the predicted cells ``X`` and the observed
cells ``Y`` of a condition over the evaluation genes, with Euclidean distances
(``scipy.spatial.distance.cdist``; the value of ``dcor.energy_distance``):

    E(X, Y) = 2 mean_{i,j} ||x_i - y_j|| - mean_{i,i'} ||x_i - x_i'||
              - mean_{j,j'} ||y_j - y_j'||

0 iff the two samples coincide as distributions (for large samples). Lower is better.
At most ``max_cells`` (200) cells per side are used, a seeded random subset (the
split's seed), which bounds the cost.

It needs predicted **cells** (``MetricInput.pred_cells``, e.g. an ``.h5ad`` of
predicted cells read by :func:`helpers.cells.read_predicted_cells`). A pseudobulk
prediction has none: :func:`score` then gives NaN (the reason is in the returned
table's ``attrs["reason"]``), and ``--metrics all`` leaves this family out.

This module holds the computation; :mod:`helpers.cells` re-exports
:func:`energy_distances`.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..conditions import CONTROL
from ..predictions import PredictionError
from ..pseudobulk import pseudobulk, top_control_genes
from .inputs import MetricInput
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
    "NO_CELLS",
    "dense_block",
    "energy_distances",
    "score",
]

NAME = "distribution"
COLUMNS: list[str] = ["energy_distance"]
NEEDS_CELLS = True
#: Why a pseudobulk prediction gets NaN.
NO_CELLS = "the prediction has no cells (a pseudobulk); energy distance needs cells"


def dense_block(matrix, rows, cols) -> np.ndarray:
    """Rows ``rows`` and columns ``cols`` of a (sparse or dense) matrix, dense float64.

    ``matrix``: cells x genes; ``rows``, ``cols``: positions.
    """
    block = matrix[rows][:, cols]
    return np.asarray(
        block.toarray() if sp.issparse(block) else block, dtype=np.float64
    )


def energy_distances(
    pred_cells: ad.AnnData,
    obs_cells: ad.AnnData,
    conditions=None,
    *,
    genes=None,
    n_top: int = 1000,
    max_cells: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Energy distance per condition between predicted and observed cells (formula:
    module docstring).

    ``pred_cells``, ``obs_cells``: the predicted and the observed cells;
    ``conditions``: those scored (default: every predicted perturbed condition).

    Both AnnData need canonical ``obs["condition"]`` (see :func:`read_predicted_cells`).
    Genes: ``genes`` or the top ``n_top`` control-expressed genes of the observed cells.
    At most ``max_cells`` cells per side are used (a seeded random subset), which bounds
    the cost. Columns: condition, n_pred, n_obs, energy_distance.
    """
    from scipy.spatial.distance import cdist

    if genes is None:
        ctrl = pseudobulk(obs_cells).ctrl
        genes = top_control_genes(ctrl, min(n_top, len(ctrl)))
    genes = pd.Index(genes)
    cols_pred = pred_cells.var_names.get_indexer(genes)
    cols_obs = obs_cells.var_names.get_indexer(genes)
    if (cols_pred < 0).any() or (cols_obs < 0).any():
        raise PredictionError(
            "Some evaluation genes are missing from the predicted or observed cells."
        )
    lab_pred = pred_cells.obs["condition"].astype(str).to_numpy()
    lab_obs = obs_cells.obs["condition"].astype(str).to_numpy()
    if conditions is None:
        conditions = sorted(set(lab_pred) - {CONTROL})
    rng = np.random.default_rng(seed)
    rows = []
    for condition in conditions:
        idx_pred = np.flatnonzero(lab_pred == condition)
        idx_obs = np.flatnonzero(lab_obs == condition)
        if len(idx_pred) == 0 or len(idx_obs) == 0:
            raise PredictionError(
                f"No {'predicted' if len(idx_pred) == 0 else 'observed'} cells for "
                f"{condition!r}."
            )
        if len(idx_pred) > max_cells:
            idx_pred = np.sort(rng.choice(idx_pred, max_cells, replace=False))
        if len(idx_obs) > max_cells:
            idx_obs = np.sort(rng.choice(idx_obs, max_cells, replace=False))
        x = dense_block(pred_cells.X, idx_pred, cols_pred)
        y = dense_block(obs_cells.X, idx_obs, cols_obs)
        rows.append(
            {
                "condition": condition,
                "n_pred": len(idx_pred),
                "n_obs": len(idx_obs),
                "energy_distance": float(
                    2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
                ),
            }
        )
    return pd.DataFrame(
        rows, columns=["condition", "n_pred", "n_obs", "energy_distance"]
    )


def score(inp: MetricInput) -> pd.DataFrame:
    """``energy_distance`` per condition of ``inp`` (module docstring): its predicted
    cells (``inp.pred_cells``) against the truth's (``inp.cells``), at most 200 per
    side, seeded by ``inp.seed``; NaN for every condition, with
    ``attrs["reason"]``, when ``inp`` has no predicted cells.

    ``inp``: one method's predictions on one split.
    """
    index = pd.Index(inp.conditions, name="condition")
    if inp.pred_cells is None:
        out = pd.DataFrame({"energy_distance": np.nan}, index=index)
        out.attrs["reason"] = NO_CELLS
        return out
    table = energy_distances(
        inp.pred_cells,
        inp.cells,
        inp.conditions,
        genes=inp.genes,
        seed=0 if inp.seed is None else int(inp.seed),
    )
    return table.set_index("condition")[COLUMNS].reindex(index)


SPECS = (
    MetricSpec(
        "energy_distance",
        NAME,
        "lower",
        True,
        "dcor.energy_distance",
        "energy_distance",
        "Energy distance between predicted and observed cells of a condition",
        perfect=0.0,
    ),
)
