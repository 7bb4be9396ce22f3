"""Cross-check against a peer: cell-eval2 (Arc Institute's Virtual Cell Challenge
evaluator) on the same predictions of the real Norman subset.

cell-eval2 0.20.0 needs newer numpy/scipy than the book's pins, so it lives in its own
virtual environment, made by ``scripts/make_celleval_venv.sh`` (default
``.venv-celleval``; or set ``PERTURBBOOK_CELLEVAL_PYTHON`` to its python). The test
writes the predictions in the cell-eval layout with the book's exporter and runs
cell-eval2's own functions in a subprocess (``tests/celleval2_runner.py``, job
``legacy``: ``norm.validate_input_type``, ``metrics.mse``, ``metrics.pearson_delta``).
This check used cell-eval 0.8.2 until chapter 9; cell-eval2 keeps those functions (its
v1 names) and the refusal of negative values, so 0.8.2 was dropped.

Where the definitions coincide (all 500 genes of the subset are evaluation genes, the
control is the observed control cells in both files): the book's ``l2 = sqrt(n_genes *
mse)`` of cell-eval2 and the Pearson deltas are equal. Where they differ, documented
here:

* cell-eval2 refuses predictions with negative values ("data contains negative values";
  it takes them for a wrong scale); the additive prediction ``x_A + x_B - ctrl`` can be
  negative and the book keeps it. With the negatives clipped to 0 cell-eval2 scores the
  clipped prediction like the book scores it.
* "no change" has no predicted change: the book reports Pearson delta as NaN; whatever
  cell-eval2 returns there is recorded, not trusted.
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

ROOT = Path(__file__).resolve().parents[2]

RUNNER = Path(__file__).resolve().parents[1] / "celleval2_runner.py"

# optional peer/runtime: `pytest -m 'not celleval'` leaves these out
pytestmark = pytest.mark.celleval


def celleval_python() -> Path:
    path = Path(
        os.environ.get(
            "PERTURBBOOK_CELLEVAL_PYTHON", ROOT / ".venv-celleval" / "bin" / "python"
        )
    )
    if not path.exists():
        message = (
            f"cell-eval2 environment not found at {path}: command 1 "
            "(scripts/build_book.sh) makes it, "
            "or run scripts/make_celleval_venv.sh"
        )
        if os.environ.get("PERTURBBOOK_SKIP_CELLEVAL") == "1":
            pytest.skip(f"PERTURBBOOK_SKIP_CELLEVAL=1: {message}")
        pytest.fail(
            message
            + " (PERTURBBOOK_SKIP_CELLEVAL=1 skips this cross-check deliberately)"
        )
    return path


def run_celleval(
    python: Path, real: Path, preds: dict[str, Path], outdir: Path
) -> dict:
    """cell-eval2's ``legacy`` job on every prediction file: {name: result}."""
    job = outdir / "legacy_job.json"
    job.write_text(
        json.dumps(
            {
                "kind": "legacy",
                "real": str(real),
                "preds": {k: str(v) for k, v in preds.items()},
            }
        )
    )
    done = subprocess.run(
        [str(python), str(RUNNER), str(job)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=outdir,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def setting(norman_subset, tmp_path_factory):
    python = celleval_python()
    workdir = tmp_path_factory.mktemp("celleval_legacy")
    truth = pseudobulk(norman_subset)
    split = holdout_split(
        truth.conditions, complete_doubles(truth.conditions), dataset=truth.dataset
    )
    train = truth.subset(split.train)
    preds = {
        name: baselines.BASELINES[name](train, split.held_out)
        for name in ("additive", "mean", "no_change")
    }
    preds["additive_clipped"] = Predictions(
        preds["additive"].values.clip(lower=0.0),
        "additive_clipped",
        preds["additive"].dataset,
    )
    keep = norman_subset.obs["condition"].isin(split.held_out + ["ctrl"]).to_numpy()
    observed = norman_subset[keep].copy()
    real = workdir / "real.h5ad"
    cells.cells_to_cell_eval(observed).write_h5ad(real)
    paths = {}
    for name, pred in preds.items():
        paths[name] = workdir / f"{name}.h5ad"
        cells.to_cell_eval(pred, truth.ctrl, control_cells=observed).write_h5ad(
            paths[name]
        )
    peer = run_celleval(python, real, paths, workdir)
    return truth, split, preds, peer


def test_book_equals_celleval_where_definitions_coincide(setting):
    truth, split, preds, peer = setting
    n_genes = truth.means.shape[1]
    assert n_genes <= 1000  # all genes are evaluation genes, as in cell-eval2
    # mean baseline: non-negative, accepted by cell-eval2
    book = evaluate(preds["mean"], truth, split).set_index("condition")
    peer_l2 = {c: np.sqrt(n_genes * v) for c, v in peer["mean"]["mse"].items()}
    for condition in split.held_out:
        assert peer_l2[condition] == pytest.approx(book.loc[condition, "l2"], abs=1e-5)
        assert peer["mean"]["pearson_delta"][condition] == pytest.approx(
            book.loc[condition, "pearson_delta"], abs=1e-6
        )


def test_celleval_rejects_negative_additive_predictions_which_the_book_keeps(setting):
    truth, split, preds, peer = setting
    assert (preds["additive"].values.to_numpy() < 0).any()
    assert "negative values" in peer["additive"].get("error", ""), peer["additive"]
    book_clipped = evaluate(preds["additive_clipped"], truth, split).set_index(
        "condition"
    )
    book_raw = evaluate(preds["additive"], truth, split).set_index("condition")
    clipped = peer["additive_clipped"]
    n_genes = truth.means.shape[1]
    for condition in split.held_out:
        assert np.sqrt(n_genes * clipped["mse"][condition]) == pytest.approx(
            book_clipped.loc[condition, "l2"], abs=1e-5
        )
        assert clipped["pearson_delta"][condition] == pytest.approx(
            book_clipped.loc[condition, "pearson_delta"], abs=1e-6
        )
    # clipping changes the score: the book scores the prediction that was made
    assert not np.allclose(book_clipped["l2"], book_raw.loc[book_clipped.index, "l2"])


def test_no_change_pearson_delta_is_nan_in_the_book(setting):
    truth, split, preds, peer = setting
    book = evaluate(preds["no_change"], truth, split).set_index("condition")
    assert book["pearson_delta"].isna().all()
    n_genes = truth.means.shape[1]
    for condition in split.held_out:  # L2 still agrees
        assert np.sqrt(n_genes * peer["no_change"]["mse"][condition]) == pytest.approx(
            book.loc[condition, "l2"], abs=1e-5
        )
    # cell-eval2's value for an undefined correlation is only recorded (NaN or a
    # spurious number)
    print(
        "cell-eval2 pearson_delta for no change:",
        sorted(set(map(str, peer["no_change"]["pearson_delta"].values())))[:3],
    )
