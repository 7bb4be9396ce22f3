"""Is method X better than baseline Y? A paired, grouped test (introduced in chapter 8).

Per split seed ``s`` and held-out condition ``p`` scored by both methods, the paired
difference is

    d[s, p] = value_X[s, p] - value_Y[s, p]        (value = l2, pearson_delta, mae, ...)

oriented so that **positive means X is better**: where lower is better
(:func:`metric_direction`, which reads :mod:`helpers.metrics.catalog`) the sign is
flipped, ``d = value_Y - value_X``. Rows where either value is NaN (e.g. Pearson delta
of "no change") are dropped and counted. The statistic is the mean of ``d`` over all
(seed, condition) pairs.

* **Permutation test** (p-value; it decides ``better`` / ``worse``): under "X and Y are
  exchangeable" the sign of each condition's differences is random. Signs are flipped
  per **condition** (the same sign in every seed where the condition is held out, since
  those differences are not independent). With ``k`` conditions there are ``2^k`` sign
  patterns:

  - if ``2^k <= n_perm`` all of them are enumerated and ``p = #{|mean_perm|
    >= |mean_obs|} / 2^k`` exactly (the observed pattern and its mirror image
    are among them, so ``p >= 2 / 2^k``: at ``k = 5`` the smallest two-sided
    p is ``2 / 32 = 0.0625`` and no difference on five conditions can be
    called at the 5 % level);
  - otherwise ``n_perm`` random patterns give ``p = (1 + hits) / (1 + n_perm)``; when no
    pattern reaches the observed mean (``hits = 0``) that number is only the Monte-Carlo
    resolution, and ``p_text`` says ``"<= 1/(n_perm + 1)"`` instead of a fake exact
    value.

  ``better`` = ``p_value <= 1 - level`` and ``mean_diff > 0``; ``worse`` = the same with
  ``mean_diff < 0``.
* **Crossed bootstrap** (interval, descriptive): conditions and split seeds are
  resampled as **crossed** factors (:func:`helpers.uncertainty.crossed_weights`: each
  factor's levels are drawn with replacement, a row's weight is the product of its
  levels' counts), ``n_boot`` times; the interval is the percentile interval of the
  weighted means. With one split seed it is the ordinary bootstrap over conditions. At
  small ``n`` a percentile interval is too narrow (it can exclude 0 where the exact test
  cannot reject), which is why it does not decide.

Unlike the paper's bootstrap of the mean ratio (chapter 3), this compares the two
methods on the same conditions and answers "better or not" with an uncertainty that
respects the split seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError
from .metrics import catalog
from .uncertainty import crossed_weights

__all__ = [
    "paired_differences",
    "paired_test",
    "metric_direction",
    "LOWER_IS_BETTER",
]


def metric_direction(column: str) -> str:
    """``"lower"`` or ``"higher"``: which way is better for the per-condition metric
    ``column``, read from :mod:`helpers.metrics.catalog`.

    Refused in one line (:class:`helpers.errors.InputError`): a column the catalog does
    not know, and a column that is not a per-condition score of a method (a bound from
    the data such as ``l2_ceiling``, or a per-method summary such as ``book_drf_l2``).
    """
    spec = catalog.spec(column)
    if spec.role != "score":
        what = {
            "reference": "a bound from the data, the same for every method",
            "summary": "one value per method, not a per-condition score",
        }[spec.role]
        raise InputError(
            f"{column!r} is {what}; a paired test compares per-condition scores: pass "
            f"one of {catalog.columns()}."
        )
    return spec.direction


#: Every per-condition score column where lower is better: a view of the catalog.
LOWER_IS_BETTER = catalog.lower_is_better()


def paired_differences(
    metrics: pd.DataFrame,
    method: str,
    baseline: str,
    *,
    value: str = "l2",
    by=("dataset",),
) -> pd.DataFrame:
    """``d`` per (by..., seed, condition); positive = ``method`` better (module doc).

    ``metrics``: per-condition rows of several methods (columns method, seed, condition,
    the ``by`` keys and ``value``); ``method`` and ``baseline``: the two methods
    compared; ``value``: the metric column (its direction from
    :mod:`helpers.metrics.catalog`); ``by``: the grouping columns.
    """
    for name in (method, baseline):
        if name not in set(metrics["method"]):
            raise InputError(
                f"No rows of {name!r} in the metrics table; score it on the same "
                "splits, or name a method the table holds."
            )
    if value not in metrics.columns:
        raise InputError(
            f"The metrics table has no column {value!r}; pass one of its metric "
            "columns as value=."
        )
    sign = -1.0 if metric_direction(value) == "lower" else 1.0
    keys = list(by) + ["seed", "condition"]
    wide = metrics[metrics["method"].isin([method, baseline])].pivot_table(
        index=keys, columns="method", values=value, aggfunc="first", dropna=True
    )
    wide = wide.reindex(columns=[method, baseline])
    out = wide.reset_index()
    out["d"] = sign * (out[method] - out[baseline])
    return out.rename(columns={method: "value_method", baseline: "value_baseline"})


def _sign_flip_p(
    sums: np.ndarray, n_pairs: int, observed: float, n_perm: int, rng
) -> tuple[float, str, bool]:
    """Two-sided sign-flip p-value from per-condition sums of ``d`` (module docstring).

    Returns (p, p_text, exact).
    """
    k = len(sums)
    tol = 1e-12 * max(1.0, abs(observed))
    if k < 63 and 2**k <= n_perm:
        patterns = (np.arange(2**k)[:, None] >> np.arange(k)) & 1
        means = ((2.0 * patterns - 1.0) @ sums) / n_pairs
        hits = int(np.sum(np.abs(means) >= abs(observed) - tol))
        p = hits / 2**k
        return p, f"{hits}/{2**k} = {p:.4g} (exact)", True
    hits = 0
    chunk = 2000
    for start in range(0, n_perm, chunk):
        size = min(chunk, n_perm - start)
        signs = rng.choice([-1.0, 1.0], size=(size, k))
        hits += int(np.sum(np.abs(signs @ sums / n_pairs) >= abs(observed) - tol))
    p = (1 + hits) / (1 + n_perm)
    if hits == 0:
        text = f"<= 1/{n_perm + 1} (no sign flip of {n_perm} reached it)"
    else:
        text = f"{p:.2g} ({hits} of {n_perm} sign flips)"
    return p, text, False


def paired_test(
    metrics: pd.DataFrame,
    method: str,
    baseline: str,
    *,
    value: str = "l2",
    n_boot: int = 10_000,
    n_perm: int = 10_000,
    seed: int = 1,
    level: float = 0.95,
    by=("dataset",),
) -> pd.DataFrame:
    """Sign-flip permutation test and crossed-bootstrap interval of the mean paired
    difference.

    One row per group of ``by``: by..., method, baseline, value, n_pairs, n_conditions,
    n_seeds, n_dropped (NaN pairs), mean_diff (positive = method better), lower, upper
    (crossed bootstrap over conditions x seeds, descriptive), p_value, p_text (exact
    count, or an upper bound at the Monte-Carlo resolution), exact (all sign patterns
    enumerated), better / worse (decided by the permutation p-value at ``1 - level`` and
    the sign of mean_diff; module docstring). ``seed`` seeds the bootstrap
    (:func:`helpers.uncertainty.crossed_weights`, so the interval equals
    :func:`helpers.uncertainty.crossed_interval` of ``d`` over condition x seed); the
    random sign flips use ``numpy.random.default_rng([seed, 1])``. ``metrics``,
    ``method``, ``baseline``, ``value``, ``by``: as :func:`paired_differences`;
    ``n_boot``: bootstrap resamples; ``n_perm``: random sign patterns when the exact
    enumeration is larger; ``level``: the confidence level of the interval and the test.
    """
    if not 0 < level < 1:
        raise InputError(f"level must lie between 0 and 1; got {level}.")
    if n_boot < 1 or n_perm < 1:
        raise InputError(
            f"n_boot and n_perm must be at least 1; got {n_boot}, {n_perm}."
        )
    diffs = paired_differences(metrics, method, baseline, value=value, by=by)
    rng = np.random.default_rng(
        [seed, 1]
    )  # sign flips; the bootstrap uses ``seed`` itself
    tail = (1 - level) / 2
    rows = []
    for key, group in diffs.groupby(list(by), sort=True):
        valid = group[np.isfinite(group["d"])].reset_index(drop=True)
        d = valid["d"].to_numpy(dtype=float)
        base = {
            **dict(zip(by, key if isinstance(key, tuple) else (key,))),
            "method": method,
            "baseline": baseline,
            "value": value,
            "n_pairs": len(d),
            "n_conditions": valid["condition"].nunique(),
            "n_seeds": valid["seed"].nunique(),
            "n_dropped": len(group) - len(valid),
        }
        if len(d) == 0:
            rows.append(
                {
                    **base,
                    "mean_diff": np.nan,
                    "lower": np.nan,
                    "upper": np.nan,
                    "p_value": np.nan,
                    "p_text": "no pairs",
                    "exact": False,
                    "better": False,
                    "worse": False,
                }
            )
            continue
        observed = float(d.mean())
        weights = crossed_weights(
            valid, ["condition", "seed"], n_boot=n_boot, seed=seed
        )
        total = weights.sum(axis=1)
        means = (weights @ d)[total > 0] / total[total > 0]
        lower, upper = np.quantile(means, [tail, 1 - tail])
        codes = pd.factorize(valid["condition"])[0]
        sums = np.bincount(codes, weights=d)
        p_value, p_text, exact = _sign_flip_p(sums, len(d), observed, n_perm, rng)
        significant = p_value <= 1 - level
        rows.append(
            {
                **base,
                "mean_diff": observed,
                "lower": float(lower),
                "upper": float(upper),
                "p_value": float(p_value),
                "p_text": p_text,
                "exact": exact,
                "better": bool(significant and observed > 0),
                "worse": bool(significant and observed < 0),
            }
        )
    return pd.DataFrame(rows)
