"""Student copies: solutions removed, and the committed copies in sync with the chapters."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.student import PLACEHOLDER, student_copy, write_student_copies

ROOT = Path(__file__).resolve().parents[1]


def test_solutions_are_removed():
    nb = json.loads((ROOT / "notebooks" / "02_double_perturbations.ipynb").read_text())
    copy = student_copy(nb)
    solutions = [c for c in nb["cells"] if "hide-input" in c.get("metadata", {}).get("tags", [])]
    assert copy["metadata"]["student_copy"]["solutions_removed"] == len(solutions) >= 2
    text = json.dumps(copy)
    assert "# Solution" not in text and text.count("# Your solution here") == len(solutions)
    assert len(copy["cells"]) == len(nb["cells"])  # the exercises' questions stay


def test_committed_student_copies_are_up_to_date(tmp_path):
    fresh = write_student_copies(ROOT, tmp_path)
    committed = sorted((ROOT / "student").glob("*.ipynb"))
    assert [p.name for p in committed] == [p.name for p in fresh], "run: python -m helpers.student"
    for new in fresh:
        assert (ROOT / "student" / new.name).read_text() == new.read_text(), f"{new.name} is stale: python -m helpers.student"
    assert PLACEHOLDER.strip() in (ROOT / "student" / "01_data.ipynb").read_text()
