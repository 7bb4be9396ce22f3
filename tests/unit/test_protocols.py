"""helpers.benchmark.protocols: the two protocols as data, the choices' pieces against
hand-worked cases, and the decomposition on the real Norman subset (issue 30, item 4).

Oracles: hand-computed numbers (a leave-one-out mean, a weighted MSE, a Pearson
correlation by numpy), the split's definition (every perturbation held out exactly
once) and facts of the data (the subset measures 500 genes, fewer than the top 1,000).
scPertEval's own code is the oracle in tests/parity/test_parity_scperteval_protocols.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from helpers import benchmark
from helpers.benchmark import protocols
from helpers.errors import InputError
from helpers.predictions import Predictions
from helpers.pseudobulk import Pseudobulk


def _truth() -> Pseudobulk:
    """ctrl, 4 singles and 3 doubles (two complete: A+B, C+D; one with an unmeasured
    single: A+E) over 3 genes."""
    index = ["ctrl", "A", "B", "C", "D", "A+B", "C+D", "A+E"]
    values = np.arange(len(index) * 3, dtype=float).reshape(-1, 3) / 10
    values[0] = [3.0, 1.0, 1.0]  # control: g0 highest, g1 and g2 tied
    means = pd.DataFrame(values, index=index, columns=["g0", "g1", "g2"])
    return Pseudobulk(means, pd.Series(10, index=index), dataset="toy")


def test_protocols_are_data_with_sources():
    assert protocols.PAPER.choices() == {
        "split": "paper",
        "genes": "top1000",
        "metric": "paper",
        "reference": "control",
    }
    assert protocols.CELLSIMBENCH.choices() == {
        "split": "cv5",
        "genes": "all",
        "metric": "calibrated",
        "reference": "perturbed",
    }
    for protocol in (protocols.PAPER, protocols.CELLSIMBENCH):
        assert all(protocol.source(c) for c in protocols.CHOICES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        protocols.PAPER.split = "cv5"


def test_variants_change_one_choice_at_a_time():
    variants = protocols.variants()
    assert variants[0] == protocols.PAPER and variants[-1] == protocols.CELLSIMBENCH
    paper, csb = protocols.PAPER.choices(), protocols.CELLSIMBENCH.choices()
    for choice, variant in zip(protocols.CHOICES, variants[1:-1]):
        changed = {c for c, v in variant.choices().items() if v != paper[c]}
        assert changed == {choice}
        assert variant.choices()[choice] == csb[choice]
        assert variant.source(choice) == protocols.CELLSIMBENCH.source(choice)


def test_bad_choice_is_one_clear_error():
    with pytest.raises(InputError, match="split='random'"):
        protocols.Protocol("x", "random", "all", "paper", "control")


def test_cv_folds_hold_out_each_complete_double_once():
    truth = _truth()
    folds = protocols.cv_splits(truth, "double", n_folds=2)
    held = [c for split in folds for c in split.held_out]
    assert sorted(held) == ["A+B", "C+D"]  # A+E: its single E is not measured
    for split in folds:
        assert {"A", "B", "C", "D", "ctrl", "A+E"} <= set(split.train)
    assert [s.seed for s in folds] == [1, 2]
    again = protocols.cv_splits(truth, "double", n_folds=2)
    assert [s.assignment for s in again] == [s.assignment for s in folds]


def test_cv_folds_over_singles_are_disjoint_and_balanced():
    index = ["ctrl", *[f"G{i}" for i in range(23)]]
    truth = Pseudobulk(
        pd.DataFrame(np.zeros((24, 2)), index=index, columns=["a", "b"]),
        pd.Series(5, index=index),
    )
    folds = protocols.cv_splits(truth, "single")
    sizes = [len(s.held_out) for s in folds]
    assert len(folds) == 5 and sorted(sizes) == [4, 4, 5, 5, 5]
    held = [c for s in folds for c in s.held_out]
    assert sorted(held) == sorted(index[1:])
    with pytest.raises(InputError, match="folds"):
        protocols.cv_splits(truth, "single", n_folds=30)


def test_gene_sets_top_by_control_with_first_come_ties():
    truth = _truth()
    assert list(protocols.gene_set(truth, "top1000", k=2)) == ["g0", "g1"]
    assert list(protocols.gene_set(truth, "top1000")) == ["g0", "g1", "g2"]
    assert list(protocols.gene_set(truth, "all")) == ["g0", "g1", "g2"]


def test_perturbed_reference_is_the_leave_one_out_mean():
    means = pd.DataFrame(
        [[0.0, 0.0], [1.0, 2.0], [3.0, 4.0], [5.0, 9.0]],
        index=["ctrl", "A", "B", "C"],
        columns=["x", "y"],
    )
    truth = Pseudobulk(means, pd.Series(3, index=means.index))
    ref = protocols.perturbed_reference(truth, ["A", "C"])
    assert ref.loc["A"].tolist() == [4.0, 6.5]  # mean of B and C
    assert ref.loc["C"].tolist() == [2.0, 3.0]  # mean of A and B


def test_score_protocol_hand_worked():
    means = pd.DataFrame(
        [[1.0, 1.0, 1.0], [2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 0.0, 4.0]],
        index=["ctrl", "A", "B", "C"],
        columns=["x", "y", "z"],
    )
    truth = Pseudobulk(means, pd.Series(3, index=means.index))
    pred = Predictions(
        pd.DataFrame([[1.5, 1.0, 0.5]], index=["A"], columns=["x", "y", "z"]),
        "m",
        "toy",
        1,
    )
    paper = protocols.score_protocol([pred], truth, protocols.PAPER)
    assert paper.loc[0, "l2"] == pytest.approx(np.sqrt(0.5))
    # control-centred: pred change (0.5, 0, -0.5), observed (1, 0, -1): r = 1
    assert paper.loc[0, "pearson_delta"] == pytest.approx(1.0)
    pert = protocols.Protocol("p", "paper", "all", "paper", "perturbed")
    ref = np.array([0.5, 1.5, 2.5])  # mean of B and C
    expected = np.corrcoef(np.array([1.5, 1.0, 0.5]) - ref, means.loc["A"] - ref)[0, 1]
    got = protocols.score_protocol([pred], truth, pert)
    assert got.loc[0, "pearson_delta"] == pytest.approx(expected)
    assert got.loc[0, "reference"] == "perturbed"
    # DE-weighted MSE: |t| = (1, 3, 2) -> min-max (0, 1, 0.5) -> squared (0, 1, 0.25)
    # -> weights (0, 0.8, 0.2); squared errors (0.25, 0, 0.25) -> 0.05
    t_stats = pd.DataFrame([[1.0, -3.0, 2.0]], index=["A"], columns=["x", "y", "z"])
    cal = protocols.Protocol("c", "paper", "all", "calibrated", "control")
    got = protocols.score_protocol([pred], truth, cal, t_stats=t_stats)
    assert got.loc[0, "weighted_mse"] == pytest.approx(0.05)
    # weighted R2 of the change from control: d = (1, 0, -1), d_hat = (0.5, 0, -0.5),
    # dbar = 0.8*0 + 0.2*(-1) = -0.2; sum w (d - d_hat)^2 = 0.2*0.25 = 0.05;
    # sum w (d - dbar)^2 = 0.8*0.04 + 0.2*0.64 = 0.16 -> R2 = 1 - 0.05/0.16
    assert got.loc[0, "r2_delta_weighted"] == pytest.approx(1 - 0.05 / 0.16)
    with pytest.raises(InputError, match="t_stats"):
        protocols.score_protocol([pred], truth, cal)


def test_status_marks_a_flip_only_between_decided_results():
    rows = []
    for protocol, result in [
        ("paper", "holds"),
        ("paper + metric", "fails"),
        ("paper + split", "undecided"),
        ("paper + genes", "holds"),
    ]:
        rows.append(
            {"task": "t", "protocol": protocol, "key": "k", "role": "error"}
            | {"result": result}
        )
    out = protocols._with_status(pd.DataFrame(rows))
    assert out["status"].tolist() == ["holds", "flips", "undecided", "holds"]
    assert set(out["paper_result"]) == {"holds"}


@pytest.fixture(scope="module")
def decomposed():
    task = benchmark.get_task("norman_subset_doubles")
    return task, *protocols.decompose(task, n_boot=200)


def test_decomposition_on_the_real_subset(decomposed):
    task, long, per_condition = decomposed
    assert list(per_condition) == [p.name for p in protocols.variants()]
    # the subset measures 500 genes: the top 1,000 are all of them, so changing the
    # gene set changes nothing
    assert len(task.truth.genes) == 500
    assert set(long["n_genes"]) == {500}
    pd.testing.assert_frame_equal(
        per_condition["paper"], per_condition["paper + genes"]
    )
    # L2 does not depend on the reference
    assert np.array_equal(
        per_condition["paper"]["l2"], per_condition["paper + reference"]["l2"]
    )
    # the cross-validation folds hold out each of the 5 complete doubles once
    cv = per_condition["paper + split"]
    assert cv.groupby("condition")["seed"].nunique().eq(1).all()
    assert cv["condition"].nunique() == 5 and cv["seed"].nunique() == 5
    # no deep model predictions were given: claims about them are not testable
    deep = long[long["key"] == "additive_beats_deep"]
    assert set(deep["status"]) == {"not testable"}
    naive = long[long["key"] == "additive_beats_naive"]
    assert naive["support"].between(0, 1).all()
    assert (naive["lower"] <= naive["effect"]).all()
    assert (naive["effect"] <= naive["upper"]).all()
    wide = protocols.decomposition_table(long)
    assert list(wide.columns) == [p.name for p in protocols.variants()]


def test_figure_has_one_cell_per_variant_and_claim(decomposed):
    import matplotlib.pyplot as plt

    _, long, _ = decomposed
    fig = protocols.figure(long)
    image = fig.axes[0].images[0].get_array()
    # rows: the (task, claim, role) testable under some protocol (no deep models
    # given: only additive_beats_naive, error and correlation)
    some = long[long["result"] != "not testable"]
    n_rows = len(some[["task", "key", "role"]].drop_duplicates())
    assert n_rows == 2
    assert image.shape == (n_rows, len(protocols.variants()))
    plt.close(fig)


def test_paper_profile_task_is_registered():
    for name in protocols.PROFILE_TASKS["paper"]:
        assert benchmark.get_task(name).kind == "single"


def test_findings_and_counts_are_written_from_the_table():
    rows = []
    for protocol, changed, result, support in [
        ("paper", "none", "fails", 0.0),
        ("paper + split", "split", "fails", 0.01),
        ("paper + genes", "genes", "fails", 0.0),
        ("paper + metric", "metric", "holds", 0.99),
        ("paper + reference", "reference", "undecided", 0.6),
        ("cellsimbench", "split, genes, metric, reference", "holds", 0.98),
    ]:
        rows.append(
            {
                "task": "t",
                "protocol": protocol,
                "changed": changed,
                "metric": "l2",
                "key": "k",
                "claim": "A beats B",
                "role": "error",
                "n_conditions": 7,
                "n_splits": 2,
                "effect": 0.5 if result == "holds" else -0.5,
                "lower": 0.1 if result == "holds" else -0.9,
                "upper": 0.9 if result == "holds" else -0.1,
                "support": support,
                "result": result,
            }
        )
    # a claim no protocol can test
    rows.append(
        rows[0]
        | {"key": "gone", "claim": "C beats D", "result": "not testable"}
        | {"effect": np.nan, "support": np.nan}
    )
    table = protocols._with_status(pd.DataFrame(rows))
    text = protocols.findings(table, {"t": "toy data"})
    assert "changing the metric: flips to holds (support 0.99)" in text
    assert "changing the reference: undecided (support 0.60)" in text
    assert "changing the split or the genes: unchanged" in text
    assert "CellSimBench's protocol (l2): flips to holds (support 0.98" in text
    assert (
        "Not testable under any protocol" in text and "*C beats D* (toy data)" in text
    )
    counts = protocols.flip_counts(table)
    assert counts.loc["paper + metric", "flips"] == 1
    assert counts.loc["paper", "fails"] == 1
    assert counts.to_numpy().sum() == 6  # the untestable claim is left out


def test_long_table_keeps_the_choices_and_the_metric_column(decomposed):
    _, long, _ = decomposed
    row = long[long["protocol"] == "paper + metric"].iloc[0]
    assert (row["split"], row["genes"], row["metrics"], row["reference"]) == (
        "paper",
        "top1000",
        "calibrated",
        "control",
    )
    assert set(long.loc[long["protocol"] == "paper", "metric"]) == {
        "l2",
        "pearson_delta",
    }
