"""Genetic interactions: deviations from additivity, an empirical null, classes
(introduced in chapter 6).

For a double ``A+B``, gene ``g`` and pseudobulks ``ctrl``, ``A``, ``B``, ``AB``:

* additive expectation ``e = A + B - ctrl`` and deviation ``d = AB - e``;
* an **empirical null** for ``d``: Efron's local false discovery rate with a
  maximum-likelihood normal null ``N(delta0, sigma0^2)`` of proportion ``p0`` (R's
  ``locfdr(d, nulltype = 1)``, which the paper used, re-implemented from locfdr 1.1-8
  and checked against R's output): ``fdr(d) = p0 f0(d) / f(d)``, with ``f`` the mixture
  density estimated by a Poisson regression on histogram counts (R's natural spline
  ``ns``, 7 df) and the null ``f0`` fitted by maximum likelihood to the values near the
  median (a truncated normal, locfdr's ``locmle``); see :func:`fit_empirical_null`;
* thresholds: the positive and the negative ``d`` whose local fdr is closest to 0.05; an
  entry is **non-additive** if ``d`` lies beyond them;
* observed classes (the paper's rules): with ``same_dir = sign(A - ctrl) == sign(B -
  ctrl) == sign(AB - ctrl)``, if ``same_dir`` and ``e > ctrl``: ``d > upper`` ->
  synergy, ``d < lower`` -> buffering (the mirror image if ``e < ctrl``); other
  non-additive entries -> other; the rest -> additive;
* predicted classes of a prediction ``v`` against control ``c`` and the additive
  expectation ``r``: buffering if ``v`` lies between ``c`` and ``r`` (``c`` included),
  synergy if beyond ``r`` (further from ``c``), opposite if on the other side of ``c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.genmod import families as sm_families
from statsmodels.genmod.generalized_linear_model import GLM

from .loaders import condition_genes
from .predictions import Predictions
from .pseudobulk import Pseudobulk
from .errors import InputError

__all__ = [
    "deviations",
    "EmpiricalNull",
    "fit_empirical_null",
    "non_additive",
    "thresholds_implied_by_labels",
    "natural_spline_basis",
    "observed_classes",
    "predicted_classes",
    "prediction_deviations",
    "tpr_fdp_curve",
    "ranking_scores",
    "top_k_composition",
    "score_predictions",
    "expected_effect",
    "effect_strata",
    "gene_scale",
    "standardise",
    "permutation_floor",
    "weighted_ranking_scores",
    "grouped_ranking_scores",
    "ranking_bootstrap",
    "ranking_intervals",
    "ranking_comparison",
    "stratified_ranking_scores",
    "sign_agreement",
]


def deviations(
    pb: Pseudobulk, doubles=None, genes=None, *, drop_unexpressed: bool = True
) -> pd.DataFrame:
    """One row per (double, gene): ctrl, A, B, AB, additive expectation and deviation
    ``d = AB - (A + B - ctrl)``.

    ``doubles`` default: every double whose two singles are in ``pb``; ``genes``
    default: all genes. With ``drop_unexpressed``, entries where the gene is not
    detected in any of ctrl, A, B and AB (all four means 0, so ``d = 0`` exactly and
    carries no information) are dropped; their number is in
    ``attrs["dropped_unexpressed"]``.
    """
    genes = pb.genes if genes is None else pd.Index(genes)
    if doubles is None:
        doubles = [
            c
            for c in pb.conditions
            if len(condition_genes(c)) == 2
            and all(g in pb.conditions for g in condition_genes(c))
        ]
    frames = []
    ctrl = pb.ctrl[genes].to_numpy()
    for double in doubles:
        a, b = condition_genes(double)
        missing = [x for x in (a, b, double) if x not in pb.conditions]
        if missing:
            raise KeyError(
                f"Double {double!r}: conditions {missing} are not in the pseudobulk."
            )
        A, B, AB = (pb.means.loc[x, genes].to_numpy() for x in (a, b, double))
        frames.append(
            pd.DataFrame(
                {
                    "condition": double,
                    "gene": genes,
                    "ctrl": ctrl,
                    "A": A,
                    "B": B,
                    "AB": AB,
                    "additive": A + B - ctrl,
                    "deviation": AB - (A + B - ctrl),
                }
            )
        )
    if not frames:
        raise InputError(
            "No double perturbation with both singles measured: no deviations to "
            "compute."
        )
    table = pd.concat(frames, ignore_index=True)
    dropped = 0
    if drop_unexpressed:
        silent = (table[["ctrl", "A", "B", "AB"]] == 0).all(axis=1)
        dropped = int(silent.sum())
        table = table[~silent].reset_index(drop=True)
    table.attrs["dropped_unexpressed"] = dropped
    return table


@dataclass
class EmpiricalNull:
    """A fitted empirical null and the local fdr of every value it was fitted on."""

    mean: float
    sd: float
    proportion: float
    lower: float  # threshold: the negative value with local fdr closest to the target
    upper: float  # threshold: the positive value with local fdr closest to the target
    values: np.ndarray
    local_fdr: np.ndarray
    density: pd.DataFrame  # bin centres, counts, fitted mixture density, null component

    def is_non_additive(self, d) -> np.ndarray:
        return non_additive(d, self.lower, self.upper)


def non_additive(d, lower: float, upper: float) -> np.ndarray:
    """The paper's call: an entry is non-additive if its deviation lies beyond a
    threshold (``d > upper`` or ``d < lower``)."""
    d = np.asarray(d, dtype=float)
    return (d > upper) | (d < lower)


def natural_spline_basis(x, df: int = 7) -> np.ndarray:
    """R's ``splines::ns(x, df = df)`` (no intercept column): a natural cubic spline
    basis.

    As R builds it: ``df - 1`` interior knots at the quantiles ``1/df, ..., (df-1)/df``
    of ``x`` (R's default quantile rule, numpy's "linear"), boundary knots at
    ``range(x)``; the cubic B-spline basis (scipy) without its first column, projected
    by the Householder QR of the second-derivative constraints at the two boundary knots
    onto the functions that are linear beyond them (the columns after the first two of
    ``Q^T``). ``x`` must lie within its own range, which it does by construction.
    """
    from scipy.interpolate import BSpline

    x = np.asarray(x, dtype=float)
    if df < 1:
        raise InputError(f"df must be at least 1 (got {df}).")
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        raise InputError("A spline basis needs at least two distinct x values.")
    interior = (
        np.quantile(x, np.linspace(0, 1, df + 1)[1:-1]) if df > 1 else np.array([])
    )
    knots = np.concatenate([[lo] * 4, interior, [hi] * 4])
    n_basis = len(knots) - 4
    design = BSpline.design_matrix(np.clip(x, lo, hi), knots, 3).toarray()
    second = np.empty((2, n_basis))
    for j in range(n_basis):
        coef = np.zeros(n_basis)
        coef[j] = 1.0
        second[:, j] = BSpline(knots, coef, 3, extrapolate=True).derivative(2)([lo, hi])
    design, second = design[:, 1:], second[:, 1:]
    q, _ = np.linalg.qr(second.T, mode="complete")
    return design @ q[:, 2:]


def _r_hist_counts(values: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """Counts of R's ``hist(values, breaks, right = TRUE, include.lowest = TRUE)`` (with
    R's 1e-7 fuzz)."""
    fuzz = 1e-7 * np.median(np.diff(breaks))
    fuzzy = breaks + fuzz
    fuzzy[0] = breaks[0] - fuzz
    idx = (
        np.searchsorted(fuzzy, values, side="left") - 1
    )  # bin i is (fuzzy[i], fuzzy[i + 1]]
    return np.bincount(np.clip(idx, 0, len(breaks) - 2), minlength=len(breaks) - 1)


class _LogFloored(sm_families.links.Log):
    """R's ``poisson()`` log link: ``mu = max(exp(eta), .Machine$double.eps)`` (and the
    same for d mu / d eta)."""

    def inverse(self, z):
        return np.maximum(np.exp(z), np.finfo(float).eps)

    def inverse_deriv(self, z):
        return np.maximum(np.exp(z), np.finfo(float).eps)


class _PoissonAsR(sm_families.Poisson):
    """statsmodels' Poisson family as R's ``poisson()``: floored log link, IRLS started
    at ``mu = y + 0.1``."""

    def __init__(self):
        super().__init__(link=_LogFloored())

    def starting_mu(self, y):
        return np.asarray(y, dtype=float) + 0.1


def _fit_mixture_density(
    values: np.ndarray, breaks: int, df: int, pct: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lindsey's method as locfdr does it: Poisson GLM of the histogram counts on
    ``ns(x, df)`` (statsmodels).

    ``breaks`` equally spaced break points (``breaks - 1`` bins, locfdr's ``bre``) from
    ``min`` to ``max``, or, with ``pct > 0`` (locfdr's ``pct``), from the ``pct`` to the
    ``1 - pct`` quantile, values beyond counted in the end bins and those two counts
    capped at 1. Returns the bin centres, the counts (before the cap) and the fitted
    counts.
    """
    if pct > 0:
        lo, hi = np.quantile(values, [pct, 1 - pct])
    else:
        lo, hi = values.min(), values.max()
    edges = np.linspace(lo, hi, breaks)
    counts = _r_hist_counts(np.clip(values, lo, hi), edges)
    response = counts.copy()
    if pct > 0:
        response[0], response[-1] = min(response[0], 1), min(response[-1], 1)
    centres = (edges[:-1] + edges[1:]) / 2
    design = np.column_stack([np.ones(len(centres)), natural_spline_basis(centres, df)])
    # R's glm.fit: IRLS from mu = y + 0.1, stopping when |dev - dev_old| < 1e-8 (|dev| +
    # 0.1) or after 25 iterations (where a tail bin holds a lone count the deviance
    # creeps down forever; R stops at 25 too)
    problem = (
        "The mixture density fit (Poisson GLM of the histogram on a natural "
        "spline, as locfdr) diverged: "
        "a few extreme values stretch the histogram so that the bulk of the data "
        "falls in a handful of "
        "bins. Fit the histogram on a trimmed range, e.g. pct=0.001 (locfdr's "
        "`pct` argument)."
    )
    try:
        with np.errstate(all="ignore"):
            model = GLM(response, design, family=_PoissonAsR()).fit(
                atol=1e-9, rtol=1e-8, maxiter=25
            )
    except ValueError as error:  # statsmodels: non-finite IRLS weights
        raise InputError(problem) from error
    fitted = np.asarray(model.fittedvalues, dtype=float)
    history = np.asarray(
        model.fit_history["deviance"][2:], dtype=float
    )  # after each IRLS step
    if (
        not (np.isfinite(fitted).all() and (fitted > 0).all())
        or model.deviance > history.min() * (1 + 1e-6) + 1e-9
    ):
        raise InputError(problem)
    return centres, counts, fitted


def _truncated_moments(
    mean: float, sd: float, lo: float, hi: float
) -> tuple[np.ndarray, float]:
    """E[z^k], k = 0..4, of N(mean, sd^2) truncated to [lo, hi], and the mass of the
    interval."""
    a, b = (lo - mean) / sd, (hi - mean) / sd
    pa, pb = stats.norm.pdf(a), stats.norm.pdf(b)
    mass = stats.norm.cdf(b) - stats.norm.cdf(a)
    # integrals of u^k phi(u) over [a, b] for the standard normal, k = 0..4
    std = (
        np.array(
            [
                mass,
                pa - pb,
                mass + a * pa - b * pb,
                (2 + a**2) * pa - (2 + b**2) * pb,
                3 * mass + (3 * a + a**3) * pa - (3 * b + b**3) * pb,
            ]
        )
        / mass
    )
    # z = mean + sd * u: binomial expansion of E[z^k]
    moments = np.array(
        [
            sum(comb(k, i) * mean ** (k - i) * sd**i * std[i] for i in range(k + 1))
            for k in range(5)
        ]
    )
    return moments, mass


def _truncated_normal_mle(
    values: np.ndarray,
    centre: float,
    half_width: float,
    start=(0.0, 1.0),
    iterations: int = 35,
    tol: float = 1e-5,
) -> tuple[float, float, float] | None:
    """locfdr's ``locmle``: ML normal null from the values in ``centre +- half_width``.

    The likelihood of the values inside the interval is that of a normal truncated to
    it; its maximum is found as locmle does, by damped Newton steps on the natural
    parameters ``(mean / sd^2, -1 / (2 sd^2))`` that match the truncated first two
    moments to the observed ones (at most ``iterations`` steps from ``start``, stopping
    when a step is shorter than ``tol``). ``p0`` is the share of values inside divided
    by the null's mass there. None where the iteration fails.
    """
    lo, hi = centre - half_width, centre + half_width
    inside = values[(values >= lo) & (values <= hi)]
    observed = np.array([inside.mean(), np.mean(inside**2)])
    mean, sd = start
    for j in range(1, iterations + 1):
        natural = np.array([mean / sd**2, -1 / (2 * sd**2)])
        e, _ = _truncated_moments(mean, sd, lo, hi)
        cov = np.array(
            [
                [e[2] - e[1] ** 2, e[3] - e[1] * e[2]],
                [e[3] - e[1] * e[2], e[4] - e[2] ** 2],
            ]
        )
        try:
            step = np.linalg.solve(cov, observed - e[1:3]) / (1 + 1 / j**2)
        except np.linalg.LinAlgError:
            return None
        new = natural + step
        if new[1] > 0:
            new = natural + 0.1 * step
        if not np.isfinite(new).all() or new[1] >= 0:
            return None
        mean, sd = -new[0] / (2 * new[1]), 1 / np.sqrt(-2 * new[1])
        if np.sqrt(np.sum((new - natural) ** 2)) < tol:
            break
    _, mass = _truncated_moments(mean, sd, lo, hi)
    return float(mean), float(sd), float(len(inside) / len(values) / mass)


def fit_empirical_null(
    values,
    *,
    target_fdr: float = 0.05,
    breaks: int = 120,
    df: int = 7,
    pct: float = 0.0,
) -> EmpiricalNull:
    """Efron's local fdr with a maximum-likelihood empirical normal null: R's
    ``locfdr(d, nulltype = 1)``.

    A re-implementation of locfdr 1.1-8's algorithm (checked against R's output on four
    reference vectors, ``tests/parity/test_interactions.py``):

    1. mixture density ``f``: Poisson GLM of the counts of a histogram with ``breaks``
       equally spaced break points over the range of the values, on a natural cubic
       spline (:func:`natural_spline_basis`, R's ``ns(x, df)``) of the bin centres;
    2. null ``N(delta, sigma^2)`` with proportion ``p0``: :func:`_truncated_normal_mle`
       on ``median +- b * sc`` (``sc`` = IQR / (2 qnorm(0.75)), ``b = 4.3 exp(-0.26
       log10 N)``), started at (0, 1), then again on ``delta +- b * sigma`` started at
       the first estimate (``b = 1`` if N > 500,000);
    3. bin fdr = ``min(1, p0 f0 / f)`` with ``f0`` the null density scaled to the total
       of ``f``; set to 1 from the leftmost bin at or left of ``delta`` with fdr 1 to
       the rightmost at or right of it, and on ``delta +- sigma``;
    4. the fdr of each value: linear interpolation between bin centres, constant beyond
       (``approx(rule = 2)``).

    ``pct`` (locfdr's argument, default 0 as in the paper's call): histogram on the
    ``pct`` to ``1 - pct`` quantile range instead of the full range, for data whose few
    extreme values would squeeze the bulk into a handful of bins (the fit then fails
    with an error saying so).

    Thresholds (as the paper): among the positive and among the negative values, the one
    whose local fdr is closest to ``target_fdr`` (the first such value in input order).
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n < 200:
        raise InputError(
            f"An empirical null needs many values (got {n}, want at least 200)."
        )
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    if not q3 > q1:
        raise InputError(
            f"The central half of the values are all equal ({median}); an "
            "empirical null cannot be fitted. "
            "Drop entries that carry no information (e.g. genes not expressed in "
            "any of the conditions)."
        )
    if not 0 <= pct < 0.5:
        raise InputError(f"pct must be in [0, 0.5) (got {pct}).")
    centres, counts, fitted = _fit_mixture_density(values, breaks, df, pct)
    b = 4.3 * np.exp(-0.26 * np.log10(n))
    scale = (q3 - q1) / (2 * stats.norm.ppf(0.75))
    first = _truncated_normal_mle(values, median, b * scale)
    if first is not None and n > 500_000:
        first = _truncated_normal_mle(values, median, scale)
        b = 1.0
    second = (
        None
        if first is None
        else _truncated_normal_mle(values, first[0], b * first[1], start=first[:2])
    )
    if second is None:
        raise InputError(
            "The maximum-likelihood null failed (the middle of the histogram is "
            "not normal-shaped)."
        )
    mean, sd, p0 = second
    null = stats.norm.pdf(centres, mean, sd)
    null = null * fitted.sum() / null.sum()
    fdr_bins = np.minimum(p0 * null / fitted, 1.0)
    at_one = fdr_bins == 1
    left = centres[(centres <= mean) & at_one]
    right = centres[(centres >= mean) & at_one]
    run_lo = left.min() if len(left) else mean
    run_hi = right.max() if len(right) else mean
    fdr_bins[(centres >= run_lo) & (centres <= run_hi)] = 1.0
    fdr_bins[(centres >= mean - sd) & (centres <= mean + sd)] = 1.0
    local_fdr = np.interp(values, centres, fdr_bins)
    positive, negative = values > 0, values < 0
    upper = (
        values[positive][np.argmin(np.abs(local_fdr[positive] - target_fdr))]
        if positive.any()
        else np.inf
    )
    lower = (
        values[negative][np.argmin(np.abs(local_fdr[negative] - target_fdr))]
        if negative.any()
        else -np.inf
    )
    width = centres[1] - centres[0]
    table = pd.DataFrame(
        {
            "centre": centres,
            "count": counts,
            "mixture_density": fitted / (n * width),
            "null_density": p0 * null / (n * width),
            "local_fdr": fdr_bins,
        }
    )
    return EmpiricalNull(
        mean, sd, p0, float(lower), float(upper), values, local_fdr, table
    )


def thresholds_implied_by_labels(deviation, called) -> pd.DataFrame:
    """The interval in which each threshold must lie for ``non_additive`` to reproduce
    given labels.

    ``called``: True where an entry is labelled non-additive. The upper threshold lies
    between the largest positive deviation labelled additive and the smallest positive
    one labelled non-additive; the lower threshold between the largest negative one
    labelled non-additive and the smallest negative one labelled additive. Used to read
    the paper's thresholds off its published labels (Fig. 1f). Raises if the labels
    cannot come from two thresholds.
    """
    d = np.asarray(deviation, dtype=float)
    called = np.asarray(called, dtype=bool)
    pos, neg = d > 0, d < 0
    if not (
        (pos & called).any()
        and (pos & ~called).any()
        and (neg & called).any()
        and (neg & ~called).any()
    ):
        raise InputError(
            "Need entries labelled additive and non-additive on both sides of 0 "
            "to bracket the thresholds."
        )
    upper = (d[pos & ~called].max(), d[pos & called].min())
    lower = (d[neg & called].max(), d[neg & ~called].min())
    if not (upper[0] < upper[1] and lower[0] < lower[1]):
        raise InputError(
            "The labels are not consistent with two thresholds (additive entries "
            "beyond called ones)."
        )
    return pd.DataFrame(
        {
            "threshold": ["lower", "upper"],
            "from": [lower[0], upper[0]],
            "to": [lower[1], upper[1]],
        }
    )


def observed_classes(table: pd.DataFrame, lower: float, upper: float) -> pd.Series:
    """The paper's observed classes (additive, buffering, synergy, other) for a
    :func:`deviations` table.

    ``table``: a :func:`deviations` table; ``lower`` and ``upper``: the thresholds of
    the fitted null (:func:`fit_empirical_null`) outside which a deviation is called
    non-additive.
    """
    c, A, B, AB = (table[k].to_numpy() for k in ("ctrl", "A", "B", "AB"))
    d, e = table["deviation"].to_numpy(), table["additive"].to_numpy()
    same_dir = (np.sign(A - c) == np.sign(B - c)) & (np.sign(AB - c) == np.sign(A - c))
    called = non_additive(d, lower, upper)
    up, down = same_dir & (e > c), same_dir & (e < c)
    labels = np.full(len(table), "additive", dtype=object)
    labels[called] = "other"
    labels[up & (d > upper)] = "synergy"
    labels[up & (d < lower)] = "buffering"
    labels[down & (d < lower)] = "synergy"
    labels[down & (d > upper)] = "buffering"
    return pd.Series(labels, index=table.index, name="observed_class")


def predicted_classes(value, ctrl, additive) -> np.ndarray:
    """Class of each prediction relative to control ``c`` and the additive expectation
    ``r``.

    buffering: between ``c`` and ``r`` (``c`` included); synergy: beyond ``r``;
    opposite: the other side of ``c``. Entries with ``v == r`` exactly are "additive".

    ``value``: the predictions ``v``; ``ctrl``: the control ``c``; ``additive``: the
    additive expectation ``r`` (arrays of one shape).
    """
    v, c, r = (np.asarray(x, dtype=float) for x in (value, ctrl, additive))
    direction = np.sign(r - c)
    rel = (v - c) * direction  # position along the ctrl -> additive axis
    span = np.abs(r - c)
    labels = np.where(rel < 0, "opposite", np.where(rel > span, "synergy", "buffering"))
    labels = np.where(v == r, "additive", labels)
    # where r == c there is no axis: any deviation counts as synergy (away from both)
    labels = np.where((direction == 0) & (v != r), "synergy", labels)
    return labels.astype(object)


def prediction_deviations(predictions: Predictions, obs: pd.DataFrame) -> pd.DataFrame:
    """Join a method's predictions to an observed :func:`deviations` table.

    Adds ``value`` (the prediction), ``pred_minus_add = value - additive`` and its
    predicted class. Only (condition, gene) pairs present in both are kept.
    """
    long = predictions.values.stack().rename("value").reset_index()
    long.columns = ["condition", "gene", "value"]
    table = obs.merge(long, on=["condition", "gene"], how="inner")
    table["pred_minus_add"] = table["value"] - table["additive"]
    table["predicted_class"] = predicted_classes(
        table["value"], table["ctrl"], table["additive"]
    )
    table["method"] = predictions.method
    table["seed"] = predictions.seed
    return table


def tpr_fdp_curve(score, truth, grid=None) -> pd.DataFrame:
    """True-positive rate against false-discovery proportion when ranking by ``score``,
    as the paper computes it.

    The paper's recipe (``double_perturbation_analysis.Rmd``): rank entries by ``score``
    (descending, ties in input order); after each entry count true (``tp``) and false
    (``fp``) positives, ``fdp = fp / max(1, tp + fp)``; sort these points by fdp and
    take the running maximum of ``tp``; ``tpr = tp / #true``; then R's ``approx(fdp,
    tpr, xout = grid, yleft = 0, yright = 1)``: points with the same fdp are averaged
    (``ties = mean``), the grid (default 101 FDP values 0, 0.01, ..., 1) is linearly
    interpolated between them, and grid values below the smallest / above the largest
    fdp reached get TPR 0 / 1. Column ``point`` says which: "reached" (the grid value is
    an fdp the ranking reaches), "interpolated" (between two reached fdp values) or
    "outside" (0 or 1 by the rule above).
    """
    score = np.asarray(score, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    if len(score) != len(truth):
        raise InputError(
            f"score and truth differ in length ({len(score)} vs {len(truth)})."
        )
    if truth.sum() == 0:
        raise InputError("No true interactions: the TPR is undefined.")
    ranked = truth[np.argsort(-score, kind="stable")]
    tp = np.cumsum(ranked)
    fdp = np.cumsum(~ranked) / np.maximum(1, np.arange(1, len(ranked) + 1))
    by_fdp = np.argsort(fdp, kind="stable")
    fdp = fdp[by_fdp]
    tpr = np.maximum.accumulate(tp[by_fdp]) / truth.sum()
    reached, index = np.unique(fdp, return_inverse=True)
    mean_tpr = np.bincount(index, weights=tpr) / np.bincount(index)
    grid = np.linspace(0, 1, 101) if grid is None else np.asarray(grid, dtype=float)
    curve = np.interp(grid, reached, mean_tpr, left=0.0, right=1.0)
    on_point = np.isin(grid, reached)
    inside = (grid >= reached[0]) & (grid <= reached[-1])
    point = np.where(on_point, "reached", np.where(inside, "interpolated", "outside"))
    return pd.DataFrame({"fdp": grid, "tpr": curve, "point": point})


def ranking_scores(score, truth) -> dict[str, float]:
    """AUROC and AUPRC (average precision) of ranking entries by ``score`` against
    ``truth`` (scikit-learn)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = np.asarray(truth, dtype=bool)
    return {
        "auroc": float(roc_auc_score(truth, score)),
        "auprc": float(average_precision_score(truth, score)),
        "positives": int(truth.sum()),
        "n": int(len(truth)),
    }


def top_k_composition(
    table: pd.DataFrame, k: int = 500, by: str = "method"
) -> pd.DataFrame:
    """Predicted class counts among each method's ``k`` entries with the
    largest |pred_minus_add|.

    ``table``: the joined table of :func:`score_predictions`; ``by``: the column
    grouping the rows (one bar each).
    """
    rows = []
    for method, group in table.groupby(by, sort=False):
        top = group.reindex(
            group["pred_minus_add"].abs().sort_values(ascending=False).index
        ).head(k)
        counts = top["predicted_class"].value_counts()
        rows.append(
            {
                by: method,
                **{
                    c: int(counts.get(c, 0))
                    for c in ("buffering", "opposite", "synergy")
                },
                "k": len(top),
            }
        )
    return pd.DataFrame(rows)


def score_predictions(
    predictions,
    observed: pd.DataFrame,
    truth_column: str = "non_additive",
    *,
    exclude=("additive",),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rank each method's predicted deviations against the observed interactions, per
    method and seed.

    ``predictions``: the methods' predictions (one per method and seed). ``observed``: a
    :func:`deviations` table with a boolean ``truth_column``. Methods in ``exclude`` are
    skipped (the additive baseline predicts no deviation at all). Returns (curves:
    method, seed, fdp, tpr; scores: method, seed, auroc, auprc, positives, n; joined:
    every (method, seed, condition, gene) with its predicted deviation and class).
    """
    curves, scores, joined = [], [], []
    for pred in predictions:
        if pred.method in exclude:
            continue
        table = prediction_deviations(pred, observed)
        if table.empty or table[truth_column].sum() == 0:
            continue
        score = table["pred_minus_add"].abs().to_numpy()
        curve = tpr_fdp_curve(score, table[truth_column])
        curves.append(curve.assign(method=pred.method, seed=pred.seed))
        scores.append(
            {
                "method": pred.method,
                "seed": pred.seed,
                **ranking_scores(score, table[truth_column]),
            }
        )
        joined.append(table)
    if not joined:
        raise InputError(
            "No method had predictions on conditions with observed interactions."
        )
    return (
        pd.concat(curves, ignore_index=True),
        pd.DataFrame(scores),
        pd.concat(joined, ignore_index=True),
    )


# ------------------------------------------------------------------------------------
# What the ranking metrics measure (chapter 6, second half): effect-size strata,
# per-gene z-scores, a permutation floor, signed agreement, and intervals over
# conditions x splits.
# ------------------------------------------------------------------------------------


def _need(table: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(
            f"{what} needs the column(s) {missing}; "
            f"the table has {list(table.columns)} "
            "(make it with interactions.deviations / score_predictions)."
        )


def expected_effect(table: pd.DataFrame) -> np.ndarray:
    """``|e - c| = |A + B - 2c|``: the size of the change the additive model expects for
    each entry.

    This is exactly the score by which the "no change" baseline ranks entries: it
    predicts ``y_hat = c``, so its predicted deviation is ``c - e`` and ``|y_hat - e| =
    |e - c|``.

    ``table``: a :func:`deviations` table.
    """
    _need(table, ["additive", "ctrl"], "expected_effect")
    return np.abs(
        table["additive"].to_numpy(dtype=float) - table["ctrl"].to_numpy(dtype=float)
    )


def effect_strata(table: pd.DataFrame, n_strata: int = 3, edges=None) -> pd.Series:
    """Stratum of each entry by its expected effect size ``|e - c|``
    (:func:`expected_effect`).

    ``edges`` (``n_strata + 1`` increasing values) default to the quantiles of ``|e -
    c|`` in ``table``, so each stratum holds about the same number of entries; pass the
    edges of one table to stratify another alike. Labels are ``"1 (smallest)"`` ...
    ``"<n_strata> (largest)"``; the edges are in ``attrs["edges"]``.
    """
    if n_strata < 1:
        raise InputError(f"n_strata must be at least 1 (got {n_strata}).")
    size = expected_effect(table)
    if edges is None:
        edges = np.quantile(size, np.linspace(0, 1, n_strata + 1))
    edges = np.asarray(edges, dtype=float)
    if len(edges) != n_strata + 1 or np.any(np.diff(edges) <= 0):
        raise InputError(
            f"Need {n_strata + 1} strictly increasing edges "
            f"(got {list(np.round(edges, 6))}); "
            "with many equal |e - c| values use fewer strata."
        )
    codes = np.clip(np.searchsorted(edges, size, side="right") - 1, 0, n_strata - 1)
    names = [f"{k + 1}" for k in range(n_strata)]
    names[0] += " (smallest)"
    if n_strata > 1:
        names[-1] += " (largest)"
    out = pd.Series(
        pd.Categorical.from_codes(codes, names),
        index=table.index,
        name="effect_stratum",
    )
    out.attrs["edges"] = tuple(float(x) for x in edges)
    return out


def gene_scale(
    table: pd.DataFrame, column: str = "deviation", *, min_values: int = 5
) -> pd.Series:
    """Per-gene robust scale of ``column`` across doubles: ``1.4826 * median |x -
    median(x)|``.

    The scale of a gene's deviations over all doubles (the MAD, scaled to equal the
    standard deviation for normal data; robust, so that the few real interactions of a
    gene do not inflate it). Genes with fewer than ``min_values`` doubles, or a scale of
    0, get NaN.

    ``table``: a :func:`deviations` table.
    """
    _need(table, ["gene", column], "gene_scale")
    values = table[[column]].assign(gene=table["gene"].to_numpy())

    def mad(x):
        x = x.to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if len(x) < min_values:
            return np.nan
        s = 1.4826 * np.median(np.abs(x - np.median(x)))
        return s if s > 0 else np.nan

    return values.groupby("gene", sort=False)[column].agg(mad).rename("gene_scale")


def standardise(table: pd.DataFrame, column: str, scale: pd.Series) -> np.ndarray:
    """``table[column] / scale[gene]``: per-gene z-scores (NaN where the gene has no
    scale).
    """
    _need(table, ["gene", column], "standardise")
    s = table["gene"].map(scale).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return table[column].to_numpy(dtype=float) / s


def permutation_floor(
    truth, *, n_perm: int = 200, seed: int = 0, level: float = 0.95
) -> dict:
    """AUROC and AUPRC of random rankings of entries with labels ``truth`` (the score to
    beat).

    ``n_perm`` random orders (``numpy.random.default_rng(seed)``); returns the mean and
    the ``level`` percentile range of each, and the prevalence (a random ranking's
    expected AUPRC; its expected AUROC is 0.5).
    """
    truth = np.asarray(truth, dtype=bool)
    if truth.all() or not truth.any():
        raise InputError(
            "A permutation floor needs both positive and negative entries."
        )
    if n_perm < 1:
        raise InputError(f"n_perm must be at least 1 (got {n_perm}).")
    rng = np.random.default_rng(seed)
    scores = np.array([rng.permutation(len(truth)) for _ in range(n_perm)], dtype=float)
    auroc, auprc = weighted_ranking_scores(
        scores, truth, np.ones((n_perm, len(truth))), per_row_score=True
    )
    a = (1 - level) / 2
    out = {"prevalence": float(truth.mean()), "n_perm": n_perm, "level": level}
    for name, v in (("auroc", auroc), ("auprc", auprc)):
        out[f"{name}_mean"] = float(v.mean())
        out[f"{name}_lower"], out[f"{name}_upper"] = (
            float(q) for q in np.quantile(v, [a, 1 - a])
        )
    return out


def weighted_ranking_scores(
    score, truth, weights, *, per_row_score: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and AUPRC (average precision) of ranking by ``score`` under each row of
    ``weights``.

    ``weights``: (B, n) non-negative case weights (e.g. bootstrap counts); the result
    for row b is scikit-learn's ``roc_auc_score`` / ``average_precision_score`` with
    ``sample_weight = weights[b]`` (ties in ``score`` handled as scikit-learn does:
    AUROC counts a tied positive-negative pair as 1/2; AP steps at each distinct score).
    With ``per_row_score``, ``score`` is (B, n) too (one ranking per row). NaN where a
    row has no positive or no negative weight.
    """
    truth = np.asarray(truth, dtype=bool)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if weights.shape[1] != len(truth):
        raise InputError(
            f"weights have {weights.shape[1]} columns "
            f"but there are {len(truth)} entries."
        )
    if np.any(weights < 0):
        raise InputError("weights must be non-negative.")
    n_rows = weights.shape[0]
    auroc, auprc = np.empty(n_rows), np.empty(n_rows)
    scores = np.atleast_2d(np.asarray(score, dtype=float))
    if not per_row_score:
        scores = scores.reshape(1, -1)
    if scores.shape[1] != len(truth):
        raise InputError(
            f"score has {scores.shape[1]} entries but truth has {len(truth)}."
        )

    def block(s, w):
        order = np.argsort(-s, kind="stable")
        s_sorted = s[order]
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        t = truth[order]
        wp = w[:, order] * t
        wn = w[:, order] * ~t
        pos = np.add.reduceat(wp, starts, axis=1)
        neg = np.add.reduceat(wn, starts, axis=1)
        tps, fps = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
        p_tot, n_tot = tps[:, -1], fps[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            roc = np.sum(neg * (tps - pos + 0.5 * pos), axis=1) / (p_tot * n_tot)
            precision = np.where(
                tps + fps > 0, tps / np.where(tps + fps > 0, tps + fps, 1), 0.0
            )
            ap = np.sum(pos * precision, axis=1) / p_tot
        bad = (p_tot <= 0) | (n_tot <= 0)
        roc[bad], ap[bad] = np.nan, np.nan
        return roc, ap

    if per_row_score:
        if scores.shape[0] != n_rows:
            raise InputError(
                "With per_row_score, score and weights need the same number of rows."
            )
        for b in range(n_rows):
            auroc[b], auprc[b] = (x[0] for x in block(scores[b], weights[b : b + 1]))
    else:
        for lo in range(0, n_rows, 100):
            auroc[lo : lo + 100], auprc[lo : lo + 100] = block(
                scores[0], weights[lo : lo + 100]
            )
    return auroc, auprc


def grouped_ranking_scores(
    score, truth, groups, weights
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`weighted_ranking_scores` where every entry of a group shares one weight.

    ``groups``: integer code per entry (0 .. k-1); ``weights``: (B, k), one weight per
    group and resample. Equal to ``weighted_ranking_scores(score, truth, weights[:,
    groups])``, computed from per-(distinct score, group) counts by matrix products, so
    a thousand resamples of tens of thousands of entries take a fraction of a second.
    """
    score = np.asarray(score, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    groups = np.asarray(groups)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if not (len(score) == len(truth) == len(groups)):
        raise InputError("score, truth and groups must have one entry each per item.")
    if groups.min() < 0 or groups.max() >= weights.shape[1]:
        raise InputError(
            f"groups must be codes 0..{weights.shape[1] - 1} (one weight column each)."
        )
    order = np.argsort(-score, kind="stable")
    s_sorted = score[order]
    gid = np.cumsum(np.r_[0, s_sorted[1:] != s_sorted[:-1]])
    n_g, k = int(gid[-1]) + 1, weights.shape[1]
    pos, neg = np.zeros((n_g, k)), np.zeros((n_g, k))
    t, c = truth[order], groups[order]
    np.add.at(pos, (gid[t], c[t]), 1.0)
    np.add.at(neg, (gid[~t], c[~t]), 1.0)
    cpos, cneg = np.cumsum(pos, axis=0), np.cumsum(neg, axis=0)
    # AUROC = w' M w / ((w . P)(w . N)): M[i, j] = pairs (positive of group i,
    # negative of group j)
    # with the positive ranked higher, ties counting 1/2
    pairs = (cpos - 0.5 * pos).T @ neg
    # AP only steps at score groups that hold a positive
    keep = pos.sum(axis=1) > 0
    pos, cpos, cneg = pos[keep], cpos[keep], cneg[keep]
    p_tot, n_tot = weights @ pos.sum(axis=0), weights @ neg.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = np.einsum("bi,ij,bj->b", weights, pairs, weights) / (p_tot * n_tot)
        tps, fps = cpos @ weights.T, cneg @ weights.T
        precision = np.where(
            tps + fps > 0, tps / np.where(tps + fps > 0, tps + fps, 1), 0.0
        )
        auprc = np.sum((pos @ weights.T) * precision, axis=0) / p_tot
    bad = (p_tot <= 0) | (n_tot <= 0)
    auroc[bad], auprc[bad] = np.nan, np.nan
    return auroc, auprc


def ranking_bootstrap(
    joined: pd.DataFrame,
    *,
    score: str = "abs_pred_minus_add",
    truth: str = "non_additive",
    factors=("condition", "seed"),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """AUROC / AUPRC of every method, resampling held-out doubles and splits as crossed
    factors.

    ``joined``: :func:`score_predictions`' third table (one row per method, seed,
    condition, gene). The statistic is the one the chapter tabulates: the mean over
    splits (``seed``) of each split's AUROC / AUPRC. A resample draws the conditions and
    the splits with replacement, independently (the pigeonhole bootstrap of
    :mod:`helpers.uncertainty`): a split's AUROC is computed with each entry weighted by
    how often its condition was drawn, and the splits are averaged with weights = how
    often each was drawn. The **same** draws serve every method, so differences are
    paired. ``score`` may be any column (default: ``|y_hat - e|``, added if absent).
    Returns ``{method: {"auroc": estimate, "auprc": estimate, "boot_auroc": array,
    "boot_auprc": array, "n_condition": k, "n_seed": s}}``.

    ``truth``: the boolean column of true interactions; ``n_boot``: the number of
    resamples.
    """
    table = joined.copy()
    if score == "abs_pred_minus_add" and score not in table:
        _need(table, ["pred_minus_add"], "ranking_bootstrap")
        table[score] = table["pred_minus_add"].abs()
    factors = list(factors)
    if len(factors) != 2 or factors[1] != "seed":
        raise InputError(
            "factors must be (<condition column>, 'seed'): "
            "entries are grouped by split."
        )
    _need(table, ["method", score, truth, *factors], "ranking_bootstrap")
    if n_boot < 1:
        raise InputError(f"n_boot must be at least 1 (got {n_boot}).")
    cond_codes, cond_levels = pd.factorize(table[factors[0]], sort=True)
    seed_codes, seed_levels = pd.factorize(table["seed"], sort=True)
    rng = np.random.default_rng(seed)
    k, s = len(cond_levels), len(seed_levels)
    cond_counts = rng.multinomial(k, np.full(k, 1 / k), size=n_boot).astype(float)
    seed_counts = rng.multinomial(s, np.full(s, 1 / s), size=n_boot).astype(float)
    table["_c"], table["_s"] = cond_codes, seed_codes
    out = {}
    for method, part in table.groupby("method", sort=False):
        est = {"auroc": [], "auprc": []}
        boot = {"auroc": np.zeros((n_boot, s)), "auprc": np.zeros((n_boot, s))}
        present = np.zeros(s, dtype=bool)
        for j in range(s):
            rows = part[part["_s"] == j]
            if rows.empty or rows[truth].sum() == 0 or rows[truth].all():
                boot["auroc"][:, j] = boot["auprc"][:, j] = np.nan
                continue
            present[j] = True
            sc, tr = rows[score].to_numpy(dtype=float), rows[truth].to_numpy(dtype=bool)
            a, p = weighted_ranking_scores(sc, tr, np.ones((1, len(tr))))
            est["auroc"].append(a[0])
            est["auprc"].append(p[0])
            a, p = grouped_ranking_scores(sc, tr, rows["_c"].to_numpy(), cond_counts)
            boot["auroc"][:, j], boot["auprc"][:, j] = a, p
        result = {
            "n_condition": int(part[factors[0]].nunique()),
            "n_seed": int(present.sum()),
        }
        for name in ("auroc", "auprc"):
            w = seed_counts * np.isfinite(boot[name])
            with np.errstate(invalid="ignore", divide="ignore"):
                result[f"boot_{name}"] = np.nansum(
                    w * np.nan_to_num(boot[name]), axis=1
                ) / w.sum(axis=1)
            result[name] = float(np.mean(est[name])) if est[name] else np.nan
        out[method] = result
    return out


def ranking_intervals(boot: dict[str, dict], *, level: float = 0.95) -> pd.DataFrame:
    """Per method: AUROC and AUPRC with percentile intervals from
    :func:`ranking_bootstrap`.

    ``boot``: the output of :func:`ranking_bootstrap`; ``level``: the intervals'
    coverage.
    """
    a = (1 - level) / 2
    rows = []
    for method, r in boot.items():
        row = {"method": method}
        for name in ("auroc", "auprc"):
            b = r[f"boot_{name}"]
            b = b[np.isfinite(b)]
            row[name] = r[name]
            row[f"{name}_lower"], row[f"{name}_upper"] = (
                (float(q) for q in np.quantile(b, [a, 1 - a]))
                if len(b)
                else (np.nan, np.nan)
            )
        rows.append({**row, "n_condition": r["n_condition"], "n_seed": r["n_seed"]})
    return pd.DataFrame(rows)


def ranking_comparison(
    boot: dict[str, dict],
    method: str,
    baseline: str,
    *,
    value: str = "auprc",
    level: float = 0.95,
) -> dict:
    """Paired difference ``method - baseline`` of AUROC or AUPRC (higher is better),
    with interval.

    ``boot``: the resampled scores of :func:`ranking_bootstrap`; ``method`` and
    ``baseline``: two of its methods; ``value``: ``"auroc"`` or ``"auprc"``;
    ``level``: the interval's coverage.

    Returns a dict in the form of :func:`helpers.uncertainty.paired_interval`
    (``direction`` from :func:`helpers.uncertainty.direction`), so
    :func:`helpers.uncertainty.describe` writes the sentence: a difference whose
    interval covers 0 is reported as a tie, never as a winner.
    """
    from .uncertainty import direction

    if value not in ("auroc", "auprc"):
        raise InputError(f"value must be 'auroc' or 'auprc' (got {value!r}).")
    for name in (method, baseline):
        if name not in boot:
            raise InputError(f"No bootstrap for method {name!r}; have {sorted(boot)}.")
    d = boot[method][f"boot_{value}"] - boot[baseline][f"boot_{value}"]
    d = d[np.isfinite(d)]
    a = (1 - level) / 2
    lower, upper = (
        (float(q) for q in np.quantile(d, [a, 1 - a])) if len(d) else (np.nan, np.nan)
    )
    return {
        "method": method,
        "baseline": baseline,
        "value": value,
        "estimate": boot[method][value] - boot[baseline][value],
        "lower": lower,
        "upper": upper,
        "level": level,
        "n_condition": min(boot[method]["n_condition"], boot[baseline]["n_condition"]),
        "n_seed": min(boot[method]["n_seed"], boot[baseline]["n_seed"]),
        "n_boot": len(d),
        "direction": direction(lower, upper),
    }


def stratified_ranking_scores(
    joined: pd.DataFrame,
    strata: pd.Series,
    *,
    score: str = "abs_pred_minus_add",
    truth: str = "non_additive",
) -> pd.DataFrame:
    """AUROC / AUPRC of each method within each stratum (e.g. :func:`effect_strata`),
    per split.

    Within a stratum of similar ``|e - c|`` the "no change" baseline can no longer win
    by ranking large expected effects first. Returns method, seed, stratum, auroc,
    auprc, positives, n, prevalence (NaN scores where a stratum of a split has no
    positive or no negative entry).

    ``joined``: the joined table of :func:`score_predictions`; ``strata``: a stratum per
    row of ``joined``; ``score``: the ranking score column; ``truth``: the boolean
    column of true interactions.
    """
    table = joined.copy()
    if score == "abs_pred_minus_add" and score not in table:
        _need(table, ["pred_minus_add"], "stratified_ranking_scores")
        table[score] = table["pred_minus_add"].abs()
    _need(table, ["method", "seed", score, truth], "stratified_ranking_scores")
    if len(strata) != len(table):
        raise InputError(
            f"strata has {len(strata)} entries, the table {len(table)}: "
            "stratify this table."
        )
    table["stratum"] = np.asarray(strata)
    rows = []
    for (method, seed_, stratum), part in table.groupby(
        ["method", "seed", "stratum"], sort=True, observed=True
    ):
        tr = part[truth].to_numpy(dtype=bool)
        a, p = weighted_ranking_scores(
            part[score].to_numpy(dtype=float), tr, np.ones((1, len(tr)))
        )
        rows.append(
            {
                "method": method,
                "seed": seed_,
                "stratum": stratum,
                "auroc": a[0],
                "auprc": p[0],
                "positives": int(tr.sum()),
                "n": len(tr),
                "prevalence": float(tr.mean()),
            }
        )
    return pd.DataFrame(rows)


def sign_agreement(joined: pd.DataFrame, truth: str = "non_additive") -> pd.DataFrame:
    """Signed score: on the entries called non-additive, does the predicted deviation
    ``y_hat - e`` have the sign of the observed deviation ``d``?

    The ranking metrics use ``|y_hat - e|`` and never ask about the sign (the class);
    this does. Returns the called rows with ``sign_match`` (1.0 / 0.0; NaN where the
    prediction is exactly additive, ``y_hat = e``, so it predicts no sign), ready for
    :func:`helpers.uncertainty.crossed_interval` over conditions x seeds. Chance is 0.5.

    ``joined``: the joined table of :func:`score_predictions`; ``truth``: its boolean
    column of the entries called non-additive.
    """
    _need(joined, ["pred_minus_add", "deviation", truth], "sign_agreement")
    rows = joined[joined[truth].astype(bool)].copy()
    pred, obs = (
        np.sign(rows["pred_minus_add"].to_numpy()),
        np.sign(rows["deviation"].to_numpy()),
    )
    rows["sign_match"] = np.where(pred == 0, np.nan, (pred == obs).astype(float))
    return rows
