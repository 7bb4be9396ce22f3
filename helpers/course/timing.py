"""How long each chapter takes a student, and whether the course's tracks fit.

Two kinds of minutes, kept apart:

- **Run time**, measured: the seconds each chapter took when the build executed it
  (quick profile, the build machine's cores), and those of the Colab-like runtime
  (``scripts/colab_like.sh``) where its summary exists.
- **Reading and exercise minutes**, an ESTIMATE computed from each chapter's text:

  ``reading = words / words_per_minute``, ``code = code_cells * minutes_per_cell``,
  ``exercises = n_exercises * minutes_per_exercise``.

  Words are those of the Markdown cells; code cells are those a student runs (not
  the hidden solutions, the grading checks or the removed setup cells); an
  exercise is a ``**Exercise N.**`` paragraph. The rates are stated in the page.

A track is a list of sessions; in each session a chapter is done in ``class`` (its
code and exercises in the session's working block, its reading before the
session), as ``reading`` before the session, as ``homework`` (all of it, between
sessions) or is ``optional``. :func:`track_fit` checks every block and every
session's work outside class against their minutes. :func:`timing_page` writes the
Markdown that ``course.md`` includes (``course_timing.md``, written by the build).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from ..errors import InputError

__all__ = [
    "WORDS_PER_MINUTE",
    "MINUTES_PER_CELL",
    "MINUTES_PER_EXERCISE",
    "TRACKS",
    "chapter_effort",
    "effort_table",
    "track_fit",
    "timing_page",
    "read_colab_like",
]

#: reading speed for dense technical prose (words per minute)
WORDS_PER_MINUTE = 120
#: minutes to read, run and look at the output of one code cell
MINUTES_PER_CELL = 1.0
#: minutes a student with basic Python needs for one exercise
MINUTES_PER_EXERCISE = 10.0

_EXERCISE = re.compile(r"\*\*Exercise\s+\d+\.?\*\*")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_SKIP_TAGS = {"remove-cell", "parameters", "remove-input"}

#: track -> {"session_minutes", "block_minutes", "outside_minutes", "sessions"};
#: a session is (title, {chapter number: mode}); modes: class, reading, homework,
#: optional. Every chapter 1-10 appears once in every track.
TRACKS: dict[str, dict] = {
    "3-session core": {
        "session_minutes": 90,
        "block_minutes": 60,
        "outside_minutes": 120,
        "sessions": [
            ("1. Data and baselines", {1: "reading", 2: "class"}),
            ("2. The linear model and embeddings", {3: "class", 5: "reading"}),
            ("3. Benchmark your model; the debate", {7: "class", 9: "reading"}),
            (
                "optional reading",
                {4: "optional", 6: "optional", 8: "optional", 10: "optional"},
            ),
        ],
    },
    "5-session plan": {
        "session_minutes": 90,
        "block_minutes": 60,
        "outside_minutes": 150,
        "sessions": [
            ("1. Data and baselines", {1: "reading", 2: "class"}),
            ("2. Linear models", {3: "class"}),
            ("3. Foundation models and embeddings", {4: "homework", 5: "class"}),
            ("4. Interactions and your own model", {6: "homework", 7: "class"}),
            ("5. The debate since the paper", {8: "homework", 9: "class"}),
            ("optional 6. Scaling up", {10: "optional"}),
        ],
    },
    "2-week module": {
        "session_minutes": 240,
        "block_minutes": 180,
        "outside_minutes": 120,
        "sessions": [(f"day {k}", {k: "class"}) for k in range(1, 11)],
    },
}


def _notebook(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(
            f"cannot read the notebook {path} ({err}); pass a chapter's .ipynb file"
        ) from None


def chapter_effort(
    path: Path | str,
    *,
    words_per_minute: float = WORDS_PER_MINUTE,
    minutes_per_cell: float = MINUTES_PER_CELL,
    minutes_per_exercise: float = MINUTES_PER_EXERCISE,
) -> dict:
    """Estimated student minutes of one chapter notebook.

    Parameters
    ----------
    path : the chapter's ``.ipynb`` file.
    words_per_minute : reading speed; ``reading_min = words / words_per_minute``.
    minutes_per_cell : minutes per code cell a student runs;
        ``code_min = code_cells * minutes_per_cell``.
    minutes_per_exercise : ``exercise_min = exercises * minutes_per_exercise``.

    Returns a dict: ``chapter`` (the file stem), ``words``, ``code_cells``,
    ``exercises``, ``reading_min``, ``code_min``, ``exercise_min`` (minutes rounded
    to 0.1).
    """
    if words_per_minute <= 0 or minutes_per_cell < 0 or minutes_per_exercise < 0:
        raise InputError(
            "the reading speed must be positive and the minutes per cell and per "
            "exercise non-negative; pass e.g. words_per_minute=120"
        )
    words = cells = exercises = 0
    for cell in _notebook(Path(path)).get("cells", []):
        source = "".join(cell.get("source", []))
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.get("cell_type") == "markdown":
            words += len(_WORD.findall(source))
            exercises += len(_EXERCISE.findall(source))
        elif cell.get("cell_type") == "code" and source.strip():
            first = source.lstrip().splitlines()[0]
            if tags & _SKIP_TAGS or first.startswith("# Solution"):
                continue
            if source.strip().startswith(("grader.check(", "# Checks of your")):
                continue
            cells += 1
    return {
        "chapter": Path(path).stem,
        "words": words,
        "code_cells": cells,
        "exercises": exercises,
        "reading_min": round(words / words_per_minute, 1),
        "code_min": round(cells * minutes_per_cell, 1),
        "exercise_min": round(exercises * minutes_per_exercise, 1),
    }


def effort_table(root: Path | str, **rates) -> pd.DataFrame:
    """:func:`chapter_effort` of every ``notebooks/NN_*.ipynb`` under ``root``
    (keyword ``rates`` as there), one row per chapter with its ``number``."""
    paths = sorted(Path(root).glob("notebooks/[0-9][0-9]_*.ipynb"))
    if not paths:
        raise InputError(
            f"no chapter notebooks under {root}/notebooks; pass the book's root folder"
        )
    rows = [chapter_effort(p, **rates) for p in paths]
    table = pd.DataFrame(rows)
    table.insert(1, "number", [int(c[:2]) for c in table["chapter"]])
    return table


def track_fit(
    effort: pd.DataFrame,
    runtimes: dict[str, float] | None = None,
    *,
    tracks: dict[str, dict] | None = None,
    minutes_per_exercise: float = MINUTES_PER_EXERCISE,
) -> pd.DataFrame:
    """Check every track's sessions against their minutes.

    Parameters
    ----------
    effort : :func:`effort_table`'s table (columns ``number``, ``reading_min``,
        ``code_min``, ``exercise_min``, ``exercises``).
    runtimes : chapter stem -> measured run seconds (missing: 0).
    tracks : as :data:`TRACKS` (default).
    minutes_per_exercise : minutes of one exercise moved from class to homework.

    For a session, ``in_class = sum(code + exercises + run)`` of its ``class``
    chapters; when it exceeds the block, ``k = ceil(over / minutes_per_exercise)``
    exercises (at most those the chapters have) move to homework. ``outside`` is the
    reading of its ``class`` and ``reading`` chapters, all of its ``homework``
    chapters (reading + code + exercises + run) and the moved exercises. The session
    fits when ``in_class - moved <= block`` and ``outside <= outside budget``.
    Returns one row per session (``optional`` chapters are listed, not counted).
    """
    tracks = TRACKS if tracks is None else tracks
    runtimes = runtimes or {}
    by_number = effort.set_index("number")
    rows = []
    for track, spec in tracks.items():
        for title, chapters in spec["sessions"]:
            missing = [n for n in chapters if n not in by_number.index]
            if missing:
                raise InputError(
                    f"track {track!r} names chapter(s) {missing} without a notebook; "
                    "fix TRACKS or the notebooks folder"
                )
            in_class = outside = 0.0
            n_exercises = 0
            for number, mode in chapters.items():
                row = by_number.loc[number]
                run = runtimes.get(row["chapter"], 0.0) / 60
                work = row["code_min"] + row["exercise_min"] + run
                if mode == "class":
                    in_class += work
                    outside += row["reading_min"]
                    n_exercises += int(row["exercises"])
                elif mode == "reading":
                    outside += row["reading_min"]
                elif mode == "homework":
                    outside += row["reading_min"] + work
                elif mode != "optional":
                    raise InputError(
                        f"unknown mode {mode!r} in track {track!r}; use class, "
                        "reading, homework or optional"
                    )
            over = in_class - spec["block_minutes"]
            moved = 0
            if over > 0 and minutes_per_exercise > 0:
                moved = min(n_exercises, math.ceil(over / minutes_per_exercise))
            in_class_after = in_class - moved * minutes_per_exercise
            outside += moved * minutes_per_exercise
            rows.append(
                {
                    "track": track,
                    "session": title,
                    "chapters": chapters,
                    "in_class_min": round(in_class, 1),
                    "block_min": spec["block_minutes"],
                    "exercises_to_homework": moved,
                    "outside_min": round(outside, 1),
                    "outside_budget_min": spec["outside_minutes"],
                    "fits": bool(
                        in_class_after <= spec["block_minutes"] + 1e-9
                        and outside <= spec["outside_minutes"] + 1e-9
                    ),
                }
            )
    return pd.DataFrame(rows)


def read_colab_like(path: Path | str) -> dict[str, float]:
    """Chapter -> seconds of the chapters that passed in a Colab-like run's
    ``summary.tsv`` (columns ``chapter``, ``status``, ``seconds``); ``{}`` when the
    file does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    table = pd.read_csv(path, sep="\t")
    ok = table[table["status"] == "ok"]
    return {str(r.chapter): float(r.seconds) for r in ok.itertuples()}


def _mode_text(chapters: dict[int, str]) -> str:
    return ", ".join(f"{n} ({mode})" for n, mode in chapters.items())


def timing_page(
    status: pd.DataFrame,
    effort: pd.DataFrame,
    *,
    cores: int | None,
    colab: dict[str, float] | None = None,
) -> str:
    """Markdown of ``course_timing.md``: measured run time per chapter, the
    estimated reading and exercise minutes, and the fit of every track.

    Parameters
    ----------
    status : the build's status table (columns ``notebook``, ``profile``,
        ``status``, ``seconds``).
    effort : :func:`effort_table`'s table.
    cores : the build machine's CPU count (``os.cpu_count()``).
    colab : chapter -> seconds from the Colab-like runtime, or None.
    """
    colab = colab or {}
    ran = {
        r.notebook: (float(r.seconds), r.profile, r.status) for r in status.itertuples()
    }
    runtimes = {k: v[0] for k, v in ran.items() if v[2] == "ok"}
    lines = [
        "#### Minutes per chapter",
        "",
        f"Run time is **measured**: the seconds each chapter took when this book was "
        f"built, on a machine with {cores} CPU cores"
        + (
            "; the Colab-like column is the runtime of `scripts/colab_like.sh` "
            "(Python 3.12, current packages, the chapters' own Colab setup cells)."
            if colab
            else "."
        )
        + " Reading, code and exercise minutes are an **estimate**, computed from "
        f"each chapter's text (`helpers.course.timing`): prose at {WORDS_PER_MINUTE} "
        f"words per minute (dense technical text), {MINUTES_PER_CELL:g} minute per "
        f"code cell a student runs, {MINUTES_PER_EXERCISE:g} minutes per exercise. "
        "No pilot class has timed them yet.",
        "",
        f"| chapter | run (s, this build, {cores} cores) |"
        + (" run (s, Colab-like) |" if colab else "")
        + " words | reading (min, est.) | code cells | code (min, est.) | "
        "exercises | exercises (min, est.) | total (min, est. + run) |",
        "|---|---|" + ("---|" if colab else "") + "---|---|---|---|---|---|---|",
    ]
    for row in effort.itertuples():
        seconds = ran.get(row.chapter)
        run = (
            f"{seconds[0]:.0f}"
            + ("" if seconds[1] == "quick" else f" ({seconds[1]})")
            + ("" if seconds[2] == "ok" else f" ({seconds[2]})")
            if seconds
            else "not run"
        )
        total = (
            row.reading_min
            + row.code_min
            + row.exercise_min
            + runtimes.get(row.chapter, 0.0) / 60
        )
        lines.append(
            f"| {row.chapter} | {run} |"
            + (
                f" {colab[row.chapter]:.0f} |"
                if row.chapter in colab
                else (" — |" if colab else "")
            )
            + f" {row.words} | {row.reading_min:.0f} | {row.code_cells} | "
            f"{row.code_min:.0f} | {row.exercises} | {row.exercise_min:.0f} | "
            f"{total:.0f} |"
        )
    known = set(effort["number"])
    checked = {
        name: spec
        for name, spec in TRACKS.items()
        if all(n in known for _, chapters in spec["sessions"] for n in chapters)
    }
    fit = track_fit(effort, runtimes, tracks=checked)
    lines += [
        "",
        "#### Do the tracks fit?",
        "",
        "Computed from the minutes above. *In class* is the code, exercises and run "
        "time of the chapters worked in the session's block; their reading is done "
        "before. *Outside* is that reading, the reading-only chapters, the homework "
        "chapters in full and any exercises moved out of class because the block is "
        "full."
        + (
            ""
            if set(effort["chapter"]) <= set(runtimes)
            else " Chapters this build did not run (or that failed) count no run time."
        ),
        "",
        "| track | session | chapters (mode) | in class (min) | block (min) | "
        "exercises moved to homework | outside (min) | outside budget (min) | fits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in fit.itertuples() if len(fit) else ():
        lines.append(
            f"| {row.track} | {row.session} | {_mode_text(row.chapters)} | "
            f"{row.in_class_min:.0f} | {row.block_min} | {row.exercises_to_homework} "
            f"| {row.outside_min:.0f} | {row.outside_budget_min} | "
            f"{'yes' if row.fits else 'NO'} |"
        )
    n_bad = int((~fit["fits"]).sum()) if len(fit) else 0
    lines += [
        "",
        *(
            f"Track {name!r} not checked: some of its chapters have no notebook."
            for name in TRACKS
            if name not in checked
        ),
        "",
        (
            "No track was checked."
            if not len(fit)
            else "Every session of every checked track fits."
            if n_bad == 0
            else f"{n_bad} session(s) do not fit (marked NO): give them more time or "
            "move a chapter to homework."
        ),
        "",
    ]
    return "\n".join(lines)
