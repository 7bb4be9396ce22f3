"""Parity with a peer: scPertEval 0.2.0's own code on the same inputs as
helpers.metrics.calibrated.

scperteval needs numpy>=2 and anndata>=0.12.7, newer than the book's pins, so it lives
in its own virtual environment, made by ``scripts/make_scperteval_venv.sh`` (default
``.venv-scperteval``; or set ``PERTURBBOOK_SCPERTEVAL_PYTHON`` to its python). The
runner below calls scPertEval's public API (``prepare``, ``score``, ``calibrate``) in a
subprocess on the real Norman subset, and reads two internals as data: the halves its
``Dataset`` cut and the interpolated-duplicate centroid of its source registry.

Shared inputs: the subset's cells with ``X`` as float64 (the same values; given the
float32 ``X`` itself, scPertEval averages a condition's cells in float32 and its own
wmse_exp2 calibration values move by up to 6.7e-5, 3e-5 relative - measured once);
predictions of the book's baselines on a split, one "cell" per condition (its centroid
is the prediction); conditions the split does not hold out are filled with the observed
pseudobulk (scPertEval scores every perturbation) and not compared. All 500 genes of the
subset are evaluation genes in both (scPertEval's ``heg_k`` = 1,000 control-expressed
genes).

Compared per condition (tolerance 1e-6): ``weighted_mse`` = ``wmse_exp2``,
``r2_delta_weighted`` = ``weighted_r2_ctrl_exp2``, ``l2`` = ``l2_heg_k`` and
``pearson_delta`` = ``pearson_ctrl_heg_k`` - except for "no change", whose predicted
change is 0: the book reports NaN, scPertEval correlates the rounding noise between its
control mean and the book's (values like -0.2, recorded, not trusted);
then scPertEval's calibration - truth = its first half, positive = its interpolated
duplicate, negative = the leave-one-out mean of all perturbations - rebuilt with the
book's functions on scPertEval's halves, and the DRF of the book's :func:`summarise`
against scPertEval's ``drf``.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from helpers.ceilings import interpolated_duplicate
from helpers.metrics import (
    calibrated,
    evaluate,
    metric_input,
    pearson_delta,
    score_families,
)
from helpers.metrics.paper import l2
from helpers.pseudobulk import pseudobulk

from ._scperteval import (
    baselines_on_the_paper_split,
    run_peer,
    scperteval_python,
    write_inputs,
)


# optional peer/runtime: `pytest -m 'not scperteval'` leaves these out
pytestmark = pytest.mark.scperteval

TOL = 1e-6
PROTOCOLS = {
    "wmse_exp2": "weighted_mse",
    "weighted_r2_ctrl_exp2": "r2_delta_weighted",
    "l2_heg_k": "l2",
    "pearson_ctrl_heg_k": "pearson_delta",
}

#: after the shared start (tests/parity/_scperteval.py RUNNER_HEAD)
RUNNER = r"""
from scperteval.sources import SOURCES
result["calibrate"], result["aggregate"] = {}, {}
for name in protocols:
    res = sp.calibrate(prep, name, calibrator="drf")
    table = res.per_perturbation
    result["calibrate"][name] = {
        p: [float(a), float(b), float(c)] for p, a, b, c in
        zip(table["perturbation"], table["raw_positive"], table["raw_negative"],
            table["drf"])}
    result["aggregate"][name] = {k: float(v) for k, v in res.aggregate.items()}
ds = prep._ds
result["halves"] = {p: [ds.halves[p][0].tolist(), ds.halves[p][1].tolist()]
                    for p in ds.perturbations}
ctx = prep._run_context(de_method="t-test")
result["interpolated"] = {p: SOURCES["interpolated"](ctx, p).tolist()
                          for p in ds.perturbations}
result["genes"] = [str(g) for g in ds.var_names]
"""


@pytest.fixture(scope="module")
def setting(norman_subset, tmp_path_factory):
    python = scperteval_python()
    tmp = tmp_path_factory.mktemp("scperteval")
    cells = norman_subset
    truth, split, preds = baselines_on_the_paper_split(cells)
    preds["interpolated_duplicate"] = interpolated_duplicate(
        cells, truth, split.held_out, seed=0
    )

    files = write_inputs(tmp, cells, truth, preds)
    peer = run_peer(python, RUNNER, tmp, {"protocols": list(PROTOCOLS), "files": files})

    cache: dict = {}
    tables = []
    for pred in preds.values():
        inp = metric_input(pred, truth, split, truth.genes, cells=cells, cache=cache)
        book = evaluate(pred, truth, split).merge(
            score_families(inp, "calibrated"), on=["method", "seed", "condition"]
        )
        tables.append(book)
    return {
        "truth": truth,
        "split": split,
        "cells": cells,
        "peer": peer,
        "book": pd.concat(tables, ignore_index=True),
    }


def test_per_condition_metrics_equal_scperteval(setting):
    book, peer, split = setting["book"], setting["peer"], setting["split"]
    worst, spurious = {}, []
    for method, part in book.groupby("method"):
        part = part.set_index("condition")
        for protocol, column in PROTOCOLS.items():
            theirs = peer["score"][method][protocol]
            for condition in split.held_out:
                ours, other = part.loc[condition, column], theirs[condition]
                if method == "no_change" and column == "pearson_delta":
                    # no predicted change: the book says NaN; scPertEval correlates the
                    # rounding noise of (its control mean - the book's): recorded
                    assert np.isnan(ours)
                    spurious.append(other)
                    continue
                assert np.isfinite(ours) and np.isfinite(other), (
                    method,
                    protocol,
                    condition,
                )
                diff = abs(ours - other)
                worst[column] = max(worst.get(column, 0.0), diff)
                assert diff <= TOL, (method, protocol, condition, ours, other)
    print("worst |book - scPertEval| per metric:", worst)
    print(
        "scPertEval pearson_ctrl_heg_k for no change (undefined):",
        np.round(spurious, 3),
    )
    assert set(worst) == set(PROTOCOLS.values())
    # "no change": NaN Pearson delta in the book, a finite weighted R2
    no_change = book[book["method"] == "no_change"]
    assert no_change["pearson_delta"].isna().all()
    assert np.isfinite(no_change["r2_delta_weighted"]).all()


def test_interpolated_duplicate_equals_scperteval_on_its_halves(setting):
    peer, cells, truth = setting["peer"], setting["cells"], setting["truth"]
    second = {p: h[1] for p, h in peer["halves"].items()}
    ours = interpolated_duplicate(cells, truth, list(second), replicate=second)
    theirs = pd.DataFrame(peer["interpolated"], index=peer["genes"]).T
    diff = np.abs(
        ours.values.loc[theirs.index, theirs.columns].to_numpy() - theirs.to_numpy()
    )
    print("worst |book - scPertEval| interpolated duplicate:", diff.max())
    assert diff.max() <= TOL


def test_calibration_and_drf_equal_scperteval(setting):
    """scPertEval's calibrate, rebuilt with the book's functions on scPertEval's own
    halves."""
    peer, cells, truth = setting["peer"], setting["cells"], setting["truth"]
    halves = peer["halves"]
    conditions = list(halves)
    labels = cells.obs["condition"].astype(str).to_numpy()
    first = np.zeros(cells.n_obs, dtype=bool)
    for rows in halves.values():
        first[rows[0]] = True
    # truth = first half of each condition; DE weights: first half vs all_perturbed
    half_a = pseudobulk(cells[first | (labels == "ctrl")])
    t, _ = calibrated.de_vs_all_perturbed(cells, conditions, target=first)
    positive = interpolated_duplicate(
        cells, truth, conditions, replicate={p: h[1] for p, h in halves.items()}
    ).values
    perturbed = truth.means.loc[conditions]
    negative = (perturbed.sum(axis=0).to_numpy() - perturbed.to_numpy()) / (
        len(conditions) - 1
    )
    negative = pd.DataFrame(negative, index=perturbed.index, columns=perturbed.columns)
    ctrl = truth.ctrl.to_numpy()
    rows = []
    for name, pred in (("positive", positive), ("negative", negative)):
        for p in conditions:
            w = calibrated.mejia_weights(t.loc[p].to_numpy())
            y, y_hat = half_a.means.loc[p].to_numpy(), pred.loc[p].to_numpy()
            rows.append(
                {
                    "method": name,
                    "condition": p,
                    "weighted_mse": calibrated.weighted_mse(y_hat, y, w),
                    "r2_delta_weighted": calibrated.r2_delta_weighted(
                        y_hat, y, ctrl, w
                    ),
                    "l2": l2(y_hat, y),
                    "pearson_delta": pearson_delta(y_hat, y, ctrl),
                }
            )
    table = pd.DataFrame(rows)
    summary = calibrated.summarise(table, negative="negative").set_index("method")
    worst = {}
    for protocol, column in PROTOCOLS.items():
        ours = table.pivot(index="condition", columns="method", values=column)
        per = calibrated.drf_per_condition(
            ours["positive"],
            ours["negative"],
            higher_is_better=calibrated.DRF_METRICS[column][0],
            perfect=calibrated.DRF_METRICS[column][1],
        )
        for i, p in enumerate(ours.index):
            pos, neg, drf = peer["calibrate"][protocol][p]
            for a, b in (
                (ours.loc[p, "positive"], pos),
                (ours.loc[p, "negative"], neg),
                (per[i], drf),
            ):
                assert abs(a - b) <= TOL, (protocol, p, a, b)
                worst[column] = max(worst.get(column, 0.0), abs(a - b))
        for stat, key in (
            ("mean", f"drf_{column}"),
            ("median", f"drf_median_{column}"),
        ):
            diff = abs(peer["aggregate"][protocol][stat] - summary.loc["positive", key])
            worst[f"drf_{stat}_{column}"] = diff
            assert diff <= TOL, (protocol, stat)
        assert summary.loc["negative", f"drf_{column}"] == 0.0
    print(
        "worst |book - scPertEval| calibration "
        "(raw controls, per-condition and mean/median DRF):",
        worst,
    )
