"""helpers.compare.paired_test: exact sign-flip p-values at small n (counted by hand),
the decision taken from the test, the crossed bootstrap, and a refused metric column.
The sign of the difference for every metric of the catalog:
``tests/unit/test_catalog.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import compare, uncertainty
from helpers.errors import InputError


def paired_table(d, method_value=1.0, column="l2", seeds=(0,)):
    """x scores ``method_value``; y scores ``method_value + d`` on condition i
    (lower-is-better: x better by d)."""
    rows = []
    for seed in seeds:
        for i, di in enumerate(d):
            rows.append(
                {
                    "dataset": "toy",
                    "seed": seed,
                    "condition": f"c{i}",
                    "method": "x",
                    column: method_value,
                }
            )
            rows.append(
                {
                    "dataset": "toy",
                    "seed": seed,
                    "condition": f"c{i}",
                    "method": "y",
                    column: method_value + di,
                }
            )
    return pd.DataFrame(rows)


def test_five_positive_differences_are_not_significant():
    """The issue's "done when": exact two-sided p = 2 / 32 = 0.0625, so better=False."""
    out = compare.paired_test(paired_table([0.5, 0.7, 0.9, 1.1, 1.3]), "x", "y").iloc[0]
    assert out["exact"]
    assert out["p_value"] == 2 / 32
    assert out["p_text"].startswith("2/32")
    assert out["mean_diff"] == pytest.approx(0.9)
    assert not out["better"] and not out["worse"]
    # the percentile interval alone would have excluded 0: it does not decide
    assert out["lower"] > 0


def test_exact_p_value_counted_by_hand():
    # d = 1, 2, 3, 4: of the 16 sign patterns, |mean| >= 2.5 only for all-plus and
    # all-minus
    out = compare.paired_test(paired_table([1.0, 2.0, 3.0, 4.0]), "x", "y").iloc[0]
    assert out["p_value"] == 2 / 16
    table = paired_table([1.0, 2.0, 3.0, 4.0, -1.0, 1.0])
    # d = 1, 2, 3, 4, -1, 1 (sum 10): flipping the subset with sum s gives sum 10 - 2 s;
    # count the subsets with |10 - 2 s| >= 10 by brute force over the 64 subsets
    d = np.array([1.0, 2.0, 3.0, 4.0, -1.0, 1.0])
    count = 0
    for mask in range(64):
        s = sum(d[j] for j in range(6) if mask >> j & 1)
        count += abs(10 - 2 * s) >= 10 - 1e-9
    out = compare.paired_test(table, "x", "y").iloc[0]
    assert out["p_value"] == count / 64


def test_many_conditions_use_monte_carlo_and_report_a_bound():
    d = np.linspace(
        0.5, 1.5, 20
    )  # every difference positive: no random flip reaches the mean
    out = compare.paired_test(paired_table(d), "x", "y", n_perm=999, n_boot=500).iloc[0]
    assert not out["exact"]
    assert out["p_value"] == pytest.approx(1 / 1000)
    assert out["p_text"].startswith("<= 1/1000")
    assert out["better"] and not out["worse"]
    worse = compare.paired_test(
        paired_table(-d), "x", "y", n_perm=999, n_boot=500
    ).iloc[0]
    assert worse["worse"] and not worse["better"] and worse["mean_diff"] < 0


def test_signs_are_flipped_per_condition_across_seeds():
    # the same five conditions in three split seeds: still 2^5 patterns, p = 2 / 32
    table = paired_table([0.5, 0.7, 0.9, 1.1, 1.3], seeds=(1, 2, 3))
    out = compare.paired_test(table, "x", "y").iloc[0]
    assert out["n_pairs"] == 15 and out["n_conditions"] == 5 and out["n_seeds"] == 3
    assert out["p_value"] == 2 / 32 and not out["better"]


def test_interval_resamples_conditions_and_seeds_as_crossed_factors():
    rng = np.random.default_rng(0)
    table = paired_table(rng.normal(0.3, 1.0, 12), seeds=(1, 2, 3))
    # seed-specific shifts make the seeds matter
    table.loc[table["method"] == "y", "l2"] += table["seed"].map(
        {1: 0.0, 2: 0.4, 3: -0.4}
    )
    out = compare.paired_test(table, "x", "y", n_boot=800, seed=5).iloc[0]
    diffs = compare.paired_differences(table, "x", "y")
    peer = uncertainty.crossed_interval(
        diffs, "d", ["condition", "seed"], n_boot=800, seed=5
    )
    assert out["lower"] == pytest.approx(peer["lower"])
    assert out["upper"] == pytest.approx(peer["upper"])
    conditions_only = uncertainty.crossed_interval(
        diffs, "d", ["condition"], n_boot=800, seed=5
    )
    assert (
        out["upper"] - out["lower"]
        > conditions_only["upper"] - conditions_only["lower"]
    )


def test_unknown_metric_and_bad_arguments_are_refused_in_one_line():
    table = paired_table([1.0, 2.0]).rename(columns={"l2": "my_score"})
    with pytest.raises(
        InputError, match="No known direction for the metric column 'my_score'"
    ) as err:
        compare.paired_test(table, "x", "y", value="my_score")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="level"):
        compare.paired_test(paired_table([1.0, 2.0]), "x", "y", level=95)
