"""The expected answers of the graded exercises, from the book's own executed build.

``python -m helpers.course expected --profile quick`` runs chapters 1-3 with their
reference solutions (:mod:`helpers.course.worker`, the grader's own runner), stores
the answers each check cell sees in ``data/course/expected_<profile>.json`` and writes
the otter-grader test files from them (:func:`helpers.course.checks.write_test_files`).
Nothing is typed by hand; rerun it when a chapter changes what it computes.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..errors import EnvironmentProblem
from .checks import write_test_files
from .exercises import EXERCISES
from .grade import _run

__all__ = ["write_expected", "expected_path"]


def expected_path(profile: str) -> Path:
    """``data/course/expected_<profile>.json``. ``profile``: quick or paper."""
    root = Path(__file__).resolve().parents[2]
    return root / "data" / "course" / f"expected_{profile}.json"


def write_expected(profile: str = "quick", *, build=None, timeout: float = 3600):
    """Run chapters 1-3 and write their expected answers and test files.

    ``profile``: the run profile; ``build``: a folder of notebooks to run instead of
    ``notebooks/``; ``timeout``: seconds per chapter. Returns the JSON path.
    """
    root = Path(__file__).resolve().parents[2]
    folder = Path(build) if build else root / "notebooks"
    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        for chapter in EXERCISES:
            record = _run(folder / f"{chapter}.ipynb", chapter, timeout, profile, tmp)
            if isinstance(record, str):
                raise EnvironmentProblem(f"{chapter}: {record}; fix the chapter first.")
            for exercise, names in EXERCISES[chapter].items():
                missing = record["missing"].get(exercise)
                errors = record["errors"].get(exercise)
                if missing or errors or exercise not in record["answers"]:
                    raise EnvironmentProblem(
                        f"{chapter} {exercise}: the reference solution left "
                        f"{missing or 'no answers'} ({errors}); fix the chapter."
                    )
            expected[chapter] = record["answers"]
    path = expected_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    write_test_files(profile, expected)
    return path
