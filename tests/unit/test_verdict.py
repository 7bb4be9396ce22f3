"""Chapter 9's verdict: ranks, claims, planted-truth agreement, the reference leak, and
the command line's ``--metrics`` option. Expected values are worked out by hand in each
test."""

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
    # l2: lower is better; pearson_delta: higher is better; the positive control is not
    # ranked
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
    # pearson_delta descending: gears 1, additive 2, mean 3; "no change" is undefined ->
    # no rank
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


def per_condition(
    values: dict[str, dict[str, list[float]]], seeds=(1,)
) -> pd.DataFrame:
    """A per-condition table: metric -> method -> one value per condition p0, p1, ...
    (repeated for each split seed)."""
    rows = []
    for seed in seeds:
        first = next(iter(values.values()))
        for method in first:
            for i in range(len(first[method])):
                row = {"method": method, "seed": seed, "condition": f"p{i}"}
                row |= {metric: table[method][i] for metric, table in values.items()}
                rows.append(row)
    return pd.DataFrame(rows)


AB = verdict.Claim(
    "a_beats_g", "additive beats gears", ("additive",), ("gears",), "double"
)


@pytest.fixture
def five():
    # l2: additive better on every condition; pearson_delta: gears' higher mean (0.52 vs
    # 0.5) comes from one condition out of five (1.0 there, 0.4 elsewhere)
    return per_condition(
        {
            "l2": {
                "additive": [1.0] * 5,
                "gears": [2.0] * 5,
                "mean": [4.0] * 5,
                "no_change": [3.0] * 5,
            },
            "pearson_delta": {
                "additive": [0.5] * 5,
                "gears": [0.4, 0.4, 0.4, 0.4, 1.0],
                "mean": [0.1] * 5,
                "no_change": [NAN] * 5,
            },
        }
    )


def test_support_of_a_claim_on_every_condition_and_on_one(five):
    table = verdict.claim_support(five, "double", (AB,), n_boot=4000).set_index(
        "metric"
    )
    # holds on every condition: holds in every resample
    assert table.loc["l2", "support"] == 1.0 and table.loc["l2", "result"] == "holds"
    # additive's mean is above gears' only in resamples that leave out p4: closed form
    # P(p4 not drawn in 5 draws) = (4/5)^5 = 0.328
    assert table.loc["pearson_delta", "observed"] == "reversed"
    assert table.loc["pearson_delta", "support"] == pytest.approx(0.8**5, abs=0.03)
    # gears' mean is above additive's whenever p4 is drawn: 1 - (4/5)^5
    assert table.loc["pearson_delta", "against"] == pytest.approx(1 - 0.8**5, abs=0.03)
    assert table.loc["pearson_delta", "result"] == "undecided"
    assert table.loc["l2", "n_conditions"] == 5 and table.loc["l2", "n_splits"] == 1
    assert (
        table.loc["l2", "better"] == "additive" and table.loc["l2", "worse"] == "gears"
    )


def test_derived_metrics_are_reported_not_counted(five):
    by_metric = verdict.claim_support(five, "double", (AB,), n_boot=500)
    derived = by_metric.set_index("metric")["derived"]
    # the book's DRF is computed in every resample (negative control: the mean baseline)
    assert derived["book_drf_l2"] and derived["book_drf_pearson_delta"]
    assert not derived["l2"] and not derived["pearson_delta"]
    # a ratio of means with one denominator orders methods as the raw metric does
    support = by_metric.set_index("metric")["support"]
    assert support["book_drf_pearson_delta"] == support["pearson_delta"]
    row = verdict.conclusions(five, "double", (AB,), n_boot=500).iloc[0]
    assert row["n_metrics"] == 2  # l2 and pearson_delta; the two DRFs do not vote
    assert row["holds"] == "l2" and row["undecided"] == "pearson_delta"
    assert "book_drf_l2" in row["derived_holds"]
    assert row["verdict"] == "holds under some metrics; undecided under the others"
    # joint support: holds under both at once = under pearson_delta alone here
    assert row["support"] == pytest.approx(support["pearson_delta"])


def test_a_tie_is_neither_holding_nor_failing(five):
    # centroid accuracy: the mean baseline and gears tie (0.5) on every condition but
    # one, where gears scores 1.0; "mean above gears" never holds, and its opposite
    # holds only in resamples that draw that condition: 1 - (4/5)^5 = 0.67
    tied = five.assign(centroid_accuracy=0.5)
    tied.loc[
        (tied["method"] == "gears") & (tied["condition"] == "p4"), "centroid_accuracy"
    ] = 1.0
    claim = verdict.Claim("m", "mean beats gears", ("mean",), ("gears",), "double")
    row = (
        verdict.claim_support(tied, "double", (claim,), n_boot=2000)
        .set_index("metric")
        .loc["centroid_accuracy"]
    )
    assert row["support"] == 0.0
    assert row["against"] == pytest.approx(1 - 0.8**5, abs=0.04)
    assert row["result"] == "undecided" and row["observed"] == "reversed"
    none = tied.assign(centroid_accuracy=0.5)
    row = (
        verdict.claim_support(none, "double", (claim,), n_boot=100)
        .set_index("metric")
        .loc["centroid_accuracy"]
    )
    assert row["observed"] == "tied" and row["support"] == row["against"] == 0.0


def test_conclusions_verdicts_by_hand(five):
    table = verdict.conclusions(five, "double", n_boot=500).set_index("key")
    # additive above no change and the mean on every condition, every metric
    naive = table.loc["additive_beats_naive"]
    assert naive["verdict"] == "holds under every metric" and naive["support"] == 1.0
    assert naive["worse"] == "no_change, mean"  # no_change undefined on pearson_delta
    # the mean baseline above gears: below it on every condition under both metrics
    assert table.loc["mean_not_beaten_by_deep", "verdict"] == "fails under every metric"
    singles = verdict.conclusions(five, "single", n_boot=100)
    assert singles["verdict"].tolist() == ["not testable here"]  # no linear model
    with pytest.raises(ValueError, match="per-condition rows"):
        verdict.conclusions(five.drop(columns="condition"), "double")


def test_splits_are_resampled_as_crossed_factors(five):
    # the same five conditions in two splits: a claim decided by p4 stays undecided
    two = pd.concat([five, five.assign(seed=2)], ignore_index=True)
    r = verdict.resampled_means(two, n_boot=300)
    assert r["n_conditions"] == 5 and r["n_splits"] == 2
    row = verdict.claim_support(two, "double", (AB,), n_boot=2000).set_index("metric")
    assert row.loc["pearson_delta", "support"] == pytest.approx(0.8**5, abs=0.04)


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
    # planted ranks a, b, c; l2 ranks a, b, c (rho 1); pearson_delta ranks c, b, a (rho
    # -1)
    assert table.loc["l2", "spearman_rho"] == pytest.approx(1.0)
    assert table.loc["pearson_delta", "spearman_rho"] == pytest.approx(-1.0)


def test_findings_are_written_from_the_table(five):
    claims = verdict.conclusions(five, "double", (AB,), n_boot=500).assign(task="t")
    text = verdict.findings(claims, {"t": "REAL data"})
    assert "**holds under some metrics; undecided under the others**" in text
    assert "additive vs gears; 5 held-out conditions x 1 split(s)" in text
    assert "holds under 1: l2" in text and "(REAL data)" in text


def test_uninformative_conditions_by_hand(five):
    table = five.assign(de=[0.0, 0.5, 0.0, 0.0, 0.0] * 4)
    table.loc[table["method"] == "gears", "de"] = [0.0, 0.5, 0.0, 0.2, 0.0]
    same = verdict.uninformative_conditions(table, "de")
    assert same["condition"].tolist() == ["p0", "p1", "p2", "p4"]


def test_family_names():
    assert family_names("paper") == []
    assert family_names("all") == ["systema", "calibrated", "vcc", "vcc2026"]
    assert FAMILY_CHOICES == (
        "paper",
        "systema",
        "calibrated",
        "vcc",
        "vcc2026",
        "retrieval",
        "de_agreement",
        "ceiling",
        "distribution",
        "all",
    )
    # registered, run when named, not in "all" (helpers.metrics.families docstring)
    assert family_names(["ceiling", "retrieval"]) == ["ceiling", "retrieval"]
    with pytest.raises(ValueError, match="Unknown metric family 'sytema'"):
        family_names("sytema")


def test_reference_choice_on_the_real_subset():
    task = benchmark.get_task("norman_subset_doubles")
    scored = verdict.score_all(task, families="paper")
    leak = verdict.reference_choice(task, scored)
    # "no change" has no predicted change against the control: undefined, not a number
    assert np.isnan(leak.loc["no_change", "control"])
    # the mean baseline averages the training pseudobulks with the control (the paper's
    # definition); against the perturbations' mean (control excluded) only the control's
    # share 1/(n+1) of (ctrl - that mean) is left: its correlation with the observed
    # changes against that reference equals minus their correlation with (ctrl -
    # reference)
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


def test_evaluation_truth_is_half_a_and_disjoint_from_the_controls_cells():
    from helpers import ceilings
    from helpers.pseudobulk import pseudobulk

    task = benchmark.get_task("norman_subset_doubles")
    split = task.splits[0]
    cells = task.adata()
    truth, kept = verdict.evaluation_truth(task.truth, cells, split)
    held = list(split.held_out)
    half_a, half_b = ceilings.split_halves(cells, split.seed, conditions=held)
    # held-out rows: half A's means (an independent pseudobulk of half A's cells)
    assert np.allclose(truth.means.loc[held], half_a.means.loc[held, truth.genes])
    again = pseudobulk(kept)
    assert np.allclose(again.means.loc[held], half_a.means.loc[held, again.genes])
    # the control and the training conditions keep all their cells
    assert np.allclose(truth.ctrl, task.truth.ctrl)
    assert (truth.n_cells.loc[held] == half_a.n_cells.loc[held]).all()
    train = [c for c in split.train if c != "ctrl"][:3]
    assert np.allclose(truth.means.loc[train], task.truth.means.loc[train])
    # none of the cells the split-half replicate is made of (half B) is in the truth
    replicate = ceilings.split_half_replicate(cells, task.truth, held, seed=split.seed)
    assert np.allclose(replicate.values.loc[held], half_b.means.loc[held, truth.genes])
    assert kept.n_obs == cells.n_obs - int(half_b.n_cells.loc[held].sum())


def test_graded_methods_have_their_planted_quality_by_construction():
    from helpers.pseudobulk import pseudobulk
    from helpers.simulate import simulate_screen
    from helpers.splits import double_split

    sim = simulate_screen(n_genes=80, n_single=8, n_double=8, cells_per_condition=10)
    truth = pseudobulk(sim.adata)
    split = double_split(truth.conditions, 1, dataset=truth.dataset)
    genes = truth.genes[:50]
    preds, quality = verdict.graded_predictions(sim.truth, truth, split, genes)
    q = quality.set_index(["method", "condition"])
    p = split.held_out[0]
    target = verdict.planted_change(sim.truth, truth.ctrl, p)[genes]
    # closed forms: the planted change itself has error 0 and correlation 1; twice it
    # has error ||T|| and correlation 1; the mixture with weight 0 is the mean baseline
    assert q.loc[("planted", p), "planted_error"] == pytest.approx(0.0, abs=1e-9)
    assert q.loc[("planted", p), "planted_correlation"] == pytest.approx(1.0)
    assert q.loc[("scaled_2", p), "planted_error"] == pytest.approx(
        np.sqrt((target**2).sum())
    )
    assert q.loc[("scaled_2", p), "planted_correlation"] == pytest.approx(1.0)
    mean = benchmark.BASELINES["mean"](truth.subset(split.train), split.held_out)
    assert np.allclose(preds["mix_0.00"].values.loc[p], mean.values.loc[p])
    # a gene with no planted log-rate change has no planted change
    delta = sim.truth.effect(p).reindex(truth.genes)
    assert (target[delta[genes] == 0] == 0).all()
