"""The book's structure: every chapter has the house anatomy and is stored without
outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import profiles, results
from helpers.execute import toc_files
from helpers.student import hidden_solution_problems, is_solution

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_toc_lists_every_notebook():
    pages = toc_files(ROOT)
    assert pages[0] == "index"
    assert {f"notebooks/{nb.stem}" for nb in NOTEBOOKS} <= set(pages)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_anatomy(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in code
    ), "strip outputs"
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    params = [c for c, t in zip(cells, tags) if "parameters" in t]
    assert len(params) == 1, "exactly one papermill parameters cell"
    assert "profile = " in "".join(params[0]["source"])
    colab = [c for c, t in zip(cells, tags) if "remove-cell" in t]
    assert colab and "google.colab" in "".join(colab[0]["source"])
    text = "\n".join(
        "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
    )
    assert "Learning goals" in text and "## Summary" in text and "Exercise" in text
    assert "footbibliography" in text
    assert "## Self-check" in text and ":class: dropdown" in text, (
        "a self-check quiz with hidden answers"
    )
    assert any(is_solution(c) for c in cells), "the exercises have solutions"
    assert not hidden_solution_problems(nb, path.name), (
        "solutions are hidden, input and output, until opened"
    )


MAX_CODE_LINE = (
    88  # house rule: code lines of notebook cells fit the book's content column
)
MAX_SOLUTION_LINE = (
    86  # a solution's code sits in its toggle's frame, two characters narrower
)


def long_code_lines(
    nb: dict,
    name: str,
    limit: int = MAX_CODE_LINE,
    solution_limit: int = MAX_SOLUTION_LINE,
) -> list[str]:
    """Code-cell lines longer than ``limit`` characters (``solution_limit`` in
    solutions), as readable messages."""
    problems = []
    for n, cell in enumerate(nb["cells"], start=1):
        if cell["cell_type"] != "code":
            continue
        most = solution_limit if is_solution(cell) else limit
        for m, line in enumerate("".join(cell["source"]).split("\n"), start=1):
            if len(line) > most:
                problems.append(
                    f"{name} cell {n} line {m} ({len(line)} > {most} "
                    f"characters): {line.strip()[:60]}..."
                )
    return problems


def test_long_code_lines_are_found():
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["x" * 200]},
            {"cell_type": "code", "source": ["a = 1\n", "b = '" + "y" * 90 + "'\n"]},
            {
                "cell_type": "code",
                "source": ["# Solution\n", "c = '" + "z" * 81 + "'\n"],
            },
        ]
    }
    assert long_code_lines(nb, "demo.ipynb") == [
        f"demo.ipynb cell 2 line 2 (96 > 88 characters): b = '{'y' * 55}...",
        f"demo.ipynb cell 3 line 2 (87 > 86 characters): c = '{'z' * 55}...",
    ]


def test_notebook_code_lines_fit_the_page():
    problems = [
        p
        for path in NOTEBOOKS
        for p in long_code_lines(json.loads(path.read_text()), path.name)
    ]
    assert not problems, (
        "code lines that would scroll sideways in the book:\n" + "\n".join(problems)
    )


def included_code_lines(nb: dict, name: str, limit: int = MAX_CODE_LINE) -> list[str]:
    """Lines longer than ``limit`` in the functions a chapter shows with
    ``{literalinclude} ... :pyobject:``."""
    import ast
    import re

    problems = []
    text = "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"
    )
    for path, obj in re.findall(r"```\{literalinclude\} (\S+)\n:pyobject: (\w+)", text):
        source = (ROOT / "notebooks" / path).resolve()
        lines = source.read_text().split("\n")
        nodes = [
            n
            for n in ast.walk(ast.parse("\n".join(lines)))
            if getattr(n, "name", None) == obj
        ]
        assert nodes, f"{name} includes {obj} from {path}, which does not define it"
        node = nodes[0]
        start = min(
            [node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]
        )
        for number in range(start, node.end_lineno + 1):
            if len(lines[number - 1]) > limit:
                problems.append(
                    f"{name} shows {source.relative_to(ROOT)}:{number} ({obj}), "
                    f"{len(lines[number - 1])} > {limit} characters"
                )
    return problems


def test_code_included_from_helpers_fits_the_page():
    problems = [
        p
        for path in NOTEBOOKS
        for p in included_code_lines(json.loads(path.read_text()), path.name)
    ]
    assert not problems, (
        "code shown in the book that would scroll sideways:\n" + "\n".join(problems)
    )


def test_teaching_pages_are_in_the_book():
    pages = toc_files(ROOT)
    assert {"course", "glossary", "status"} <= set(pages)
    glossary = (ROOT / "glossary.md").read_text()
    for term in [
        "Perturb-seq",
        "CRISPRa",
        "CRISPRi",
        "pseudobulk",
        "log-fold change",
        "L2 error",
        "Pearson delta",
        "buffering",
        "synergy",
        "local fdr",
        "foundation model",
        "fine-tuning",
        "embedding",
        "condition embedding",
        "ridge decoder",
    ]:
        assert f"\n{term}\n" in glossary, term
    course = (ROOT / "course.md").read_text()
    assert (
        "Learning objectives" in course
        and "Plan of sessions" in course
        and "| criterion | points |" in course
    )


def test_profiles():
    assert profiles.norman_dataset("quick") == "norman2019_subset"
    assert profiles.norman_dataset("paper") == "norman2019"
    with pytest.raises(ValueError, match="Unknown data profile 'fast'"):
        profiles.check_profile("fast")
    with pytest.raises(
        ValueError, match="has no 'paper' profile: it runs with profile = 'quick' only"
    ):
        profiles.check_profile("paper", supported=("quick",))
    assert (
        profiles.check_profile("quick", supported=("quick",))["norman"]
        == "norman2019_subset"
    )
    assert profiles.dataset_label("simulated_x").startswith("SYNTHETIC")


def test_results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    import pandas as pd

    path = results.save_table(pd.DataFrame({"a": [1]}), "01_data", "t")
    assert path == tmp_path / "01_data" / "t.csv" and path.read_text().startswith("a")
    with pytest.raises(ValueError):
        results.results_dir("../escape")


# Calls that return a path inside the clone: shown as a cell's last expression, the
# path's width depends on where the book was cloned (CI's path overflowed the column).
PATH_RETURNING = ("save_table", "save_figure", "save")


def displayed_paths(nb: dict, name: str) -> list[str]:
    """Code cells whose last statement is a bare call to a path-returning writer."""
    import ast

    problems = []
    for number, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            body = ast.parse(source).body
        except SyntaxError:  # IPython magics: not ours to check here
            continue
        last = body[-1] if body else None
        if (
            isinstance(last, ast.Expr)
            and isinstance(last.value, ast.Call)
            and isinstance(last.value.func, ast.Attribute)
            and last.value.func.attr in PATH_RETURNING
            and not source.rstrip().endswith(";")
        ):
            problems.append(f"{name} cell {number}: {last.value.func.attr}(...)")
    return problems


def test_displayed_paths_are_found():
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "source": ["x = 1\n", "results.save_table(t, c, 'n')"],
            },
            {"cell_type": "code", "source": ["results.save_table(t, c, 'n');"]},
            {"cell_type": "code", "source": ["p = results.save_table(t, c, 'n')"]},
            {"cell_type": "markdown", "source": ["results.save_table(t, c, 'n')"]},
        ]
    }
    assert displayed_paths(nb, "demo.ipynb") == ["demo.ipynb cell 0: save_table(...)"]


def test_no_cell_displays_a_path_of_the_clone():
    problems = [
        p
        for path in NOTEBOOKS
        for p in displayed_paths(json.loads(path.read_text()), path.name)
    ]
    assert not problems, "cells that would show a path of the clone:\n" + "\n".join(
        problems
    )
