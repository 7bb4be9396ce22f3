"""Chapter 8's columns, predicted cells, the split audit and the paired test in the
benchmark API and CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import baselines, benchmark, cells
from helpers.audit import SplitLeakError
from helpers.benchmark import beyond
from helpers.benchmark.tasks import TASKS, Task
from helpers.splits import holdout_split

TASK = "norman_subset_doubles"


def observed_cells_as_prediction():
    """The observed cells of the held-out doubles and the control, in the cell-eval
    layout."""
    task = benchmark.get_task(TASK)
    adata = task.adata()
    split = task.splits[0]
    keep = adata.obs["condition"].isin(split.held_out + ["ctrl"]).to_numpy()
    return cells.cells_to_cell_eval(adata[keep].copy()), split


def test_perfect_predicted_cells_score_perfectly_everywhere():
    exported, split = observed_cells_as_prediction()
    result = benchmark.run(
        task=TASK, predictions=exported, name="observed_cells", progress=False
    )
    mine = result.metrics[result.metrics["method"] == "observed_cells"].set_index(
        "condition"
    )
    assert sorted(mine.index) == sorted(split.held_out)
    np.testing.assert_allclose(mine["l2"], 0.0, atol=1e-6)
    np.testing.assert_allclose(mine["pearson_delta"], 1.0, atol=1e-9)
    assert (mine["rank_vs_control"] == 0).all() and (mine["rank_vs_mean"] == 0).all()
    np.testing.assert_allclose(result.energy["energy_distance"], 0.0, atol=1e-9)
    board = result.leaderboard.set_index("method")
    for column in (
        "rank_vs_control",
        "rank_vs_mean",
        "de_overlap",
        "ceiling_l2",
        "norm_l2",
        "norm_pearson_delta",
    ):
        assert column in board.columns
    assert board.loc["mean", "norm_l2"] == pytest.approx(0.0)
    assert (
        board.loc["observed_cells", "norm_l2"] > 1
    )  # the truth itself beats the noise ceiling
    assert (
        board.loc["no_change", "rank_vs_control"] == 0.5
    )  # a constant change identifies nothing
    assert np.isnan(board.loc["no_change", "mean_pearson_delta"])  # NaN is kept, not 0
    comparison = result.comparison.set_index("value")
    assert (
        comparison.loc["l2", "baseline"] == "additive"
        and comparison.loc["l2", "mean_diff"] > 0
    )


def test_cli_scores_a_predicted_cells_file(tmp_path, capsys):
    exported, _ = observed_cells_as_prediction()
    noisy = exported.copy()
    rng = np.random.default_rng(0)
    X = noisy.X.toarray()
    X[X > 0] += rng.normal(0, 0.05, int((X > 0).sum()))
    noisy.X = np.clip(X, 0, None)
    path = tmp_path / "cells.h5ad"
    noisy.write_h5ad(path)
    code = benchmark.main(
        [
            "--task",
            TASK,
            "--predictions",
            str(path),
            "--name",
            "noisy_cells",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "split audit:" in out and "shared_cells: ok" in out and "paired test" in out
    for name in (
        "metrics.csv",
        "leaderboard.csv",
        "split_audit.csv",
        "paired_test.csv",
        "energy_distance.csv",
    ):
        assert (tmp_path / "out" / name).exists()
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv").set_index("method")
    assert "noisy_cells" in board.index and "rank_vs_mean" in board.columns
    energy = pd.read_csv(tmp_path / "out" / "energy_distance.csv")
    assert (energy["energy_distance"] > 0).all()


def test_exported_book_predictions_score_like_the_csv(tmp_path):
    task = benchmark.get_task(TASK)
    split = task.splits[0]
    pred = baselines.mean_baseline(
        task.truth.subset(split.train), split.held_out, seed=split.seed
    )
    pred = pred.renamed("mean_again")
    exported = cells.to_cell_eval(pred, task.truth.ctrl, n_cells=4)
    from_cells = benchmark.run(
        task=TASK, predictions=exported, name="mean_again", progress=False, extras=False
    )
    from_table = benchmark.run(
        task=TASK, predictions=[pred], progress=False, extras=False
    )
    a = from_cells.metrics[from_cells.metrics["method"] == "mean_again"].set_index(
        "condition"
    )["l2"]
    b = from_table.metrics[from_table.metrics["method"] == "mean_again"].set_index(
        "condition"
    )["l2"]
    np.testing.assert_allclose(
        a.sort_index(), b.sort_index(), atol=1e-5
    )  # float32 export


def test_a_leaky_split_is_refused_before_scoring(monkeypatch):
    real = benchmark.get_task(TASK)

    def leaky_splits(pb):
        return [
            holdout_split(
                pb.conditions,
                ["ctrl"] + [c for c in pb.conditions if "+" in c][:2],
                dataset=pb.dataset,
                seed=1,
            )
        ]

    leaky = Task(
        "leaky", "quick", "double", "leaky split", lambda: real._loaded, leaky_splits
    )
    monkeypatch.setitem(TASKS, "leaky", leaky)
    with pytest.raises(SplitLeakError, match="ctrl_held_out"):
        benchmark.run(lambda train, conditions: None, task="leaky", progress=False)


def test_backed_tasks_skip_the_cell_columns_with_a_warning():
    class NoCells:
        name = "no_cells"

        def adata(self):
            raise ValueError("pseudobulks only")

    assert not beyond.has_cells(NoCells())
