"""Guard rails on submitted predictions beyond :func:`helpers.metrics.evaluate`: are they on the truth's scale?"""

from __future__ import annotations

import numpy as np

from ..predictions import PredictionError, Predictions
from ..pseudobulk import Pseudobulk, top_control_genes

__all__ = ["check_units"]


def check_units(predictions: Predictions, truth: Pseudobulk) -> None:
    """Raise if the predictions are obviously not mean log-normalised expression like the truth.

    Catches the common mistakes: raw or normalised **counts** (large, integer-like values), and
    **changes** relative to control instead of expression levels (many negative values).
    """
    values = predictions.values.to_numpy()
    truth_max = float(truth.means.to_numpy().max())
    name = predictions.method
    if values.max() > 3 * truth_max + 5:
        integer_like = np.mean(np.isclose(values, np.round(values))) > 0.9
        raise PredictionError(
            f"{name}: predicted values reach {values.max():.1f}, but the data's log-normalised pseudobulks never exceed "
            f"{truth_max:.1f}. These look like {'counts' if integer_like else 'values on another scale'}; submit the mean "
            "of log1p(normalised counts) per condition, as helpers.pseudobulk computes it."
        )
    negative = float(np.mean(values < -0.05))
    top = top_control_genes(truth.ctrl, min(100, len(truth.genes))).intersection(predictions.genes)
    level = float(np.median(predictions.values[top].to_numpy())) if len(top) else np.nan
    looks_like_changes = len(top) and level < 0.25 * float(np.median(truth.ctrl[top]))
    if (negative > 0.1 or looks_like_changes) and float((truth.means.to_numpy() < -0.05).mean()) < 0.01:
        raise PredictionError(
            f"{name}: {negative:.0%} of the predicted values are negative and the most expressed genes are predicted at "
            f"{level:.2f} (control: {float(np.median(truth.ctrl[top])):.2f}). These look like changes relative to control; "
            "add the control pseudobulk (train.pseudobulk.ctrl)."
        )
