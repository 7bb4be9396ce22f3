"""Genetic interactions: deviations from additivity, an empirical null, classes (introduced in chapter 6).

For a double ``A+B``, gene ``g`` and pseudobulks ``ctrl``, ``A``, ``B``, ``AB``:

* additive expectation ``e = A + B - ctrl`` and deviation ``d = AB - e``;
* an **empirical null** for ``d``: Efron's local false discovery rate with a maximum-likelihood normal
  null ``N(delta0, sigma0^2)`` of proportion ``p0`` (R's ``locfdr(d, nulltype = 1)``, which the paper
  used): ``fdr(d) = p0 * phi((d - delta0) / sigma0) / sigma0 / f(d)``, with ``f`` the mixture density
  estimated by a Poisson regression on histogram counts (natural spline, 7 df), and the null fitted by
  maximum likelihood to the central half of the ``d`` values (a truncated normal);
* thresholds: the positive and the negative ``d`` whose local fdr is closest to 0.05; an entry is
  **non-additive** if ``d`` lies beyond them;
* observed classes (the paper's rules): with ``same_dir = sign(A - ctrl) == sign(B - ctrl) == sign(AB - ctrl)``,
  if ``same_dir`` and ``e > ctrl``: ``d > upper`` -> synergy, ``d < lower`` -> buffering (the mirror image
  if ``e < ctrl``); other non-additive entries -> other; the rest -> additive;
* predicted classes of a prediction ``v`` against control ``c`` and the additive expectation ``r``:
  buffering if ``v`` lies between ``c`` and ``r`` (``c`` included), synergy if beyond ``r`` (further from
  ``c``), opposite if on the other side of ``c``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .loaders import condition_genes
from .predictions import Predictions
from .pseudobulk import Pseudobulk

__all__ = [
    "deviations",
    "EmpiricalNull",
    "fit_empirical_null",
    "observed_classes",
    "predicted_classes",
    "prediction_deviations",
    "tpr_fdp_curve",
    "ranking_scores",
    "top_k_composition",
    "score_predictions",
]


def deviations(pb: Pseudobulk, doubles=None, genes=None, *, drop_unexpressed: bool = True) -> pd.DataFrame:
    """One row per (double, gene): ctrl, A, B, AB, additive expectation and deviation ``d = AB - (A + B - ctrl)``.

    ``doubles`` default: every double whose two singles are in ``pb``; ``genes`` default: all genes.
    With ``drop_unexpressed``, entries where the gene is not detected in any of ctrl, A, B and AB (all
    four means 0, so ``d = 0`` exactly and carries no information) are dropped; their number is in
    ``attrs["dropped_unexpressed"]``.
    """
    genes = pb.genes if genes is None else pd.Index(genes)
    if doubles is None:
        doubles = [c for c in pb.conditions if len(condition_genes(c)) == 2
                   and all(g in pb.conditions for g in condition_genes(c))]
    frames = []
    ctrl = pb.ctrl[genes].to_numpy()
    for double in doubles:
        a, b = condition_genes(double)
        missing = [x for x in (a, b, double) if x not in pb.conditions]
        if missing:
            raise KeyError(f"Double {double!r}: conditions {missing} are not in the pseudobulk.")
        A, B, AB = (pb.means.loc[x, genes].to_numpy() for x in (a, b, double))
        frames.append(pd.DataFrame({"condition": double, "gene": genes, "ctrl": ctrl, "A": A, "B": B, "AB": AB,
                                    "additive": A + B - ctrl, "deviation": AB - (A + B - ctrl)}))
    if not frames:
        raise ValueError("No double perturbation with both singles measured: no deviations to compute.")
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
        d = np.asarray(d, dtype=float)
        return (d > self.upper) | (d < self.lower)


def _fit_mixture_density(values: np.ndarray, n_bins: int, df: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Lindsey's method: Poisson regression of histogram counts on a cubic spline of the bin centres.

    The spline has ``df`` degrees of freedom besides the intercept (scikit-learn's SplineTransformer and
    PoissonRegressor, essentially unpenalised), like locfdr's ``glm(counts ~ ns(x, df = 7), poisson)``.
    """
    from sklearn.linear_model import PoissonRegressor
    from sklearn.preprocessing import SplineTransformer

    edges = np.linspace(values.min(), values.max(), n_bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    scaled = ((centres - centres.mean()) / centres.std()).reshape(-1, 1)
    basis = SplineTransformer(n_knots=df - 1, degree=3, extrapolation="linear", include_bias=False).fit_transform(scaled)
    # the optimiser may probe huge coefficients on its way (numpy overflow warnings); the result is checked below
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = PoissonRegressor(alpha=1e-10, max_iter=10_000, tol=1e-10).fit(basis, counts)
        fitted = model.predict(basis)
    if not np.isfinite(fitted).all():
        raise ValueError("The mixture density fit did not converge; try fewer histogram bins (n_bins).")
    density = fitted / (len(values) * width)
    return centres, counts, density, width


def _truncated_normal_mle(values: np.ndarray, lo: float, hi: float, n_total: int) -> tuple[float, float, float]:
    """ML fit of N(mean, sd) to the values inside [lo, hi] (truncated normal); p0 from the count inside."""
    inside = values[(values >= lo) & (values <= hi)]
    start = np.array([np.median(inside), np.log(max(inside.std(), 1e-6) * 1.5)])

    def nll(params):
        mu, log_sd = params
        sd = np.exp(log_sd)
        mass = stats.norm.cdf(hi, mu, sd) - stats.norm.cdf(lo, mu, sd)
        if mass <= 1e-300:
            return np.inf
        return -(stats.norm.logpdf(inside, mu, sd).sum() - len(inside) * np.log(mass))

    result = optimize.minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 5000})
    mu, sd = result.x[0], float(np.exp(result.x[1]))
    mass = stats.norm.cdf(hi, mu, sd) - stats.norm.cdf(lo, mu, sd)
    p0 = min(1.0, len(inside) / (n_total * mass))
    return float(mu), sd, float(p0)


def fit_empirical_null(values, *, target_fdr: float = 0.05, central: float = 0.25, n_bins: int = 120,
                       df: int = 7) -> EmpiricalNull:
    """Efron's local fdr with a maximum-likelihood empirical normal null (``locfdr``, ``nulltype = 1``).

    ``central``: the null is fitted to the values between the ``central`` and ``1 - central`` quantiles
    (locfdr's ``pct0 = 1/4``). ``n_bins`` and ``df``: histogram bins and spline degrees of freedom of the
    mixture density (locfdr: 120 breaks, ``df = 7``). Thresholds are the positive and negative values whose
    local fdr is closest to ``target_fdr``.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 200:
        raise ValueError(f"An empirical null needs many values (got {len(values)}, want at least 200).")
    lo, hi = np.quantile(values, [central, 1 - central])
    if not hi > lo:
        raise ValueError(
            f"The central {1 - 2 * central:.0%} of the values are all equal ({lo}); an empirical null cannot be fitted. "
            "Drop entries that carry no information (e.g. genes not expressed in any of the conditions)."
        )
    mean, sd, p0 = _truncated_normal_mle(values, lo, hi, len(values))
    centres, counts, density, _ = _fit_mixture_density(values, n_bins, df)
    null = p0 * stats.norm.pdf(centres, mean, sd)
    fdr_bins = np.clip(null / np.maximum(density, 1e-300), 0, 1)
    local_fdr = np.clip(np.interp(values, centres, fdr_bins), 0, 1)
    positive, negative = values > mean, values < mean
    upper = values[positive][np.argmin(np.abs(local_fdr[positive] - target_fdr))] if positive.any() else np.inf
    lower = values[negative][np.argmin(np.abs(local_fdr[negative] - target_fdr))] if negative.any() else -np.inf
    table = pd.DataFrame({"centre": centres, "count": counts, "mixture_density": density, "null_density": null,
                          "local_fdr": fdr_bins})
    return EmpiricalNull(mean, sd, p0, float(lower), float(upper), values, local_fdr, table)


def observed_classes(table: pd.DataFrame, lower: float, upper: float) -> pd.Series:
    """The paper's observed classes (additive, buffering, synergy, other) for a :func:`deviations` table."""
    c, A, B, AB = (table[k].to_numpy() for k in ("ctrl", "A", "B", "AB"))
    d, e = table["deviation"].to_numpy(), table["additive"].to_numpy()
    same_dir = (np.sign(A - c) == np.sign(B - c)) & (np.sign(AB - c) == np.sign(A - c))
    non_additive = (d > upper) | (d < lower)
    up, down = same_dir & (e > c), same_dir & (e < c)
    labels = np.full(len(table), "additive", dtype=object)
    labels[non_additive] = "other"
    labels[up & (d > upper)] = "synergy"
    labels[up & (d < lower)] = "buffering"
    labels[down & (d < lower)] = "synergy"
    labels[down & (d > upper)] = "buffering"
    return pd.Series(labels, index=table.index, name="observed_class")


def predicted_classes(value, ctrl, additive) -> np.ndarray:
    """Class of each prediction relative to control ``c`` and the additive expectation ``r``.

    buffering: between ``c`` and ``r`` (``c`` included); synergy: beyond ``r``; opposite: the other side
    of ``c``. Entries with ``v == r`` exactly are "additive".
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

    Adds ``value`` (the prediction), ``pred_minus_add = value - additive`` and its predicted class.
    Only (condition, gene) pairs present in both are kept.
    """
    long = predictions.values.stack().rename("value").reset_index()
    long.columns = ["condition", "gene", "value"]
    table = obs.merge(long, on=["condition", "gene"], how="inner")
    table["pred_minus_add"] = table["value"] - table["additive"]
    table["predicted_class"] = predicted_classes(table["value"], table["ctrl"], table["additive"])
    table["method"] = predictions.method
    table["seed"] = predictions.seed
    return table


def tpr_fdp_curve(score, truth, grid=None) -> pd.DataFrame:
    """True-positive rate against false-discovery proportion when ranking by ``score`` (descending).

    ``truth``: boolean, the entry is a real (observed non-additive) interaction. The curve is
    interpolated on ``grid`` (default: 101 FDP values 0, 0.01, ..., 1) as in the paper.
    """
    score = np.asarray(score, dtype=float)
    truth = np.asarray(truth, dtype=bool)
    if truth.sum() == 0:
        raise ValueError("No true interactions: the TPR is undefined.")
    order = np.argsort(-score, kind="stable")
    hits = np.cumsum(truth[order])
    called = np.arange(1, len(score) + 1)
    tpr = hits / truth.sum()
    fdp = 1 - hits / called
    grid = np.linspace(0, 1, 101) if grid is None else np.asarray(grid)
    # the best TPR reachable at or below each FDP
    best = np.array([tpr[fdp <= g].max() if (fdp <= g).any() else 0.0 for g in grid])
    return pd.DataFrame({"fdp": grid, "tpr": best})


def ranking_scores(score, truth) -> dict[str, float]:
    """AUROC and AUPRC (average precision) of ranking entries by ``score`` against ``truth`` (scikit-learn)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = np.asarray(truth, dtype=bool)
    return {"auroc": float(roc_auc_score(truth, score)), "auprc": float(average_precision_score(truth, score)),
            "positives": int(truth.sum()), "n": int(len(truth))}


def top_k_composition(table: pd.DataFrame, k: int = 500, by: str = "method") -> pd.DataFrame:
    """Predicted class counts among each method's ``k`` entries with the largest |pred_minus_add|."""
    rows = []
    for method, group in table.groupby(by, sort=False):
        top = group.reindex(group["pred_minus_add"].abs().sort_values(ascending=False).index).head(k)
        counts = top["predicted_class"].value_counts()
        rows.append({by: method, **{c: int(counts.get(c, 0)) for c in ("buffering", "opposite", "synergy")}, "k": len(top)})
    return pd.DataFrame(rows)


def score_predictions(predictions, observed: pd.DataFrame, truth_column: str = "non_additive",
                      exclude=("additive",)) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rank each method's predicted deviations against the observed interactions, per method and seed.

    ``observed``: a :func:`deviations` table with a boolean ``truth_column``. Methods in ``exclude`` are
    skipped (the additive baseline predicts no deviation at all). Returns (curves: method, seed, fdp,
    tpr; scores: method, seed, auroc, auprc, positives, n; joined: every (method, seed, condition,
    gene) with its predicted deviation and class).
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
        scores.append({"method": pred.method, "seed": pred.seed, **ranking_scores(score, table[truth_column])})
        joined.append(table)
    if not joined:
        raise ValueError("No method had predictions on conditions with observed interactions.")
    return pd.concat(curves, ignore_index=True), pd.DataFrame(scores), pd.concat(joined, ignore_index=True)
