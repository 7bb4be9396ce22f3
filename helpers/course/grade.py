"""The grading engine: ``python -m helpers.course grade SUBMISSIONS/ --out
grades.csv`` (``--json`` for one notebook).

Why otter-grader rather than nbgrader: otter's test files (the OK format, one
doctest case per answer) run the same way in a student's Jupyter or Colab session
(``pip install otter-grader``) and in the instructor's grader, its local grading needs
no Docker and no course database, and the notebook itself stays a plain notebook.
nbgrader needs a course directory, a gradebook database and its own cell metadata in
every notebook, and grades through a Jupyter server extension; none of that suits a
book whose notebooks are also its chapters. The book runs otter's test files through
:class:`otter.test_files.OKTestFile` (:mod:`helpers.course.checks`), not ``otter
run``: that would need an autograder zip built by ``otter assign`` from notebooks in
otter's own assignment format.

Each submitted notebook runs in its own process (:mod:`helpers.course.worker`) with a
time limit. The process records the answer variables at each check cell; this
process then runs every test case, public and hidden, on those recorded values, so
code in a notebook cannot change the tests. One row per (student, exercise):
``student`` (the notebook's file stem), ``exercise`` (``<chapter>/exN``),
``points``, ``max_points``, ``status``: ``passed``; ``failed: ...`` (which answers do
not match, or are missing); ``crashed: ...`` (an error in the exercise's cells, or
the process died); ``timeout: ...``; ``tampered: ...`` (the checks' setup cell or a
check cell changed or removed; that exercise gets 0); ``unreadable: ...``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .checks import run_test_file, tests_dir
from .exercises import CHECK_TEMPLATE, EXERCISES, SETUP_TEMPLATE

__all__ = ["grade_notebook", "grade_folder", "COLUMNS"]

COLUMNS = ["student", "exercise", "points", "max_points", "status"]
_SETUP = re.compile(r"checks\.notebook\(\s*[\"'](\w+)[\"']")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _max_points(chapter: str, exercise: str) -> int:
    return len(EXERCISES[chapter][exercise]["answers"])


def _rows(student: str, chapter: str, status: str, points=None) -> list[dict]:
    return [
        {
            "student": student,
            "exercise": f"{chapter}/{ex}",
            "points": 0 if points is None else points,
            "max_points": _max_points(chapter, ex),
            "status": status,
        }
        for ex in EXERCISES[chapter]
    ]


def _tampered(cells: list[dict], chapter: str) -> dict[str, str]:
    """Exercise -> why its checks count as tampered (empty when intact)."""
    code = [_source(c).strip() for c in cells if c.get("cell_type") == "code"]
    problems = {}
    setup = SETUP_TEMPLATE.format(chapter=chapter)
    if code.count(setup) != 1:
        for ex in EXERCISES[chapter]:
            problems[ex] = "tampered: the checks' setup cell was changed or removed"
        return problems
    position = code.index(setup)
    for ex in EXERCISES[chapter]:
        check = CHECK_TEMPLATE.format(exercise=ex)
        where = [i for i, text in enumerate(code) if text == check]
        if len(where) != 1 or where[0] < position:
            problems[ex] = f"tampered: the check cell of {ex} was changed or removed"
        else:
            position = where[0]
    for text in code:
        if "grader.check" in text and text not in {
            CHECK_TEMPLATE.format(exercise=ex) for ex in EXERCISES[chapter]
        }:
            for ex in EXERCISES[chapter]:
                problems.setdefault(ex, "tampered: a check cell was edited")
    return problems


def _run(path: Path, chapter: str, timeout: float, profile, cache) -> dict | str:
    """The worker's record, or a status line when the process failed."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        out = Path(tmp) / "record.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(root), *filter(None, [env.get("PYTHONPATH")])]
        )
        env["MPLBACKEND"] = "Agg"
        env["PERTURBBOOK_RESULTS"] = str(Path(tmp) / "results")
        argv = [sys.executable, "-m", "helpers.course.worker", str(path), chapter]
        argv += [str(out)]
        if profile:
            argv += ["--profile", profile]
        if cache:
            argv += ["--cache", str(cache)]
        log = Path(tmp) / "log.txt"
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                argv,
                cwd=root / "notebooks",
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return f"timeout: the notebook did not finish within {timeout:g} s"
        if code != 0 or not out.exists():
            lines = log.read_text(errors="replace").strip().splitlines()
            last = lines[-1][:200] if lines else "no output"
            return f"crashed: the notebook's process ended (exit code {code}): {last}"
        return json.loads(out.read_text())


def grade_notebook(
    path: str | os.PathLike,
    *,
    chapter: str | None = None,
    timeout: float = 600,
    profile: str | None = None,
    cache: str | os.PathLike | None = None,
) -> list[dict]:
    """Grade one submitted notebook: one row (:data:`COLUMNS`) per exercise.

    ``path``: the notebook; ``chapter``: its chapter stem (default: read from the
    checks' setup cell); ``timeout``: seconds the notebook may run; ``profile``:
    overrides the notebook's ``profile`` parameter; ``cache``: a folder of saved
    namespaces (:func:`helpers.course.worker.run_notebook`), so that identical
    chapter code before the exercises runs once for a class.
    """
    path = Path(path)
    student = path.name.removesuffix(".ipynb")
    try:
        notebook = json.loads(path.read_text())
        cells = notebook["cells"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        status = f"unreadable: not a notebook ({type(err).__name__})"
        if chapter is None:
            return [dict(zip(COLUMNS, [student, "*", 0, 0, status]))]
        return _rows(student, chapter, status)
    if chapter is None:
        found = {m.group(1) for c in cells for m in _SETUP.finditer(_source(c))}
        found &= set(EXERCISES)
        if len(found) != 1:
            status = (
                "tampered: no checks' setup cell names the chapter (or pass --chapter)"
            )
            return [dict(zip(COLUMNS, [student, "*", 0, 0, status]))]
        chapter = found.pop()
    if chapter not in EXERCISES:
        raise InputError(
            f"No graded exercises for {chapter!r}; chapters: {sorted(EXERCISES)}."
        )
    tampered = _tampered(cells, chapter)
    if len(tampered) == len(EXERCISES[chapter]):
        return [
            row | {"status": tampered[row["exercise"].split("/")[1]]}
            for row in _rows(student, chapter, "")
        ]
    record = _run(path, chapter, timeout, profile, cache)
    if isinstance(record, str):
        return _rows(student, chapter, record)
    rows = []
    for exercise in EXERCISES[chapter]:
        row = {
            "student": student,
            "exercise": f"{chapter}/{exercise}",
            "points": 0,
            "max_points": _max_points(chapter, exercise),
        }
        if exercise in tampered:
            rows.append(row | {"status": tampered[exercise]})
            continue
        test = tests_dir(record["profile"], chapter, hidden=True) / f"{exercise}.py"
        if not test.exists():
            raise InputError(
                f"No hidden tests for {chapter} on the {record['profile']!r} profile; "
                "run python -m helpers.course expected --profile "
                f"{record['profile']} first."
            )
        answers = record["answers"].get(exercise, {})
        results = run_test_file(test, answers)
        failed = [name.split(" ", 1)[1] for name, ok, _, _ in results if not ok]
        row["points"] = len(results) - len(failed)
        errors = record["errors"].get(exercise, [])
        missing = record["missing"].get(exercise, [])
        if not failed:
            status = "passed"
        elif errors:  # the first error is the cause; later ones often follow it
            more = f" (and {len(errors) - 1} later errors)" if len(errors) > 1 else ""
            status = f"crashed: {errors[0]}{more}"
        elif missing:
            status = f"failed: missing {', '.join(missing)}"
        else:
            verb = "does" if len(failed) == 1 else "do"
            status = f"failed: {', '.join(failed)} {verb} not match"
        rows.append(row | {"status": status})
    return rows


def grade_folder(
    folder: str | os.PathLike,
    *,
    timeout: float = 600,
    chapter: str | None = None,
    cache: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Grade every ``*.ipynb`` in ``folder`` (one process each, in name order).

    ``folder``: the submissions; ``timeout``: seconds per notebook; ``chapter``: the
    chapter of every notebook (default: read from each); ``cache``: see
    :func:`grade_notebook` (default: a temporary folder shared by this call).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"{folder} is not a folder: pass the folder of submitted notebooks "
            "(or one .ipynb with --json)."
        )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="grade-cache-") as tmp:
        for path in sorted(folder.glob("*.ipynb")):
            rows += grade_notebook(
                path, chapter=chapter, timeout=timeout, cache=cache or tmp
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def grade_main(args) -> int:
    """The ``grade`` command (:mod:`helpers.course.cli`). ``args``: its namespace."""
    target = Path(args.submissions)
    if args.json:
        if target.suffix != ".ipynb":
            raise InputError(
                f"--json grades one notebook; {target} is not an .ipynb file."
            )
        rows = grade_notebook(target, chapter=args.chapter, timeout=args.timeout)
        print(json.dumps(rows, indent=1))
        return 0
    table = grade_folder(target, timeout=args.timeout, chapter=args.chapter)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table)} rows to {args.out}")
    print(table.to_string(index=False))
    return 0
