"""Splits, baselines and error curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import baselines, metrics
from helpers.predictions import PredictionError
from helpers.pseudobulk import Pseudobulk, pseudobulk
from helpers.splits import Split, SplitError, double_split


def norman_like_conditions(n_single=100, n_double=124, seed=0):
    rng = np.random.default_rng(seed)
    singles = [f"G{i}" for i in range(n_single)]
    pairs = set()
    while len(pairs) < n_double:
        a, b = sorted(rng.choice(n_single, 2, replace=False))
        pairs.add(f"G{a}+G{b}")
    return ["ctrl", *singles, *sorted(pairs)]


def test_double_split_sizes_and_rules():
    conditions = norman_like_conditions()
    split = double_split(conditions, seed=1, dataset="toy")
    assert split.sizes() == {"train": 1 + 100 + 62, "val": 31, "test": 31}
    assert all(split.subset_of(c) == "train" for c in conditions if "+" not in c)
    assert len(split.held_out) == 62 and all("+" in c for c in split.held_out)


def test_double_split_is_deterministic_per_seed():
    conditions = norman_like_conditions()
    assert (
        double_split(conditions, 3).assignment
        == double_split(list(reversed(conditions)), 3).assignment
    )
    held = [set(double_split(conditions, s).held_out) for s in range(1, 6)]
    assert len({frozenset(h) for h in held}) == 5


def test_odd_number_of_doubles():
    split = double_split(["ctrl", "A", "B", "C", "A+B", "A+C", "B+C"], seed=0)
    assert split.sizes() == {"train": 4 + 1, "test": 1, "val": 1}


def test_split_json_round_trip(tmp_path):
    split = double_split(norman_like_conditions(), seed=2, dataset="toy")
    path = split.to_json(tmp_path / "split.json")
    again = Split.from_json(path)
    assert again == split
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SplitError, match="not a split file"):
        Split.from_json(tmp_path / "bad.json")


def test_split_errors():
    with pytest.raises(SplitError, match="no 'ctrl'"):
        double_split(["A", "B", "A+B"], seed=1)
    with pytest.raises(SplitError, match="at least 2 doubles"):
        double_split(["ctrl", "A", "B", "A+B"], seed=1)
    split = double_split(["ctrl", "A", "A+B", "A+C"], seed=1)
    assert "['B', 'C']" in split.note
    with pytest.raises(SplitError, match="Unknown subset"):
        split.conditions("holdout")


@pytest.fixture
def toy_pb():
    genes = ["g1", "g2", "g3"]
    means = pd.DataFrame(
        [[1.0, 2.0, 3.0], [1.5, 2.0, 2.0], [0.5, 3.0, 3.0], [1.2, 2.9, 2.1]],
        index=["ctrl", "A", "B", "A+B"],
        columns=genes,
    )
    return Pseudobulk(means, pd.Series([10, 10, 10, 10], index=means.index), "toy")


def test_additive_no_change_and_mean(toy_pb):
    train = toy_pb.subset(["ctrl", "A", "B"])
    add = baselines.additive(train, ["A+B"], seed=1)
    np.testing.assert_allclose(
        add.values.loc["A+B"], [1.0, 3.0, 2.0]
    )  # x_A + x_B - ctrl
    assert add.method == "additive" and add.seed == 1 and add.dataset == "toy"
    none = baselines.no_change(train, ["A+B"])
    np.testing.assert_allclose(none.values.loc["A+B"], toy_pb.ctrl)
    mean = baselines.mean_baseline(train, ["A+B"])
    np.testing.assert_allclose(mean.values.loc["A+B"], train.means.mean())
    table = metrics.evaluate(none, toy_pb, genes=["g1", "g2", "g3"])
    assert np.isnan(table["pearson_delta"].iloc[0])  # no change has no predicted change


def test_additive_needs_both_singles_in_training(toy_pb):
    with pytest.raises(
        PredictionError,
        match=r"single perturbation\(s\) \['B'\] are not in the training data",
    ):
        baselines.additive(toy_pb.subset(["ctrl", "A"]), ["A+B"])
    with pytest.raises(PredictionError, match="predicts double perturbations"):
        baselines.additive(toy_pb, ["A"])


def test_baselines_on_the_real_subset(norman_subset):
    pb = pseudobulk(norman_subset)
    complete = [
        c
        for c in pb.conditions
        if "+" in c and all(g in pb.conditions for g in c.split("+"))
    ]
    assert sorted(complete) == [
        "KLF1+MAP2K6",
        "KLF1+TGFBR2",
        "MAP2K3+MAP2K6",
        "MAP2K3+SLC38A2",
        "MAPK1+TGFBR2",
    ]
    train = pb.subset([c for c in pb.conditions if c not in complete])
    add = metrics.evaluate(baselines.additive(train, complete), pb)
    none = metrics.evaluate(baselines.no_change(train, complete), pb)
    assert (
        add["l2"].to_numpy() < none["l2"].to_numpy()
    ).all()  # the paper's finding holds on real cells


def test_error_vs_top_n_matches_direct_computation(norman_subset):
    pb = pseudobulk(norman_subset)
    train = pb.subset([c for c in pb.conditions if c != "KLF1+MAP2K6"])
    pred = baselines.additive(train, ["KLF1+MAP2K6"])
    curve = metrics.error_vs_top_n(pred, pb, order="control", grid=[1, 10, 500])
    top = pb.top_control_genes(10)
    direct = metrics.l2(
        pred.values.loc["KLF1+MAP2K6", top], pb.means.loc["KLF1+MAP2K6", top]
    )
    assert curve.set_index("n").loc[10, "l2"] == pytest.approx(direct)
    full = metrics.evaluate(pred, pb, n_top=500)["l2"].iloc[0]
    assert curve.set_index("n").loc[500, "l2"] == pytest.approx(full)
    de = metrics.error_vs_top_n(pred, pb, order="de", grid=[500])
    assert de["l2"].iloc[0] == pytest.approx(
        full
    )  # all genes: the order does not matter
    assert (
        list(metrics.top_n_grid(1000))[:3] == [1, 2, 3]
        and metrics.top_n_grid(1000)[-1] == 1000
    )
