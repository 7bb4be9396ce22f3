"""Systema's metrics against the one installable peer that has them: scPertEval 0.2.0.

Systema itself (github mlbio-epfl/systema) is a research repository, not a package.
scPertEval 0.2.0 (PyPI ``scperteval``, Schaefer et al. 2026) implements centroid
accuracy as ``nir`` (``scperteval/protocols/metrics.py``: "Normalized Inverse Rank",
each prediction ranked among all ground-truth centroids by squared Euclidean distance,
ties broken by seeded noise) and the centred Pearson delta as ``pearson`` on profiles
centred on a reference (its ``center_on`` variants). On inputs without tied distances
``nir`` equals Systema's ``calculate_centroid_accuracies``; the test checks that no
distance ties, so the comparison is exact. The reference is the book's (the training
perturbations' mean), handed to scPertEval's function as the centring, not scPertEval's
leaky ``all_perturbed_mean``. Systema's tie rule (a tie is not "farther") is checked by
hand in ``tests/unit/test_metrics_families.py``.

scPertEval lives in its own environment (``scripts/make_scperteval_venv.sh``, default
``.venv-scperteval``, or ``PERTURBBOOK_SCPERTEVAL_PYTHON``);
``PERTURBBOOK_SKIP_SCPERTEVAL=1`` skips deliberately, a missing environment fails with
the fix.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from helpers import baselines
from helpers.metrics import metric_input, score_families, systema
from helpers.pseudobulk import pseudobulk
from helpers.splits import complete_doubles, holdout_split
from tests.parity.test_parity_scperteval import scperteval_python

# optional peer/runtime: `pytest -m 'not scperteval'` leaves these out
pytestmark = pytest.mark.scperteval

METHODS = ("additive", "mean", "no_change")

RUNNER = r"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from scperteval.protocols.metrics import nir, pearson
data = np.load(sys.argv[1])
obs, ref = data["obs"], data["ref"]
out = {}
for name in json.loads(sys.argv[2]):
    pred = data[name]
    out[name] = {
        "centroid_accuracy": [float(v) for v in nir(list(obs), list(pred), None)],
        "pearson_delta_perturbed_mean": [pearson(o - ref, p - ref, None)
                                         for o, p in zip(obs, pred)],
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def setting(norman_subset, tmp_path_factory):
    python = scperteval_python()
    workdir = tmp_path_factory.mktemp("systema")
    truth = pseudobulk(norman_subset)
    split = holdout_split(
        truth.conditions, complete_doubles(truth.conditions), dataset=truth.dataset
    )
    train = truth.subset(split.train)
    arrays, book = {}, {}
    for name in METHODS:
        pred = baselines.BASELINES[name](train, split.held_out)
        inp = metric_input(pred, truth, split, truth.genes)
        book[name] = score_families(inp, ["systema"]).set_index("condition")
        arrays[name] = inp.pred.to_numpy()
        arrays["obs"] = inp.obs.to_numpy()
        arrays["ref"] = systema.perturbed_mean(inp.train).to_numpy()
    path = workdir / "arrays.npz"
    np.savez(path, **arrays)
    done = subprocess.run(
        [str(python), "-c", RUNNER, str(path), json.dumps(METHODS)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
    )
    assert done.returncode == 0, f"scPertEval runner failed:\n{done.stderr[-3000:]}"
    peer = json.loads(done.stdout.strip().splitlines()[-1])
    return split, arrays, book, peer


def test_no_tied_distances_so_nir_is_systemas_centroid_accuracy(setting):
    _, arrays, _, _ = setting
    for name in METHODS:
        d = np.linalg.norm(arrays[name][:, None, :] - arrays["obs"][None, :, :], axis=2)
        for row in d:
            assert len(np.unique(np.round(row, 12))) == len(row), name


def test_centroid_accuracy_equals_scperteval_nir(setting):
    split, _, book, peer = setting
    for name in METHODS:
        diffs = np.abs(
            book[name].loc[split.held_out, "centroid_accuracy"].to_numpy()
            - np.asarray(peer[name]["centroid_accuracy"])
        )
        print(f"worst |book - scPertEval nir| for {name}: {diffs.max()}")
        assert diffs.max() < 1e-12


def test_pearson_delta_perturbed_mean_equals_scperteval_pearson(setting):
    split, _, book, peer = setting
    for name in METHODS:
        ours = book[name].loc[split.held_out, "pearson_delta_perturbed_mean"].to_numpy()
        theirs = np.asarray(peer[name]["pearson_delta_perturbed_mean"], dtype=float)
        if name == "mean":
            # the paper's mean baseline averages ctrl into the training mean, so its
            # change against the perturbed mean is a scaled copy of "no change"
            assert np.isfinite(ours).all()
        print(
            f"worst |book - scPertEval pearson| for {name}: "
            f"{np.nanmax(np.abs(ours - theirs))}"
        )
        assert np.allclose(ours, theirs, atol=1e-12, equal_nan=False)
