"""Student copies: solutions removed, self-check answers held out (questions kept), and
the committed copies in sync with the chapters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers.student import (
    ANSWER_PLACEHOLDER,
    PLACEHOLDER,
    answer_blocks,
    hold_out_answers,
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


def _answers_and_questions(nb: dict) -> tuple[list[str], list[str]]:
    """The full notebook's self-check answers (body lines of each ```{admonition}
    Answer block) and questions (numbered lines of its "## Self-check" cell), read
    line by line here, independently of helpers.student's pattern."""
    answers, questions = [], []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        lines = "".join(cell["source"]).splitlines()
        self_check = bool(lines) and lines[0].strip() == "## Self-check"
        inside = None
        for line in lines:
            if inside is None and self_check and re.match(r"\d+\. ", line):
                questions.append(line)
            elif inside is None and line.startswith("```{admonition} Answer"):
                inside = []
            elif inside is not None and line.strip() == "```":
                answers.append("\n".join(inside))
                inside = None
            elif inside is not None and not line.startswith(":"):
                inside.append(line)
    return answers, questions


@pytest.mark.parametrize(
    "chapter", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
)
def test_student_copies_hold_out_the_self_check_answers(chapter):
    full = json.loads((ROOT / "notebooks" / chapter).read_text())
    student = json.loads((ROOT / "student" / chapter).read_text())
    answers, questions = _answers_and_questions(full)
    assert answers and questions, f"{chapter}: no self-check found in the chapter"
    text = "\n".join("".join(c["source"]) for c in student["cells"])
    for answer in answers:
        for line in filter(None, (s.strip() for s in answer.splitlines())):
            assert line not in text, f"student/{chapter} shows an answer: {line[:60]}"
    for question in questions:
        assert question in text, f"student/{chapter} lost a question: {question[:60]}"
    assert "{admonition} Answer" not in text and "dropdown" not in text
    assert text.count(ANSWER_PLACEHOLDER) == len(answers)
    assert student["metadata"]["student_copy"]["answers_held_out"] == len(answers)


def test_hold_out_answers_hand_worked():
    text = (
        "1. Why?\n\n````{admonition} Answer\n:class: dropdown\nBecause.\n````\n\n"
        "2. How?\n\n:::{admonition} Answer\nLike this.\n:::\n\n"
        "```{admonition} Learning goals\n:class: tip\n- keep me\n```\n"
    )
    held, n = hold_out_answers(text)
    assert n == 2
    assert held == (
        f"1. Why?\n\n{ANSWER_PLACEHOLDER}\n\n2. How?\n\n{ANSWER_PLACEHOLDER}\n\n"
        "```{admonition} Learning goals\n:class: tip\n- keep me\n```\n"
    )
    assert answer_blocks(text) == ["Because.", "Like this."]
