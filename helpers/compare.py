"""Is method X better than baseline Y? A paired, grouped test (introduced in chapter 8).

Per split seed ``s`` and held-out condition ``p`` scored by both methods, the paired difference is

    d[s, p] = value_X[s, p] - value_Y[s, p]        (value = l2, pearson_delta, ...)

oriented so that **positive means X is better**: for ``l2`` (lower is better) the sign is flipped,
``d = l2_Y - l2_X``. Rows where either value is NaN (e.g. Pearson delta of "no change") are dropped
and counted. The statistic is the mean of ``d`` over all (seed, condition) pairs.

* **Grouped bootstrap** (interval): the split seeds are resampled with replacement, then the
  conditions within each drawn seed (two-stage cluster bootstrap; ``numpy.random.default_rng(seed)``),
  ``n_boot`` times; the interval is the percentile interval of the resampled means. With a single
  split seed it is the ordinary bootstrap over conditions.
* **Permutation test** (p-value): under "X and Y are exchangeable" the sign of each condition's
  differences is random. Signs are flipped per **condition** (the same sign in every seed where
  the condition is held out, since those differences are not independent), ``n_perm`` times;
  two-sided ``p = (1 + #{|mean_perm| >= |mean_obs|}) / (1 + n_perm)``.

Unlike the paper's bootstrap of the mean ratio (chapter 3), this compares the two methods on the
same conditions and answers "better or not" with an uncertainty that respects the split seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["paired_differences", "paired_test", "LOWER_IS_BETTER"]

LOWER_IS_BETTER = {"l2", "rank", "normalised_rank", "energy_distance"}


def paired_differences(metrics: pd.DataFrame, method: str, baseline: str, *, value: str = "l2",
                       by=("dataset",)) -> pd.DataFrame:
    """``d`` per (by..., seed, condition), positive = ``method`` better (see the module docstring)."""
    for name in (method, baseline):
        if name not in set(metrics["method"]):
            raise ValueError(f"No rows of {name!r} in the metrics table.")
    if value not in metrics.columns:
        raise ValueError(f"The metrics table has no column {value!r}.")
    keys = list(by) + ["seed", "condition"]
    wide = metrics[metrics["method"].isin([method, baseline])].pivot_table(
        index=keys, columns="method", values=value, aggfunc="first", dropna=True)
    wide = wide.reindex(columns=[method, baseline])
    sign = -1.0 if value in LOWER_IS_BETTER else 1.0
    out = wide.reset_index()
    out["d"] = sign * (out[method] - out[baseline])
    return out.rename(columns={method: "value_method", baseline: "value_baseline"})


def paired_test(metrics: pd.DataFrame, method: str, baseline: str, *, value: str = "l2",
                n_boot: int = 10_000, n_perm: int = 10_000, seed: int = 1, level: float = 0.95,
                by=("dataset",)) -> pd.DataFrame:
    """Grouped bootstrap interval and sign-flip permutation p-value of the mean paired difference.

    One row per group of ``by``: by..., method, baseline, value, n_pairs, n_conditions, n_seeds,
    n_dropped (NaN pairs), mean_diff (positive = method better), lower, upper, p_value, better
    (the interval lies above 0), worse (below 0).
    """
    diffs = paired_differences(metrics, method, baseline, value=value, by=by)
    rng = np.random.default_rng(seed)
    alpha = (1 - level) / 2
    rows = []
    for key, group in diffs.groupby(list(by), sort=True):
        valid = group[np.isfinite(group["d"])]
        dropped = len(group) - len(valid)
        d = valid["d"].to_numpy(dtype=float)
        base = {**dict(zip(by, key if isinstance(key, tuple) else (key,))), "method": method,
                "baseline": baseline, "value": value, "n_pairs": len(d),
                "n_conditions": valid["condition"].nunique(), "n_seeds": valid["seed"].nunique(),
                "n_dropped": dropped}
        if len(d) == 0:
            rows.append({**base, "mean_diff": np.nan, "lower": np.nan, "upper": np.nan,
                         "p_value": np.nan, "better": False, "worse": False})
            continue
        observed = d.mean()
        seeds = [part["d"].to_numpy(dtype=float) for _, part in valid.groupby("seed", sort=True)]
        boot = np.empty(n_boot)
        for b in range(n_boot):
            drawn = rng.integers(0, len(seeds), size=len(seeds))
            sample = [seeds[i][rng.integers(0, len(seeds[i]), size=len(seeds[i]))] for i in drawn]
            boot[b] = np.concatenate(sample).mean()
        lower, upper = np.quantile(boot, [alpha, 1 - alpha])
        codes = pd.factorize(valid["condition"])[0]
        n_cond = codes.max() + 1
        signs = rng.choice([-1.0, 1.0], size=(n_perm, n_cond))
        perm = (signs[:, codes] * d).mean(axis=1)
        p_value = (1 + np.sum(np.abs(perm) >= abs(observed) - 1e-12)) / (1 + n_perm)
        rows.append({**base, "mean_diff": observed, "lower": float(lower), "upper": float(upper),
                     "p_value": float(p_value), "better": bool(lower > 0), "worse": bool(upper < 0)})
    return pd.DataFrame(rows)
