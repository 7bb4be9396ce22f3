"""Are two runs' result files the same? (a refactor must leave every result unchanged)

    python scripts/compare_results.py BEFORE AFTER [--chapters 01_data
    03_linear_model ...]

BEFORE and AFTER are two results folders (``$PERTURBBOOK_RESULTS`` or ``_build/results``
of two builds). Every file under each chapter folder is compared byte for byte. A CSV
that differs is read with pandas and the differing columns are named; columns that
measure the machine, not the method (:data:`MACHINE_COLUMNS`: wall-clock seconds,
throughput, memory) are reported but do not count as a difference, nor do the
machine-measured rows and columns of chapter 10 (:data:`MACHINE_CELLS`). A gzip file is
compared by its unpacked content (its header stamps the time of writing). The run's own
bookkeeping (``status.csv``, ``versions.csv``, ``executed.json`` at the top level) is
not a result and is skipped.

Exit status: 0 when every result file is identical (machine columns aside), 1 when a
file differs, is missing or is extra, 2 on bad arguments. Output: one line per file that
is not byte-identical, then a summary line.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import pandas as pd

#: Columns whose values depend on the machine and its load, not on the computation.
MACHINE_COLUMNS = frozenset({"seconds", "cells_per_second", "peak_rss_gb", "wall_s"})
#: Per file: more columns, and rows (by the first column's value), that the run measures
#: on the machine. Chapter 10 times its own pseudobulk and extrapolates from that rate
#: (helpers.scale.extrapolate), so its core-hours and the sentence quoting the rate
#: vary.
MACHINE_CELLS = {
    "10_scaling_up/extrapolation.csv": ({"core_hours", "hours_on_100", "how"}, set()),
    "10_scaling_up/run_facts.csv": (
        set(),
        {
            "wall time (s)",
            "core-ns per non-zero (this run)",
            "peak memory of the largest worker (GiB)",
        },
    ),
    # the pickled graph names the codes file by its path: its size follows the checkout
    "10_scaling_up/task_graph.csv": (set(), {"pickled graph, codes on disk (KB)"}),
}


def _digest(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return hashlib.sha256(data).hexdigest()


def _files(folder: Path, chapters: list[str] | None) -> dict[str, Path]:
    out = {}
    for chapter in sorted(p for p in folder.iterdir() if p.is_dir()):
        if chapters and chapter.name not in chapters:
            continue
        for path in sorted(chapter.rglob("*")):
            if path.is_file():
                out[str(path.relative_to(folder))] = path
    return out


def _csv_difference(before: Path, after: Path, name: str) -> tuple[list[str], bool]:
    """The differing columns of two CSVs and whether only machine-measured cells
    differ."""
    try:
        a, b = (
            pd.read_csv(p, dtype=str, keep_default_na=False) for p in (before, after)
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError):
        return [], False
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return ["(columns or shape)"], False
    differing = [c for c in a.columns if not a[c].equals(b[c])]
    columns, rows = MACHINE_CELLS.get(name, (set(), set()))
    columns = MACHINE_COLUMNS | columns
    first = a.columns[0]
    keep = ~a[first].astype(str).isin(rows) & ~b[first].astype(str).isin(rows)
    real = [
        c
        for c in differing
        if c not in columns and not a.loc[keep, c].equals(b.loc[keep, c])
    ]
    return differing, bool(differing) and not real


def compare(
    before: Path, after: Path, chapters: list[str] | None = None
) -> tuple[list[str], int]:
    """Lines describing every non-identical file, and the number of real differences.

    Parameters: ``before`` and ``after`` are results folders; ``chapters`` limits the
    comparison to those chapter folders (default: every chapter folder in either).
    """
    a, b = _files(before, chapters), _files(after, chapters)
    lines, real = [], 0
    for name in sorted(set(a) | set(b)):
        if name not in b:
            lines.append(f"missing after: {name}")
            real += 1
        elif name not in a:
            lines.append(f"extra after:   {name}")
            real += 1
        elif _digest(a[name]) != _digest(b[name]):
            columns, machine_only = (
                _csv_difference(a[name], b[name], name)
                if name.endswith(".csv")
                else ([], False)
            )
            if machine_only:
                lines.append(f"machine only:  {name} ({', '.join(columns)})")
            else:
                where = f" (columns: {', '.join(columns)})" if columns else ""
                lines.append(f"DIFFERS:       {name}{where}")
                real += 1
    n_same = sum(1 for n in set(a) & set(b) if _digest(a[n]) == _digest(b[n]))
    lines.append(
        f"{n_same} of {len(set(a) | set(b))} files byte-identical; {real} real "
        "difference(s)"
    )
    return lines, real


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--chapters", nargs="*", help="only these chapter folders")
    args = parser.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            print(
                f"error: {folder} is not a results folder; give two results folders "
                "(e.g. _build/results of two builds).",
                file=sys.stderr,
            )
            return 2
    lines, real = compare(args.before, args.after, args.chapters)
    print("\n".join(lines))
    return 1 if real else 0


if __name__ == "__main__":
    sys.exit(main())
