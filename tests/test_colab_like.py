"""Every chapter on a Colab-like runtime: Python 3.12, current unpinned packages, the google.colab stub, and the
chapter's own setup cell doing the installs (scripts/colab_like.sh). One test per chapter, so the summary
shows which chapters ran and which were skipped, and why (chapters that need torch run only where a CPU
torch wheel installs for Python 3.12). ``PERTURBBOOK_SKIP_COLAB_LIKE=1`` skips it deliberately."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
SKIP = os.environ.get("PERTURBBOOK_SKIP_COLAB_LIKE") == "1"


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    if SKIP:
        pytest.skip("PERTURBBOOK_SKIP_COLAB_LIKE=1: the Colab-like run was skipped on purpose")
    work = Path(os.environ.get("COLAB_LIKE_DIR", ROOT / "_build" / "colab_like"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["COLAB_LIKE_DIR"] = str(work)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "colab_like.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    print(done.stdout[-6000:], done.stderr[-3000:])
    summary = work / "summary.tsv"
    assert summary.exists(), f"scripts/colab_like.sh did not run its chapters:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    with open(summary) as fh:
        rows = {row["chapter"]: row for row in csv.DictReader(fh, delimiter="\t")}
    return done, rows


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_colab_like_python312(colab_like, chapter):
    done, rows = colab_like
    assert chapter in rows, f"{chapter} missing from the Colab-like summary:\n{done.stdout[-3000:]}"
    row = rows[chapter]
    if row["status"] == "skipped":
        pytest.skip(f"Colab-like (Python 3.12): {chapter} not run: {row['note']}")
    assert row["status"] == "ok", (f"{chapter} failed on the Colab-like runtime: {row['note']} "
                                   f"(log: _build/colab_like/run/{chapter}/log.txt)")


def test_colab_like_script_exit_status(colab_like):
    done, rows = colab_like
    failed = [c for c, r in rows.items() if r["status"] == "failed"]
    assert (done.returncode != 0) == bool(failed), (done.returncode, failed, done.stderr[-2000:])
