"""Issue 32: with ``$PERTURBBOOK_CACHE`` set, nothing reads or writes the default cache.

The session-wide guard is the plugin ``tests/cache_guard.py``; these tests show that it
and ``helpers.data.cache_dir``'s refusal catch the defect, and check the executed
chapters' records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import data

ROOT = Path(__file__).resolve().parents[2]


def test_cache_dir_refuses_the_default_when_told(monkeypatch, tmp_path):
    monkeypatch.delenv(data.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(data.NO_DEFAULT_CACHE_ENV, "1")
    with pytest.raises(data.DataError, match="PERTURBBOOK_CACHE is not set here"):
        data.cache_dir()
    assert not (tmp_path / "xdg").exists()
    assert data.cache_dir(tmp_path / "given") == tmp_path / "given"  # explicit: fine
    monkeypatch.delenv(data.NO_DEFAULT_CACHE_ENV)
    assert data.cache_dir() == tmp_path / "xdg" / "perturbbook"


def test_a_subprocess_that_drops_the_setting_stops_in_one_line(tmp_path):
    # The defect of issue 32, replayed: a child started without $PERTURBBOOK_CACHE asks
    # for a published spreadsheet. It must stop with one line, neither downloading nor
    # creating the default cache.
    env = {k: v for k, v in os.environ.items() if k != data.CACHE_ENV}
    env.update(
        {
            data.NO_DEFAULT_CACHE_ENV: "1",
            "XDG_CACHE_HOME": str(tmp_path / "xdg"),
            "PYTHONPATH": str(ROOT),
        }
    )
    run = subprocess.run(
        [sys.executable, "-m", "helpers.data", "fetch", "paper_suppl_dataset_overview"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode != 0
    assert "PERTURBBOOK_NO_DEFAULT_CACHE=1" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "xdg").exists()


def test_the_session_guard_fails_a_run_that_writes_the_default_cache(tmp_path):
    # An inner pytest session with the guard plugin, the configured cache elsewhere and
    # a test that writes a file into the default cache: the session must fail and say
    # so.
    (tmp_path / "test_writes.py").write_text(
        "from helpers import data\n"
        "def test_writes():\n"
        "    folder = data.default_cache_dir()\n"
        "    folder.mkdir(parents=True, exist_ok=True)\n"
        "    (folder / 'stray.csv').write_text('x')\n"
    )
    (tmp_path / "test_clean.py").write_text("def test_clean():\n    assert True\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env[data.CACHE_ENV] = str(tmp_path / "configured")
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.cache_guard",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
    ]
    bad = subprocess.run(
        [*args, str(tmp_path / "test_writes.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0, bad.stdout[-2000:]
    assert "touched the default cache" in bad.stdout and "stray.csv" in bad.stdout
    good = subprocess.run(
        [*args, str(tmp_path / "test_clean.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert good.returncode == 0, good.stdout[-2000:]


def test_executed_chapters_read_only_the_configured_cache():
    # Command 1 records every dataset a chapter read, with the cache it came from
    # (helpers.data.fetch -> $PERTURBBOOK_USAGE_LOG -> _build/results/executed.json).
    record = ROOT / "_build" / "results" / "executed.json"
    if not record.exists():
        pytest.skip("no executed chapters: run `bash scripts/build_book.sh` first")
    configured = os.environ.get(data.CACHE_ENV)
    if not configured:
        pytest.skip(
            f"{data.CACHE_ENV} is not set: the default cache is the configured one"
        )
    configured = str(Path(configured).expanduser().resolve())
    default = str(data.default_cache_dir().resolve())
    stray = []
    for chapter in json.loads(record.read_text()):
        for item in chapter.get("data", []):
            if "filename" not in item:  # the simulator: no file, no cache
                continue
            cache = item.get("cache", "(not recorded)")
            if cache != configured or cache.startswith(default):
                stray.append(f"{chapter['notebook']}: {item['name']} from {cache}")
    assert not stray, f"chapters read another cache than {configured}: {stray}"
