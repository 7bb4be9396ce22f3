"""Metric family 'calibrated': CellSimBench / scPertEval's DE-weighted metrics and the
DRF (chapter 9).

Miller et al. ("CellSimBench", bioRxiv 2025.10.20.683304) argue that MSE and Pearson
delta reward the mean baseline because most genes do not respond to a perturbation; they
weight each gene by how strongly the truth says it responds, and calibrate every metric
between a negative and a positive control. scPertEval 0.2.0 (Schaefer et al., bioRxiv
2026.07.23.740433) is the reference implementation this module follows and is tested
against (``tests/parity/test_parity_scperteval.py``, scPertEval's own code in its own
environment).

Notation for a held-out condition ``p``: ``y`` its observed pseudobulk (all its cells),
``y_hat`` the prediction, ``c`` the control pseudobulk (all control cells), over the
evaluation genes ``G``.

**DE weights** (scPertEval ``blocks/de.py``: ``ttest_from_moments``, ``mejia_weights``;
``context.py``: ``Context.de(pert, truth, "all_perturbed")`` with
``_reference_moments``):

* target: all cells of ``p``; reference ("all_perturbed"): every perturbed cell of the
  data that is *not* a cell of ``p`` (leave-one-out; control cells excluded);
* per gene, moments ``m = mean``, ``v = (mean(x^2) - m^2) n / max(n - 1, 1)`` floored at
  0, and Welch's ``t = (m_p - m_ref) / sqrt(v_p / n_p + v_ref / n_ref)``; a 0/0 (a gene
  that is 0 in every cell) gives ``t = 0``;
* ``w_g = a_g^2 / sum_{g' in G} a_{g'}^2`` with
  ``a_g = (|t_g| - min_G |t|) / (max_G |t| - min_G |t|)`` (min-max over ``G``, squared,
  normalised to sum 1; uniform ``1/|G|`` when every ``|t|`` is equal).

**Per-condition columns**

* ``weighted_mse = sum_g w_g (y_hat_g - y_g)^2`` - scPertEval protocol ``wmse_exp2``
  (``protocols/metrics.py: weighted_mse``, ``exp=2``), on the raw log-normalised
  pseudobulks (no centring; MSE is unchanged by a common shift). Lower is better, 0 is
  perfect.
* ``r2_delta_weighted = 1 - sum_g w_g (d_g - d_hat_g)^2 / sum_g w_g (d_g - dbar)^2``
  with ``d = y - c``, ``d_hat = y_hat - c`` and ``dbar = sum_g w_g d_g`` - scPertEval
  protocol ``weighted_r2_ctrl_exp2`` (``weighted_r2``: scikit-learn's weighted R2 of the
  changes against the control mean), CellSimBench's ``weighted_r2_deltactrl``. Higher is
  better, 1 is perfect, unbounded below (a constant prediction is not undefined here:
  "no change" has ``d_hat = 0`` and a finite, usually negative, R2). NaN only where the
  weighted variance of the observed change is 0 (scikit-learn would return 0 or 1 there,
  a number made of nothing).

**Target-gene exclusion** (:attr:`MetricInput.exclude_target`; :mod:`.paper`).
``r2_delta_weighted`` honours it: it compares the predicted and observed changes across
genes (a weighted R2, centred on the weighted mean change), so for condition ``p`` it
is computed over the evaluation genes that are not ``p``'s targets, with the weights
``w`` recomputed (min-max, squared, normalised) over those genes - a measured target
usually has the largest ``|t|`` and would otherwise also set the weights' scale.
``weighted_mse`` is a weighted per-gene average, not a correlation or a ranking, and
keeps every gene.

**Dynamic range fraction** (:func:`summarise`; scPertEval ``calibrators.py:
_drf_per_pert`` and the ``drf`` aggregate; CellSimBench
``analyses/calibration/calibration_analysis.py: calculate_drf``). Per condition, with
``neg`` the negative control's value, ``x`` the method's value and ``perfect`` the
metric's best value (0 for errors, 1 for R2 and correlations)::

    higher is better:  drf = clip((x - neg) / (perfect - neg + 1e-6), -1, 1)
    lower is better:   drf = clip((neg - x) / (neg - perfect + 1e-6), -1, 1)

NaN where ``neg`` or ``x`` is NaN or ``neg`` is beyond ``perfect``; the peers' summary
is the mean over conditions (NaN skipped, as scPertEval's ``np.nanmean``; ``drf_*``) and
the median (``drf_median_*``). The peers compute it with the *positive control* in
``x``: that DRF is a property of the **metric** (how much of the range from the negative
control to perfect a replicate covers; a well-calibrated metric has a DRF near 1), and
only the positive control's ``drf_*`` row should be read that way.

**The book's per-method score** (``book_drf_*``; the book's own construction, not the
peers'). Putting each *method* in ``x`` and averaging clipped per-condition ratios
reverses rankings: one condition where the negative control is almost perfect gives a
ratio clipped at -1 that outweighs the rest, so a method with the better mean metric
can get the lower mean DRF. The book therefore uses a **ratio of means** over the
conditions the method shares with the negative control::

    higher is better:  book_drf = (mean(x) - mean(neg)) / (perfect - mean(neg))
    lower is better:   book_drf = (mean(neg) - mean(x)) / (mean(neg) - perfect)

not clipped (below 0 = worse than the negative control). The denominator is the same
for every method scored on the same conditions, so ``book_drf`` orders the methods
exactly as the mean of the metric does: it rescales a metric, it adds no evidence. NaN
when ``x`` is undefined on any shared condition (as a method's mean in chapter 9) or
when the negative control's mean is not below perfect. Negative control: the mean
baseline (method ``"mean"``), CellSimBench's "dataset mean" negative control for these
metrics; positive control: the interpolated duplicate
(:func:`helpers.ceilings.interpolated_duplicate`). scPertEval's default negative for
pseudobulk protocols is the leave-one-out mean of *all* perturbations (held-out ones
included), which a split-based benchmark cannot use without leaking the test set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ..conditions import CONTROL
from ..errors import InputError
from . import paper
from .inputs import MetricInput
from .paper import non_target_mask
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
    "DRF_METRICS",
    "NEGATIVE_CONTROL",
    "score",
    "summarise",
    "group_moments",
    "welch_t",
    "bh_adjust",
    "de_vs_all_perturbed",
    "mejia_weights",
    "weighted_mse",
    "r2_delta_weighted",
    "drf_per_condition",
    "book_drf",
]

NAME = "calibrated"
COLUMNS = ["weighted_mse", "r2_delta_weighted"]
NEEDS_CELLS = True

_PER_CONDITION = (
    MetricSpec(
        "weighted_mse",
        NAME,
        "lower",
        True,
        "scperteval protocols/metrics.py::weighted_mse",
        "wmse_exp2",
        "Squared error weighted by how strongly the truth says each gene responds",
        perfect=0.0,
    ),
    MetricSpec(
        "r2_delta_weighted",
        NAME,
        "higher",
        True,
        "scperteval protocols/metrics.py::weighted_r2",
        "weighted_r2_ctrl_exp2",
        "DE-weighted R2 of the predicted vs observed change from the control",
        perfect=1.0,
    ),
)
_DRF_OF = ("weighted_mse", "r2_delta_weighted", "l2", "pearson_delta")
_SPEC_OF = {s.column: s for s in (*_PER_CONDITION, *paper.SPECS)}
#: metric -> (higher is better, perfect value), read from the metrics' specs; the
#: paper's l2 and pearson_delta too
DRF_METRICS = {
    name: (_SPEC_OF[name].direction == "higher", _SPEC_OF[name].perfect)
    for name in _DRF_OF
}


def _summary_specs() -> tuple[MetricSpec, ...]:
    """Specs of :func:`summarise`'s columns: every DRF is higher-is-better, 1 =
    perfect."""
    out = []
    for prefix, peer, what in (
        ("drf_", "drf", "peers' mean of clipped per-condition DRFs"),
        ("drf_median_", None, "median of clipped per-condition DRFs"),
        ("book_drf_", None, "book's DRF of a method (ratio of means)"),
    ):
        for name in _DRF_OF:
            out.append(
                MetricSpec(
                    f"{prefix}{name}",
                    NAME,
                    "higher",
                    _SPEC_OF[name].needs_cells,
                    "scperteval calibrators.py::_drf_per_pert" if peer else None,
                    peer,
                    f"{what} of {name} between the mean baseline and perfect",
                    role="summary",
                    perfect=1.0,
                )
            )
    return tuple(out)


#: The family's columns: per condition, then :func:`summarise`'s (module docstring).
SPECS = (*_PER_CONDITION, *_summary_specs())
NEGATIVE_CONTROL = "mean"
_CACHE_KEY = "calibrated.welch_t_vs_all_perturbed"


# --- DE statistics of the truth (scPertEval blocks/de.py, context.py) -----------------


def group_moments(
    X, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group sums of ``x`` and ``x^2`` (float64, groups x genes) and cell counts.

    Rows with a negative code are skipped. Sums rather than means, so a leave-one-out
    reference is ``total - own`` (scPertEval ``Context._reference_moments`` does the
    same).
    """
    from ..pseudobulk import group_sums

    codes = np.asarray(codes, dtype=np.int64)
    if sp.issparse(X):
        X = X if X.format == "csr" else X.tocsr()
        if not X.has_canonical_format:  # duplicate entries would square wrongly
            X = X.copy()
            X.sum_duplicates()
        # squares in float64 share X's index arrays: one extra nnz-length array, no copy
        # of X (group_sums accumulates X's own float32 values in float64)
        data = X.data.astype(np.float64)
        squares = sp.csr_matrix((data * data, X.indices, X.indptr), shape=X.shape)
    else:
        X = np.asarray(X, dtype=np.float64)
        squares = X * X
    sums = group_sums(X, codes, n_groups)
    sumsq = group_sums(squares, codes, n_groups)
    counts = np.bincount(codes[codes >= 0], minlength=n_groups).astype(np.float64)
    return sums, sumsq, counts


def _mean_var(
    s: np.ndarray, sq: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """scPertEval's moments: mean and ``(E[x^2] - E[x]^2) n / max(n - 1, 1)`` floored at
    0."""
    n = np.asarray(n, dtype=np.float64)[..., None] if np.ndim(n) else float(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        var = (sq / n - mean * mean) * (n / np.maximum(n - 1.0, 1.0))
    return mean, np.maximum(var, 0.0)


def welch_t(mt, vt, nt, mr, vr, nr) -> tuple[np.ndarray, np.ndarray]:
    """Welch's t and its two-sided p-value from moments (scPertEval
    ``ttest_from_moments``).

    ``t = (mt - mr) / sqrt(vt / nt + vr / nr)`` with 0 where it is not finite (0/0);
    degrees of freedom by Welch-Satterthwaite (1 where not finite); p = 1 where not
    finite. ``nt``/``nr`` may be arrays (one per row) broadcast against the genes.
    """
    nt = np.asarray(nt, dtype=np.float64)[..., None] if np.ndim(nt) else float(nt)
    nr = np.asarray(nr, dtype=np.float64)[..., None] if np.ndim(nr) else float(nr)
    at, ar = vt / nt, vr / nr
    se2 = at + ar
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mt - mr) / np.sqrt(se2)
        df = se2**2 / (
            at**2 / np.maximum(nt - 1.0, 1.0) + ar**2 / np.maximum(nr - 1.0, 1.0)
        )
    t = np.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)
    df = np.where(np.isfinite(df) & (df > 0), df, 1.0)
    p = np.nan_to_num(2.0 * stats.t.sf(np.abs(t), df), nan=1.0)
    return t, p


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values along the last axis, clipped to [0, 1]
    (scPertEval ``bh``)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 2:
        return np.vstack([bh_adjust(row) for row in p]) if len(p) else p.copy()
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    if idx.size == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adj = p[order] * idx.size / np.arange(1, idx.size + 1)
    out[order] = np.clip(np.minimum.accumulate(adj[::-1])[::-1], 0.0, 1.0)
    return out


def de_vs_all_perturbed(
    cells, conditions=None, *, target=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Welch t and BH-adjusted p of each condition's cells vs all other perturbed cells
    (all genes).

    The reference of condition ``p`` is every non-control cell whose condition is not
    ``p`` (scPertEval ``"all_perturbed"``, leave-one-out; we use every such cell where
    scPertEval draws at most 8,192 of them). ``target`` (boolean per cell, default all)
    restricts the *target* cells, e.g. to one half of each condition for the
    interpolated duplicate (scPertEval ``ctx.de(pert, "tech_dup", "all_perturbed")``);
    the reference always holds all the other conditions' cells. Returns (t, padj):
    conditions x genes DataFrames.
    """
    if "condition" not in cells.obs:
        raise KeyError(
            "The cells have no obs['condition']; "
            "load them with helpers.loaders.load_dataset."
        )
    if getattr(cells, "isbacked", False):
        raise InputError(
            "DE weights need the cells in memory; load the dataset without backed='r'."
        )
    labels = cells.obs["condition"].astype(str).to_numpy()
    perturbed = labels != CONTROL
    names = pd.Index(sorted(set(labels[perturbed])))
    wanted = (
        list(names) if conditions is None else [c for c in conditions if c != CONTROL]
    )
    absent = [c for c in wanted if c not in names]
    if absent:
        raise InputError(
            f"No cells of condition(s) {absent[:5]} in the truth's cells; "
            "DE weights need each scored condition's cells "
            "(pass the task's full cells)."
        )
    code_of = {name: k for k, name in enumerate(names)}
    codes = np.array([code_of.get(label, -1) for label in labels], dtype=np.int64)
    sums, sumsq, counts = group_moments(cells.X, codes, len(names))
    tot_s, tot_sq, tot_n = sums.sum(axis=0), sumsq.sum(axis=0), counts.sum()
    rows = np.array([code_of[c] for c in wanted], dtype=np.int64)
    ref_s, ref_sq, ref_n = (
        tot_s - sums[rows],
        tot_sq - sumsq[rows],
        tot_n - counts[rows],
    )
    if target is None:
        tgt_s, tgt_sq, tgt_n = sums[rows], sumsq[rows], counts[rows]
    else:
        target = np.asarray(target, dtype=bool)
        t_s, t_sq, t_n = group_moments(cells.X, np.where(target, codes, -1), len(names))
        tgt_s, tgt_sq, tgt_n = t_s[rows], t_sq[rows], t_n[rows]
    if (tgt_n < 1).any():
        empty = [wanted[i] for i in np.flatnonzero(tgt_n < 1)][:5]
        raise InputError(
            f"No target cells for condition(s) {empty}; each needs at least one cell."
        )
    if (ref_n < 1).any():
        raise InputError(
            "A DE reference needs perturbed cells of at least one other condition."
        )
    mt, vt = _mean_var(tgt_s, tgt_sq, tgt_n)
    mr, vr = _mean_var(ref_s, ref_sq, ref_n)
    t, p = welch_t(mt, vt, tgt_n, mr, vr, ref_n)
    index = pd.Index(wanted, name="condition")
    columns = pd.Index(cells.var_names, name="gene")
    return pd.DataFrame(t, index=index, columns=columns), pd.DataFrame(
        bh_adjust(p), index=index, columns=columns
    )


def mejia_weights(statistic, exp: float = 2.0) -> np.ndarray:
    """Min-max normalised ``|statistic|`` raised to ``exp``, normalised to sum 1
    (scPertEval ``mejia_weights``).

    Non-finite statistics get weight 0; uniform weights when every finite ``|s|`` is
    equal.
    """
    s = np.abs(np.asarray(statistic, dtype=np.float64))
    finite = np.isfinite(s)
    if not finite.any():
        return np.zeros_like(s)
    lo, hi = s[finite].min(), s[finite].max()
    a = np.nan_to_num((s - lo) / (hi - lo), nan=0.0) if hi > lo else np.zeros_like(s)
    w = a**exp
    total = w.sum()
    return w / total if total > 0 else np.full(w.size, 1.0 / w.size)


def _truth_statistics(inp: MetricInput) -> pd.DataFrame:
    """Welch t of every perturbed condition of ``inp.cells`` vs all_perturbed, computed
    once per task."""
    key = (_CACHE_KEY, id(inp.cells))
    if key not in inp.cache:
        inp.cache[key] = de_vs_all_perturbed(inp.cells)[0]
    return inp.cache[key]


# --- the metrics ---------------------------------------------------------------------


def weighted_mse(prediction, observed, weights) -> float:
    """``sum_g w_g (prediction_g - observed_g)^2`` (scPertEval ``protocols/metrics.py:
    weighted_mse``)."""
    diff = np.asarray(prediction, dtype=np.float64) - np.asarray(
        observed, dtype=np.float64
    )
    return float(np.sum(np.asarray(weights, dtype=np.float64) * diff * diff))


def r2_delta_weighted(prediction, observed, ctrl, weights) -> float:
    """Weighted R2 of the predicted vs observed change from ``ctrl`` (scPertEval
    ``weighted_r2``, centred on control).

    ``1 - sum w (d - d_hat)^2 / sum w (d - dbar_w)^2`` with ``dbar_w`` the weighted mean
    of ``d = observed - ctrl``; NaN when that weighted variance is 0 or the weights sum
    to 0.
    """
    w = np.asarray(weights, dtype=np.float64)
    ctrl = np.asarray(ctrl, dtype=np.float64)
    d = np.asarray(observed, dtype=np.float64) - ctrl
    d_hat = np.asarray(prediction, dtype=np.float64) - ctrl
    total = w.sum()
    if total <= 0:
        return float("nan")
    dbar = np.sum(w * d) / total
    denominator = np.sum(w * (d - dbar) ** 2)
    if denominator <= 1e-24 * max(1.0, float(np.sum(w * d * d))):
        return float("nan")
    return float(1.0 - np.sum(w * (d - d_hat) ** 2) / denominator)


def score(inp: MetricInput) -> pd.DataFrame:
    """``weighted_mse`` and ``r2_delta_weighted`` per held-out condition (definitions:
    module docstring; ``r2_delta_weighted`` honours ``inp.exclude_target``)."""
    if inp.cells is None:
        raise InputError(
            "The 'calibrated' metrics need the truth's cells (DE weights); "
            "none were given."
        )
    t = _truth_statistics(inp)
    missing = [c for c in inp.conditions if c not in t.index]
    if missing:
        raise InputError(
            f"No cells of condition(s) {missing[:5]} in the truth's cells; "
            "the 'calibrated' metrics' DE weights need them "
            "(pass the task's full cells)."
        )
    absent = inp.genes.difference(t.columns)
    if len(absent):
        raise InputError(
            f"{len(absent)} evaluation genes are not measured in the cells "
            f"(e.g. {list(absent)[:5]})."
        )
    pred, obs, ctrl = inp.pred.to_numpy(), inp.obs.to_numpy(), inp.ctrl.to_numpy()
    stat = t.loc[inp.conditions, inp.genes].to_numpy()
    rows = []
    for i, condition in enumerate(inp.conditions):
        w = mejia_weights(stat[i])
        if inp.exclude_target:
            keep = non_target_mask(inp.genes, condition)
            w_kept = mejia_weights(stat[i, keep])
            r2 = r2_delta_weighted(pred[i, keep], obs[i, keep], ctrl[keep], w_kept)
        else:
            r2 = r2_delta_weighted(pred[i], obs[i], ctrl, w)
        rows.append((weighted_mse(pred[i], obs[i], w), r2))
    return pd.DataFrame(
        rows, index=pd.Index(inp.conditions, name="condition"), columns=COLUMNS
    )


# --- the dynamic range fraction ------------------------------------------------------


def drf_per_condition(
    value, negative, *, higher_is_better: bool, perfect: float
) -> np.ndarray:
    """Per-condition DRF of ``value`` against the ``negative`` control (formula: module
    docstring).

    scPertEval ``calibrators.py: _drf_per_pert`` with ``value`` in the positive
    control's place.
    """
    x = np.asarray(value, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if higher_is_better:
            drf = (x - neg) / (perfect - neg + 1e-6)
            beyond = neg > perfect
        else:
            drf = (neg - x) / (neg - perfect + 1e-6)
            beyond = neg < perfect
    drf = np.clip(drf, -1.0, 1.0)
    return np.where(~np.isfinite(neg) | beyond | ~np.isfinite(x), np.nan, drf)


def book_drf(value, negative, *, higher_is_better: bool, perfect: float) -> np.ndarray:
    """The book's DRF of a method: ratio of means (module docstring), along the last
    axis of ``value`` and ``negative`` (conditions; earlier axes, e.g. resamples, are
    kept). NaN where any ``value`` is NaN, or where the negative control's mean is not
    below (lower is better: above) ``perfect``."""
    x = np.asarray(value, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if x.shape != neg.shape:
        raise InputError(
            f"value and negative must have the same shape; got {x.shape} and "
            f"{neg.shape} (match each method's rows to the negative control's first)."
        )
    x_mean, neg_mean = x.mean(axis=-1), np.nanmean(neg, axis=-1)
    headroom = (perfect - neg_mean) if higher_is_better else (neg_mean - perfect)
    gain = (x_mean - neg_mean) if higher_is_better else (neg_mean - x_mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = gain / headroom
    return np.where(np.isfinite(headroom) & (headroom > 0), out, np.nan)


def summarise(
    metrics: pd.DataFrame, *, negative: str = NEGATIVE_CONTROL
) -> pd.DataFrame:
    """DRF per method of every metric of :data:`DRF_METRICS` in ``metrics`` (one row per
    method).

    ``metrics``: per-condition rows of several methods on the same splits (columns
    ``method``, ``condition``, optionally ``dataset``/``seed``/``split``, and metric
    columns), the negative control ``negative`` included; rows are matched to the
    negative control's on (dataset, seed, split, condition). Columns: ``method``,
    ``drf_<metric>`` (the peers' aggregate: mean of clipped per-condition DRFs, NaN
    skipped; read it for the positive control only), ``drf_median_<metric>``,
    ``book_drf_<metric>`` (the book's per-method ratio of means, :func:`book_drf`) and
    ``n_drf`` (rows matched to a negative-control row).
    """
    names = [m for m in DRF_METRICS if m in metrics.columns]
    if "method" not in metrics or "condition" not in metrics:
        raise InputError(
            "summarise needs per-condition rows with 'method' and 'condition' columns."
        )
    neg_rows = metrics[metrics["method"] == negative]
    if neg_rows.empty:
        raise InputError(
            f"The DRF needs the negative control {negative!r} scored on the "
            f"same splits; add the {negative!r} baseline to the methods."
        )
    keys = [
        k for k in ("dataset", "seed", "split", "condition") if k in metrics.columns
    ]
    neg = neg_rows[keys + names].copy()
    for k in keys:  # NA seeds/datasets must still match each other
        neg[k] = neg[k].astype(str)
    table = metrics[["method"] + keys + names].copy()
    for k in keys:
        table[k] = table[k].astype(str)
    joined = table.merge(neg, on=keys, how="inner", suffixes=("", "_neg"))
    rows = []
    for method in pd.unique(metrics["method"]):
        part = joined[joined["method"] == method]
        row = {"method": method}
        for name in names:
            higher, perfect = DRF_METRICS[name]
            drf = drf_per_condition(
                part[name].to_numpy(dtype=float),
                part[f"{name}_neg"].to_numpy(dtype=float),
                higher_is_better=higher,
                perfect=perfect,
            )
            finite = drf[np.isfinite(drf)]
            row[f"drf_{name}"] = float(finite.mean()) if finite.size else float("nan")
            row[f"drf_median_{name}"] = (
                float(np.median(finite)) if finite.size else float("nan")
            )
            shared = np.isfinite(part[f"{name}_neg"].to_numpy(dtype=float))
            row[f"book_drf_{name}"] = (
                float(
                    book_drf(
                        part[name].to_numpy(dtype=float)[shared],
                        part[f"{name}_neg"].to_numpy(dtype=float)[shared],
                        higher_is_better=higher,
                        perfect=perfect,
                    )
                )
                if shared.any()
                else float("nan")
            )
        row["n_drf"] = len(part)
        rows.append(row)
    columns = (
        ["method"]
        + [f"drf_{n}" for n in names]
        + [f"drf_median_{n}" for n in names]
        + [f"book_drf_{n}" for n in names]
        + ["n_drf"]
    )
    return pd.DataFrame(rows, columns=columns)
