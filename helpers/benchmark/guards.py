"""Guard rails on submitted predictions beyond :func:`helpers.metrics.evaluate`: are
they on the truth's scale (:func:`check_units`), and are they suspiciously the truth
itself (:func:`truth_echo`)?"""

from __future__ import annotations

import numpy as np

from ..predictions import PredictionError, Predictions
from ..pseudobulk import Pseudobulk, top_control_genes

__all__ = ["check_units", "truth_echo", "ECHO_TOLERANCE"]

#: largest |prediction - observed| still counted as "equal to within rounding" (float32
#: of log1p values)
ECHO_TOLERANCE = 1e-5

_SCALE_RANGE = (
    0.8,
    1.25,
)  # allowed median ratio of predicted to control level on the top genes


def check_units(predictions: Predictions, truth: Pseudobulk) -> None:
    """Raise if the predictions are obviously not mean log-normalised expression like
    the truth.

    Catches the common mistakes: raw or normalised **counts** (large, integer-like
    values), **changes** relative to control instead of expression levels (many negative
    values), and levels on **another log scale** (log2 or log10 instead of the natural
    log1p). The last compares the predicted levels of the most expressed genes to their
    control level: in the truth's units a perturbation moves the median of these ratios
    little (it stays close to 1), while a change of log base multiplies every value by
    the same factor (log2: 1 / ln 2 = 1.44, log10: 0.43), so a median ratio outside
    [0.8, 1.25] is an error.
    """
    values = predictions.values.to_numpy()
    truth_max = float(truth.means.to_numpy().max())
    name = predictions.method
    if values.max() > 3 * truth_max + 5:
        integer_like = np.mean(np.isclose(values, np.round(values))) > 0.9
        raise PredictionError(
            f"{name}: predicted values reach {values.max():.1f}, but the data's "
            "log-normalised pseudobulks never exceed "
            f"{truth_max:.1f}. These look like "
            f"{'counts' if integer_like else 'values on another scale'}; submit "
            "the mean "
            "of log1p(normalised counts) per condition, as helpers.pseudobulk "
            "computes it."
        )
    negative = float(np.mean(values < -0.05))
    top = top_control_genes(truth.ctrl, min(100, len(truth.genes))).intersection(
        predictions.genes
    )
    level = float(np.median(predictions.values[top].to_numpy())) if len(top) else np.nan
    looks_like_changes = len(top) and level < 0.25 * float(np.median(truth.ctrl[top]))
    if (negative > 0.1 or looks_like_changes) and float(
        (truth.means.to_numpy() < -0.05).mean()
    ) < 0.01:
        raise PredictionError(
            f"{name}: {negative:.0%} of the predicted values are negative and "
            "the most expressed genes are predicted at "
            f"{level:.2f} (control: {float(np.median(truth.ctrl[top])):.2f}). "
            "These look like changes relative to control; "
            "add the control pseudobulk (train.pseudobulk.ctrl)."
        )
    ctrl_top = truth.ctrl[top].to_numpy(dtype=float)
    expressed = ctrl_top > 0
    if expressed.any():
        ratio = float(
            np.median(
                predictions.values[top].to_numpy()[:, expressed] / ctrl_top[expressed]
            )
        )
        if not _SCALE_RANGE[0] <= ratio <= _SCALE_RANGE[1]:
            raise PredictionError(
                f"{name}: on the {int(expressed.sum())} most expressed genes the "
                f"predictions are {ratio:.2f} x the "
                "control level (the truth's units give about 1; log2(1 + x) "
                "instead of log(1 + x) gives 1.44, "
                "log10 0.43). These look like values on another log scale; "
                "submit the mean of the natural "
                "log1p(normalised counts) per condition, as helpers.pseudobulk "
                "computes it."
            )


def truth_echo(predictions: Predictions, truth: Pseudobulk, conditions) -> str | None:
    """A warning if predictions equal the observed pseudobulks of held-out
    ``conditions`` to within rounding (:data:`ECHO_TOLERANCE`, every shared gene); else
    None. No model can know the held-out truth to machine precision: such a submission
    almost always means the truth leaked into it."""
    conditions = [
        c for c in conditions if c in predictions.conditions and c in truth.conditions
    ]
    genes = predictions.genes.intersection(truth.genes, sort=False)
    if not conditions or not len(genes):
        return None
    diff = np.abs(
        predictions.values.loc[conditions, genes].to_numpy()
        - truth.means.loc[conditions, genes].to_numpy()
    ).max(axis=1)
    echoed = int((diff <= ECHO_TOLERANCE).sum())
    if not echoed:
        return None
    return (
        f"{predictions.method}, seed {predictions.seed}: the predictions of "
        f"{echoed} of "
        f"{len(conditions)} held-out conditions equal the observed pseudobulks "
        "to within rounding "
        f"(largest difference {diff.min():.1e}); no model can know them: the "
        "held-out truth has "
        "almost certainly leaked into the model or the file"
    )
