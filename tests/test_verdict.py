"""Chapter 9's verdict: ranks, claims, planted-truth agreement, the reference leak, and the command
line's ``--metrics`` option. Expected values are worked out by hand in each test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import benchmark, cells
from helpers.benchmark import verdict
from helpers.metrics import FAMILY_CHOICES, family_columns, family_names

NAN = float("nan")


@pytest.fixture
def means():
    # l2: lower is better; pearson_delta: higher is better; the positive control is not ranked
    return pd.DataFrame(
        {
            "method": [
                "additive",
                "gears",
                "mean",
                "no_change",
                "split_half_replicate",
            ],
            "l2": [1.0, 2.0, 4.0, 3.0, 0.1],
            "pearson_delta": [0.5, 0.9, 0.1, NAN, 0.99],
            "n": 5,
        }
    )


def test_ranks_by_hand(means):
    long = verdict.verdict(means).set_index(["metric", "method"])
    # l2 ascending: additive 1, gears 2, no_change 3, mean 4; the control has no rank
    assert long.loc["l2", "rank"].to_dict() == pytest.approx(
        {
            "additive": 1,
            "gears": 2,
            "mean": 4,
            "no_change": 3,
            "split_half_replicate": NAN,
        },
        nan_ok=True,
    )
    # pearson_delta descending: gears 1, additive 2, mean 3; "no change" is undefined -> no rank
    pd_ranks = long.loc["pearson_delta", "rank"]
    assert (
        pd_ranks["gears"] == 1 and pd_ranks["additive"] == 2 and pd_ranks["mean"] == 3
    )
    assert np.isnan(pd_ranks["no_change"]) and np.isnan(
        pd_ranks["split_half_replicate"]
    )


def test_wide_table_cells(means):
    wide = verdict.verdict_wide(verdict.verdict(means))
    assert wide.loc[("paper", "l2"), "additive"] == "1.000 (1)"
    assert wide.loc[("paper", "l2"), "split_half_replicate"] == "0.100"
    assert wide.loc[("paper", "pearson_delta"), "no_change"] == "n/a"
    assert list(wide.columns) == [
        "additive",
        "gears",
        "mean",
        "no_change",
        "split_half_replicate",
    ]


def test_claims_by_hand(means):
    table = verdict.conclusions(verdict.verdict(means), "double").set_index("claim")
    deep = table.loc[verdict.CLAIMS[0].text]  # additive above the deep models
    # l2: additive 1 < gears 2 (holds); pearson_delta: additive 2 > gears 1 (fails)
    assert deep["verdict"] == "depends on the metric"
    assert deep["holds"] == "l2" and deep["fails"] == "pearson_delta"
    naive = table.loc[verdict.CLAIMS[2].text]  # additive above no change and mean
    # l2: 1 < min(4, 3); pearson_delta: 2 < 3 (no change has no rank there)
    assert naive["verdict"] == "holds under every metric" and naive["n_tested"] == 2
    mean_side = table.loc[
        verdict.CLAIMS[4].text
    ]  # the mean baseline above the deep models
    # l2: mean 4 > gears 2; pearson_delta: mean 3 > gears 1
    assert (
        mean_side["verdict"] == "fails under every metric"
        and mean_side["n_tested"] == 2
    )
    singles = verdict.conclusions(verdict.verdict(means), "single")
    assert singles["verdict"].tolist() == [
        "not testable here"
    ]  # no linear model in the table


def test_agreement_with_planted_by_hand():
    means = pd.DataFrame(
        {
            "method": ["a", "b", "c"],
            "l2": [1.0, 2.0, 3.0],
            "pearson_delta": [0.1, 0.2, 0.3],
            verdict.PLANTED: [0.9, 0.5, 0.1],
        }
    )
    table = verdict.agreement_with_planted(verdict.verdict(means)).set_index("metric")
    # planted ranks a, b, c; l2 ranks a, b, c (rho 1); pearson_delta ranks c, b, a (rho -1)
    assert table.loc["l2", "spearman_rho"] == pytest.approx(1.0)
    assert table.loc["pearson_delta", "spearman_rho"] == pytest.approx(-1.0)


def test_findings_are_written_from_the_table(means):
    claims = verdict.conclusions(verdict.verdict(means), "double").assign(task="t")
    text = verdict.findings(claims, {"t": "REAL data"})
    assert (
        "**depends on the metric** (1 of 2 metrics; fails under pearson_delta)" in text
    )
    assert "(REAL data)" in text


def test_family_names():
    assert family_names("paper") == []
    assert family_names("all") == ["systema", "calibrated", "vcc"]
    assert FAMILY_CHOICES == ("paper", "systema", "calibrated", "vcc", "all")
    with pytest.raises(ValueError, match="Unknown metric family 'sytema'"):
        family_names("sytema")


def test_reference_leak_on_the_real_subset():
    task = benchmark.get_task("norman_subset_doubles")
    scored = verdict.score_all(task, families="paper")
    leak = verdict.reference_leak(task, scored)
    # "no change" has no predicted change against the control: undefined, not a number
    assert np.isnan(leak.loc["no_change", "control"])
    # the mean baseline averages the training pseudobulks with the control (the paper's
    # definition); against the perturbations' mean (control excluded) only the control's share
    # 1/(n+1) of (ctrl - that mean) is left: its correlation with the observed changes against
    # that reference equals minus their correlation with (ctrl - reference)
    split = task.splits[0]
    train = [c for c in split.train if c != "ctrl"]
    genes = task.truth.ctrl.sort_values(ascending=False, kind="stable").index[:1000]
    reference = task.truth.means.loc[train, genes].mean()
    shift = task.truth.ctrl[genes] - reference
    expected = np.mean(
        [
            np.corrcoef(shift, task.truth.means.loc[c, genes] - reference)[0, 1]
            for c in split.held_out
        ]
    )
    assert leak.loc["mean", "training_mean"] == pytest.approx(expected, abs=1e-9)
    assert np.isfinite(
        leak.loc["additive", ["control", "training_mean", "held_out_mean"]]
    ).all()


def test_default_metrics_leave_the_table_as_it_was():
    task = benchmark.get_task("norman_subset_doubles")
    split = task.splits[0]
    pred = benchmark.BASELINES["additive"](
        task.truth.subset(split.train), split.held_out
    )
    result = benchmark.run(
        predictions=[pred.renamed("mine")], task=task.name, progress=False, extras=False
    )
    assert not set(family_columns("all")) & set(result.metrics.columns)
    assert "positive control" not in set(result.leaderboard["source"])


def test_cli_metrics_all_writes_every_family_column(tmp_path, capsys):
    task = benchmark.get_task("norman_subset_doubles")
    split = task.splits[0]
    pred = benchmark.BASELINES["additive"](
        task.truth.subset(split.train), split.held_out
    )
    path = tmp_path / "cells.h5ad"
    cells.to_cell_eval(pred, task.truth.ctrl, n_cells=3).write_h5ad(path)
    code = benchmark.main(
        [
            "--task",
            task.name,
            "--predictions",
            str(path),
            "--name",
            "mine",
            "--metrics",
            "all",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    written = pd.read_csv(tmp_path / "out" / "metrics.csv")
    expected = [
        "pearson_delta_perturbed_mean",
        "centroid_accuracy",
        "weighted_mse",
        "r2_delta_weighted",
        "mae",
        "discrimination_score_l1",
        "de_overlap_vcc",
    ]
    assert set(expected) <= set(written.columns)
    mine = written[written["method"] == "mine"]
    assert len(mine) == len(split.held_out)
    assert mine[["mae", "weighted_mse"]].notna().all().all()
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert {"split_half_replicate", "interpolated_duplicate"} <= set(board["method"])


def test_cli_rejects_an_unknown_family(capsys):
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(
            [
                "--task",
                "norman_subset_doubles",
                "--predictions",
                "x.csv",
                "--metrics",
                "everything",
            ]
        )
    assert exit_.value.code == 2
    assert "invalid choice: 'everything'" in capsys.readouterr().err
