"""Sentences generated from intervals, and a rule for when n is too small to conclude
(introduced in chapter 2; used in chapter 4).

:func:`helpers.uncertainty.paired_interval` gives the interval of a mean paired
difference over crossed factors (conditions x splits x seeds). Two things are added
here:

* :func:`too_few` - with ``n`` conditions, an exact two-sided sign-flip test cannot
  reach ``p < 1 - level`` even when **every** condition favours the same method: its
  smallest p-value is ``2 / 2^n`` (0.0625 for ``n = 5``). Below that, a percentile
  bootstrap interval that excludes 0 only reflects how few values were resampled, so the
  chapter says that n is too small instead of concluding.
* :func:`comparison` / :func:`sentence` - the paired interval, the share of pairs where
  the method is better, and one sentence: :func:`helpers.uncertainty.describe` when n
  suffices, a "too few to conclude" sentence (with the interval) otherwise.

:func:`interval_table` gives each method's mean with its crossed interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .uncertainty import crossed_interval, describe, paired_interval
from .errors import InputError

__all__ = [
    "too_few",
    "smallest_sign_flip_p",
    "interval_table",
    "comparison",
    "sentence",
    "comparison_table",
    "direction_summary",
]


def smallest_sign_flip_p(n: int) -> float:
    """Smallest two-sided p-value of an exact sign-flip test over ``n`` paired values:
    ``2 / 2^n``."""
    if n < 1:
        raise InputError(f"n must be at least 1; got {n}.")
    return min(1.0, 2.0 * 0.5**n)


def too_few(n: int, level: float = 0.95) -> bool:
    """Whether ``n`` conditions are too few for any conclusion at ``level`` (module
    docstring)."""
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1; got {level}.")
    return smallest_sign_flip_p(n) >= 1 - level


def interval_table(
    frame: pd.DataFrame,
    *,
    value: str = "l2",
    factors: Sequence[str] = ("condition",),
    by: str = "method",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Mean of ``value`` per level of ``by`` with its crossed interval over ``factors``.

    Columns: ``by``, estimate, lower, upper, n_<factor> for each factor, n_rows.

    ``frame``: long table with columns ``by``, ``value`` and the ``factors``;
    ``n_boot``, ``seed``: the bootstrap.
    """
    if by not in frame.columns:
        raise InputError(
            f"The table has no column {by!r}; it has {list(frame.columns)}."
        )
    rows = []
    for level_name, part in frame.groupby(by, sort=False):
        out = crossed_interval(
            part, value, factors, n_boot=n_boot, seed=seed, level=level
        )
        rows.append(
            {
                by: level_name,
                "estimate": out["estimate"],
                "lower": out["lower"],
                "upper": out["upper"],
                **{f"n_{f}": out[f"n_{f}"] for f in factors},
                "n_rows": out["n_rows"],
            }
        )
    return pd.DataFrame(rows)


def _unit_factor(factors: Sequence[str]) -> str:
    return "condition" if "condition" in factors else list(factors)[0]


def comparison(
    frame: pd.DataFrame,
    method: str,
    baseline: str,
    *,
    value: str = "l2",
    lower_is_better: bool = True,
    factors: Sequence[str] = ("condition",),
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    unit: str = "conditions",
) -> dict:
    """:func:`helpers.uncertainty.paired_interval` plus ``share_better`` (fraction of
    pairs where ``method`` is better), ``too_few`` (:func:`too_few` of the number of
    levels of the condition factor) and ``sentence`` (:func:`sentence`).

    ``frame``: long table with columns ``by`` method, ``value`` and the ``factors``;
    ``method`` and ``baseline``: the two methods compared; ``value``: the metric column;
    ``lower_is_better``: its direction; ``factors``: the pairing columns, resampled as
    crossed factors; ``n_boot``, ``seed``, ``level``: the bootstrap; ``unit``: the word
    for the pairs in the sentence.
    """
    result = paired_interval(
        frame,
        method,
        baseline,
        value=value,
        lower_is_better=lower_is_better,
        factors=factors,
        n_boot=n_boot,
        seed=seed,
        level=level,
    )
    wide = frame[frame["method"].isin([method, baseline])].pivot_table(
        index=list(factors), columns="method", values=value, aggfunc="mean"
    )
    wide = wide.dropna()
    d = (
        (wide[baseline] - wide[method])
        if lower_is_better
        else (wide[method] - wide[baseline])
    )
    result["share_better"] = float(np.mean(d > 0)) if len(d) else float("nan")
    result["pair_count"] = int(len(d))
    result["too_few"] = too_few(result[f"n_{_unit_factor(factors)}"], level)
    result["unit"] = unit
    result["sentence"] = sentence(result, factors=factors)
    return result


def sentence(
    result: dict, *, factors: Sequence[str] = ("condition",), digits: int = 3
) -> str:
    """One sentence for a :func:`comparison` result:
    :func:`helpers.uncertainty.describe` when there are enough conditions, otherwise
    that they are too few to conclude."""
    if not result.get("too_few", False):
        return describe(result, digits=digits)
    n = result[f"n_{_unit_factor(factors)}"]
    unit = result.get("unit", "conditions")
    est, lo, hi = (f"{result[k]:.{digits}f}" for k in ("estimate", "lower", "upper"))
    return (
        f"{result['method']} vs {result['baseline']} on {result['value']}: mean "
        f"difference {est} [{lo}, {hi}] over only {n} {unit}, too few to conclude "
        f"(even if all {n} favoured one side, an exact sign-flip test could not reach "
        f"p < {1 - result['level']:.2f}: its smallest p is "
        f"{smallest_sign_flip_p(n):.3f})"
    )


def comparison_table(
    frame: pd.DataFrame,
    methods: Sequence[str],
    baseline: str,
    *,
    value: str = "l2",
    lower_is_better: bool = True,
    factors: Sequence[str] = ("condition",),
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """:func:`comparison` of each of ``methods`` against ``baseline``, one row each:
    method, baseline, estimate (mean paired difference, positive = method better),
    lower, upper, direction ("better" / "worse" / "inconclusive", or "too few"),
    share_better, pair_count and n_<factor> for each factor.

    ``frame``: long table with columns method, ``value`` and the ``factors``;
    ``methods``: compared with ``baseline`` one by one; ``value``: the metric column;
    ``lower_is_better``: its direction; ``factors``: the pairing columns; ``n_boot``,
    ``seed``, ``level``: the bootstrap.
    """
    rows = []
    for method in methods:
        r = comparison(
            frame,
            method,
            baseline,
            value=value,
            lower_is_better=lower_is_better,
            factors=factors,
            n_boot=n_boot,
            seed=seed,
            level=level,
        )
        rows.append(
            {
                "method": method,
                "baseline": baseline,
                "estimate": r["estimate"],
                "lower": r["lower"],
                "upper": r["upper"],
                "direction": "too few" if r["too_few"] else r["direction"],
                "share_better": r["share_better"],
                "pair_count": r["pair_count"],
                **{f"n_{f}": r[f"n_{f}"] for f in factors},
            }
        )
    return pd.DataFrame(rows)


def direction_summary(table: pd.DataFrame) -> str:
    """One sentence from a :func:`comparison_table`: which methods are better than,
    worse than, cannot be told apart from the baseline, or have too few conditions.

    ``table``: the output of :func:`comparison_table`.
    """
    if table.empty:
        raise InputError(
            "The comparison table is empty; pass comparison_table's output."
        )
    baseline = table["baseline"].iloc[0]
    words = {
        "better": "better than",
        "worse": "worse than",
        "inconclusive": "not distinguishable from",
        "too few": "too few conditions to compare with",
    }
    parts = []
    for key, phrase in words.items():
        names = list(table.loc[table["direction"] == key, "method"])
        if names:
            parts.append(f"{phrase} {baseline}: {', '.join(names)}")
    return "; ".join(parts) + "."


def spread_verdict(ratio: float) -> str:
    """Words for a prediction's spread relative to the truth's (chapter 4): ``ratio`` is
    the median over genes of SD(prediction across conditions) / SD(truth across
    conditions).

    ``< 0.1``: collapsed (nearly the same prediction for every condition); ``< 0.8``:
    varies less than the truth; ``<= 1.25``: about as much as the truth; above: more
    than the truth.
    """
    if not np.isfinite(ratio) or ratio < 0:
        raise InputError(f"ratio must be a finite number >= 0; got {ratio}.")
    if ratio < 0.1:
        return "collapsed: nearly the same prediction for every condition"
    if ratio < 0.8:
        return "varies less than the truth"
    if ratio <= 1.25:
        return "varies about as much as the truth"
    return "varies more than the truth"
