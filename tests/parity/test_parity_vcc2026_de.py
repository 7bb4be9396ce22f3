"""Parity of :func:`helpers.metrics.vcc2026_de.score_de` with cell-eval2 0.20.0 itself.

One subprocess in cell-eval2's environment (``.venv-celleval``, or
``PERTURBBOOK_CELLEVAL_PYTHON``) runs ``cell-eval2 run --preset vcc2026`` twice on a
seeded count fixture (:func:`tests.unit.test_vcc2026_de.make_pair`: 9 perturbations, 200
genes, 510 cells per file; a prediction that is a perturbed copy of the truth): once as
the competition scores (each target gene excluded, cell-eval2 #172) and once with
``--no-target-genes`` (nothing excluded). The book's four members are compared with the
peer's ``results.csv``, per perturbation, in both modes; the book reads the real file
with a sparse matrix, the peer the same counts from disk.

Tolerance 1e-9 (absolute), with the NaN pattern equal. Three members are ratios of gene
counts: a single gene more or less in any set moves them by at least 1/200 = 5e-3, so
any tolerance below that demands the same sets; the fourth (``lfc_nmae``) is a ratio of
two means of log2 fold changes that polars and numpy sum in different orders, which
differ by a few 1e-16. The worst differences are printed (``-s``) for the closing note.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.metrics.vcc2026_de import COLUMNS, score_de
from tests.parity.test_beyond_celleval import celleval_python
from tests.unit.test_vcc2026_de import make_pair

# optional peer/runtime: `pytest -m 'not celleval'` leaves these out
pytestmark = pytest.mark.celleval
TOL = 1e-9

PEER = """
import sys
from cell_eval2.cli import main
real, pred, out = sys.argv[1:4]
base = ["run", "--preset", "vcc2026", "-ap", pred, "-ar", real]
main(base + ["-o", out + "/excluded"])
main(base + ["-o", out + "/kept", "--no-target-genes"])
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    python = celleval_python()
    work = tmp_path_factory.mktemp("vcc2026_de")
    real, pred = make_pair(0)
    real.write_h5ad(work / "real.h5ad")
    pred.write_h5ad(work / "pred.h5ad")
    done = subprocess.run(
        [
            str(python),
            "-c",
            PEER,
            str(work / "real.h5ad"),
            str(work / "pred.h5ad"),
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    assert done.returncode == 0, f"cell-eval2 failed:\n{done.stderr[-3000:]}"
    sparse_real = real.copy()
    sparse_real.X = sp.csr_matrix(real.X)
    out = {}
    for mode, exclude in (("excluded", True), ("kept", False)):
        peer = pd.read_csv(work / mode / "results.csv")
        peer = peer[peer["metric"].isin(COLUMNS)].pivot(
            index="perturbation", columns="metric", values="value"
        )
        book = score_de(sparse_real, pred, exclude_target=exclude)
        out[mode] = (book, peer.reindex(index=book.index, columns=COLUMNS))
    return out


@pytest.mark.parametrize("mode", ["excluded", "kept"])
def test_members_equal_celleval2(runs, mode):
    book, peer = runs[mode]
    assert list(book.index) == sorted(peer.index.dropna())
    assert (book.isna() == peer.isna()).all().all(), "NaN patterns differ"
    diff = (book - peer).abs().max()
    print(
        f"\nvcc2026 DE parity ({mode}), worst |book - cell-eval2|:\n{diff.to_string()}"
    )
    assert (diff.fillna(0.0) <= TOL).all(), diff.to_string()


def test_fixture_is_not_trivial(runs):
    """The comparison has teeth: values spread, NaNs present where cell-eval2 omits,
    and the exclusion switch moves every member somewhere."""
    book, _ = runs["excluded"]
    kept, _ = runs["kept"]
    for col in COLUMNS:
        values = book[col].dropna()
        assert values.nunique() >= 4, col
        assert 0.0 <= values.min() and values.max() <= 1.5, col
        assert not np.allclose(book[col].fillna(-1), kept[col].fillna(-1)), col
    assert book["de_wilcoxon_lfc_nmae"].isna().sum() == 1  # G002: empty gate


def test_sparse_and_dense_agree(runs):
    real, pred = make_pair(0)
    book, _ = runs["excluded"]
    pd.testing.assert_frame_equal(score_de(real, pred), book)


def test_labels_resolve_as_in_celleval2(runs):
    """A label that names a gene below the CPM gate (G001) or no gene (DRUG) excludes
    nothing: its values are the same in both modes, in the book and in cell-eval2."""
    (book, peer), (book_k, peer_k) = runs["excluded"], runs["kept"]
    for label in ("G001", "DRUG"):
        assert np.allclose(book.loc[label], book_k.loc[label], equal_nan=True)
        assert np.allclose(peer.loc[label], peer_k.loc[label], equal_nan=True)
