"""Student copies: solutions removed, and the committed copies in sync with the
chapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.student import (
    PLACEHOLDER,
    SOLUTION_TAG,
    hidden_solution_problems,
    hide_solution,
    is_solution,
    student_copy,
    write_student_copies,
)

ROOT = Path(__file__).resolve().parents[2]


def test_solutions_are_removed():
    nb = json.loads((ROOT / "notebooks" / "02_double_perturbations.ipynb").read_text())
    copy = student_copy(nb)
    solutions = [
        c for c in nb["cells"] if SOLUTION_TAG in c.get("metadata", {}).get("tags", [])
    ]
    assert solutions == [c for c in nb["cells"] if is_solution(c)]
    assert copy["metadata"]["student_copy"]["solutions_removed"] == len(solutions) >= 2
    text = json.dumps(copy)
    assert "# Solution" not in text and text.count("# Your solution here") == len(
        solutions
    )
    assert len(copy["cells"]) == len(nb["cells"])  # the exercises' questions stay
    assert SOLUTION_TAG not in text and "Show solution" not in text, (
        "no empty toggle in the student copy"
    )


def test_solution_hiding_is_checked():
    cell = {
        "cell_type": "code",
        "metadata": {"tags": ["hide-input"]},
        "source": ["# Solution\n", "x = 1\n"],
        "outputs": [],
        "execution_count": None,
    }
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["**Exercise 1**"]},
            cell,
        ]
    }
    problems = hidden_solution_problems(nb, "ch.ipynb")
    assert (
        "ch.ipynb cell 2: solution without the 'hide-cell' tag (its output would show)"
        in problems
    )
    assert (
        "ch.ipynb cell 2: solution tagged ['hide-input']; use only 'hide-cell'"
        in problems
    )
    hide_solution(cell)
    assert (
        cell["metadata"]["tags"] == ["hide-cell"]
        and hidden_solution_problems(nb, "ch.ipynb") == []
    )
    with pytest.raises(ValueError, match="# Solution"):
        hide_solution(nb["cells"][0])


def test_committed_student_copies_are_up_to_date(tmp_path):
    fresh = write_student_copies(ROOT, tmp_path)
    committed = sorted((ROOT / "student").glob("*.ipynb"))
    assert [p.name for p in committed] == [p.name for p in fresh], (
        "run: python -m helpers.student"
    )
    for new in fresh:
        assert (ROOT / "student" / new.name).read_text() == new.read_text(), (
            f"{new.name} is stale: python -m helpers.student"
        )
    assert PLACEHOLDER.strip() in (ROOT / "student" / "01_data.ipynb").read_text()
