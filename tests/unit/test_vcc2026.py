"""The ``vcc2026`` family's own logic on hand-worked cases (cell-eval2 parity:
``tests/parity/test_parity_vcc2026.py``): counts rebuilt from log-normalised data, the
jackknife against a brute-force leave-one-out, ``pds_cosine`` and the expression
components on closed forms, the replicate-scale rescaling, and one clear line for each
kind of bad input."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.errors import InputError
from helpers.metrics import vcc2026

T = vcc2026.BULK_TARGET_SUM


def _adata(X, labels, genes=None) -> ad.AnnData:
    X = np.asarray(X, dtype=np.float32)
    genes = genes or [f"G{i}" for i in range(X.shape[1])]
    return ad.AnnData(
        sp.csr_matrix(X),
        obs=pd.DataFrame({"target": labels}, index=[f"c{i}" for i in range(len(X))]),
        var=pd.DataFrame(index=genes),
    )


def _pair():
    rng = np.random.default_rng(0)
    labels = ["non-targeting"] * 6 + ["G0"] * 4 + ["G1"] * 4
    real = _adata(rng.poisson(3.0, (14, 5)), labels)
    pred = _adata(rng.poisson(3.0, (14, 5)), labels)
    return real, pred


# ----------------------------------------------------------------- counts_from_lognorm


def test_counts_from_lognorm_hand_worked():
    counts = np.array([[1, 3, 0, 5], [2, 4, 0, 0], [0, 0, 0, 0]], dtype=float)
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    lognorm = _adata(np.log1p(counts / totals * 1e4), ["a", "b", "c"])
    out = vcc2026.counts_from_lognorm(lognorm).X.toarray()
    # cell 1 holds a single count: exact; cell 2's smallest count is 2, so its counts
    # are divided by 2 (the paper's rule recovers counts up to that factor); cell 3: 0
    expected = np.array([[1, 3, 0, 5], [1, 2, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(out, expected)


def test_counts_from_lognorm_refuses_negative_values():
    with pytest.raises(InputError, match="negative"):
        vcc2026.counts_from_lognorm(_adata([[-1.0, 2.0]], ["a"]))


# --------------------------------------------------------------------- bulk, jackknife


def test_bulk_means_closed_form():
    X = np.array([[1, 0, 3], [2, 2, 0], [0, 1, 1]], dtype=float)
    perts, mu = vcc2026.bulk_means(X, ["b", "a", "b"])
    assert list(perts) == ["a", "b"]
    s_a, s_b = np.array([2, 2, 0.0]), np.array([1, 1, 4.0])
    np.testing.assert_allclose(mu[0], np.log1p(T * s_a / 4), rtol=1e-15)
    np.testing.assert_allclose(mu[1], np.log1p(T * s_b / 6), rtol=1e-15)


def test_jackknife_matches_brute_force_leave_one_out():
    rng = np.random.default_rng(1)
    X = rng.poisson(2.0, (7, 9)).astype(float)
    got = vcc2026.jackknife(X, ["p"] * 7)[0]
    n = len(X)
    loo = []
    for i in range(n):
        s = np.delete(X, i, axis=0).sum(axis=0)
        loo.append(np.log1p(T * s / s.sum()))
    loo = np.array(loo)
    expected = (n - 1) / n * ((loo - loo.mean(axis=0)) ** 2).sum()
    assert got == pytest.approx(expected, rel=1e-10)
    assert vcc2026.jackknife(X[:1], ["p"])[0] == 0.0  # one cell: no correction


# ------------------------------------------------------------------------ pds_cosine


def test_pds_cosine_hand_worked():
    genes = ["G0", "G1", "X", "Y"]
    ctrl = np.zeros(4)
    real = (
        np.array(["G0", "G1", "non-targeting"]),
        np.vstack([[9.0, 0, 1, 0], [0, 9.0, 0, 1], ctrl]),
    )
    # G0's prediction: its own target strongly, plus Y (G1's effect off the targets)
    pred = (np.array(["G0", "G1"]), np.array([[9.0, 0, 0, 1], [0, 0, 0.0, 2]]))
    out = vcc2026.pds_cosine(pred, real, genes)
    # targets G0, G1 leave the panel: real effects X and Y; G0's prediction is then
    # farthest from its own effect (rank 1 of n - 1 = 1 -> 0), G1's closest (-> 1)
    assert out["G0"] == 0.0 and out["G1"] == 1.0
    # with the target kept, G0's own knockdown makes it the closest: 1
    kept = vcc2026.pds_cosine(pred, real, genes, exclude_target=False)
    assert kept["G0"] == 1.0
    # a zero predicted effect ties every distance at 1: midrank 0.5
    flat = (np.array(["G0"]), np.zeros((1, 4)))
    assert vcc2026.pds_cosine(flat, real, genes)["G0"] == 0.5


def test_expr_components_closed_form_one_cell_groups():
    genes = ["G0", "A", "B"]
    real_mu = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    pred_mu = np.array([[5.0, 1.5, 0.5], [0.0, 0.0, 0.0]])
    labels = np.array(["G0", "non-targeting"])
    zero = np.zeros(2)  # one-cell groups: no sampling correction
    out = vcc2026.expr_components(
        (labels, pred_mu, zero), (labels, real_mu, zero), genes
    )
    # G0's own gene leaves both sums: |G_p| = 2
    assert out.loc["G0", "expr_mse_unbiased_capped"] == pytest.approx(0.25)
    assert out.loc["G0", "expr_distance_unbiased"] == pytest.approx(0.5)
    full = vcc2026.expr_components(
        (labels, pred_mu, zero), (labels, real_mu, zero), genes, exclude_target=False
    )
    assert full.loc["G0", "expr_mse_unbiased_capped"] == pytest.approx(9.5 / 3)


# ---------------------------------------------------------------------- rescaling


def test_rescale_hand_worked():
    user = pd.Series(
        {
            "pds_cosine": 0.7,
            "expr_mse_unbiased_capped_norm": 0.5,
            "de_wilcoxon_lfc_nmae": 1.2,
            "de_wilcoxon_sig_jaccard": np.nan,
        }
    )
    base = pd.Series(
        {
            "pds_cosine": 0.5,
            "expr_mse_unbiased_capped_norm": 1.0,
            "de_wilcoxon_lfc_nmae": 1.0,
            "de_wilcoxon_sig_jaccard": 0.1,
        }
    )
    rep = pd.Series(
        {
            "pds_cosine": 0.9,
            "expr_mse_unbiased_capped_norm": 0.2,
            "de_wilcoxon_lfc_nmae": 0.4,
            "de_wilcoxon_sig_jaccard": 0.5,
        }
    )
    s = vcc2026.rescale(user, base, rep)
    assert s["pds_cosine"] == pytest.approx(0.5)  # (0.7 - 0.5) / (0.9 - 0.5)
    assert s["expr_mse_unbiased_capped_norm"] == pytest.approx(0.625)  # 1 - 0.3 / 0.8
    assert s["de_wilcoxon_lfc_nmae"] == pytest.approx(-1 / 3)  # linear below 0
    assert s["de_wilcoxon_sig_jaccard"] == pytest.approx(-0.25)  # missing -> u = 0
    assert vcc2026.overall_score(s) == pytest.approx((0.5 + 0.625 - 1 / 3 - 0.25) / 4)
    worse = vcc2026.rescale(
        pd.Series({"expr_mse_unbiased_capped_norm": 1.4}), base, rep
    )
    assert worse["expr_mse_unbiased_capped_norm"] == 0.0  # clipped at 0


def test_rescale_refuses_a_scale_without_headroom():
    with pytest.raises(InputError, match="headroom"):
        vcc2026.rescale(
            pd.Series({"pds_cosine": 0.6}),
            pd.Series({"pds_cosine": 0.7}),
            pd.Series({"pds_cosine": 0.6}),
        )


# --------------------------------------------------------------------- bad input


def _one_line(excinfo) -> None:
    assert "\n" not in str(excinfo.value)


def test_bad_input_non_integer_counts():
    real, pred = _pair()
    pred.X = pred.X * 0.5
    with pytest.raises(InputError, match="non-integer") as e:
        vcc2026.score_anndata(real, pred, de=False)
    _one_line(e)


def test_bad_input_negative_counts():
    real, pred = _pair()
    real.X = -real.X
    with pytest.raises(InputError, match="negative") as e:
        vcc2026.score_anndata(real, pred, de=False)
    _one_line(e)


def test_bad_input_no_control_cells():
    real, pred = _pair()
    with pytest.raises(InputError, match="no control cells") as e:
        vcc2026.score_anndata(real, pred, control="ctrl", de=False)
    _one_line(e)


def test_bad_input_different_genes():
    real, pred = _pair()
    pred.var_names = [f"H{i}" for i in range(pred.n_vars)]
    with pytest.raises(InputError, match="different genes") as e:
        vcc2026.score_anndata(real, pred, de=False)
    _one_line(e)


def test_bad_input_perturbation_missing_from_pred():
    real, pred = _pair()
    pred = pred[pred.obs["target"] != "G1"].copy()
    with pytest.raises(InputError, match="lack 1 perturbation") as e:
        vcc2026.score_anndata(real, pred, de=False)
    _one_line(e)


def test_bad_input_extra_perturbation_in_pred():
    real, pred = _pair()
    extra = pred[pred.obs["target"] == "G1"].copy()
    extra.obs["target"] = "G9"
    extra.obs_names = [f"x{i}" for i in range(extra.n_obs)]
    pred = ad.concat([pred, extra])
    with pytest.raises(InputError, match=r"absent from the real data.*\['G9'\]") as e:
        vcc2026.score_anndata(real, pred, de=False)
    _one_line(e)


def test_bad_input_empty_object():
    real, pred = _pair()
    with pytest.raises(InputError, match="empty") as e:
        vcc2026.score_anndata(real, pred[:0].copy(), de=False)
    _one_line(e)


def test_good_input_scores_every_perturbation():
    real, pred = _pair()
    table = vcc2026.score_anndata(real, pred, de=False)
    assert list(table.index) == ["G0", "G1"]
    assert list(table.columns) == [*vcc2026.COLUMNS, *vcc2026.COMPONENTS]
    assert table["pds_cosine"].between(0, 1).all()


def test_summarise_rescales_between_the_book_controls():
    rows = []
    values = {  # method -> (pds_cosine, capped_norm) on two conditions
        "mean": [(0.4, 1.0), (0.6, 1.0)],
        "split_half_replicate": [(0.8, 0.2), (1.0, 0.2)],
        "m": [(0.6, 0.6), (0.8, 0.4)],
    }
    for method, pairs in values.items():
        for condition, (pds, norm) in zip(["A", "B"], pairs):
            row = {"method": method, "seed": 1, "condition": condition}
            row |= {c: np.nan for c in vcc2026.DE_COLUMNS}
            row |= {"pds_cosine": pds, "expr_mse_unbiased_capped_norm": norm}
            rows.append(row)
    out = vcc2026.summarise(pd.DataFrame(rows)).set_index("method")
    # pds: (0.7 - 0.5) / (0.9 - 0.5); norm: 1 - (0.5 - 0.2) / (1.0 - 0.2)
    assert out.loc["m", "vcc2026_score_pds_cosine"] == pytest.approx(0.5)
    norm = "vcc2026_score_expr_mse_unbiased_capped_norm"
    assert out.loc["m", norm] == pytest.approx(0.625)
    assert out.loc["split_half_replicate", "vcc2026_score_pds_cosine"] == 1.0
    # the DE members are missing here: no scale, NaN, so the overall score is NaN
    assert np.isnan(out.loc["m", "vcc2026_score"])


def test_a_condition_with_one_cell_gets_nan_and_leaves_the_panel():
    """A rank test needs two cells: in a task's split half a small condition can have
    one. It gets NaN in every member (no error), and the other conditions are scored
    as a panel without it (the same values as asking for them alone)."""
    from helpers.metrics.inputs import MetricInput
    from helpers.simulate import log_normalise

    rng = np.random.default_rng(3)
    genes = pd.Index([f"G{i}" for i in range(30)])
    labels = ["ctrl"] * 8 + ["A"] * 6 + ["B"] * 6 + ["C"]
    mu = np.full((len(labels), 30), 3.0)
    mu[8:14, :5] *= 4.0  # A
    mu[14:20, 5:10] *= 4.0  # B
    counts = sp.csr_matrix(rng.poisson(mu).astype(np.float32))
    cells = ad.AnnData(
        log_normalise(counts),
        obs=pd.DataFrame(
            {"condition": labels}, index=[f"c{i}" for i in range(len(labels))]
        ),
        var=pd.DataFrame(index=genes),
    )
    X = np.asarray(cells.X.todense())
    lab = np.array(labels)
    means = pd.DataFrame(
        {c: X[lab == c].mean(axis=0) for c in ["ctrl", "A", "B", "C"]}, index=genes
    ).T

    def inp(conditions):
        return MetricInput(
            method="m",
            seed=1,
            genes=genes,
            pred=means.loc[conditions] * 1.1,
            obs=means.loc[conditions],
            ctrl=means.loc["ctrl"],
            train=means.loc[["A"]],
            cells=cells,
        )

    table = vcc2026.score(inp(["A", "B", "C"]))
    assert table.loc["C"].isna().all()
    alone = vcc2026.score(inp(["A", "B"]))
    pd.testing.assert_frame_equal(table.loc[["A", "B"]], alone)
