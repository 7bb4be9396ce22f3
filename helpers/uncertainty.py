"""Uncertainty of a mean over crossed factors: conditions x splits x training seeds.

Introduced in chapter 2 (the first L2 the reader sees) and used wherever a chapter draws
a conclusion from a table of per-row scores.

A results table has one row per (condition, split, training seed, ...). Those rows are
**not** independent samples: the same condition appears in several splits, the same
split holds many conditions. Resampling rows would shrink the interval. This module
resamples each **factor** (every column named in ``factors``) independently, as crossed
random effects (the "pigeonhole" bootstrap of Owen 2007, *Ann. Appl. Stat.* 1:1): for
each factor ``f`` the levels are drawn with replacement, ``m_f(l)`` = how often level
``l`` was drawn, and row ``i`` gets the weight

    w[b, i] = prod_f m_f(level_f(i))

in resample ``b``. The statistic of a resample is the weighted mean ``sum_i w v / sum_i
w`` (resamples whose weights are all zero are left out and counted). With one factor
this is the ordinary bootstrap over that factor's levels.

:func:`crossed_interval` gives the percentile interval of the mean of one column;
:func:`paired_interval` the interval of a mean paired difference between two methods
(positive = the first is better, for the metric's direction); :func:`direction` turns an
interval into "better" / "worse" / "inconclusive", so that a sentence such as "X beats
Y" is generated from the interval and never from the point estimate alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = [
    "crossed_weights",
    "crossed_interval",
    "paired_interval",
    "direction",
    "describe",
]


def _check(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"The table has no {what} column(s) {missing}; it has "
            f"{list(frame.columns)}."
        )


def crossed_weights(
    frame: pd.DataFrame,
    factors: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Resampling weights ``w[b, i]`` (``n_boot`` x rows) for crossed ``factors``.

    Each factor's levels are drawn with replacement independently (``numpy.random.
    default_rng(seed)``); a row's weight is the product over factors of how often its
    level was drawn (module docstring). A factor with one level contributes weight 1 to
    every row.
    """
    factors = list(factors)
    _check(frame, factors, "factor")
    if n_boot < 1:
        raise InputError(f"n_boot must be at least 1; got {n_boot}.")
    rng = np.random.default_rng(seed)
    weights = np.ones((n_boot, len(frame)))
    for factor in factors:
        codes, levels = pd.factorize(frame[factor], sort=True)
        if (codes < 0).any():
            raise InputError(f"The factor column {factor!r} has missing values.")
        k = len(levels)
        if k <= 1:
            continue
        counts = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot)
        weights *= counts[:, codes]
    return weights


def _weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights * values).sum(axis=1) / total
    return means[total > 0]


def crossed_interval(
    frame: pd.DataFrame,
    value: str,
    factors: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Mean of ``frame[value]`` with a percentile interval over crossed ``factors``.

    Rows whose value is NaN are dropped first (counted in ``n_dropped``). Returns a
    dict: estimate, lower, upper, level, n_rows, n_dropped, n_<factor> (levels of each
    factor), n_boot (resamples with a non-zero total weight).

    ``seed``: the bootstrap's seed.
    """
    _check(frame, [value], "value")
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1; got {level}.")
    valid = frame[np.isfinite(frame[value].to_numpy(dtype=float))]
    out = {"n_rows": len(valid), "n_dropped": len(frame) - len(valid), "level": level}
    for factor in factors:
        _check(frame, [factor], "factor")
        out[f"n_{factor}"] = int(valid[factor].nunique())
    if len(valid) == 0:
        return {
            **out,
            "estimate": np.nan,
            "lower": np.nan,
            "upper": np.nan,
            "n_boot": 0,
        }
    v = valid[value].to_numpy(dtype=float)
    means = _weighted_means(
        v, crossed_weights(valid, factors, n_boot=n_boot, seed=seed)
    )
    alpha = (1 - level) / 2
    lower, upper = np.quantile(means, [alpha, 1 - alpha])
    return {
        **out,
        "estimate": float(v.mean()),
        "lower": float(lower),
        "upper": float(upper),
        "n_boot": int(len(means)),
    }


def paired_interval(
    frame: pd.DataFrame,
    method: str,
    baseline: str,
    *,
    value: str,
    lower_is_better: bool,
    factors: Sequence[str] = ("condition",),
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Mean paired difference ``d`` of ``method`` against ``baseline``, positive =
    better.

    ``frame`` is long: a ``method`` column, the ``factors`` columns (which also pair the
    rows: a row of ``method`` and a row of ``baseline`` with the same factor levels form
    a pair), and ``value``. ``d = baseline - method`` where lower is better, ``method -
    baseline`` otherwise. Pairs where either value is NaN are dropped. Returns
    :func:`crossed_interval`'s dict with ``method``, ``baseline``, ``value`` and
    ``direction`` (:func:`direction` of the interval) added.

    ``lower_is_better``: the metric's direction; ``n_boot``, ``seed``, ``level``: the
    bootstrap.
    """
    factors = list(factors)
    _check(frame, ["method", value, *factors], "needed")
    for name in (method, baseline):
        if name not in set(frame["method"]):
            raise InputError(
                f"No rows of method {name!r}; the table has "
                f"{sorted(set(frame['method']))}."
            )
    wide = frame[frame["method"].isin([method, baseline])].pivot_table(
        index=factors, columns="method", values=value, aggfunc="mean", dropna=False
    )
    wide = wide.reindex(columns=[method, baseline]).reset_index()
    sign = -1.0 if lower_is_better else 1.0
    wide["d"] = sign * (wide[method] - wide[baseline])
    out = crossed_interval(wide, "d", factors, n_boot=n_boot, seed=seed, level=level)
    return {
        "method": method,
        "baseline": baseline,
        "value": value,
        **out,
        "direction": direction(out["lower"], out["upper"]),
    }


def direction(lower: float, upper: float) -> str:
    """``"better"`` if the interval of a positive-is-better difference lies above 0,
    ``"worse"`` if it lies below 0, ``"inconclusive"`` otherwise (also for NaN).

    ``lower`` and ``upper``: the interval's ends.
    """
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return "inconclusive"
    if lower > 0:
        return "better"
    if upper < 0:
        return "worse"
    return "inconclusive"


def describe(result: dict, *, digits: int = 3) -> str:
    """One sentence for a :func:`paired_interval` result, generated from its interval.

    For example ``"additive is better than no_change on l2: mean difference 1.23 [0.85,
    1.61] (95% interval over 5 condition x 1 split resamples)"``; an interval that
    covers 0 gives ``"... cannot be told apart from ..."``, with the reason.

    ``digits``: significant digits of the numbers.
    """
    m, b, v = result["method"], result["baseline"], result["value"]
    levels = " x ".join(
        f"{result[k]} {k[2:]}"
        for k in sorted(result)
        if k.startswith("n_") and k not in ("n_rows", "n_dropped", "n_boot")
    )
    ci = (
        f"mean difference {result['estimate']:.{digits}f} "
        f"[{result['lower']:.{digits}f}, {result['upper']:.{digits}f}] "
        f"({result['level']:.0%} interval resampling {levels})"
    )
    verb = {
        "better": "is better than",
        "worse": "is worse than",
        "inconclusive": "cannot be told apart from",
    }[result["direction"]]
    return f"{m} {verb} {b} on {v}: {ci}"
