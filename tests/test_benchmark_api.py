"""The 'benchmark your own model' API and command line, with every guard rail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import baselines, benchmark, metrics
from helpers.predictions import PredictionError, Predictions


def knn_model(train, conditions):
    """A tiny model: the mean change of the training conditions sharing a target gene, else the mean."""
    pb = train.pseudobulk
    rows = {}
    for condition in conditions:
        related = [c for c in pb.conditions if c != "ctrl" and set(c.split("+")) & set(condition.split("+"))]
        rows[condition] = pb.means.loc[related or list(pb.conditions)].mean()
    return pd.DataFrame(rows).T


def test_tasks_are_listed():
    tasks = benchmark.list_tasks()
    assert {"norman_subset_doubles", "simulated_doubles", "simulated_singles", "norman_doubles",
            "adamson_singles", "replogle_k562_essential_singles", "replogle_rpe1_essential_singles"} <= set(tasks["task"])
    with pytest.raises(ValueError, match="Unknown task"):
        benchmark.get_task("nope")


def test_end_to_end_on_the_real_subset():
    result = benchmark.run(knn_model, task="norman_subset_doubles", name="knn", progress=False)
    board = result.leaderboard.set_index("method")
    assert {"knn", "additive", "no_change", "mean", "linear"} <= set(board.index)
    assert board.loc["knn", "source"] == "your model" and board.loc["additive", "source"] == "this book"
    assert board.loc["additive", "ratio_to_additive"] == pytest.approx(1.0)
    assert board.loc["no_change", "spread_ratio"] == pytest.approx(0.0)
    assert any("linear: predicted only" in w for w in result.warnings)  # subset targets are not measured
    assert set(result.metrics.columns) >= set(metrics.METRIC_COLUMNS)


def test_baselines_on_the_leaderboard_equal_chapter_2():
    task = benchmark.get_task("simulated_doubles")
    chapter2, _ = benchmark.run_baselines(task.truth, task.splits)
    result = benchmark.run(knn_model, task="simulated_doubles", name="knn", progress=False)
    ours = result.metrics[result.metrics["method"].isin(["additive", "no_change", "mean"])]
    merged = ours.merge(chapter2, on=["method", "seed", "condition"], suffixes=("", "_ch2"))
    assert len(merged) == len(chapter2) == 3 * 5 * 62
    np.testing.assert_allclose(merged["l2"], merged["l2_ch2"])


def test_linear_variants_on_the_leaderboard_equal_chapter_3():
    from helpers import linear

    task = benchmark.get_task("simulated_singles")
    methods = {"mean": baselines.mean_baseline, **linear.paper_variants(task.other_screen)}
    chapter3, _ = benchmark.run_methods(task.truth, task.splits, methods, allow_missing=True)
    result = benchmark.run(knn_model, task="simulated_singles", name="knn", progress=False)
    merged = result.metrics.merge(chapter3, on=["method", "seed", "condition"], suffixes=("", "_ch3"))
    assert len(merged) == len(chapter3)
    np.testing.assert_allclose(merged["l2"], merged["l2_ch3"])
    board = result.leaderboard.set_index("method")
    assert board.loc["linear_P_other_screen", "ratio_to_mean"] < 1


def test_constant_model_is_flagged():
    def constant(train, conditions):
        return pd.DataFrame([train.pseudobulk.means.mean()] * len(conditions), index=conditions)

    result = benchmark.run(constant, task="simulated_doubles", name="constant", progress=False)
    assert any("barely vary" in w for w in result.warnings)
    assert any("not better than the additive baseline" in w for w in result.warnings)


@pytest.fixture(scope="module")
def good_predictions():
    task = benchmark.get_task("norman_subset_doubles")
    split = task.splits[0]
    frame = knn_model(task.training_data(split), split.held_out)
    return task, split, frame


def test_guard_leakage(good_predictions):
    task, split, frame = good_predictions
    leaked = pd.concat([frame, task.truth.means.loc[["KLF1"]]])
    with pytest.raises(PredictionError, match="not held out"):
        benchmark.run(task="norman_subset_doubles", predictions=[Predictions(leaked, "m", task.dataset, 1)], progress=False)


def test_guard_missing_conditions(good_predictions):
    task, _, frame = good_predictions
    with pytest.raises(PredictionError, match="have no prediction"):
        benchmark.run(task="norman_subset_doubles", predictions=[Predictions(frame.iloc[1:], "m", task.dataset, 1)],
                      progress=False)


def test_guard_gene_mismatch(good_predictions):
    task, _, frame = good_predictions
    ensembl = frame.rename(columns=lambda g: f"ENSG_{g}")
    with pytest.raises(PredictionError, match="Gene sets do not match"):
        benchmark.run(task="norman_subset_doubles", predictions=[Predictions(ensembl, "m", task.dataset, 1)], progress=False)


def test_guard_nan(good_predictions):
    task, _, frame = good_predictions
    bad = frame.copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(PredictionError, match="NaN or infinite"):
        benchmark.run(lambda train, conditions: bad, task="norman_subset_doubles", progress=False)


def test_guard_counts_instead_of_log(good_predictions):
    task, _, frame = good_predictions
    counts = np.round(np.expm1(frame) * 50)
    with pytest.raises(PredictionError, match="look like counts"):
        benchmark.run(task="norman_subset_doubles", predictions=[Predictions(counts, "m", task.dataset, 1)], progress=False)


def test_guard_changes_instead_of_levels(good_predictions):
    task, _, frame = good_predictions
    changes = frame - task.truth.ctrl
    with pytest.raises(PredictionError, match="look like changes relative to control"):
        benchmark.run(task="norman_subset_doubles", predictions=[Predictions(changes, "m", task.dataset, 1)], progress=False)


def test_guard_dataset_version(good_predictions):
    task, _, frame = good_predictions
    with pytest.raises(PredictionError, match="for dataset 'norman2019_gears' but the truth is 'norman2019_subset'"):
        benchmark.run(task="norman_subset_doubles", predictions=[Predictions(frame, "m", "norman2019_gears", 1)], progress=False)


def test_guard_seeds_and_names(good_predictions):
    task, _, frame = good_predictions
    with pytest.raises(PredictionError, match="got predictions for \\[7\\]"):
        benchmark.run(task="norman_subset_doubles", predictions=[Predictions(frame, "m", task.dataset, 7)], progress=False)
    with pytest.raises(ValueError, match="exactly one of"):
        benchmark.run(task="norman_subset_doubles", progress=False)
    with pytest.raises(ValueError, match="other than a reference method"):
        benchmark.run(knn_model, task="norman_subset_doubles", name="additive", progress=False)
    with pytest.raises(PredictionError, match="must return a Predictions object or a conditions x genes DataFrame"):
        benchmark.run(lambda train, conditions: [1, 2], task="norman_subset_doubles", progress=False)


def test_cli_on_a_predictions_file(good_predictions, tmp_path, capsys):
    task, _, frame = good_predictions
    path = Predictions(frame, "knn", task.dataset, 1).save(tmp_path / "knn.csv")
    assert benchmark.main(["--task", "norman_subset_doubles", "--predictions", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "knn" in out and "additive" in out and "your model" in out
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert "knn" in set(board["method"])
    (tmp_path / "bad.csv").write_text("condition,value\nA,1\n")
    assert benchmark.main(["--task", "norman_subset_doubles", "--predictions", str(tmp_path / "bad.csv")]) == 1
    assert "needs the columns" in capsys.readouterr().err
    assert benchmark.main(["--list"]) == 0
    assert "simulated_doubles" in capsys.readouterr().out
