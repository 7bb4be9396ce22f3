"""Student copies of the chapters: the notebooks without their exercise solutions.

A solution is a code cell whose first line is ``# Solution``. In the book it is hidden,
input AND output, behind one toggle until the reader opens it: myst-nb's ``hide-cell``
tag (a ``<details>`` element in the HTML) with the cell-level prompts ``Show solution``
/ ``Hide solution`` (:data:`SOLUTION_METADATA`); :func:`hide_solution` applies exactly
that and :func:`hidden_solution_problems` checks a chapter for it. In the student copy
the solution's source becomes ``# Your solution here`` and the tag and prompts are
dropped.

The self-check answers (```` ```{admonition} Answer ```` blocks with ``:class:
dropdown`` under each question of "## Self-check") fold away in the book, but Jupyter
and Colab show them as plain text, so the student copy holds them out: each block
becomes the line :data:`ANSWER_PLACEHOLDER`, and the questions stay.
``python -m helpers.student`` writes ``student/<chapter>.ipynb`` for every
chapter; a test checks that the committed copies are up to date.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from .results import book_root
from .errors import InputError

__all__ = [
    "ANSWER_PLACEHOLDER",
    "answer_blocks",
    "hold_out_answers",
    "SOLUTION_METADATA",
    "SOLUTION_TAG",
    "hidden_solution_problems",
    "hide_solution",
    "is_solution",
    "student_copy",
    "write_student_copies",
]

PLACEHOLDER = "# Your solution here\n"
# myst-nb: input and output behind one toggle (hide-input would show the output)
SOLUTION_TAG = "hide-cell"
SOLUTION_METADATA = {
    "mystnb": {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}
}
# A MyST answer block: ```{admonition} Answer ... ``` (or ::: fences), any fence
# length, body up to the matching closing fence.
_ANSWER = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{admonition\}[ \t]+Answer\b[^\n]*\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
ANSWER_PLACEHOLDER = (
    "*Answer: held out of the student copy; it is in the full notebook "
    "(`notebooks/`), or ask your instructor.*"
)
_PARTIAL_HIDE_TAGS = ("hide-input", "hide-output", "remove-input", "remove-output")


def is_solution(cell: dict) -> bool:
    """Whether a notebook cell is an exercise solution: a code cell whose first line is
    ``# Solution``."""
    return cell["cell_type"] == "code" and "".join(cell["source"]).lstrip().startswith(
        "# Solution"
    )


def hide_solution(cell: dict) -> dict:
    """Tag a solution cell so that the book hides its input and output until the reader
    opens it."""
    if not is_solution(cell):
        raise InputError(
            "hide_solution() takes a code cell whose first line is '# Solution'"
        )
    metadata = cell.setdefault("metadata", {})
    tags = [t for t in metadata.get("tags", []) if t not in _PARTIAL_HIDE_TAGS]
    metadata["tags"] = tags if SOLUTION_TAG in tags else [*tags, SOLUTION_TAG]
    metadata.setdefault("mystnb", {}).update(SOLUTION_METADATA["mystnb"])
    return cell


def hidden_solution_problems(notebook: dict, name: str = "notebook") -> list[str]:
    """Solution cells of a notebook that the book would not hide completely, as readable
    messages."""
    problems = []
    for n, cell in enumerate(notebook["cells"], start=1):
        if not is_solution(cell):
            continue
        metadata = cell.get("metadata", {})
        tags = metadata.get("tags", [])
        if SOLUTION_TAG not in tags:
            problems.append(
                f"{name} cell {n}: solution without the {SOLUTION_TAG!r} tag "
                "(its output would show)"
            )
        partial = [t for t in tags if t in _PARTIAL_HIDE_TAGS]
        if partial:
            problems.append(
                f"{name} cell {n}: solution tagged {partial}; use only {SOLUTION_TAG!r}"
            )
        prompts = metadata.get("mystnb", {})
        for key, value in SOLUTION_METADATA["mystnb"].items():
            if prompts.get(key) != value:
                problems.append(
                    f"{name} cell {n}: solution toggle needs metadata "
                    f"mystnb.{key} = {value!r}"
                )
    return problems


def answer_blocks(text: str) -> list[str]:
    """The bodies of the ``{admonition} Answer`` blocks in a markdown text, without
    their option lines (``:class: dropdown``).

    ``text``: a markdown cell's source.
    """
    bodies = []
    for match in _ANSWER.finditer(text):
        lines = match.group("body").splitlines()
        bodies.append(
            "\n".join(line for line in lines if not line.startswith(":")).strip()
        )
    return bodies


def hold_out_answers(text: str) -> tuple[str, int]:
    """A markdown text with every ``{admonition} Answer`` block replaced by
    :data:`ANSWER_PLACEHOLDER`, and the number of blocks replaced.

    ``text``: a markdown cell's source.
    """
    return _ANSWER.subn(ANSWER_PLACEHOLDER, text)


def student_copy(notebook: dict) -> dict:
    """A copy of a notebook (nbformat JSON as dict) with solution cells emptied,
    self-check answers held out and outputs cleared.

    ``notebook``: the chapter as nbformat JSON (a dict); it is not changed.
    """
    nb = copy.deepcopy(notebook)
    removed = answers = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text, n = hold_out_answers("".join(cell["source"]))
            if n:
                cell["source"] = text.splitlines(keepends=True)
                answers += n
            continue
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        if is_solution(cell):
            cell["source"] = PLACEHOLDER
            metadata = cell.setdefault("metadata", {})
            if "tags" in metadata:
                metadata["tags"] = [t for t in metadata["tags"] if t != SOLUTION_TAG]
            prompts = metadata.get("mystnb", {})
            for key in SOLUTION_METADATA["mystnb"]:
                prompts.pop(key, None)
            if "mystnb" in metadata and not prompts:
                del metadata["mystnb"]
            removed += 1
    nb.setdefault("metadata", {})["student_copy"] = {
        "solutions_removed": removed,
        "answers_held_out": answers,
    }
    return nb


def write_student_copies(
    root: Path | None = None, out: Path | None = None
) -> list[Path]:
    """Write ``student/<chapter>.ipynb`` (:func:`student_copy`) for every chapter.

    ``root``: the book's folder (default: this checkout); ``out``: the folder for the
    copies (default ``student/`` in ``root``).
    """
    root = root or book_root()
    out = out or root / "student"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = student_copy(json.loads(path.read_text()))
        target = out / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.student", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", help="folder for the copies (default: student/ in the book)"
    )
    args = parser.parse_args(argv)
    for path in write_student_copies(out=Path(args.out) if args.out else None):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
