"""The course's minutes and tracks (issue 31, item 5): estimates counted on a
hand-made notebook, the fit check worked by hand, and course.md / index.md agreeing
with the tracks the fit check uses."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers import execute
from helpers.course import timing
from helpers.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
MODES = {"class": 1, "reading": 2, "homework": 3, "optional": 4}


def _chapter(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell
    nb.cells = [
        nbformat.v4.new_markdown_cell(" ".join(["alpha"] * 232)),  # 232 words
        code('profile = "quick"', metadata={"tags": ["parameters"]}),  # not counted
        code("import os", metadata={"tags": ["remove-cell"]}),  # not counted
        code("x = 1"),
        code("print(x)"),
        code(""),  # empty: not counted
        nbformat.v4.new_markdown_cell("**Exercise 1.** Do x."),  # 4 words
        code("# Solution\ny = 2", metadata={"tags": ["hide-cell"]}),  # not counted
        code('grader.check("ex1")'),  # not counted
        nbformat.v4.new_markdown_cell("**Exercise 2.** Do y."),  # 4 words
        code("z = 3"),
    ]
    nbformat.write(nb, path)
    return path


def test_effort_of_a_hand_made_chapter(tmp_path):
    path = _chapter(tmp_path / "03_toy.ipynb")
    # 240 words, 3 code cells a student runs, 2 exercises
    assert timing.chapter_effort(path) == {
        "chapter": "03_toy",
        "words": 240,
        "code_cells": 3,
        "exercises": 2,
        "reading_min": 2.0,  # 240 / 120
        "code_min": 3.0,
        "exercise_min": 20.0,
    }
    slow = timing.chapter_effort(
        path, words_per_minute=60, minutes_per_cell=2, minutes_per_exercise=15
    )
    assert (slow["reading_min"], slow["code_min"], slow["exercise_min"]) == (
        4.0,
        6.0,
        30.0,
    )
    with pytest.raises(InputError, match="reading speed must be positive"):
        timing.chapter_effort(path, words_per_minute=0)
    (tmp_path / "bad.ipynb").write_text("not json")
    with pytest.raises(InputError, match="cannot read the notebook"):
        timing.chapter_effort(tmp_path / "bad.ipynb")


def _effort(**rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "chapter": name,
                "number": int(name[1:]),
                "reading_min": r,
                "code_min": c,
                "exercises": n,
                "exercise_min": 10.0 * n,
            }
            for name, (r, c, n) in rows.items()
        ]
    )


def test_track_fit_worked_by_hand():
    effort = _effort(c1=(20.0, 30.0, 3), c2=(15.0, 10.0, 1), c3=(100.0, 5.0, 1))
    tracks = {
        "t": {
            "session_minutes": 90,
            "block_minutes": 60,
            "outside_minutes": 150,
            "sessions": [
                ("full", {1: "class", 2: "reading"}),
                ("over", {3: "homework", 2: "class"}),
                ("spare", {2: "optional"}),
            ],
        }
    }
    fit = timing.track_fit(effort, {"c1": 600.0}, tracks=tracks)
    full, over, spare = (r for _, r in fit.iterrows())
    # in class: 30 code + 30 exercises + 10 run = 70 > 60: one exercise moves out;
    # outside: 20 + 15 reading + 10 moved = 45
    assert (full["in_class_min"], full["exercises_to_homework"]) == (70.0, 1)
    assert (full["outside_min"], full["fits"]) == (45.0, True)
    # chapter 3 in full (100 + 5 + 10) + chapter 2's reading 15 = 130 <= 150; class
    # 10 + 10 = 20
    assert (over["in_class_min"], over["outside_min"], over["fits"]) == (
        20.0,
        130.0,
        True,
    )
    assert (spare["in_class_min"], spare["outside_min"]) == (0.0, 0.0)
    tracks["t"]["outside_minutes"] = 100
    assert list(timing.track_fit(effort, tracks=tracks)["fits"]) == [
        True,
        False,
        True,
    ]
    tracks["t"]["sessions"] = [("x", {1: "lecture"})]
    with pytest.raises(InputError, match="unknown mode 'lecture'"):
        timing.track_fit(effort, tracks=tracks)
    tracks["t"]["sessions"] = [("x", {9: "class"})]
    with pytest.raises(InputError, match=r"chapter\(s\) \[9\]"):
        timing.track_fit(effort, tracks=tracks)


def test_every_track_holds_every_chapter_once():
    chapters = sorted(int(p.name[:2]) for p in ROOT.glob("notebooks/[0-9]*.ipynb"))
    for name, spec in timing.TRACKS.items():
        numbers = [n for _, ch in spec["sessions"] for n in ch]
        assert sorted(numbers) == chapters, name


def _course_tracks(text: str) -> dict[str, dict[str, dict[int, str]]]:
    """course.md's track tables: track -> session -> chapter -> mode."""
    tracks = {}
    for part in re.split(r"^### Track \d+: ", text, flags=re.M)[1:]:
        name = part.splitlines()[0].strip()
        sessions = {}
        for line in part.split("\n### ")[0].splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|") or cells[0] in ("session", "---"):
                continue
            sessions[cells[0]] = {
                int(n): mode
                for mode, col in MODES.items()
                for n in re.findall(r"\d+", cells[col])
            }
        tracks[name] = sessions
    return tracks


def test_course_md_shows_the_tracks_the_fit_check_uses():
    course = (ROOT / "course.md").read_text()
    shown = _course_tracks(course)
    assert list(shown) == list(timing.TRACKS)
    for name, spec in timing.TRACKS.items():
        assert shown[name] == {title: dict(ch) for title, ch in spec["sessions"]}
    assert "```{include} course_timing.md\n```" in course
    assert execute.TIMING_PAGE == "course_timing.md"
    assert (ROOT / "course_timing.md").exists()  # the placeholder before a build


def test_index_md_agrees_with_course_md():
    index = (ROOT / "index.md").read_text()
    course = (ROOT / "course.md").read_text()
    flat = " ".join(index.split())
    assert "four-session" not in flat and "five 90-minute" not in flat
    for words in ("three tracks", *timing.TRACKS):
        assert words in flat and words in " ".join(course.split()), words


def test_the_build_writes_measured_and_estimated_minutes(tmp_path, monkeypatch):
    colab = tmp_path / "colab"
    colab.mkdir()
    (colab / "summary.tsv").write_text(
        "chapter\tstatus\tseconds\tnote\n01_data\tok\t73\t\n02_double_perturbations"
        "\tfailed\t5\tboom\n"
    )
    monkeypatch.setenv("COLAB_LIKE_DIR", str(colab))
    status = pd.DataFrame(
        [
            {
                "notebook": "01_data",
                "profile": "quick",
                "status": "ok",
                "seconds": 41.6,
            },
            {
                "notebook": "04_foundation_models",
                "profile": "quick",
                "status": "failed",
                "seconds": 9.0,
            },
        ]
    )
    page = execute.course_timing_page(ROOT, status)
    one = timing.chapter_effort(ROOT / "notebooks" / "01_data.ipynb")
    total = round(
        one["reading_min"] + one["code_min"] + one["exercise_min"] + 41.6 / 60
    )
    assert (
        f"| 01_data | 42 | 73 | {one['words']} | {one['reading_min']:.0f} | "
        f"{one['code_cells']} | {one['code_min']:.0f} | {one['exercises']} | "
        f"{one['exercise_min']:.0f} | {total} |" in page
    )
    assert "| 02_double_perturbations | not run | — |" in page  # failed on Colab
    assert "| 04_foundation_models | 9 (failed) |" in page
    assert "**estimate**" in page and "**measured**" in page
    assert "| 5-session plan | 1. Data and baselines | 1 (reading), 2 (class) |" in page
    assert re.search(r"\| (yes|NO) \|\n", page)
