"""Guard rails on submitted predictions beyond :func:`helpers.metrics.evaluate`: are they on the truth's scale?"""

from __future__ import annotations

import numpy as np

from ..predictions import PredictionError, Predictions
from ..pseudobulk import Pseudobulk, top_control_genes

__all__ = ["check_units"]

_SCALE_RANGE = (0.8, 1.25)  # allowed median ratio of predicted to control level on the top genes


def check_units(predictions: Predictions, truth: Pseudobulk) -> None:
    """Raise if the predictions are obviously not mean log-normalised expression like the truth.

    Catches the common mistakes: raw or normalised **counts** (large, integer-like values),
    **changes** relative to control instead of expression levels (many negative values), and
    levels on **another log scale** (log2 or log10 instead of the natural log1p). The last compares
    the predicted levels of the most expressed genes to their control level: in the truth's units a
    perturbation moves the median of these ratios little (it stays close to 1), while a
    change of log base multiplies every value by the same factor (log2: 1 / ln 2 = 1.44, log10: 0.43),
    so a median ratio outside [0.8, 1.25] is an error.
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
    ctrl_top = truth.ctrl[top].to_numpy(dtype=float)
    expressed = ctrl_top > 0
    if expressed.any():
        ratio = float(np.median(predictions.values[top].to_numpy()[:, expressed] / ctrl_top[expressed]))
        if not _SCALE_RANGE[0] <= ratio <= _SCALE_RANGE[1]:
            raise PredictionError(
                f"{name}: on the {int(expressed.sum())} most expressed genes the predictions are {ratio:.2f} x the "
                "control level (the truth's units give about 1; log2(1 + x) instead of log(1 + x) gives 1.44, "
                "log10 0.43). These look like values on another log scale; submit the mean of the natural "
                "log1p(normalised counts) per condition, as helpers.pseudobulk computes it."
            )
