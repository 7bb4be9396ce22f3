"""Every chapter on a Colab-like runtime: Python 3.12, current unpinned packages, the
google.colab stub, and the chapter's own setup cell doing the installs
(scripts/colab_like.sh). One test per chapter, so the summary shows which chapters ran
and which were skipped, and why (chapters that need torch run only where a CPU torch
wheel installs for Python 3.12). ``PERTURBBOOK_SKIP_COLAB_LIKE=1`` skips it
deliberately."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
SKIP = os.environ.get("PERTURBBOOK_SKIP_COLAB_LIKE") == "1"

# optional peer/runtime: `pytest -m 'not colab_like'` leaves these out
pytestmark = pytest.mark.colab_like


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory):
    if SKIP:
        pytest.skip(
            "PERTURBBOOK_SKIP_COLAB_LIKE=1: the Colab-like run was skipped on purpose"
        )
    work = Path(os.environ.get("COLAB_LIKE_DIR", ROOT / "_build" / "colab_like"))
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["COLAB_LIKE_DIR"] = str(work)
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "colab_like.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    print(done.stdout[-6000:], done.stderr[-3000:])
    summary = work / "summary.tsv"
    assert summary.exists(), (
        "scripts/colab_like.sh did not run its "
        f"chapters:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    with open(summary) as fh:
        rows = {row["chapter"]: row for row in csv.DictReader(fh, delimiter="\t")}
    return done, rows


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_on_colab_like_python312(colab_like, chapter):
    done, rows = colab_like
    assert chapter in rows, (
        f"{chapter} missing from the Colab-like summary:\n{done.stdout[-3000:]}"
    )
    row = rows[chapter]
    if row["status"] == "skipped":
        pytest.skip(f"Colab-like (Python 3.12): {chapter} not run: {row['note']}")
    assert row["status"] == "ok", (
        f"{chapter} failed on the Colab-like runtime: {row['note']} "
        f"(log: _build/colab_like/run/{chapter}/log.txt)"
    )


def test_colab_like_script_exit_status(colab_like):
    done, rows = colab_like
    failed = [c for c, r in rows.items() if r["status"] == "failed"]
    assert (done.returncode != 0) == bool(failed), (
        done.returncode,
        failed,
        done.stderr[-2000:],
    )


# --- the GEARS shims that let chapter 4 run with Colab's pandas 3 and scipy >= 1.15
# (helpers.models.gears.runner)


def test_go_graph_shim_matches_gears_own_function(monkeypatch):
    """The oracle is GEARS' own get_similarity_network (runs as published under pandas
    2)."""
    import numpy as np
    import pandas as pd

    gears_utils = pytest.importorskip("gears.utils")
    from helpers.models.gears import runner as gears_runner

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "source": [f"g{i}" for i in rng.integers(0, 30, 400)],
            "target": [f"t{i}" for i in rng.integers(0, 12, 400)],
            "importance": rng.integers(0, 5, 400) / 4,
        }
    )  # many ties: order must match too
    monkeypatch.setattr(
        gears_utils, "make_GO", lambda data_path, pert_list, data_name: df
    )
    ours = gears_runner._top_go_neighbours(df, 5)
    assert ours.groupby("target").size().max() == 6 and list(ours.columns) == list(
        df.columns
    )
    theirs = gears_utils.get_similarity_network(
        "go", None, 0.4, 5, "", "x", None, 1, 0.75, {}, default_pert_graph=False
    )
    if int(pd.__version__.split(".")[0]) >= 3:
        assert (
            "target" not in theirs.columns
        )  # the incompatibility the shim exists for (GEARS then fails)
        return
    pd.testing.assert_frame_equal(ours, theirs)


def test_pandas3_shim_is_scoped_and_restores_positional_lookup():
    import pandas as pd

    pytest.importorskip("gears")
    import gears.gears as gears_module
    from helpers.models.gears import runner as gears_runner

    getitem, network = pd.Series.__getitem__, gears_module.get_similarity_network
    series = pd.Series(["KLF1+ctrl", "KLF1+ctrl"], index=["cell7", "cell9"])
    with gears_runner._gears_pandas3_compat():
        assert (
            series[0] == "KLF1+ctrl"
        )  # gears/pertdata.py: adata_.obs['condition_name'][0]
        assert series["cell9"] == "KLF1+ctrl"
        with pytest.raises(KeyError):
            series["cell1"]  # a missing label stays an error
        with pytest.raises(KeyError):
            pd.Series([1, 2], index=[5, 6])[
                0
            ]  # integer index: label lookup, as in pandas 2
    assert (
        pd.Series.__getitem__ is getitem
        and gears_module.get_similarity_network is network
    )


def test_sparse_rows_accept_a_pandas_mask():
    """gears/gears.py GEARS.__init__: adata.X[adata.obs.condition == 'ctrl'] (scipy >=
    1.15 rejects a Series)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from helpers.models.gears import runner as gears_runner

    X = sp.random(6, 4, density=0.5, format="csr", random_state=0, dtype=np.float32)
    mask = pd.Series(["ctrl", "A", "ctrl", "B", "ctrl", "A"]) == "ctrl"
    wrapped = gears_runner._SeriesRowsCSR(X)
    expected = X[np.flatnonzero(mask.to_numpy())].toarray()
    np.testing.assert_array_equal(wrapped[mask].toarray(), expected)
    np.testing.assert_allclose(
        np.asarray(np.mean(wrapped[mask], axis=0)).ravel(),
        expected.mean(axis=0),
        rtol=1e-6,
    )
