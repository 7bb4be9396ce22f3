"""The lookup baseline of the transfer comparison, hand-checked on tiny tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import transfer
from helpers.linear import EmbeddingError
from helpers.pseudobulk import Pseudobulk


def _pb(rows: dict, genes, name):
    means = pd.DataFrame(rows, index=genes).T
    return Pseudobulk(means, pd.Series(50, index=means.index), name)


@pytest.fixture
def screens():
    # ours measures g1, g2, g3; the other screen only g1, g2 and perturbed A, B (not C)
    ours = _pb(
        {
            "ctrl": [1.0, 2.0, 3.0],
            "A": [0.0, 2.0, 3.0],
            "C": [1.0, 4.0, 3.0],
            "A+C": [0.5, 4.0, 2.0],
        },
        ["g1", "g2", "g3"],
        "ours",
    )
    other = _pb(
        {"ctrl": [5.0, 5.0], "A": [4.0, 7.0], "B": [5.5, 4.0]}, ["g1", "g2"], "other"
    )
    return ours, other


def test_lookup_is_the_other_screens_change_for_the_same_gene(screens):
    ours, other = screens
    train = ours.subset(["ctrl", "C"])
    pred = transfer.lookup_other_screen(
        train, ["A", "B", "A+B", "ctrl", "C"], other_pb=other
    )
    values = pred.values
    # by hand: other's change for A is (4-5, 7-5) = (-1, 2); for B (0.5, -1)
    # g3 is not measured by the other screen: the training mean change,
    # mean of ctrl (3) and C (3) minus ctrl (3) = 0
    assert values.loc["A"].tolist() == pytest.approx([1 - 1, 2 + 2, 3 + 0])
    assert values.loc["B"].tolist() == pytest.approx([1 + 0.5, 2 - 1, 3])
    assert values.loc["A+B"].tolist() == pytest.approx([1 - 0.5, 2 + 1, 3])
    assert values.loc["ctrl"].tolist() == pytest.approx([1, 2, 3])
    assert "C" not in values.index  # the other screen never perturbed C
    assert pred.method == "lookup_other_screen"
    np.testing.assert_allclose(transfer.other_screen_change(other, "A"), [-1.0, 2.0])


def test_lookup_fills_unmeasured_genes_with_the_training_mean_change(screens):
    ours, other = screens
    train = ours.subset(["ctrl", "A", "C"])  # g3 never changes in training
    pred = transfer.lookup_other_screen(train, ["B"], other_pb=other).values
    # g3's training mean change: mean(3, 3, 3) - 3 = 0; g1, g2 come from the other
    # screen
    assert pred.loc["B"].tolist() == pytest.approx([1.5, 1.0, 3.0])
    train2 = ours.subset(["ctrl", "A+C"])  # g3: c + mean change = 3 + (mean(3, 2) - 3)
    assert transfer.lookup_other_screen(train2, ["B"], other_pb=other).values.loc[
        "B", "g3"
    ] == pytest.approx(2.5)


def test_lookup_errors_name_the_missing_gene(screens):
    ours, other = screens
    with pytest.raises(
        EmbeddingError, match="'other' has no perturbation of 'C': nothing to look up"
    ):
        transfer.other_screen_change(other, "C")
    with pytest.raises(EmbeddingError, match="no perturbation of 'C'"):
        transfer.lookup_other_screen(ours, ["A", "C"], other_pb=other, strict=True)
    with pytest.raises(TypeError, match="other_pb must be a Pseudobulk"):
        transfer.lookup_other_screen(ours, ["A"], other_pb=other.means)
    alien = _pb({"ctrl": [1.0], "A": [2.0]}, ["zz"], "alien")
    with pytest.raises(EmbeddingError, match="share no measured gene"):
        transfer.lookup_other_screen(ours, ["A"], other_pb=alien)


def test_shared_perturbations_are_those_both_screens_hold(screens):
    ours, other = screens
    assert transfer.shared_perturbations(ours, other) == ["A"]
    assert transfer.shared_perturbations(ours, other, ["A+B", "A+C", "B", "ctrl"]) == [
        "A+B",
        "B",
    ]


def test_lookup_runs_in_the_benchmark_and_scores_only_shared_perturbations():
    from helpers import benchmark, linear, metrics
    from helpers.pseudobulk import pseudobulk
    from helpers.simulate import simulate_screen
    from helpers.splits import single_split

    screen = simulate_screen(
        n_genes=300,
        n_single=60,
        n_double=0,
        cells_per_condition=20,
        modality="CRISPRi",
        cell_lines=("lineA", "lineB"),
        second_line_overlap=0.7,
        seed=3,
    )
    pb, other = (pseudobulk(a) for a in screen.adatas.values())
    split = single_split(pb.conditions, 1, dataset=pb.dataset)
    methods = {
        "lookup_other_screen": transfer.lookup_method(other),
        **{
            k: v
            for k, v in linear.paper_variants(other).items()
            if k == "linear_P_other_screen"
        },
    }
    table, _ = benchmark.run_methods(pb, [split], methods, allow_missing=True)
    scored = table.groupby("method")["condition"].apply(set)
    expected = set(transfer.shared_perturbations(pb, other, split.held_out))
    assert scored["lookup_other_screen"] == expected
    assert scored["linear_P_other_screen"] == expected
    assert 0 < len(expected) < len(split.held_out)
    assert np.isfinite(metrics.summarise(table)["mean_l2"]).all()
