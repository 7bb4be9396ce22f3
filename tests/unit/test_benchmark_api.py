"""The 'benchmark your own model' API and command line, with every guard rail."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import baselines, benchmark, metrics
from helpers.predictions import PredictionError, Predictions

from ..helpers_fixtures import register_task, tiny_means


def knn_model(train, conditions):
    """A tiny model: the mean change of the training conditions sharing a target gene,
    else the mean."""
    pb = train.pseudobulk
    rows = {}
    for condition in conditions:
        related = [
            c
            for c in pb.conditions
            if c != "ctrl" and set(c.split("+")) & set(condition.split("+"))
        ]
        rows[condition] = pb.means.loc[related or list(pb.conditions)].mean()
    return pd.DataFrame(rows).T


def test_tasks_are_listed():
    tasks = benchmark.list_tasks()
    assert {
        "norman_subset_doubles",
        "simulated_doubles",
        "simulated_singles",
        "norman_doubles",
        "adamson_singles",
        "replogle_k562_essential_singles",
        "replogle_rpe1_essential_singles",
    } <= set(tasks["task"])
    with pytest.raises(ValueError, match="Unknown task"):
        benchmark.get_task("nope")


def test_end_to_end_on_the_real_subset():
    result = benchmark.run(
        knn_model, task="norman_subset_doubles", name="knn", progress=False
    )
    board = result.leaderboard.set_index("method")
    assert {"knn", "additive", "no_change", "mean"} <= set(board.index)
    assert (
        "linear" not in board.index
    )  # subset targets are not measured: not applicable, no row
    assert (
        board.loc["knn", "source"] == "your model"
        and board.loc["additive", "source"] == "this book"
    )
    assert board.loc["additive", "ratio_to_additive"] == pytest.approx(1.0)
    assert board.loc["no_change", "spread_ratio"] == pytest.approx(0.0)
    assert "linear" in result.not_applicable
    assert not any("linear: predicted only" in w for w in result.warnings)
    assert set(result.metrics.columns) >= set(metrics.METRIC_COLUMNS)


@pytest.fixture
def tiny_task(monkeypatch):
    """The hand-made task of tests/helpers_fixtures.py (no cells)."""
    return register_task(monkeypatch, "tiny_doubles", tiny_means())


def test_a_task_holding_out_one_condition_gets_a_leaderboard(monkeypatch):
    """One held-out condition, A+B = (12, 9, 11): additive (11, 9, 10), L2 sqrt(2);
    mine predicts A's row (11, 10, 10), L2 sqrt(3); one condition has no spread across
    conditions, so every spread ratio is NaN (it stopped with KeyError 'method')."""
    register_task(monkeypatch, "tiny_one", tiny_means(), held_out=["A+B"])

    def mine(train, conditions):
        return train.pseudobulk.means.loc[["A"]].set_axis(list(conditions))

    result = benchmark.run(mine, task="tiny_one", name="mine", progress=False)
    board = result.leaderboard.set_index("method")
    assert board.loc["additive", "mean_l2"] == pytest.approx(np.sqrt(2))
    assert board.loc["mine", "mean_l2"] == pytest.approx(np.sqrt(3))
    assert board.loc["mine", "ratio_to_additive"] == pytest.approx(np.sqrt(1.5))
    assert board["spread_ratio"].isna().all() and board.loc["mine", "n"] == 1


def test_leaderboard_numbers_computed_by_hand(tiny_task):
    """Train: ctrl, A, B, C, B+C; held out: A+B = (12, 9, 11) and A+C = (11, 10, 13).

    additive:  A+B -> A + B - ctrl = (11, 9, 10): L2 sqrt(1 + 0 + 1);
               A+C -> (11, 10, 12): L2 1
    no_change: (10, 10, 10): L2 sqrt(4 + 1 + 1) and sqrt(1 + 0 + 9)
    mean:      mean of the 5 training rows = (10.2, 9.6, 10.8):
               L2 sqrt(3.64) and sqrt(5.64)
    mine:      exact for A+B (L2 0), (11, 10, 12) for A+C (L2 1):
               ratio to additive (0 + 1) / 2
    """

    def mine(train, conditions):
        assert list(train.pseudobulk.conditions) == [
            "ctrl",
            "A",
            "B",
            "C",
            "B+C",
        ]  # no held-out data leaks in
        return pd.DataFrame(
            [[12, 9, 11], [11, 10, 12]], index=["A+B", "A+C"], columns=["A", "B", "C"]
        )

    result = benchmark.run(mine, task="tiny_doubles", name="mine", progress=False)
    board = result.leaderboard.set_index("method")
    expected_l2 = {
        "additive": [np.sqrt(2), 1.0],
        "no_change": [np.sqrt(6), np.sqrt(10)],
        "mean": [np.sqrt(3.64), np.sqrt(5.64)],
        "mine": [0.0, 1.0],
    }
    for method, (ab, ac) in expected_l2.items():
        rows = result.metrics[result.metrics["method"] == method].set_index("condition")
        assert rows.loc["A+B", "l2"] == pytest.approx(ab) and rows.loc[
            "A+C", "l2"
        ] == pytest.approx(ac), method
        assert board.loc[method, "mean_l2"] == pytest.approx((ab + ac) / 2), method
        assert board.loc[method, "ratio_to_additive"] == pytest.approx(
            (ab / np.sqrt(2) + ac / 1.0) / 2
        ), method
    assert (result.metrics["seed"] == 3).all() and board.loc["mine", "n"] == 2
    # spread across the two held-out doubles, per gene (population sd), averaged over
    # genes: truth: |12-11|/2, |9-10|/2, |11-13|/2 -> (0.5 + 0.5 + 1) / 3; mine: (0.5 +
    # 0.5 + 0.5) / 3; no_change: 0
    assert board.loc["mine", "spread_ratio"] == pytest.approx(1.5 / 2.0)
    assert board.loc["no_change", "spread_ratio"] == pytest.approx(0.0)


def test_constant_model_is_flagged():
    def constant(train, conditions):
        return pd.DataFrame(
            [train.pseudobulk.means.mean()] * len(conditions), index=conditions
        )

    result = benchmark.run(
        constant, task="simulated_doubles", name="constant", progress=False
    )
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
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(leaked, "m", task.dataset, 1)],
            progress=False,
        )


def test_guard_missing_conditions(good_predictions):
    task, _, frame = good_predictions
    with pytest.raises(PredictionError, match="have no prediction"):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(frame.iloc[1:], "m", task.dataset, 1)],
            progress=False,
        )


def test_guard_gene_mismatch(good_predictions):
    task, _, frame = good_predictions
    ensembl = frame.rename(columns=lambda g: f"ENSG_{g}")
    with pytest.raises(PredictionError, match="Gene sets do not match"):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(ensembl, "m", task.dataset, 1)],
            progress=False,
        )


def test_guard_nan(good_predictions):
    task, _, frame = good_predictions
    bad = frame.copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(PredictionError, match="NaN or infinite"):
        benchmark.run(
            lambda train, conditions: bad, task="norman_subset_doubles", progress=False
        )


def test_guard_counts_instead_of_log(good_predictions):
    task, _, frame = good_predictions
    counts = np.round(np.expm1(frame) * 50)
    with pytest.raises(PredictionError, match="look like counts"):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(counts, "m", task.dataset, 1)],
            progress=False,
        )


def test_guard_changes_instead_of_levels(good_predictions):
    task, _, frame = good_predictions
    changes = frame - task.truth.ctrl
    with pytest.raises(PredictionError, match="look like changes relative to control"):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(changes, "m", task.dataset, 1)],
            progress=False,
        )


def test_guard_dataset_version(good_predictions):
    task, _, frame = good_predictions
    with pytest.raises(
        PredictionError,
        match="for dataset 'norman2019_gears' but the truth is 'norman2019_subset'",
    ):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(frame, "m", "norman2019_gears", 1)],
            progress=False,
        )


def test_guard_seeds_and_names(good_predictions):
    task, _, frame = good_predictions
    with pytest.raises(PredictionError, match="got predictions for \\[7\\]"):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(frame, "m", task.dataset, 7)],
            progress=False,
        )
    with pytest.raises(ValueError, match="exactly one of"):
        benchmark.run(task="norman_subset_doubles", progress=False)
    with pytest.raises(ValueError, match="other than a reference or published method"):
        benchmark.run(
            knn_model, task="norman_subset_doubles", name="additive", progress=False
        )
    for published_name in (
        "scgpt",
        "gears",
    ):  # the paper's methods: a reader compares rows by name
        with pytest.raises(
            ValueError, match="other than a reference or published method"
        ):
            benchmark.run(
                knn_model,
                task="norman_subset_doubles",
                name=published_name,
                progress=False,
            )
    with pytest.raises(
        PredictionError,
        match="must return a Predictions object or a conditions x genes DataFrame",
    ):
        benchmark.run(
            lambda train, conditions: [1, 2],
            task="norman_subset_doubles",
            progress=False,
        )


def test_cli_on_a_predictions_file(good_predictions, tmp_path, capsys):
    task, _, frame = good_predictions
    path = Predictions(frame, "knn", task.dataset, 1).save(tmp_path / "knn.csv")
    assert (
        benchmark.main(
            [
                "--task",
                "norman_subset_doubles",
                "--predictions",
                str(path),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "knn" in out and "additive" in out and "your model" in out
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert "knn" in set(board["method"])
    (tmp_path / "bad.csv").write_text("condition,value\nA,1\n")
    assert (
        benchmark.main(
            [
                "--task",
                "norman_subset_doubles",
                "--predictions",
                str(tmp_path / "bad.csv"),
            ]
        )
        == 1
    )
    assert "needs the columns" in capsys.readouterr().err
    assert benchmark.main(["--list"]) == 0
    assert "simulated_doubles" in capsys.readouterr().out


def _readme_block(language: str, containing: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)
    return next(b for b in blocks if containing in b)


def test_readme_example_makes_a_file_the_cli_accepts(tmp_path, monkeypatch, capsys):
    """Run the README's Python example as written, then the README's command line on its
    output."""
    monkeypatch.chdir(tmp_path)
    exec(_readme_block("python", "baselines.additive"), {})
    command = next(
        line
        for line in _readme_block("bash", "--predictions").splitlines()
        if "--predictions" in line
    )
    argv = command.split("#")[0].split()[
        3:
    ]  # after ".venv/bin/python -m helpers.benchmark"
    assert "--predictions" in argv and "--task" in argv
    assert benchmark.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert (
        "my_additive" in out
        and "no split seed" not in out
        and "reference method" not in out
    )
    board = pd.read_csv(tmp_path / "results" / "leaderboard.csv").set_index("method")
    # the README's predictions are the additive baseline itself: the same L2 as the
    # reference row
    assert board.loc["my_additive", "mean_l2"] == pytest.approx(
        board.loc["additive", "mean_l2"]
    )
    assert board.loc["my_additive", "source"] == "your model"


def test_cli_takes_seedless_predictions_named_like_a_baseline_for_a_one_split_task(
    good_predictions, tmp_path, capsys
):
    """The README's earlier example: additive predictions without a seed, method name
    'additive'."""
    task, split, _ = good_predictions
    pred = baselines.additive(task.truth.subset(split.train), split.held_out)
    assert pred.seed is None and pred.method == "additive"
    path = pred.save(tmp_path / "p.csv")
    assert (
        benchmark.main(["--task", "norman_subset_doubles", "--predictions", str(path)])
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "additive (submitted)" in out
        and "name no split seed" in out
        and "like a reference or published method" in out
    )
    # a task with five splits cannot guess the seed: a clear error
    sim = benchmark.get_task("simulated_doubles")
    s1 = sim.splits[0]
    seedless = baselines.additive(sim.truth.subset(s1.train), s1.held_out).save(
        tmp_path / "s.csv"
    )
    assert (
        benchmark.main(["--task", "simulated_doubles", "--predictions", str(seedless)])
        == 1
    )
    assert "without a split seed" in capsys.readouterr().err


def test_a_double_written_b_plus_a_is_scored_as_a_plus_b(good_predictions):
    task, split, frame = good_predictions
    double = next(c for c in frame.index if "+" in c)
    a, b = double.split("+")
    flipped = frame.rename(index={double: f"{b}+{a}"})
    assert f"{b}+{a}" not in task.truth.conditions
    original = benchmark.run(
        task="norman_subset_doubles",
        predictions=[Predictions(frame, "m", task.dataset, 1)],
        progress=False,
    ).metrics
    renamed = benchmark.run(
        task="norman_subset_doubles",
        predictions=[Predictions(flipped, "m", task.dataset, 1)],
        progress=False,
    ).metrics
    mine, theirs = (
        t[t["method"] == "m"].set_index("condition").sort_index()
        for t in (original, renamed)
    )
    assert list(theirs.index) == list(mine.index) and double in theirs.index
    np.testing.assert_allclose(theirs["l2"], mine["l2"])
    both = pd.concat([frame, flipped.loc[[f"{b}+{a}"]]])
    with pytest.raises(PredictionError, match="the same perturbation"):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(both, "m", task.dataset, 1)],
            progress=False,
        )


@pytest.mark.parametrize("base", [2, 10])
def test_guard_log2_or_log10_instead_of_natural_log(good_predictions, base):
    task, _, frame = good_predictions
    other_base = frame / np.log(base)  # log_b(1 + x) = ln(1 + x) / ln(b)
    with pytest.raises(PredictionError, match="another log scale"):
        benchmark.run(
            task="norman_subset_doubles",
            predictions=[Predictions(other_base, "m", task.dataset, 1)],
            progress=False,
        )


def test_guard_log2_on_the_simulated_screen():
    def log2_model(train, conditions):
        return knn_model(train, conditions) / np.log(2)

    with pytest.raises(PredictionError, match="another log scale"):
        benchmark.run(log2_model, task="simulated_doubles", progress=False)


def test_leaderboard_compares_methods_on_the_common_set(tiny_task):
    """A model that predicts only A+B (allow_missing): every method's common-set mean is
    its L2 on A+B alone (by hand, see test_leaderboard_numbers_computed_by_hand), while
    mean_l2 keeps each method's own rows (additive: both doubles)."""

    def partial(train, conditions):
        return pd.DataFrame([[12, 9, 11]], index=["A+B"], columns=["A", "B", "C"])

    result = benchmark.run(
        partial, task="tiny_doubles", name="mine", progress=False, allow_missing=True
    )
    board = result.leaderboard.set_index("method")
    on_ab = {
        "additive": np.sqrt(2),
        "no_change": np.sqrt(6),
        "mean": np.sqrt(3.64),
        "mine": 0.0,
    }
    for method, l2 in on_ab.items():
        assert board.loc[method, "n_common"] == 1, method
        assert board.loc[method, "mean_l2_common"] == pytest.approx(l2), method
    assert board.loc["additive", "n"] == 2 and board.loc["mine", "n"] == 1
    assert board.loc["additive", "mean_l2"] == pytest.approx((np.sqrt(2) + 1) / 2)
    # sorted by the comparable (common-set) mean
    order = [m for m in result.leaderboard["method"] if m in on_ab]
    assert order == ["mine", "additive", "mean", "no_change"]
    assert result.leaderboard["mean_l2_common"].is_monotonic_increasing


def test_common_set_means_leave_out_a_method_with_low_coverage():
    rows = []
    for condition, l2 in zip("abcd", (1.0, 2.0, 3.0, 4.0)):
        rows.append(
            {
                "dataset": "d",
                "seed": 1,
                "condition": condition,
                "method": "full",
                "l2": l2,
                "pearson_delta": 0.1,
            }
        )
        rows.append(
            {
                "dataset": "d",
                "seed": 1,
                "condition": condition,
                "method": "most",
                "l2": 2 * l2,
                "pearson_delta": 0.2,
            }
        )
    rows = [r for r in rows if not (r["method"] == "most" and r["condition"] == "d")]
    rows.append(
        {
            "dataset": "d",
            "seed": 1,
            "condition": "a",
            "method": "few",
            "l2": 9.0,
            "pearson_delta": 0.0,
        }
    )
    from helpers.benchmark.leaderboard import common_set_means

    table = common_set_means(pd.DataFrame(rows), ["full", "most", "few"]).set_index(
        "method"
    )
    # "few" scored 1 of 4 (< half): left out; the common set of full and most is a, b, c
    assert np.isnan(table.loc["few", "mean_l2_common"])
    assert table.loc["full", "mean_l2_common"] == pytest.approx(2.0)
    assert table.loc["most", "mean_l2_common"] == pytest.approx(4.0)
    assert table.loc["full", "n_common"] == 3
