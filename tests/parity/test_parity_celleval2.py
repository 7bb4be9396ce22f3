"""Parity of the book's ``vcc`` metric family with cell-eval2 0.20.0's own code (ch. 9).

cell-eval2 lives in its own environment (``scripts/make_celleval_venv.sh``, default
``.venv-celleval``; or ``PERTURBBOOK_CELLEVAL_PYTHON``); ``tests/celleval2_runner.py``
calls its metric functions there. Shared inputs: the real Norman subset, the split and
baselines of ``tests/parity/test_beyond_celleval.py`` (additive, mean, no change), the
observed cells in the cell-eval layout (:func:`helpers.cells.cells_to_cell_eval`), the
predictions exported with :func:`helpers.cells.to_cell_eval` (their pseudobulk is the
prediction), and for the DE overlap the predicted cells the book forms
(:func:`helpers.metrics.vcc.prediction_cells`: control cells rescaled to the prediction)
- cell-eval2 runs its own DE (``de_compute.compute_de``) and overlap
(``metrics.de.de_overlap``) on them, so the DE statistics and the overlap are checked,
while the way the predicted cells are formed is the book's documented choice. Tolerance
1e-6 (cell-eval2 does not round; the exported files are float32).

Systema's metrics have no cell-eval2 counterpart; they are checked against Systema's
documented definition on hand-worked examples in
``tests/unit/test_metrics_families.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers import baselines, cells
from helpers.metrics import metric_input, score_families, vcc
from helpers.pseudobulk import pseudobulk
from helpers.splits import complete_doubles, holdout_split
from tests.parity.test_beyond_celleval import celleval_python

RUNNER = Path(__file__).resolve().parents[1] / "celleval2_runner.py"

# optional peer/runtime: `pytest -m 'not celleval'` leaves these out
pytestmark = pytest.mark.celleval
METHODS = ("additive", "mean", "no_change")
TOL = 1e-6


def run_peer(python: Path, job: dict, workdir: Path) -> dict:
    path = workdir / f"job_{job['kind']}.json"
    path.write_text(json.dumps(job))
    done = subprocess.run(
        [str(python), str(RUNNER), str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=workdir,
    )
    assert done.returncode == 0, f"cell-eval2 runner failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def setting(norman_subset, tmp_path_factory):
    python = celleval_python()
    workdir = tmp_path_factory.mktemp("celleval2")
    truth = pseudobulk(norman_subset)
    split = holdout_split(
        truth.conditions, complete_doubles(truth.conditions), dataset=truth.dataset
    )
    train = truth.subset(split.train)
    keep = norman_subset.obs["condition"].isin(split.held_out + ["ctrl"]).to_numpy()
    observed = norman_subset[keep].copy()
    real = workdir / "real.h5ad"
    cells.cells_to_cell_eval(observed).write_h5ad(real)
    cache: dict = {}
    book, jobs = {}, {}
    for name in METHODS:
        pred = baselines.BASELINES[name](train, split.held_out)
        inp = metric_input(
            pred, truth, split, truth.genes, cells=norman_subset, cache=cache
        )
        book[name] = score_families(inp, ["vcc"]).set_index("condition")
        pred_path = workdir / f"{name}.h5ad"
        cells.to_cell_eval(pred, truth.ctrl, control_cells=observed).write_h5ad(
            pred_path
        )
        X, labels = vcc.prediction_cells(inp)
        peer_labels = np.where(labels == "ctrl", cells.CONTROL_LABEL, labels)
        cells_path = workdir / f"{name}_cells.h5ad"
        ad.AnnData(
            X,
            obs=pd.DataFrame(
                {cells.PERTURBATION_KEY: pd.Categorical(peer_labels)},
                index=[f"p{i}" for i in range(len(labels))],
            ),
            var=pd.DataFrame(index=inp.genes),
        ).write_h5ad(cells_path)
        jobs[name] = {"pred": str(pred_path), "pred_cells": str(cells_path)}
    # no held-out target gene is measured in the subset: declare "no target gene" so
    # cell-eval2 excludes nothing, as the book does (it would refuse the 'A+B' labels)
    peer = run_peer(
        python,
        {
            "kind": "vcc",
            "real": str(real),
            "methods": jobs,
            "target_gene_map": {"*": None},
        },
        workdir,
    )
    targets = {g for c in split.held_out for g in c.split("+")}
    assert not targets & set(truth.genes), (
        "the subset now measures a target: revisit exclusion"
    )
    return split, book, peer


def worst(setting, metric) -> dict[str, float]:
    split, book, peer = setting
    out = {}
    for name in METHODS:
        diffs = [
            abs(book[name].loc[c, metric] - peer[name][metric][c])
            for c in split.held_out
        ]
        out[name] = float(max(diffs))
    print(f"worst |book - cell-eval2| for {metric}: {out}")
    return out


def test_peer_ran_with_the_documented_v2_settings(setting):
    _, _, peer = setting
    for name in METHODS:
        assert peer[name]["config"] == {
            "control_source": "real",
            "rank_denominator": "n-1",
            "tie_policy": "midrank",
            "exclusion_scope": "panel",
        }
        assert peer[name]["de_params"] == {
            "mean_calc": "arithmetic",
            "epsilon": 1e-9,
            "fdr_scope": "per_pert",
            "nan_lfc_policy": "mask",
            "sort_by": "abs_log2_fold_change",
            "p_adj_threshold": 0.05,
        }


def test_mae_equals_cell_eval2_expr_mae(setting):
    assert max(worst(setting, "mae").values()) < TOL


def test_discrimination_score_equals_cell_eval2_pds_l1(setting):
    assert max(worst(setting, "discrimination_score_l1").values()) < TOL


def test_de_overlap_equals_cell_eval2_de_overlap(setting):
    assert max(worst(setting, "de_overlap_vcc").values()) < TOL


def test_the_comparison_is_not_vacuous(setting):
    split, book, _ = setting
    # the methods differ on every metric, so agreement is not agreement on a constant
    for metric in vcc.COLUMNS:
        means = {name: book[name][metric].mean() for name in METHODS}
        assert len({round(v, 9) for v in means.values()}) > 1, (metric, means)
    # the truth has DE genes and the additive prediction finds some of them
    assert book["additive"]["de_overlap_vcc"].max() > 0
    # "no change" forms cells distributed like the control: no DE gene, overlap 0
    assert (book["no_change"]["de_overlap_vcc"] == 0).all()
