"""Figure 1 recomputed (helpers.benchmark.figure1): hand-made per-double tables whose
ratios to no change are known exactly (every double of a method has the same ratio, so
the mean and both interval ends equal it)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import plotting  # noqa: E402
from helpers.benchmark import figure1  # noqa: E402
from helpers.errors import InputError  # noqa: E402


def _table(dataset: str, ratios: dict[str, float]) -> pd.DataFrame:
    rows = []
    for seed in (1, 2):
        for i in range(6):
            base = 1.0 + i + seed
            for method, ratio in {"no_change": 1.0, **ratios}.items():
                rows.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        "seed": seed,
                        "condition": f"G{i}+G{i + 10}",
                        "l2": base * ratio,
                    }
                )
    return pd.DataFrame(rows)


def test_ratios_rows_and_notes():
    published = _table("norman2019", {"uce": 0.75, "cpa": 2.0, "additive": 0.5})
    book = _table("simulated_doubles", {"tiny_uce": 1.25, "additive": 0.4, "mean": 0.9})
    out = figure1.table(published, [book], n_boot=200)
    got = out.set_index(["row", "source"])
    assert got.loc[("UCE*", "published"), "mean_ratio"] == pytest.approx(0.75)
    assert got.loc[("UCE*", "this book"), "mean_ratio"] == pytest.approx(1.25)
    assert got.loc[("UCE*", "this book"), "method"] == "tiny_uce"
    assert got.loc[("UCE*", "this book"), "lower"] == pytest.approx(1.25)
    assert got.loc[("Additive", "this book"), "mean_ratio"] == pytest.approx(0.4)
    assert got.loc[("CPA", "published"), "n"] == 12
    # the mean baseline is no row of Figure 1; rows keep the figure's order
    assert "mean" not in set(out["method"])
    order = [r for r, _, _ in figure1.ROWS]
    assert list(dict.fromkeys(out["row"])) == [r for r in order if r in set(out["row"])]
    assert "SYNTHETIC" in got.loc[("UCE*", "this book"), "data"]
    assert "(published)" in got.loc[("UCE*", "published"), "data"]
    assert "CPA: not run by the book in this build" in out.attrs["notes"]
    assert "UCE*: not run by the book in this build" not in out.attrs["notes"]
    ax = plotting.figure1_beside(out)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "UCE* (book: tiny_uce)" in labels and "Additive" in labels


def test_a_run_without_no_change_is_refused():
    book = _table("simulated_doubles", {"tiny_uce": 1.0})
    book = book[book["method"] != "no_change"]
    with pytest.raises(InputError, match="no 'no_change' rows"):
        figure1.table(_table("norman2019", {"uce": 1.0}), [book])


def test_chapter_runs_lists_what_is_missing(tmp_path):
    present = tmp_path / "04_foundation_models" / "per_perturbation_metrics.csv"
    present.parent.mkdir()
    _table("norman2019_subset", {"gears": 1.1}).to_csv(present, index=False)
    missing = tmp_path / "06_x" / "per_perturbation_metrics.csv"
    tables, notes = figure1.chapter_runs(present, missing)
    assert len(tables) == 1 and set(tables[0]["method"]) == {"no_change", "gears"}
    assert notes == [
        "06_x/per_perturbation_metrics.csv not found (run that chapter on this "
        "profile first): its models are not in the table"
    ]
