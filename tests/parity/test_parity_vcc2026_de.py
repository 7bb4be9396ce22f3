"""Parity of :mod:`helpers.metrics.vcc2026_de` with cell-eval2 0.20.0 itself.

One subprocess in cell-eval2's environment (``.venv-celleval``, or
``PERTURBBOOK_CELLEVAL_PYTHON``) runs ``cell-eval2 run --preset vcc2026`` three times on
a seeded count fixture (:func:`tests.unit.test_vcc2026_de.make_pair`: 9 perturbations,
200 genes, 510 cells per file; a prediction that is a perturbed copy of the truth):

* ``excluded``: as the competition scores (each target gene excluded, cell-eval2 #172;
  the predicted cells tested against the real control), with ``--lfc-nmae-ref``;
* ``kept``: the same with ``--no-target-genes`` (nothing excluded);
* ``pred_control``: ``control_source=pred`` (each side against its own control, as
  the anchor's split halves are scored) and ``allow_fractional_counts`` on a
  fractional prediction whose control cells express five rare genes (so the two
  sides' CPM gates differ).

The book's four members (:func:`score_de`) are compared with the peer's
``results.csv``, per perturbation, in each mode, and the split-half reference of
``lfc_nmae`` (:func:`lfc_nmae_reference`, on the halves cell-eval2's
``ceiling._disjoint_halves`` draws for seed 0) with its ``lfc_nmae_ref.csv``. The book
reads the real file with a sparse matrix, the peer the same counts from disk.

Tolerance 1e-9 (absolute), with the NaN pattern equal. Three members are ratios of gene
counts: a single gene more or less in any set moves them by at least 1/200 = 5e-3, so
any tolerance below that demands the same sets; ``lfc_nmae`` and its reference are
ratios of two means of log2 fold changes that polars and numpy sum in different orders,
which differ by a few 1e-16. The worst differences are printed (``-s``) for the closing
note.
"""

from __future__ import annotations

import json
import subprocess

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.metrics.vcc2026_de import COLUMNS, lfc_nmae_reference, score_de
from tests.parity.test_beyond_celleval import celleval_python
from tests.unit.test_vcc2026_de import make_pair

# optional peer/runtime: `pytest -m 'not celleval'` leaves these out
pytestmark = pytest.mark.celleval
TOL = 1e-9

PEER = """
import json, sys
import anndata as ad
from cell_eval2.ceiling import _disjoint_halves
from cell_eval2.cli import main
real, pred, frac, out = sys.argv[1:5]
base = ["run", "--preset", "vcc2026", "-ar", real]
main(base + ["-ap", pred, "-o", out + "/excluded", "--lfc-nmae-ref"])
main(base + ["-ap", pred, "-o", out + "/kept", "--no-target-genes"])
main(base + ["-ap", frac, "-o", out + "/pred_control", "--set", "control_source=pred",
             "--set", "allow_fractional_counts=true"])
a, b = _disjoint_halves(ad.read_h5ad(real), "target", "non-targeting", 0)
json.dump([list(a.obs_names), list(b.obs_names)], open(out + "/halves.json", "w"))
"""
MODES = {
    "excluded": {},
    "kept": {"exclude_target": False},
    "pred_control": {"control_source": "pred", "allow_fractional": True},
}


def fractional_copy(pred: ad.AnnData) -> ad.AnnData:
    """``pred`` with every value scaled by a seeded factor in [0.8, 1.2], and 1 added
    to five rare genes (G005-G009) in every fifth control cell."""
    out = pred.copy()
    rng = np.random.default_rng(7)
    X = np.asarray(out.X, dtype=np.float64) * rng.uniform(0.8, 1.2, out.shape)
    ctrl = np.flatnonzero(out.obs["target"].astype(str) == "non-targeting")
    X[np.ix_(ctrl[::5], np.arange(5, 10))] += 1.0
    out.X = X.astype(np.float32)
    return out


def _peer_table(path, index) -> pd.DataFrame:
    peer = pd.read_csv(path)
    peer = peer[peer["metric"].isin(COLUMNS)].pivot(
        index="perturbation", columns="metric", values="value"
    )
    return peer.reindex(index=index, columns=COLUMNS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    python = celleval_python()
    work = tmp_path_factory.mktemp("vcc2026_de")
    real, pred = make_pair(0)
    frac = fractional_copy(pred)
    files = [work / "real.h5ad", work / "pred.h5ad", work / "frac.h5ad"]
    for adata, path in zip((real, pred, frac), files):
        adata.write_h5ad(path)
    done = subprocess.run(
        [str(python), "-c", PEER, *map(str, files), str(work)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    assert done.returncode == 0, f"cell-eval2 failed:\n{done.stderr[-3000:]}"
    sparse_real = real.copy()
    sparse_real.X = sp.csr_matrix(real.X)
    out = {}
    for mode, options in MODES.items():
        other = frac if mode == "pred_control" else pred
        book = score_de(sparse_real, other, **options)
        out[mode] = (book, _peer_table(work / mode / "results.csv", book.index))
    names_a, names_b = json.loads((work / "halves.json").read_text())
    ref = lfc_nmae_reference(real, (real[names_a].copy(), real[names_b].copy()))
    peer_ref = pd.read_csv(work / "excluded" / "lfc_nmae_ref.csv")
    out["reference"] = (
        ref,
        peer_ref.set_index("perturbation")["nmae_ref_raw"].reindex(ref.index),
    )
    return out


@pytest.mark.parametrize("mode", list(MODES))
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


def test_lfc_nmae_reference_equals_celleval2(runs):
    book, peer = runs["reference"]
    assert (book.isna() == peer.isna()).all() and book.notna().sum() >= 6
    diff = float((book - peer).abs().max())
    print(f"\nvcc2026 lfc_nmae split-half reference, worst |book - cell-eval2|: {diff}")
    assert diff <= TOL


def test_prediction_control_moves_the_members(runs):
    """Scoring against the prediction's own control is not the real-control score."""
    book, _ = runs["pred_control"]
    real, pred = make_pair(0)
    same_cells = score_de(real, fractional_copy(pred), allow_fractional=True)
    assert (book - same_cells).abs().max().min() > 1e-3
