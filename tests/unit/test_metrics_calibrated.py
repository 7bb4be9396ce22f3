"""Edge cases of the 'calibrated' family (helpers.metrics.calibrated) and the
interpolated duplicate.

Oracles not written here: scipy's Welch t-test
(``scipy.stats.ttest_ind(equal_var=False)``) and BH adjustment
(``scipy.stats.false_discovery_control``), scikit-learn's weighted R2
(``sklearn.metrics.r2_score``); scPertEval itself is compared in
tests/parity/test_parity_scperteval.py. Inputs are small synthetic cells drawn here with
numpy (labelled synthetic).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats
from sklearn.metrics import r2_score

from helpers.ceilings import interpolated_duplicate, split_halves
from helpers.metrics import calibrated, metric_input
from helpers.predictions import Predictions
from helpers.pseudobulk import pseudobulk
from helpers.splits import Split


def synthetic_cells(seed: int = 0, n_genes: int = 40, n_cells: int = 30) -> ad.AnnData:
    """Synthetic log-expression: ctrl and four perturbations, each moving 3 genes."""
    rng = np.random.default_rng(seed)
    conditions = ["ctrl", "A", "B", "C", "A+B"]
    blocks, labels = [], []
    for k, condition in enumerate(conditions):
        x = rng.gamma(2.0, 0.5, size=(n_cells, n_genes))
        if condition != "ctrl":
            # each perturbation moves its own three genes
            x[:, 3 * k : 3 * k + 3] += 2.0
            x[:, -1] += 0.3  # and all perturbations share one systematic shift
        x[rng.random(x.shape) < 0.3] = 0.0  # dropouts
        blocks.append(x)
        labels += [condition] * n_cells
    obs = pd.DataFrame(
        {"condition": labels}, index=[f"cell{i}" for i in range(len(labels))]
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    cells = ad.AnnData(
        sp.csr_matrix(np.vstack(blocks).astype(np.float32)), obs=obs, var=var
    )
    cells.uns["perturbbook"] = {"dataset": "synthetic"}
    return cells


@pytest.fixture(scope="module")
def cells():
    return synthetic_cells()


@pytest.fixture(scope="module")
def task(cells):
    truth = pseudobulk(cells)
    assignment = {
        "ctrl": "train",
        "A": "train",
        "B": "train",
        "C": "test",
        "A+B": "test",
    }
    split = Split(dataset="synthetic", seed=0, kind="custom", assignment=assignment)
    return truth, split


def _input(pred_values: pd.DataFrame, truth, split, cells, cache=None, method="m"):
    pred = Predictions(pred_values, method, "synthetic", 0)
    return metric_input(pred, truth, split, truth.genes, cells=cells, cache=cache)


def test_welch_t_and_bh_equal_scipy(cells):
    t, padj = calibrated.de_vs_all_perturbed(cells)
    X = cells.X.toarray().astype(np.float64)
    labels = cells.obs["condition"].to_numpy()
    for condition in ["A", "A+B"]:
        target = X[labels == condition]
        # leave-one-out, no control
        reference = X[(labels != condition) & (labels != "ctrl")]
        ref_t, ref_p = stats.ttest_ind(target, reference, equal_var=False)
        ref_t = np.nan_to_num(ref_t, nan=0.0)
        np.testing.assert_allclose(t.loc[condition].to_numpy(), ref_t, atol=1e-10)
        ref_p = np.nan_to_num(ref_p, nan=1.0)
        np.testing.assert_allclose(
            padj.loc[condition].to_numpy(),
            stats.false_discovery_control(ref_p, method="bh"),
            atol=1e-12,
        )


def test_weights_are_a_distribution_led_by_the_strongest_gene():
    stat = np.array([0.5, -4.0, 2.0, np.nan, 1.0])
    w = calibrated.mejia_weights(stat)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    assert (w >= 0).all() and w[3] == 0.0  # NaN statistic: no weight
    # the largest |t| leads, the smallest gets 0
    assert np.argmax(w) == 1 and w[0] == 0.0
    np.testing.assert_allclose(
        w[[1, 2, 4]] / w[1], [1.0, (1.5 / 3.5) ** 2, (0.5 / 3.5) ** 2]
    )
    flat = calibrated.mejia_weights(np.full(4, 2.5))
    np.testing.assert_allclose(flat, 0.25)  # no spread: uniform


def test_perfect_prediction(cells, task):
    truth, split = task
    inp = _input(truth.means.loc[["C", "A+B"]], truth, split, cells)
    out = calibrated.score(inp)
    assert (out["weighted_mse"] == 0.0).all()
    assert (out["r2_delta_weighted"] == 1.0).all()


def test_constant_prediction_is_scored_not_undefined(cells, task):
    """'No change' (the control for every gene): a finite weighted MSE and R2."""
    truth, split = task
    held = ["C", "A+B"]
    pred = pd.DataFrame(
        np.tile(truth.ctrl.to_numpy(), (2, 1)), index=held, columns=truth.genes
    )
    cache: dict = {}
    inp = _input(pred, truth, split, cells, cache=cache)
    out = calibrated.score(inp)
    t = calibrated.de_vs_all_perturbed(cells, held)[0]
    for condition in held:
        w = calibrated.mejia_weights(t.loc[condition].to_numpy())
        d = truth.means.loc[condition].to_numpy() - truth.ctrl.to_numpy()
        assert out.loc[condition, "weighted_mse"] == pytest.approx(
            np.sum(w * d * d), rel=1e-12
        )
        assert out.loc[condition, "r2_delta_weighted"] == pytest.approx(
            r2_score(d, np.zeros_like(d), sample_weight=w), abs=1e-12
        )
    assert len(cache) == 1  # the truth's DE statistics, once per task
    calibrated.score(_input(truth.means.loc[held], truth, split, cells, cache=cache))
    assert len(cache) == 1


def test_r2_is_nan_where_the_observed_change_is_constant():
    w = np.full(5, 0.2)
    ctrl = np.arange(5.0)
    assert np.isnan(calibrated.r2_delta_weighted(ctrl + 1.0, ctrl + 0.5, ctrl, w))
    assert (
        calibrated.r2_delta_weighted(
            ctrl + [1, 2, 3, 4, 5], ctrl + [1, 2, 3, 4, 5], ctrl, w
        )
        == 1.0
    )


def _metrics_table(values: dict[str, list[float]], column: str) -> pd.DataFrame:
    rows = [
        {"method": m, "seed": 0, "condition": f"p{i}", column: v}
        for m, vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_drf_of_the_controls_and_of_a_perfect_method():
    mse = _metrics_table(
        {
            "mean": [0.4, 0.2, 0.1],
            "perfect": [0.0, 0.0, 0.0],
            "interpolated_duplicate": [0.1, 0.05, 0.1],
            "awful": [4.0, 2.0, 1.0],
        },
        "weighted_mse",
    )
    out = calibrated.summarise(mse).set_index("method")
    assert out.loc["mean", "drf_weighted_mse"] == 0.0  # the negative control itself
    assert out.loc["perfect", "drf_weighted_mse"] == pytest.approx(1.0, abs=1e-4)
    assert out.loc["interpolated_duplicate", "drf_weighted_mse"] == pytest.approx(
        np.mean([0.3 / (0.4 + 1e-6), 0.15 / (0.2 + 1e-6), 0.0])
    )
    assert out.loc["awful", "drf_weighted_mse"] == -1.0  # clipped at -1
    r2 = _metrics_table(
        {
            "mean": [-1.0, 0.5, np.nan],
            "perfect": [1.0, 1.0, 1.0],
            "no_change": [0.0, 0.5, 0.2],
        },
        "r2_delta_weighted",
    )
    out = calibrated.summarise(r2).set_index("method")
    assert out.loc["mean", "drf_r2_delta_weighted"] == 0.0
    assert out.loc["perfect", "drf_r2_delta_weighted"] == pytest.approx(1.0, abs=1e-5)
    # third condition: no negative-control value, skipped (scPertEval's nanmean)
    assert out.loc["no_change", "drf_r2_delta_weighted"] == pytest.approx(
        np.mean([1.0 / 2.000001, 0.0])
    )


def test_book_drf_orders_methods_as_the_raw_metric_where_the_peers_mean_reverses():
    # hand-made: on the third condition the negative control is almost perfect (0.99),
    # so A's per-condition DRF there is (0.5 - 0.99) / 0.01 = -49, clipped to -1
    table = _metrics_table(
        {
            "mean": [0.1, 0.1, 0.99],
            "A": [0.5, 0.5, 0.5],  # mean 0.5: the better method
            "B": [0.2, 0.2, 0.99],  # mean 0.4633
        },
        "pearson_delta",
    )
    out = calibrated.summarise(table).set_index("method")
    # the peers' aggregate, by hand:
    # A (0.4/0.9 + 0.4/0.9 - 1) / 3, B (0.1/0.9 * 2 + 0) / 3
    assert out.loc["A", "drf_pearson_delta"] == pytest.approx(
        (0.8 / 0.9 - 1) / 3, abs=1e-5
    )
    assert out.loc["B", "drf_pearson_delta"] == pytest.approx(0.2 / 0.9 / 3, abs=1e-5)
    assert out.loc["B", "drf_pearson_delta"] > out.loc["A", "drf_pearson_delta"]
    # the book's ratio of means, by hand: neg mean 1.19 / 3
    neg = 1.19 / 3
    assert out.loc["A", "book_drf_pearson_delta"] == pytest.approx(
        (0.5 - neg) / (1 - neg)
    )
    assert out.loc["B", "book_drf_pearson_delta"] == pytest.approx(
        (1.39 / 3 - neg) / (1 - neg)
    )
    assert out.loc["mean", "book_drf_pearson_delta"] == 0.0
    # the book's DRF agrees with the raw metric's ranking
    assert (
        out.loc["A", "book_drf_pearson_delta"] > out.loc["B", "book_drf_pearson_delta"]
    )
    # lower is better: l2, not clipped below -1 (4x the negative control's error)
    l2 = _metrics_table({"mean": [1.0, 3.0], "awful": [4.0, 12.0]}, "l2")
    out = calibrated.summarise(l2).set_index("method")
    assert out.loc["awful", "book_drf_l2"] == pytest.approx((2.0 - 8.0) / 2.0)
    undefined = _metrics_table(
        {"mean": [0.2, 0.3], "no_change": [np.nan, 0.1]}, "pearson_delta"
    )
    out = calibrated.summarise(undefined).set_index("method")
    assert np.isnan(out.loc["no_change", "book_drf_pearson_delta"])
    with pytest.raises(ValueError, match="same shape"):
        calibrated.book_drf([1.0], [1.0, 2.0], higher_is_better=True, perfect=1.0)


def test_drf_is_nan_for_an_undefined_metric():
    table = _metrics_table(
        {"mean": [0.2, 0.3], "no_change": [np.nan, np.nan]}, "pearson_delta"
    )
    out = calibrated.summarise(table).set_index("method")
    assert np.isnan(out.loc["no_change", "drf_pearson_delta"])


def test_clear_errors(cells, task):
    truth, split = task
    inp = _input(truth.means.loc[["C", "A+B"]], truth, split, None)
    with pytest.raises(ValueError, match="cells"):
        calibrated.score(inp)
    without_c = cells[cells.obs["condition"] != "C"].copy()
    with pytest.raises(ValueError, match=r"No cells of condition\(s\) \['C'\]"):
        calibrated.score(_input(truth.means.loc[["C", "A+B"]], truth, split, without_c))
    with pytest.raises(ValueError, match="negative control 'mean'"):
        calibrated.summarise(_metrics_table({"additive": [0.1]}, "weighted_mse"))


def test_interpolated_duplicate_blends_the_replicate_half_and_the_reference(cells):
    truth = pseudobulk(cells)
    conditions = ["A", "B", "C", "A+B"]
    pred = interpolated_duplicate(cells, truth, conditions, seed=3)
    again = interpolated_duplicate(cells, truth, conditions, seed=3)
    pd.testing.assert_frame_equal(pred.values, again.values)  # seeded: same numbers
    assert (
        pred.method == "interpolated_duplicate" and list(pred.conditions) == conditions
    )
    half_b = split_halves(cells, 3, conditions=conditions)[
        1
    ].means  # the replicate half
    perturbed = truth.means.loc[conditions]
    for condition in conditions:
        r = half_b.loc[condition].to_numpy()
        m = (
            (perturbed.drop(index=condition)).mean(axis=0).to_numpy()
        )  # leave-one-out mean
        y = pred.values.loc[condition].to_numpy()
        lo, hi = np.minimum(r, m), np.maximum(r, m)
        assert ((y >= lo - 1e-12) & (y <= hi + 1e-12)).all()  # a blend of the two
        k = conditions.index(condition) + 1
        own = slice(
            3 * k, 3 * k + 3
        )  # the condition's own responding genes: significant
        assert (
            np.abs(y[own] - r[own]) < 0.25 * np.abs(r[own] - m[own])
        ).all()  # alpha > .75
    reference = truth.means.loc[["A", "B"]].mean(axis=0)
    fixed = interpolated_duplicate(cells, truth, ["C"], seed=3, reference=reference)
    quiet = [
        f"g{j}" for j in range(20, 39)
    ]  # genes no perturbation moves: close to the reference
    assert (
        np.abs(fixed.values.loc["C", quiet] - reference[quiet]).max()
        < np.abs(half_b.loc["C", quiet] - reference[quiet]).max()
    )
