"""Run one notebook for the grader, in its own process: ``python -m
helpers.course.worker NOTEBOOK CHAPTER OUT.json [--profile P] [--cache DIR]``.

Every code cell runs in an IPython shell in order (an error is recorded and the
next cell runs, as in a notebook run top to bottom). A check cell is not run:
at its place the answers of that exercise (:data:`helpers.course.exercises.EXERCISES`)
are recorded as plain JSON values. The grader (:mod:`helpers.course.grade`) scores
them in a clean process, so code in the notebook cannot change the tests.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from .checks import to_jsonable
from .exercises import CHECK_TEMPLATE, EXERCISES, SETUP_TEMPLATE

__all__ = ["run_notebook"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


_SKIP = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def _snapshot_key(cells: list[dict], chapter: str, profile: str | None) -> str | None:
    """A hash of the code before the checks' setup cell (None without that cell)."""
    setup = SETUP_TEMPLATE.format(chapter=chapter)
    digest = hashlib.sha256(f"{chapter}|{profile}|{sys.version}".encode())
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        if source.strip() == setup:
            return digest.hexdigest()[:32]
        digest.update(source.encode() + b"\0")
    return None


def _save(namespace: dict, path: Path) -> bool:
    """Write the namespace with dill (False, nothing written, if any name fails)."""
    try:  # optional (otter-grader installs it): without it, every run is in full
        import dill
    except ImportError:
        return False
    kept = {}
    for name, value in namespace.items():
        if name.startswith("_") or name in _SKIP:
            continue
        try:
            kept[name] = dill.dumps(value)
        except Exception:  # one object that cannot be saved: run in full next time
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(dill.dumps(kept))
    tmp.replace(path)
    return True


def _load(path: Path) -> dict:
    import dill

    return {
        name: dill.loads(blob) for name, blob in dill.loads(path.read_bytes()).items()
    }


def run_notebook(
    path: str,
    chapter: str,
    profile: str | None = None,
    *,
    cache: str | None = None,
) -> dict:
    """Execute a notebook's code cells and record the answers at each check cell.

    ``path``: the notebook; ``chapter``: the chapter stem whose exercises apply;
    ``profile``: overrides the parameters cell's ``profile`` (as papermill would);
    ``cache``: a folder for saved namespaces: the cells before the checks' setup
    cell run once per distinct code (a hash of it) and are loaded from there after.
    Returns {"answers": {exercise: {name: value}}, "missing": {...}, "errors":
    {exercise: [message]}, "profile": str}.
    """
    # IPython runs every Jupyter and Colab kernel and the book's build
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    notebook = json.loads(Path(path).read_text())
    checks = {CHECK_TEMPLATE.format(exercise=ex): ex for ex in EXERCISES[chapter]}
    record: dict = {"answers": {}, "missing": {}, "errors": {}, "cached": False}
    pending: list[str] = []
    cells = notebook.get("cells", [])
    key = _snapshot_key(cells, chapter, profile) if cache else None
    snapshot = Path(cache) / f"{key}.dill" if key else None
    skipping = snapshot is not None and snapshot.exists()
    if skipping:
        shell.user_ns.update(_load(snapshot))
        record["cached"] = True
    setup = SETUP_TEMPLATE.format(chapter=chapter)
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        if source.strip() == setup:
            if snapshot is not None and not skipping and not pending:
                _save(shell.user_ns, snapshot)
            skipping = False
        if skipping:
            continue
        exercise = checks.get(source.strip())
        if exercise is not None:
            answers, missing = {}, []
            for name in EXERCISES[chapter][exercise]["answers"]:
                if name in shell.user_ns:
                    try:
                        answers[name] = to_jsonable(shell.user_ns[name])
                    except Exception as err:  # an answer that cannot be read
                        missing.append(f"{name} ({type(err).__name__})")
                else:
                    missing.append(name)
            record["answers"][exercise] = answers
            record["missing"][exercise] = missing
            record["errors"][exercise] = pending
            pending = []
            continue
        result = shell.run_cell(source, store_history=False, silent=False)
        error = result.error_in_exec or result.error_before_exec
        if error is not None:
            pending.append(f"cell {number}: {type(error).__name__}: {error}"[:300])
        tags = cell.get("metadata", {}).get("tags", [])
        if profile is not None and "parameters" in tags:
            shell.user_ns["profile"] = profile
    record["profile"] = str(shell.user_ns.get("profile", "quick"))
    return record


def main(argv: list[str] | None = None) -> int:
    """``argv``: NOTEBOOK CHAPTER OUT.json [--profile P] [--cache DIR]."""
    argv = sys.argv[1:] if argv is None else argv
    options = dict(zip(argv[3::2], argv[4::2]))
    record = run_notebook(
        argv[0],
        argv[1],
        options.get("--profile"),
        cache=options.get("--cache"),
    )
    Path(argv[2]).write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
