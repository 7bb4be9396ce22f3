"""The exercises' checks: otter-grader test files, run in the notebook (public) and
by the instructor's grader (public and hidden).

A test file is otter-grader's OK format (a Python file defining ``test = {...}``: one
doctest suite, one case per answer variable, ``hidden`` per case, one point per
case). ``python -m helpers.course expected`` writes them from the book's executed
build (:mod:`helpers.course.expected`): the public cases under
``data/course/tests/<profile>/<chapter>/`` (what a student's check cell runs), every
case under ``data/course/hidden/<profile>/<chapter>/`` (what the grader runs; not in
the notebooks). They are run by otter's own :class:`otter.test_files.OKTestFile` when
otter-grader is installed, else by the same doctests through :mod:`doctest`.

In a chapter::

    from helpers.course import checks
    grader = checks.notebook("01_data", profile)
    grader.check("ex1")
"""

from __future__ import annotations

import doctest
import json
import math
import pprint
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .exercises import EXERCISES

__all__ = ["notebook", "close", "to_jsonable", "run_test_file", "tests_dir"]


def tests_dir(profile: str, chapter: str, *, hidden: bool = False) -> Path:
    """The folder of a chapter's test files. ``profile``: quick or paper;
    ``chapter``: the chapter stem; ``hidden``: the instructor's (every case)."""
    kind = "hidden" if hidden else "tests"
    here = Path(__file__).resolve().parents[2]
    return here / "data" / "course" / kind / profile / chapter


def to_jsonable(value):
    """An answer as plain JSON values (tables as nested dicts keyed by str; numpy
    scalars as Python numbers). ``value``: the student's answer."""
    if isinstance(value, pd.DataFrame):
        return {str(c): to_jsonable(value[c].to_dict()) for c in value.columns}
    if isinstance(value, pd.Series):
        return {str(k): to_jsonable(v) for k, v in value.to_dict().items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, pd.Index, np.ndarray)):
        return [to_jsonable(v) for v in list(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def close(value, expected, tolerance=0) -> bool:
    """Whether an answer matches the expected value.

    ``value``: the answer (any type :func:`to_jsonable` takes); ``expected``: plain
    JSON; ``tolerance``: ``0`` (exact) or ``(relative, absolute)``: numbers match when
    ``|x - e| <= absolute + relative * |e|`` (element-wise in lists and tables; NaN
    matches NaN).
    """
    value = to_jsonable(value)
    if isinstance(expected, dict):
        return (
            isinstance(value, dict)
            and set(value) == set(expected)
            and all(close(value[k], expected[k], tolerance) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(value, list)
            and len(value) == len(expected)
            and all(close(v, e, tolerance) for v, e in zip(value, expected))
        )
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, (int, float)) and isinstance(value, (int, float)):
        if math.isnan(expected) or math.isnan(value):
            return math.isnan(expected) and math.isnan(value)
        if not tolerance:
            return value == expected
        relative, absolute = tolerance
        return abs(value - expected) <= absolute + relative * abs(expected)
    return value == expected


def _fallback_run(path: Path, namespace: dict) -> list[tuple[str, bool, bool, str]]:
    spec: dict = {}
    exec(path.read_text(), spec)
    out = []
    for i, case in enumerate(spec["test"]["suites"][0]["cases"]):
        name = case.get("name", f"{spec['test']['name']} - {i + 1}")
        examples = doctest.DocTestParser().get_examples(case["code"])
        test = doctest.DocTest(examples, dict(namespace), name, None, 0, None)
        report: list[str] = []
        runner = doctest.DocTestRunner(verbose=False)
        runner.run(test, out=report.append, clear_globs=False)
        failed = runner.summarize(verbose=False).failed
        out.append((name, failed == 0, case.get("hidden", True), "".join(report)))
    return out


def run_test_file(path: Path, namespace: dict) -> list[tuple[str, bool, bool, str]]:
    """Run one OK test file on ``namespace``: (case name, passed, hidden, message) per
    case. ``path``: the test file; ``namespace``: the variables the cases read."""
    try:  # optional: a student's Colab session may lack otter-grader
        from otter.test_files import OKTestFile
    except ImportError:
        return _fallback_run(path, namespace)
    test = OKTestFile.from_file(str(path))
    test.run(dict(namespace))
    return [
        (r.test_case.name, bool(r.passed), bool(r.test_case.hidden), r.message)
        for r in test.test_case_results
    ]


@dataclass
class CheckResult:
    """What a check cell shows: one line per exercise."""

    exercise: str
    passed: int
    total: int
    message: str
    hint: str

    def __repr__(self) -> str:
        if self.total == 0:
            return f"{self.exercise}: {self.message}"
        if self.passed == self.total:
            return f"{self.exercise}: all {self.total} public checks passed"
        return (
            f"{self.exercise}: {self.passed} of {self.total} public checks passed. "
            f"{self.message.strip().splitlines()[-1] if self.message else ''}\n"
            f"Hint: {self.hint}"
        )


@dataclass
class Checker:
    """The public checks of one chapter and profile (see :func:`notebook`)."""

    chapter: str
    profile: str

    def check(self, exercise: str) -> CheckResult:
        """Run the public checks of ``exercise`` (e.g. ``"ex1"``) on the caller's
        variables."""
        if exercise not in EXERCISES[self.chapter]:
            raise InputError(
                f"{self.chapter} has no exercise {exercise!r}; use one of "
                f"{sorted(EXERCISES[self.chapter])}."
            )
        path = tests_dir(self.profile, self.chapter) / f"{exercise}.py"
        if not path.exists():  # e.g. a profile whose build made no test files yet
            return CheckResult(
                exercise,
                0,
                0,
                f"no checks for the {self.profile!r} profile yet (python -m "
                f"helpers.course expected --profile {self.profile} writes them)",
                EXERCISES[self.chapter][exercise]["hint"],
            )
        namespace = sys._getframe(1).f_globals
        results = run_test_file(path, namespace)
        failed = [r for r in results if not r[1]]
        return CheckResult(
            exercise,
            len(results) - len(failed),
            len(results),
            failed[0][3] if failed else "",
            EXERCISES[self.chapter][exercise]["hint"],
        )


def notebook(chapter: str, profile: str = "quick") -> Checker:
    """The checks of a chapter's exercises, as a chapter's check cells call them.

    ``chapter``: the chapter stem (``"01_data"``); ``profile``: the run profile whose
    expected values apply.
    """
    if chapter not in EXERCISES:
        raise InputError(
            f"No graded exercises for {chapter!r}; chapters: {sorted(EXERCISES)}."
        )
    return Checker(chapter, profile)


def write_test_files(profile: str, expected: dict) -> list[Path]:
    """Write the OK test files of every chapter from the expected answers.

    ``profile``: the run profile; ``expected``: chapter -> exercise -> variable ->
    value (from the executed build). Returns the written paths.
    """
    written = []
    for chapter, exercises in _in_order(expected):
        for exercise, answers in exercises.items():
            spec = EXERCISES[chapter][exercise]
            for hidden in (False, True):
                cases = []
                for name, tolerance in spec["answers"].items():
                    public = name in spec["public"]
                    if not hidden and not public:
                        continue
                    literal = json.dumps(answers[name], sort_keys=True)
                    code = (
                        ">>> import json\n"
                        ">>> from helpers.course.checks import close\n"
                        f">>> close({name}, json.loads({literal!r}), "
                        f"{tolerance!r})\nTrue"
                    )
                    cases.append(
                        {"name": f"{exercise} {name}", "code": code,
                         "hidden": not public, "points": 1, "locked": False}
                    )  # fmt: skip
                test = {
                    "name": exercise,
                    "points": None,
                    "suites": [
                        {
                            "cases": cases,
                            "scored": True,
                            "setup": "",
                            "teardown": "",
                            "type": "doctest",
                        }
                    ],  # fmt: skip
                }
                folder = tests_dir(profile, chapter, hidden=hidden)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{exercise}.py"
                path.write_text(
                    "# Written by python -m helpers.course expected from the "
                    "executed build; do not edit.\n"
                    f"test = {pprint.pformat(test, width=88, sort_dicts=False)}\n"
                )
                written.append(path)
    return written


def _in_order(expected: dict):
    """(chapter, exercises) in the order of :data:`EXERCISES`."""
    return [(c, expected[c]) for c in EXERCISES if c in expected]
