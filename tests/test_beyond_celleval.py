"""Cross-check against a peer: cell-eval (Arc Institute) on the same predictions of the real Norman subset.

cell-eval 0.8.2 needs newer numpy/scipy than the book's pins, so it lives in its own virtual
environment, made by ``scripts/make_celleval_venv.sh`` (default ``.venv-celleval``; or set
``PERTURBBOOK_CELLEVAL_PYTHON`` to its python). The test writes the predictions in the cell-eval
layout with the book's exporter and runs cell-eval's own metric functions in a subprocess.

Where the definitions coincide (all 500 genes of the subset are evaluation genes, the control is
the observed control cells in both files): the book's ``l2 = sqrt(n_genes * mse)`` of cell-eval and
the Pearson deltas are equal. Where they differ, documented here:

* cell-eval refuses predictions with negative values (it takes them for a wrong scale); the
  additive prediction ``x_A + x_B - ctrl`` can be negative and the book keeps it. With the
  negatives clipped to 0 cell-eval scores the clipped prediction like the book scores it.
* "no change" has no predicted change: the book reports Pearson delta as NaN; whatever cell-eval
  returns there is recorded, not trusted.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import baselines, cells
from helpers.metrics import evaluate
from helpers.predictions import Predictions
from helpers.pseudobulk import pseudobulk
from helpers.splits import complete_doubles, holdout_split

ROOT = Path(__file__).resolve().parents[1]

RUNNER = r"""
import json, sys, warnings
import anndata as ad
from cell_eval import MetricsEvaluator
from cell_eval.metrics import mse, pearson_delta
warnings.simplefilter("ignore")
real, pred_path, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    ev = MetricsEvaluator(ad.read_h5ad(pred_path), ad.read_h5ad(real), control_pert="non-targeting",
                          pert_col="target_gene", skip_de=True, outdir=outdir, num_threads=1)
except ValueError as err:
    print(json.dumps({"error": str(err)}))
    sys.exit(0)
pair = ev.anndata_pair
print(json.dumps({"mse": mse(pair), "pearson_delta": pearson_delta(pair)}))
"""


def celleval_python() -> Path:
    path = Path(os.environ.get("PERTURBBOOK_CELLEVAL_PYTHON", ROOT / ".venv-celleval" / "bin" / "python"))
    if not path.exists():
        message = (f"cell-eval environment not found at {path}: command 1 (scripts/build_book.sh) makes it, "
                   "or run scripts/make_celleval_venv.sh")
        if os.environ.get("PERTURBBOOK_SKIP_CELLEVAL") == "1":
            pytest.skip(f"PERTURBBOOK_SKIP_CELLEVAL=1: {message}")
        pytest.fail(message + " (PERTURBBOOK_SKIP_CELLEVAL=1 skips this cross-check deliberately)")
    return path


def run_celleval(python: Path, real: Path, pred: Path, outdir: Path) -> dict:
    done = subprocess.run([str(python), "-c", RUNNER, str(real), str(pred), str(outdir)],
                          capture_output=True, text=True, timeout=600, cwd=outdir)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def setting(norman_subset):
    truth = pseudobulk(norman_subset)
    split = holdout_split(truth.conditions, complete_doubles(truth.conditions), dataset=truth.dataset)
    train = truth.subset(split.train)
    preds = {name: baselines.BASELINES[name](train, split.held_out) for name in ("additive", "mean", "no_change")}
    keep = norman_subset.obs["condition"].isin(split.held_out + ["ctrl"]).to_numpy()
    return truth, split, preds, norman_subset[keep].copy()


def test_book_equals_celleval_where_definitions_coincide(tmp_path, setting):
    python = celleval_python()
    truth, split, preds, observed = setting
    real = tmp_path / "real.h5ad"
    cells.cells_to_cell_eval(observed).write_h5ad(real)
    n_genes = truth.means.shape[1]
    assert n_genes <= 1000  # all genes are evaluation genes, as in cell-eval

    # mean baseline: non-negative, accepted by cell-eval
    pred = preds["mean"]
    path = tmp_path / "mean.h5ad"
    cells.to_cell_eval(pred, truth.ctrl, control_cells=observed).write_h5ad(path)
    peer = run_celleval(python, real, path, tmp_path)
    book = evaluate(pred, truth, split).set_index("condition")
    peer_l2 = {c: np.sqrt(n_genes * v) for c, v in peer["mse"].items()}
    for condition in split.held_out:
        assert peer_l2[condition] == pytest.approx(book.loc[condition, "l2"], abs=1e-5)
        assert peer["pearson_delta"][condition] == pytest.approx(book.loc[condition, "pearson_delta"], abs=1e-6)


def test_celleval_rejects_negative_additive_predictions_which_the_book_keeps(tmp_path, setting):
    python = celleval_python()
    truth, split, preds, observed = setting
    real = tmp_path / "real.h5ad"
    cells.cells_to_cell_eval(observed).write_h5ad(real)
    pred = preds["additive"]
    assert (pred.values.to_numpy() < 0).any()
    raw = tmp_path / "additive.h5ad"
    cells.to_cell_eval(pred, truth.ctrl, control_cells=observed).write_h5ad(raw)
    refused = run_celleval(python, real, raw, tmp_path)
    assert "is negative" in refused.get("error", ""), refused

    clipped = Predictions(pred.values.clip(lower=0.0), "additive_clipped", pred.dataset)
    path = tmp_path / "clipped.h5ad"
    cells.to_cell_eval(clipped, truth.ctrl, control_cells=observed).write_h5ad(path)
    peer = run_celleval(python, real, path, tmp_path)
    book_clipped = evaluate(clipped, truth, split).set_index("condition")
    book_raw = evaluate(pred, truth, split).set_index("condition")
    n_genes = truth.means.shape[1]
    for condition in split.held_out:
        assert np.sqrt(n_genes * peer["mse"][condition]) == pytest.approx(book_clipped.loc[condition, "l2"], abs=1e-5)
        assert peer["pearson_delta"][condition] == pytest.approx(book_clipped.loc[condition, "pearson_delta"],
                                                                 abs=1e-6)
    # clipping changes the score: the book scores the prediction that was made
    assert not np.allclose(book_clipped["l2"], book_raw.loc[book_clipped.index, "l2"])


def test_no_change_pearson_delta_is_nan_in_the_book(tmp_path, setting):
    python = celleval_python()
    truth, split, preds, observed = setting
    real = tmp_path / "real.h5ad"
    cells.cells_to_cell_eval(observed).write_h5ad(real)
    pred = preds["no_change"]
    path = tmp_path / "no_change.h5ad"
    cells.to_cell_eval(pred, truth.ctrl, control_cells=observed).write_h5ad(path)
    peer = run_celleval(python, real, path, tmp_path)
    book = evaluate(pred, truth, split).set_index("condition")
    assert book["pearson_delta"].isna().all()
    n_genes = truth.means.shape[1]
    for condition in split.held_out:  # L2 still agrees
        assert np.sqrt(n_genes * peer["mse"][condition]) == pytest.approx(book.loc[condition, "l2"], abs=1e-5)
    # cell-eval's value for an undefined correlation is only recorded (NaN or a spurious number)
    print("cell-eval pearson_delta for no change:", sorted(set(map(str, peer["pearson_delta"].values())))[:3])
