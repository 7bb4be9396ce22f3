"""Unit tests of :mod:`helpers.metrics.vcc2026_de` (cell-eval2 vcc2026's DE members).

The formulas are checked on hand-worked tiny DE tables (the expected numbers are worked
out in the comments, not taken from the code), the DE statistics against scipy's
Mann-Whitney U test and statsmodels' Benjamini-Hochberg, and the input guards case by
case. Parity with cell-eval2 itself: ``tests/parity/test_parity_vcc2026_de.py``.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests

from helpers.errors import InputError
from helpers.metrics import vcc2026_de as v

CONTROL = "non-targeting"


def make_pair(
    seed: int = 0, *, n_genes: int = 200, n_ctrl: int = 150, n_cells: int = 40
):
    """A seeded (real, pred) pair of integer-count cells in the VCC layout.

    Six perturbations named by measured genes (each knocks its gene down and moves 30
    others), one whose gene is too rare to pass the CPM gate (``G001``), one whose label
    is no gene (``DRUG``), and one without effect (``G002``: an empty DE gate). 20 genes
    are rare (control mean CPM below 5), and two of them rise in one perturbation. The
    prediction is a perturbed copy: effects shrunk, a third of them with the sign
    flipped, spurious effects added, and new cells drawn.
    """
    rng = np.random.default_rng(seed)
    genes = [f"G{i:03d}" for i in range(n_genes)]
    base = rng.lognormal(0.0, 1.0, n_genes) * 0.6
    base[:20] = rng.uniform(0.0002, 0.0008, 20)  # rare genes: below 5 CPM
    movable = np.arange(20, n_genes)
    targets = [genes[i] for i in rng.choice(movable, 6, replace=False)]
    effects = {}
    for t in targets:
        lfc = np.zeros(n_genes)
        hit = rng.choice(movable, 30, replace=False)
        lfc[hit] = rng.normal(0.0, 1.5, 30)
        lfc[genes.index(t)] = -4.0
        effects[t] = lfc
    effects[targets[0]][[3, 4]] = 8.0  # rare genes rising above the gate in one group
    effects["G001"] = effects[targets[1]] * 0.8
    effects["DRUG"] = effects[targets[2]][::-1].copy()
    effects["G002"] = np.zeros(n_genes)
    perts = sorted(effects)

    def draw(eff, r):
        blocks = [_cells(base, n_ctrl, r)]
        labels = [CONTROL] * n_ctrl
        for p in perts:
            blocks.append(_cells(base * np.exp2(eff[p]), n_cells, r))
            labels += [p] * n_cells
        return ad.AnnData(
            np.vstack(blocks),
            obs=pd.DataFrame(
                {"target": pd.Categorical(labels)},
                index=[f"c{i}" for i in range(len(labels))],
            ),
            var=pd.DataFrame(index=genes),
        )

    real = draw(effects, np.random.default_rng([seed, 1]))
    guess = {}
    for p in perts:
        flip = np.where(rng.random(n_genes) < 0.33, -1.0, 1.0)
        noise = rng.normal(0.0, 0.8, n_genes) * (rng.random(n_genes) < 0.1)
        guess[p] = effects[p] * 0.7 * flip + noise
    pred = draw(guess, np.random.default_rng([seed, 2]))
    return real, pred


def _cells(mu, n, rng):
    depth = rng.lognormal(0.0, 0.3, n)[:, None]
    lam = mu[None, :] * depth * 400.0 / mu.sum()
    return rng.negative_binomial(5, 5 / (5 + lam)).astype(np.float32)


# --- hand-worked DE tables ------------------------------------------------------------


def _de(lfc, p_adj, p_value=None, kept=None) -> dict:
    lfc = np.atleast_2d(np.asarray(lfc, dtype=float))
    p_adj = np.atleast_2d(np.asarray(p_adj, dtype=float))
    p_value = p_adj if p_value is None else np.atleast_2d(np.asarray(p_value, float))
    kept = np.ones(lfc.shape[1], bool) if kept is None else np.asarray(kept)
    return {"lfc": lfc, "p_adj": p_adj, "p_value": p_value, "kept": kept}


def _score(real, pred, genes, targets=None, pert="P"):
    out = v.metrics_from_arrays(
        real, pred, pd.Index(genes), perts=[pert], targets=targets or {}
    )
    return out.loc[pert]


S, N = 0.01, 0.5  # a significant and a non-significant adjusted p-value


def test_sig_jaccard_hand_worked():
    genes = list("abcdef")
    real = _de(np.ones(6), [S, S, S, N, N, N])  # R = {a, b, c}
    pred = _de(np.ones(6), [N, S, S, S, N, N])  # P = {b, c, d}
    # |R ∩ P| / |R ∪ P| = |{b, c}| / |{a, b, c, d}| = 2 / 4
    assert _score(real, pred, genes)["de_wilcoxon_sig_jaccard"] == 0.5
    # perturbation "b" targets gene b (column 1): R = {a, c}, P = {c, d} -> 1 / 3
    got = _score(real, pred, genes, {"b": 1}, pert="b")["de_wilcoxon_sig_jaccard"]
    assert got == pytest.approx(1 / 3, abs=1e-15)
    # both empty: the set convention J(empty, empty) = 1; only R empty: 0
    none = _de(np.ones(6), [N] * 6)
    assert _score(none, none, genes)["de_wilcoxon_sig_jaccard"] == 1.0
    assert _score(none, pred, genes)["de_wilcoxon_sig_jaccard"] == 0.0
    # a gene outside the CPM gate counts nowhere: drop a -> 2 / 3
    gated = _de(np.ones(6), [S, S, S, N, N, N], kept=[False] + [True] * 5)
    assert _score(gated, pred, genes)["de_wilcoxon_sig_jaccard"] == pytest.approx(2 / 3)


def test_fidelity_yield_hand_worked():
    genes = [f"g{i}" for i in range(6)]
    # real: g0..g4 significant with signs + + - + and 0: N = 5 counts g4 too
    # (significance alone: direction.py::_reference_stats), but g4 has no direction, so
    # it is never in the scored set; g5 is not significant but has a direction
    real = _de([1, 1, -1, 1, 0, -1], [S, S, S, S, S, N])
    # pred calls g0 (+, right), g1 (-, wrong), g4 (not adjudicable), g5 (-, right)
    pred = _de([2, -1, 1, 1, 1, -1], [S, S, N, N, S, S])
    # scored set {g0, g1, g5}: n = 3, k = 2 -> 2 / max(3, 5) = 0.4
    got = _score(real, pred, genes)["de_wilcoxon_direction_fidelity_yield_raw"]
    assert got == 0.4
    # over-calling is charged through n: six right calls of nine -> 6 / 9
    real9 = _de(np.ones(9), [S] * 4 + [N] * 5)
    pred9 = _de([1] * 6 + [-1] * 3, [S] * 9)
    got = _score(real9, pred9, [f"g{i}" for i in range(9)])
    assert got["de_wilcoxon_direction_fidelity_yield_raw"] == pytest.approx(6 / 9)
    # a significant prediction without a direction (NaN log2FC) is not significant
    # (mask), so: nothing called, N = 5 -> 0
    silent = _de([np.nan] * 6, [S] * 6)
    got = _score(real, silent, genes)["de_wilcoxon_direction_fidelity_yield_raw"]
    assert got == 0.0
    none = _de(np.ones(6), [N] * 6)
    got = _score(none, none, genes)["de_wilcoxon_direction_fidelity_yield_raw"]
    assert np.isnan(got)  # 0 / max(0, 0)


def test_lfc_nmae_hand_worked():
    genes = [f"g{i:02d}" for i in range(12)]
    real = _de([1.0] * 10 + [-2.0, 5.0], [S] * 11 + [N])  # gate: g00..g10
    pred = _de([0.5] * 10 + [np.nan, 0.0], [N] * 12)  # NaN read as 0
    # num = (10 * 0.5 + |0 - (-2)|) / 11, den = (10 * 1 + 2) / 11 -> 7 / 12
    got = _score(real, pred, genes)["de_wilcoxon_lfc_nmae"]
    assert got == pytest.approx(7 / 12, abs=1e-15)
    # the perturbation targets g10: it leaves the gate -> 0.5 / 1
    got = _score(real, pred, genes, {"g10": 10}, pert="g10")["de_wilcoxon_lfc_nmae"]
    assert got == pytest.approx(0.5, abs=1e-15)
    # the target of g09 leaves a gate of 10 genes; of 9 genes (g09 and g10 gone): NaN
    small = _de([1.0] * 10 + [-2.0, 5.0], [S] * 10 + [N, N])
    got = _score(small, pred, genes, {"g09": 9}, pert="g09")["de_wilcoxon_lfc_nmae"]
    assert np.isnan(got)
    # "no change" predicted: exactly 1
    zero = _de(np.zeros(12), [N] * 12)
    assert _score(real, zero, genes)["de_wilcoxon_lfc_nmae"] == 1.0


def test_direction_reach_hand_worked():
    genes = [f"g{i:02d}" for i in range(13)]
    # real: 12 significant genes, all up (N = 12); g12 not significant
    real = _de([1.0] * 13, [S] * 12 + [N])
    # the prediction ranks (by p_adj) one miss, nine hits, two misses; g12, ranked
    # first of all, is outside the reference's significant set and not ranked
    order = np.array([0.001 * (i + 1) for i in range(12)] + [1e-9])
    pred = _de([-1.0] + [1.0] * 9 + [-1.0, -1.0] + [1.0], order)
    # purity after d genes: 0/1, 1/2, ..., 9/10 = 0.9 >= 0.9, 9/11, 9/12 -> k* = 10
    got = _score(real, pred, genes)["de_wilcoxon_direction_reach_raw"]
    assert got == pytest.approx(10 / 12, abs=1e-15)
    # equal p-values: |log2FC| descending decides; the miss ranked last -> all 11
    # hits first, purity 11/11 ... 11/12 = 0.917 >= 0.9 -> k* = 12
    tied = _de([-0.1] + [2.0] * 11 + [1.0], [S] * 13)
    got = _score(real, tied, genes)["de_wilcoxon_direction_reach_raw"]
    assert got == 1.0
    # all tied, |log2FC| equal: gene name decides; two leading misses (g00, g01) give
    # purity 0 until 10 of d >= 0.9 * d: 10 / 12 = 0.83 < 0.9 -> k* = 0
    flat = _de([-1.0, -1.0] + [1.0] * 11, [S] * 13)
    assert _score(real, flat, genes)["de_wilcoxon_direction_reach_raw"] == 0.0
    none = _de(np.ones(13), [N] * 13)
    assert np.isnan(_score(none, pred, genes)["de_wilcoxon_direction_reach_raw"])


# --- the DE statistics against scipy / statsmodels ------------------------------------


def test_counts_to_cpm_closed_form():
    X = np.array([[1.0, 3.0], [0.0, 0.0], [2.0, 2.0]])
    expected = np.array([[250000.0, 750000.0], [0.0, 0.0], [500000.0, 500000.0]])
    np.testing.assert_array_equal(v.counts_to_cpm(X), expected)


def test_de_arrays_equal_scipy_mannwhitney_and_bh():
    rng = np.random.default_rng(3)
    n_g = 30
    mu = rng.uniform(0.5, 5.0, n_g)
    ctrl = rng.poisson(mu, (40, n_g)).astype(float)
    a = rng.poisson(mu * np.exp(rng.normal(0, 0.7, n_g)), (25, n_g)).astype(float)
    ctrl[:, :4] = 0.0  # not in the control: below the CPM gate
    a[:3, :4] = 1.0
    ccpm, acpm = v.counts_to_cpm(ctrl), v.counts_to_cpm(a)
    de = v.de_arrays(acpm, np.array(["A"] * 25), ccpm, perts=["A"])
    ref = ccpm.mean(axis=0)
    np.testing.assert_array_equal(de["kept"], ref > 5.0)
    lfc = np.log2((acpm.mean(axis=0) + 1e-9) / (ref + 1e-9))
    np.testing.assert_allclose(de["lfc"][0], lfc, rtol=1e-13)
    p = mannwhitneyu(
        np.log1p(acpm),
        np.log1p(ccpm),
        alternative="two-sided",
        method="asymptotic",
        use_continuity=False,
    ).pvalue
    np.testing.assert_allclose(de["p_value"][0], p, rtol=1e-10)
    kept = de["kept"]
    assert 0 < kept.sum() < n_g
    q = multipletests(p[kept], method="fdr_bh")[1]
    np.testing.assert_allclose(de["p_adj"][0][kept], q, rtol=1e-12)
    assert np.isnan(de["p_adj"][0][~kept]).all()


def test_resolved_targets_need_a_kept_gene():
    genes = pd.Index(["A", "B", "C"])
    kept = np.array([True, False, True])
    got = v.resolved_targets(["A", "B", "X"], genes, kept)
    assert got == {"A": [0]}  # B is gated away, X names no gene
    # a callable maps a double to both of its genes (only the kept ones count)
    both = v.resolved_targets(
        ["A+C", "B+C"], genes, kept, targets=lambda p: p.split("+")
    )
    assert both == {"A+C": [0, 2], "B+C": [2]}


def test_a_double_excludes_both_genes():
    genes = list("abcdef")
    real = _de(np.ones(6), [S, S, S, N, N, N])  # R = {a, b, c}
    pred = _de(np.ones(6), [N, S, S, S, N, N])  # P = {b, c, d}
    # "b+c" without b and c: R = {a}, P = {d} -> 0 / 2
    own = v.resolved_targets(
        ["b+c"], pd.Index(genes), np.ones(6, bool), targets=lambda p: p.split("+")
    )
    got = _score(real, pred, genes, own, pert="b+c")
    assert got["de_wilcoxon_sig_jaccard"] == 0.0


# --- score_de: the switch and the guards ----------------------------------------------


@pytest.fixture(scope="module")
def pair():
    return make_pair(0, n_genes=80, n_ctrl=60, n_cells=12)


def test_exclude_target_switch(pair):
    real, pred = pair
    on = v.score_de(real, pred)
    off = v.score_de(real, pred, exclude_target=False)
    assert list(on.columns) == v.COLUMNS and on.index.name == "perturbation"
    assert list(on.index) == sorted(on.index)
    # labels that name no kept gene are unaffected; some knocked-down target moves
    for label in ("DRUG", "G001", "G002"):
        pd.testing.assert_series_equal(on.loc[label], off.loc[label])
    assert not on.drop(["DRUG", "G001", "G002"]).equals(
        off.drop(["DRUG", "G001", "G002"])
    )


def _with(adata, X=None, obs=None, var=None):
    return ad.AnnData(
        adata.X.copy() if X is None else X,
        obs=adata.obs.copy() if obs is None else obs,
        var=adata.var.copy() if var is None else var,
    )


def test_guards(pair):
    real, pred = pair
    frac = _with(pred, X=pred.X + 0.5)
    with pytest.raises(InputError, match="not integers"):
        v.score_de(real, frac)
    neg = real.X.copy()
    neg[0, 0] = -1
    with pytest.raises(InputError, match="negative"):
        v.score_de(_with(real, X=neg), pred)
    with pytest.raises(InputError, match="no control cells"):
        v.score_de(real, pred, control="ctrl")
    short = pred[pred.obs["target"] != "G002"].copy()
    with pytest.raises(InputError, match=r"missing \['G002'\]"):
        v.score_de(real, short)
    renamed = _with(pred, var=pd.DataFrame(index=[f"x{i}" for i in range(pred.n_vars)]))
    with pytest.raises(InputError, match="different genes"):
        v.score_de(real, renamed)
    with pytest.raises(InputError, match="empty"):
        v.score_de(real[:0].copy(), pred)
    with pytest.raises(InputError, match="no obs column"):
        v.score_de(real, pred, pert_col="gene")
    keep = (real.obs["target"] != "DRUG").to_numpy()
    keep[np.flatnonzero(~keep)[0]] = True  # one DRUG cell left
    with pytest.raises(InputError, match="fewer than 2 cells"):
        v.score_de(real[keep].copy(), pred)
    with pytest.raises(InputError, match="control_source"):
        v.score_de(real, pred, control_source="both")
    no_ctrl = pred[pred.obs["target"] != CONTROL].copy()
    with pytest.raises(InputError, match="predicted data have no control"):
        v.score_de(real, no_ctrl, control_source="pred")
    # fractional predictions only where allowed; the real side never
    v.score_de(real, frac, allow_fractional=True)
    with pytest.raises(InputError, match="not integers"):
        v.score_de(_with(real, X=real.X + 0.5), pred, allow_fractional=True)


def test_sparse_input_equals_dense(pair):
    real, pred = pair
    sparse = _with(real, X=sp.csr_matrix(real.X))
    pd.testing.assert_frame_equal(v.score_de(sparse, pred), v.score_de(real, pred))


def test_pred_control_with_the_real_control_is_the_real_control_score(pair):
    """``control_source="pred"`` with the prediction's control cells equal to the real
    ones gives the ``"real"`` score (the only difference is whose control is used)."""
    real, pred = pair
    ctrl_real = real[real.obs["target"] == CONTROL]
    swapped = ad.concat([pred[pred.obs["target"] != CONTROL], ctrl_real])
    swapped.obs_names_make_unique()
    pd.testing.assert_frame_equal(
        v.score_de(real, swapped, control_source="pred"), v.score_de(real, pred)
    )


def test_lfc_nmae_reference_closed_forms(pair):
    real, _ = pair
    # two identical halves: |lfc_A - lfc_B| = 0 on every gated gene -> 0 exactly; NaN
    # where the perturbation has fewer than 10 gated genes (G002, no effect)
    ref = v.lfc_nmae_reference(real, (real, real))
    assert list(ref.index) == sorted(ref.index) and ref.index.name == "perturbation"
    assert (ref.dropna() == 0.0).all() and ref.notna().sum() >= 5
    assert np.isnan(ref["G002"])
    # a half whose effect is flat (its perturbed cells are its control cells): its
    # log2FC is 0 on every gated gene, the other half equals the full data -> the
    # numerator is the denominator -> 1
    labels = real.obs["target"].astype(str).to_numpy()
    ctrl = np.flatnonzero(labels == CONTROL)
    blocks, names = [real[ctrl].X], [CONTROL] * len(ctrl)
    for p in sorted(set(labels) - {CONTROL}):
        blocks.append(real[ctrl].X)
        names += [p] * len(ctrl)
    flat = ad.AnnData(
        np.vstack(blocks),
        obs=pd.DataFrame({"target": names}, index=[f"f{i}" for i in range(len(names))]),
        var=real.var.copy(),
    )
    one = v.lfc_nmae_reference(real, (real, flat))
    np.testing.assert_allclose(one.dropna(), 1.0, rtol=1e-12)
    with pytest.raises(InputError, match="has no cells of"):
        v.lfc_nmae_reference(real, (real, real[real.obs["target"] != "DRUG"].copy()))
