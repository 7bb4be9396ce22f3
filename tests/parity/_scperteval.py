"""What the scPertEval parity modules share: the peer's interpreter, the inputs both
sides score (written once per module) and the one subprocess that runs a module's
runner script on them.

Shared inputs (tests/parity/test_parity_scperteval.py says why): the cells with ``X``
as float64, and per prediction one "cell" per perturbed condition, the held-out ones
predicted, the others filled with the observed pseudobulk (scPertEval scores every
perturbation; those are not compared).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers import baselines
from helpers.pseudobulk import pseudobulk
from helpers.splits import complete_doubles, holdout_split

ROOT = Path(__file__).resolve().parents[2]


def scperteval_python() -> Path:
    """The scPertEval environment's python; a missing one fails the test, or skips it
    with one line under ``PERTURBBOOK_SKIP_SCPERTEVAL=1``."""
    default = ROOT / ".venv-scperteval" / "bin" / "python"
    path = Path(os.environ.get("PERTURBBOOK_SCPERTEVAL_PYTHON", default))
    if not path.exists():
        message = (
            f"scPertEval environment not found at {path}: "
            "command 1 (scripts/build_book.sh) "
            "makes it, or run scripts/make_scperteval_venv.sh"
        )
        if os.environ.get("PERTURBBOOK_SKIP_SCPERTEVAL") == "1":
            pytest.skip(f"PERTURBBOOK_SKIP_SCPERTEVAL=1: {message}")
        pytest.fail(
            message
            + " (PERTURBBOOK_SKIP_SCPERTEVAL=1 skips this cross-check deliberately)"
        )
    return path


def cells_frame(conditions) -> pd.DataFrame:
    """obs with one ``condition`` per cell, cells named ``c0``, ``c1``, ..."""
    return pd.DataFrame(
        {"condition": list(conditions)}, index=[f"c{i}" for i in range(len(conditions))]
    )


def baselines_on_the_paper_split(cells, *, split_seed: int = 0, seed=None):
    """``(truth, split, preds)``: the pseudobulks of ``cells``, the paper's split of
    them (every complete double held out; seed ``split_seed``) and the book's
    ``additive``, ``mean`` and ``no_change`` baselines' predictions (seed ``seed``)."""
    truth = pseudobulk(cells)
    split = holdout_split(
        truth.conditions,
        complete_doubles(truth.conditions),
        dataset=truth.dataset,
        seed=split_seed,
    )
    train = truth.subset(split.train)
    preds = {
        name: baselines.BASELINES[name](train, split.held_out, seed=seed)
        for name in ("additive", "mean", "no_change")
    }
    return truth, split, preds


def write_inputs(tmp: Path, cells, truth, preds: dict) -> list[str]:
    """Write ``tmp/data.h5ad`` (the cells, float64) and one ``tmp/<name>.h5ad`` per
    prediction of ``preds`` (name -> Predictions; ``uns["method"]`` = name); returns
    the prediction files in the order of ``preds``."""
    data = ad.AnnData(
        sp.csr_matrix(cells.X, dtype=np.float64),
        obs=cells_frame(cells.obs["condition"].astype(str)),
        var=pd.DataFrame(index=pd.Index(cells.var_names.astype(str))),
    )
    data.write_h5ad(tmp / "data.h5ad")
    perturbed = [c for c in truth.conditions if c != "ctrl"]
    files = []
    for name, pred in preds.items():
        rows = truth.means.loc[perturbed].copy()
        rows.loc[pred.conditions] = pred.values.loc[pred.conditions, rows.columns]
        out = ad.AnnData(
            rows.to_numpy(dtype=np.float64),
            obs=cells_frame(perturbed),
            var=pd.DataFrame(index=rows.columns.astype(str)),
        )
        out.uns["method"] = name
        out.write_h5ad(tmp / f"{name}.h5ad")
        files.append(str(tmp / f"{name}.h5ad"))
    return files


#: The start of every runner: scPertEval's ``prepare`` for the job's protocols and its
#: ``score`` of every prediction file (``result["score"][method][protocol]``:
#: perturbation -> raw value); a module's runner body adds to ``result``.
RUNNER_HEAD = r"""
import json, sys, warnings
import numpy as np
import anndata as ad
import scperteval as sp
warnings.simplefilter("ignore")
data, out, job = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
protocols = job["protocols"]
adata = ad.read_h5ad(data)
prep = sp.prepare(adata, protocols, perturbation_key="condition", control_label="ctrl",
                  min_cells=2, workers=1)
result = {"score": {}}
for path in job["files"]:
    pred = ad.read_h5ad(path)
    method = str(pred.uns["method"])
    result["score"][method] = {}
    for name in protocols:
        table = sp.score(prep, name, pred).per_perturbation
        result["score"][method][name] = dict(zip(table["perturbation"],
                                                 map(float, table["raw_prediction"])))
"""


def run_peer(python: Path, body: str, tmp: Path, job: dict) -> dict:
    """Run :data:`RUNNER_HEAD` + ``body`` (a runner's own part, which reads ``job``,
    ``prep``, ``adata`` and fills ``result``) with ``python`` in ``tmp`` on
    ``tmp/data.h5ad``; ``job``: ``protocols`` and ``files`` (the prediction files) and
    what ``body`` reads. Returns the ``result`` it wrote as JSON."""
    script = (
        RUNNER_HEAD + body + '\nwith open(out, "w") as fh:\n    json.dump(result, fh)\n'
    )
    done = subprocess.run(
        [
            str(python),
            "-c",
            script,
            str(tmp / "data.h5ad"),
            str(tmp / "peer.json"),
            json.dumps(job),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp / "peer.json").read_text())
