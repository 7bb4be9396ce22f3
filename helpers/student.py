"""Student copies of the chapters: the same notebooks with the exercise solutions removed (course module).

A solution is a code cell tagged ``hide-input`` whose first line is ``# Solution``; in the student copy its
source becomes ``# Your solution here`` and the tag is dropped. ``python -m helpers.student`` writes
``student/<chapter>.ipynb`` for every chapter; a test checks that the committed copies are up to date.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from .results import book_root

__all__ = ["student_copy", "write_student_copies"]

PLACEHOLDER = "# Your solution here\n"


def student_copy(notebook: dict) -> dict:
    """A copy of a notebook (nbformat JSON as dict) with solution cells emptied and outputs cleared."""
    nb = copy.deepcopy(notebook)
    removed = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        tags = cell.get("metadata", {}).get("tags", [])
        source = "".join(cell["source"])
        if "hide-input" in tags and source.lstrip().startswith("# Solution"):
            cell["source"] = PLACEHOLDER
            cell["metadata"]["tags"] = [t for t in tags if t != "hide-input"]
            removed += 1
    nb.setdefault("metadata", {})["student_copy"] = {"solutions_removed": removed}
    return nb


def write_student_copies(root: Path | None = None, out: Path | None = None) -> list[Path]:
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
    parser = argparse.ArgumentParser(prog="python -m helpers.student", description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="folder for the copies (default: student/ in the book)")
    args = parser.parse_args(argv)
    for path in write_student_copies(out=Path(args.out) if args.out else None):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
