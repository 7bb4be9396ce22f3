"""helpers.frontpage: the front page's figure and answer, from the chapters' result
files.

The published panel is checked against the paper's own headline means (the Source Data
README in ../shared), the failure modes against the issue's wording: a missing result
file or a method the figure does not know stops the build with one line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import execute, frontpage

SHARED = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "ahlmann_eltze_2025"
)

# The paper's Fig. 1 headline means (../shared/reference/ahlmann_eltze_2025/README.md)
HEADLINE = {
    "additive": 2.77,
    "geneformer": 3.48,
    "gears": 4.10,
    "scbert": 4.28,
    "uce": 4.28,
    "scgpt": 4.62,
    "scfoundation": 4.72,
    "no_change": 5.62,
    "cpa": 12.2,
}


def _published(folder: Path) -> None:
    """Chapter 2's published table, written straight from the Source Data CSV."""
    src = pd.read_csv(SHARED / "double_per_perturbation_metrics.csv")
    method = src["method"].replace({"additive_model": "additive"})  # the book's name
    out = pd.DataFrame(
        {
            "dataset": "norman2019",
            "method": method,
            "seed": src["seed"],
            "split": src["train"],
            "condition": src["perturbation"],
            "l2": src["l2"],
        }
    )
    path = folder / "02_double_perturbations"
    path.mkdir(parents=True)
    out.to_csv(path / "published_per_perturbation_metrics.csv", index=False)


def _built(
    folder: Path,
    methods=("no_change", "additive", "mean", "tiny_transformer", "gears"),
    *,
    dataset="norman2019_subset",
) -> None:
    rng = np.random.default_rng(0)
    rows = [
        {
            "dataset": dataset,
            "method": m,
            "seed": 1,
            "split": "test",
            "condition": f"A{i}+B{i}",
            "l2": 1 + k + rng.normal(scale=0.01),
        }
        for k, m in enumerate(methods)
        for i in range(5)
    ]
    path = folder / "04_foundation_models"
    path.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(path / "per_perturbation_metrics.csv", index=False)


@pytest.fixture
def results(tmp_path):
    _published(tmp_path)
    _built(tmp_path)
    return tmp_path


def test_published_panel_gives_the_papers_headline_means(results):
    data = frontpage.figure_data(results, n_boot=200)
    pub = data[data["panel"] == "published"].set_index("method")
    assert set(pub.index) == set(HEADLINE)
    for method, value in HEADLINE.items():
        assert round(pub.loc[method, "mean_l2"], 2) == pytest.approx(value, abs=0.01)
    # 310 (double, split) pairs: 122 distinct doubles over 5 splits (issue 36)
    assert (pub["n_conditions"] == 122).all() and (pub["n_seeds"] == 5).all()
    assert (pub["lower"] < pub["mean_l2"]).all() and (
        pub["mean_l2"] < pub["upper"]
    ).all()


def test_answer_is_three_sentences_from_the_intervals(results):
    text = frontpage.answer(results, n_boot=500)
    sentences = re.split(r"(?<=\.) (?=[A-Z])", text)
    assert len(sentences) == 3, sentences
    # In the Source Data every deep model has a larger mean L2 than additive (3.48-12.2
    # against 2.77), on 122 doubles x 5 splits: all 7 are worse.
    assert "7 of 7 deep models have a larger error than adding" in sentences[0]
    assert "none beats it" in sentences[0]
    # ...and all but CPA beat no change (CPA 12.2 vs 5.62)
    assert "6 of 7 beat predicting no change" in sentences[1] and "CPA" in sentences[1]
    assert "real data: norman2019_subset" in sentences[2]


def test_missing_result_file_stops_with_one_line(tmp_path):
    _published(tmp_path)
    with pytest.raises(
        frontpage.FrontPageError, match="per_perturbation_metrics.csv.*missing"
    ):
        frontpage.figure_data(tmp_path)
    assert (
        frontpage.main(["--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    )


def test_unknown_method_stops_with_one_line(tmp_path):
    _published(tmp_path)
    _built(tmp_path, methods=("no_change", "additive", "my_new_model"))
    with pytest.raises(
        frontpage.FrontPageError, match="does not know: \\['my_new_model'\\]"
    ):
        frontpage.figure_data(tmp_path)


def test_synthetic_rows_are_labelled(tmp_path):
    _published(tmp_path)
    _built(tmp_path, dataset="simulated_simK562")
    made = frontpage.write(tmp_path, tmp_path / "out")
    assert "**SYNTHETIC**" in made["caption"] and "SYNTHETIC" in made["answer"]


def test_write_draws_a_figure_and_the_front_page_gets_it(results, tmp_path):
    made = frontpage.write(results, tmp_path / "figures")
    assert made["figure"].stat().st_size > 10_000
    from PIL import Image

    width, height = Image.open(made["figure"]).size
    assert width <= 1200 and height <= 600  # shown at the column's width
    block = frontpage.markdown(made, "figures/figure1.png")
    page = (
        "# Title\n\nQuestion?\n\n"
        + execute.FIGURE_MARKER
        + "\n\n"
        + execute.NOTE_MARKER
        + "\n\n## How to read it\n"
    )
    filled = execute.fill_front_page(page, block, ":::{admonition} note\n:::\n")
    assert (
        filled.index("Question?")
        < filled.index("figures/figure1.png")
        < filled.index("**The answer.**")
        < filled.index(":::{admonition} note")
        < filled.index("## How to read it")
    )
    assert "<!--" not in filled
