"""Predicted cells in the peers' format, and a distribution metric (introduced in
chapter 8).

The cell-eval / Virtual Cell Challenge layout: an AnnData of (predicted) cells with a
perturbation column in ``obs`` (``target_gene`` by default), a control label
(``non-targeting``), log-normalised expression in ``X`` and the dataset's genes as
``var_names``.

* :func:`read_predicted_cells` maps such a file onto the book's canonical labels
  (``obs["condition"]``: ``ctrl``, ``A``, ``A+B``; see
  :func:`helpers.loaders.normalize_condition`).
* :func:`predictions_from_cells` pseudobulks predicted cells with the book's own
  :func:`helpers.pseudobulk.pseudobulk` into a :class:`helpers.predictions.Predictions`,
  so every metric of :mod:`helpers.metrics` applies unchanged.
* :func:`energy_distances` scores cells against cells, per condition, with the energy
  distance: the ``distribution`` metric family's computation
  (:mod:`helpers.metrics.distribution`, formula there), re-exported here.
* :func:`to_cell_eval` exports the book's pseudobulk predictions (and the observed
  cells) in that layout, e.g. for ``cell-eval run``.
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .loaders import CONTROL, LoaderError, normalize_condition
from .metrics.distribution import dense_block as _dense
from .metrics.distribution import energy_distances
from .predictions import PredictionError, Predictions
from .pseudobulk import pseudobulk

__all__ = [
    "read_predicted_cells",
    "predictions_from_cells",
    "energy_distances",
    "to_cell_eval",
    "cells_to_cell_eval",
    "PERTURBATION_KEY",
    "CONTROL_LABEL",
]

PERTURBATION_KEY = "target_gene"
CONTROL_LABEL = "non-targeting"


def _peer_label(condition: str, control_label: str) -> str:
    return control_label if condition == CONTROL else condition


def read_predicted_cells(
    source: str | os.PathLike | ad.AnnData,
    *,
    perturbation_key: str = PERTURBATION_KEY,
    control_label: str = CONTROL_LABEL,
    genes=None,
) -> ad.AnnData:
    """Predicted cells (``.h5ad`` path or AnnData) with canonical ``obs["condition"]``.

    ``control_label`` and the loaders' control aliases become ``ctrl``; ``"A+B"``,
    ``"A_B"`` are not guessed: doubles must be written ``A+B``. ``genes`` (e.g. the
    truth's) must all be measured. Errors name the problem: a missing column, no control
    cells, duplicated genes, NaN or infinite values.
    """
    if isinstance(source, ad.AnnData):
        adata = source.copy()
    else:
        path = Path(source)
        if path.is_dir():
            raise PredictionError(
                f"{path} is a folder, not an .h5ad file of predicted cells: pass the "
                "file itself (a .zarr store: read it with anndata and pass the "
                "AnnData)."
            )
        if not path.exists():
            raise PredictionError(f"No predicted-cells file at {path}.")
        try:
            adata = ad.read_h5ad(path)
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise PredictionError(
                f"{path} is not a readable .h5ad file ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else 'no detail'})."
            ) from None
    if perturbation_key not in adata.obs:
        raise PredictionError(
            f"Predicted cells need the perturbation in obs[{perturbation_key!r}] "
            "(cell-eval / Virtual Cell "
            f"Challenge layout); obs has {list(adata.obs.columns)[:10]}. Pass "
            "perturbation_key=..."
        )
    if adata.var_names.has_duplicates:
        raise PredictionError(
            "Predicted cells have duplicated gene names (var_names); make them unique."
        )
    raw = adata.obs[perturbation_key].astype(str)
    try:
        labels = [
            CONTROL if r == control_label else normalize_condition(r) for r in raw
        ]
    except LoaderError as err:
        raise PredictionError(f"Predicted cells: {err}") from None
    if CONTROL not in labels:
        raise PredictionError(
            "Predicted cells contain no control cells labelled "
            f"{control_label!r} in obs[{perturbation_key!r}]; "
            "include the control (the changes are taken against it) or pass "
            "control_label=..."
        )
    X = adata.X
    values = X.data if sp.issparse(X) else np.asarray(X)
    if not np.isfinite(values).all():
        raise PredictionError("Predicted cells contain NaN or infinite values.")
    if genes is not None:
        missing = pd.Index(genes).difference(adata.var_names)
        if len(missing):
            raise PredictionError(
                f"{len(missing)} genes of the dataset are not in the predicted cells "
                f"(e.g. {list(missing)[:5]}); use the dataset's gene symbols."
            )
    adata.obs["condition"] = pd.Categorical(labels)
    return adata


def predictions_from_cells(
    cells: ad.AnnData,
    *,
    method: str,
    dataset: str,
    seed: int | None = None,
    perturbation_key: str = PERTURBATION_KEY,
    control_label: str = CONTROL_LABEL,
) -> Predictions:
    """Pseudobulk of predicted cells (book's :func:`~helpers.pseudobulk.pseudobulk`) as
    Predictions.

    The prediction of a condition is the mean of its predicted cells; the predicted
    control cells are not part of the predictions (the truth's control is used), so
    ``ctrl`` is dropped.
    """
    if "condition" not in cells.obs:
        cells = read_predicted_cells(
            cells, perturbation_key=perturbation_key, control_label=control_label
        )
    means = pseudobulk(cells).means.drop(index=CONTROL)
    return Predictions(means, method, dataset, seed)


def to_cell_eval(
    predictions: Predictions,
    ctrl: pd.Series,
    *,
    n_cells: int | dict = 1,
    perturbation_key: str = PERTURBATION_KEY,
    control_label: str = CONTROL_LABEL,
    control_cells: ad.AnnData | None = None,
) -> ad.AnnData:
    """Export pseudobulk predictions as "cells" in the cell-eval layout.

    Each predicted condition becomes ``n_cells`` identical cells equal to its predicted
    profile (their mean is the prediction; a pseudobulk has no cell-to-cell spread, so
    distribution metrics on this export measure only the mean). The control is
    ``control_cells`` (e.g. the observed control cells, their condition column is
    rewritten) or ``n_cells`` copies of ``ctrl``. Negative predicted values are kept
    (cell-eval refuses them; see chapter 8). ``predictions``: the pseudobulk
    predictions; ``ctrl``: the control profile; ``n_cells``: copies per condition (a
    number, or condition -> number); ``perturbation_key``, ``control_label``: the obs
    column and the control's label of the layout; ``control_cells``: observed cells
    whose control cells are used.
    """
    genes = predictions.genes
    blocks, labels = [], []
    for condition in predictions.conditions:
        count = n_cells[condition] if isinstance(n_cells, dict) else n_cells
        blocks.append(np.tile(predictions.values.loc[condition].to_numpy(), (count, 1)))
        labels += [_peer_label(condition, control_label)] * count
    if control_cells is None:
        count = n_cells.get(CONTROL, 1) if isinstance(n_cells, dict) else n_cells
        blocks.append(np.tile(ctrl[genes].to_numpy(dtype=np.float64), (count, 1)))
        labels += [control_label] * count
    X = np.vstack(blocks)
    obs = pd.DataFrame(
        {perturbation_key: labels}, index=[f"pred{i}" for i in range(len(labels))]
    )
    out = ad.AnnData(X.astype(np.float32), obs=obs, var=pd.DataFrame(index=genes))
    out.uns["perturbbook"] = {
        "method": predictions.method,
        "dataset": predictions.dataset,
        "seed": -1 if predictions.seed is None else int(predictions.seed),
    }
    if control_cells is not None:
        ctrl_block = cells_to_cell_eval(
            control_cells[control_cells.obs["condition"] == CONTROL],
            perturbation_key=perturbation_key,
            control_label=control_label,
        )
        ctrl_block = ctrl_block[:, genes]
        ctrl_block = ad.AnnData(
            _dense(
                ctrl_block.X, np.arange(ctrl_block.n_obs), np.arange(len(genes))
            ).astype(np.float32),
            obs=ctrl_block.obs[[perturbation_key]],
            var=pd.DataFrame(index=genes),
        )
        out = ad.concat([out, ctrl_block], merge="same", uns_merge="first")
    out.obs[perturbation_key] = out.obs[perturbation_key].astype("category")
    return out


def cells_to_cell_eval(
    cells: ad.AnnData,
    *,
    perturbation_key: str = PERTURBATION_KEY,
    control_label: str = CONTROL_LABEL,
) -> ad.AnnData:
    """Canonical cells (``obs["condition"]``) relabelled for cell-eval
    (``obs[perturbation_key]``).

    ``cells``: canonical cells; ``perturbation_key``, ``control_label``: the obs column
    and the control's label of the layout.
    """
    labels = [_peer_label(c, control_label) for c in cells.obs["condition"].astype(str)]
    out = ad.AnnData(
        cells.X.copy(),
        obs=pd.DataFrame(
            {perturbation_key: pd.Categorical(labels)}, index=cells.obs_names.copy()
        ),
        var=pd.DataFrame(index=cells.var_names.copy()),
    )
    return out
