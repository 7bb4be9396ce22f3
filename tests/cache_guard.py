"""A pytest plugin (loaded by tests/conftest.py): while ``$PERTURBBOOK_CACHE`` points
away from the default cache, no test, and no subprocess a test starts, may read or write
under the default cache (``helpers.data.default_cache_dir()``, e.g.
``~/.cache/perturbbook``).

* **Reads** through the book's code: the session sets
  ``$PERTURBBOOK_NO_DEFAULT_CACHE=1``, which subprocesses inherit, so
  ``helpers.data.cache_dir()`` raises instead of falling back to the default where a
  step lost the setting (the defect of issue 32: a test started the rehearsal without
  ``$PERTURBBOOK_CACHE``).
* **Writes** by anything: the default cache folder is listed (path, size, mtime of every
  file) before the first test and after the last; any difference, including the folder
  appearing, fails the session with the list of what changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import data


def snapshot(folder: Path) -> dict[str, tuple[int, int]] | None:
    """``{relative path: (size, mtime_ns)}`` of every file under ``folder``; None if
    absent."""
    if not folder.exists():
        return None
    out = {}
    for path in folder.rglob("*"):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def changes(before, after) -> list[str]:
    """What differs between two snapshots, one short line each."""
    if before == after:
        return []
    if before is None:
        return ["the folder was created"] + sorted(after)[:10]
    if after is None:
        return ["the folder was removed"]
    lines = [f"new: {p}" for p in sorted(set(after) - set(before))]
    lines += [
        f"changed: {p}"
        for p in sorted(set(after) & set(before))
        if after[p] != before[p]
    ]
    lines += [f"removed: {p}" for p in sorted(set(before) - set(after))]
    return lines


def _guarded() -> tuple[Path, Path] | None:
    configured = os.environ.get(data.CACHE_ENV)
    if not configured:
        return None
    default = data.default_cache_dir()
    configured = Path(configured).expanduser()
    if configured.resolve() == default.resolve():
        return None
    return configured, default


@pytest.fixture(scope="session", autouse=True)
def configured_cache_only():
    guarded = _guarded()
    if guarded is None:
        yield None
        return
    _, default = guarded
    saved = os.environ.get(data.NO_DEFAULT_CACHE_ENV)
    os.environ[data.NO_DEFAULT_CACHE_ENV] = "1"
    before = snapshot(default)
    try:
        yield default
    finally:
        if saved is None:
            os.environ.pop(data.NO_DEFAULT_CACHE_ENV, None)
        else:
            os.environ[data.NO_DEFAULT_CACHE_ENV] = saved
    found = changes(before, snapshot(default))
    if found:
        pytest.fail(
            f"the tests touched the default cache {default} although "
            f"{data.CACHE_ENV}={os.environ.get(data.CACHE_ENV)}: "
            + "; ".join(found[:10]),
            pytrace=False,
        )
