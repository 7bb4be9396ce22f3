"""Where each chapter writes its tables (introduced in chapter 1).

Every chapter writes its key tables as CSV to ``_build/results/<notebook name>/`` at the
root of the book (git ignores ``_build/``), or under ``$PERTURBBOOK_RESULTS`` if that is
set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .errors import InputError

__all__ = ["book_root", "results_base", "results_dir", "save_table"]

RESULTS_ENV = "PERTURBBOOK_RESULTS"


def book_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding
    ``_toc.yml``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    return here


def results_base() -> Path:
    """``$PERTURBBOOK_RESULTS`` if set, else ``<book root>/_build/results`` (not
    created)."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    return book_root() / "_build" / "results"


def results_dir(chapter: str) -> Path:
    """``<results_base()>/<chapter>`` (created if needed)."""
    if not chapter or "/" in chapter or chapter.startswith("."):
        raise InputError(
            f"chapter must be a notebook name such as '01_data', got {chapter!r}."
        )
    path = results_base() / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_table(
    table: pd.DataFrame,
    chapter: str,
    name: str,
    *,
    index: bool = False,
    gzip: bool = False,
) -> Path:
    """Write ``table`` as ``<results_dir(chapter)>/<name>.csv`` and return the path.

    ``chapter`` names the results folder (e.g. ``"05_embeddings"``), ``name`` the file
    without its suffix; ``index``: also write the table's index; ``gzip``: write
    ``<name>.csv.gz`` instead, with the header's time stamp set to 0, so that the same
    table gives the same bytes on every run.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(
            f"save_table expects a pandas DataFrame, got {type(table).__name__}; "
            "convert it with pd.DataFrame(...) first."
        )
    if gzip:
        path = results_dir(chapter) / f"{name}.csv.gz"
        table.to_csv(path, index=index, compression={"method": "gzip", "mtime": 0})
    else:
        path = results_dir(chapter) / f"{name}.csv"
        table.to_csv(path, index=index)
    return path
