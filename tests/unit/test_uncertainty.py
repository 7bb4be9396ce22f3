"""helpers.uncertainty: crossed-factor bootstrap, checked against closed-form
variances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import uncertainty


def test_one_factor_is_the_ordinary_bootstrap_variance():
    # The bootstrap variance of a mean of n iid values is sigma^2_hat / n (sigma_hat
    # with ddof=0): Efron & Tibshirani (1993), eq. 6.9.
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"condition": [f"c{i}" for i in range(40)], "v": rng.normal(size=40)}
    )
    w = uncertainty.crossed_weights(frame, ["condition"], n_boot=20000, seed=1)
    means = (w * frame["v"].to_numpy()).sum(1) / w.sum(1)
    expected = frame["v"].std(ddof=0) / np.sqrt(40)
    assert means.std() == pytest.approx(expected, rel=0.03)


def test_repeated_splits_do_not_shrink_the_interval():
    # The same 10 conditions scored in 5 splits with identical values carry the
    # information of 10 values, not 50: the interval must equal the one-split interval.
    rng = np.random.default_rng(0)
    v = rng.normal(size=10)
    one = pd.DataFrame({"condition": range(10), "split": 0, "v": v})
    five = pd.concat([one.assign(split=s) for s in range(5)], ignore_index=True)
    a = uncertainty.crossed_interval(one, "v", ["condition", "split"], seed=2)
    b = uncertainty.crossed_interval(five, "v", ["condition", "split"], seed=2)
    assert b["upper"] - b["lower"] == pytest.approx(a["upper"] - a["lower"], rel=0.1)
    assert b["n_condition"] == 10 and b["n_split"] == 5 and b["n_rows"] == 50


def test_two_crossed_factors_match_the_random_effects_variance():
    # v = a_i + b_j (no noise), I = J = 30: var(mean) = var(a)/I + var(b)/J; the
    # pigeonhole bootstrap is close to it for additive effects (Owen 2007, Theorem 1).
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=30), 2 * rng.normal(size=30)
    grid = pd.DataFrame(
        [(i, j, a[i] + b[j]) for i in range(30) for j in range(30)],
        columns=["condition", "split", "v"],
    )
    w = uncertainty.crossed_weights(grid, ["condition", "split"], n_boot=4000, seed=4)
    means = (w * grid["v"].to_numpy()).sum(1) / w.sum(1)
    expected = np.sqrt(a.var() / 30 + b.var() / 30)
    assert means.std() == pytest.approx(expected, rel=0.1)


def test_paired_interval_direction_and_sentence():
    rows = []
    for c in range(12):
        rows += [
            {"method": "good", "condition": c, "l2": 1.0 + 0.01 * c},
            {"method": "bad", "condition": c, "l2": 2.0 + 0.02 * c},
        ]
    frame = pd.DataFrame(rows)
    r = uncertainty.paired_interval(
        frame, "good", "bad", value="l2", lower_is_better=True
    )
    assert r["direction"] == "better" and r["estimate"] > 0
    assert uncertainty.describe(r).startswith("good is better than bad on l2")
    r = uncertainty.paired_interval(
        frame, "bad", "good", value="l2", lower_is_better=True
    )
    assert r["direction"] == "worse"
    noisy = frame.assign(l2=np.random.default_rng(1).normal(size=len(frame)))
    r = uncertainty.paired_interval(
        noisy, "good", "bad", value="l2", lower_is_better=True
    )
    assert "cannot be told apart" in uncertainty.describe(r)


def test_bad_input_names_the_problem():
    frame = pd.DataFrame({"method": ["a"], "condition": ["x"], "v": [1.0]})
    with pytest.raises(ValueError, match="no factor column"):
        uncertainty.crossed_interval(frame, "v", ["split"])
    with pytest.raises(ValueError, match="No rows of method 'b'"):
        uncertainty.paired_interval(frame, "a", "b", value="v", lower_is_better=True)
