"""helpers.conclusions: the small-n rule (closed form) and sentences generated from
intervals."""

import numpy as np
import pandas as pd
import pytest

from helpers.conclusions import (
    comparison,
    interval_table,
    smallest_sign_flip_p,
    too_few,
)


def _long(l2_method, l2_baseline):
    rows = []
    for i, (a, b) in enumerate(zip(l2_method, l2_baseline)):
        rows.append({"method": "m", "condition": f"p{i}", "l2": a})
        rows.append({"method": "b", "condition": f"p{i}", "l2": b})
    return pd.DataFrame(rows)


def test_smallest_sign_flip_p_closed_form():
    # 2 of the 2^n sign patterns are as extreme as "all the same sign"
    assert smallest_sign_flip_p(5) == pytest.approx(2 / 32)
    assert smallest_sign_flip_p(6) == pytest.approx(2 / 64)
    assert smallest_sign_flip_p(1) == 1.0
    assert too_few(5) and not too_few(6)
    assert not too_few(5, level=0.9)  # 0.0625 < 0.10
    with pytest.raises(ValueError, match="at least 1"):
        smallest_sign_flip_p(0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        too_few(5, level=95)


def test_five_unanimous_conditions_are_too_few():
    frame = _long([1.0, 1.1, 0.9, 1.2, 1.0], [2.0, 2.2, 2.1, 1.9, 2.3])
    result = comparison(frame, "m", "b", unit="doubles")
    assert result["too_few"] and result["share_better"] == 1.0
    assert "too few to conclude" in result["sentence"]
    assert "only 5 doubles" in result["sentence"]
    assert "0.062" in result["sentence"]


def test_enough_conditions_give_a_direction():
    rng = np.random.default_rng(0)
    base = rng.uniform(2, 3, 40)
    frame = _long(base - 1.0 + rng.normal(0, 0.1, 40), base)
    result = comparison(frame, "m", "b")
    assert not result["too_few"]
    assert result["direction"] == "better"
    assert result["sentence"].startswith("m is better than b on l2")
    worse = comparison(frame, "b", "m")
    assert worse["direction"] == "worse" and worse["share_better"] == 0.0


def test_share_better_counts_pairs_by_hand():
    frame = _long([1, 2, 3, 4, 5, 6, 7, 8], [2, 3, 4, 5, 4, 5, 6, 9])
    # m is better (lower L2) on p0, p1, p2, p3 and p7: 5 of 8
    assert comparison(frame, "m", "b")["share_better"] == pytest.approx(5 / 8)


def test_interval_table_mean_and_errors():
    frame = _long([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    table = interval_table(frame).set_index("method")
    assert table.loc["m", "estimate"] == pytest.approx(2.0)
    assert table.loc["b", "estimate"] == pytest.approx(5.0)
    assert 1.0 <= table.loc["m", "lower"] <= 2.0 <= table.loc["m", "upper"] <= 3.0
    with pytest.raises(ValueError, match="no column 'model'"):
        interval_table(frame, by="model")


def test_comparison_table_and_summary():
    from helpers.conclusions import comparison_table, direction_summary

    rng = np.random.default_rng(2)
    base = rng.uniform(2, 3, 40)
    rows = []
    for name, shift in (("good", -1.0), ("bad", 1.0), ("same", 0.0), ("b", 0.0)):
        noise = rng.normal(0, 0.1, 40) if name != "b" else 0.0
        for i, v in enumerate(base + shift + noise):
            rows.append({"method": name, "condition": f"p{i}", "l2": v})
    table = comparison_table(pd.DataFrame(rows), ["good", "bad", "same"], "b")
    assert list(table["direction"]) == ["better", "worse", "inconclusive"]
    assert "n_condition" in table and "pair_count" in table
    assert direction_summary(table) == (
        "better than b: good; worse than b: bad; not distinguishable from b: same."
    )
    with pytest.raises(ValueError, match="empty"):
        direction_summary(table.iloc[:0])


def test_spread_verdict_thresholds():
    from helpers.conclusions import spread_verdict

    assert spread_verdict(0.004).startswith("collapsed")
    assert spread_verdict(0.5) == "varies less than the truth"
    assert spread_verdict(1.0) == "varies about as much as the truth"
    assert spread_verdict(1.75) == "varies more than the truth"
    with pytest.raises(ValueError, match="finite number"):
        spread_verdict(float("nan"))
