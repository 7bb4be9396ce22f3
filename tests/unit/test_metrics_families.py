"""Unit tests of the metric families 'systema' and 'vcc' (chapter 9), hand-worked.

Every expected value below is worked out by hand in the comments from the published
definition (Systema ``evaluation/centroid_accuracy.py`` and
``pearson_delta_reference_metrics.py``; cell-eval2 0.20.0 ``metrics/delta.py::mae``,
``metrics/discrimination.py``, ``metrics/de.py::de_overlap``,
``scoring.py::score_one``), not computed with the code under test. Systema has no
installable peer implementation, so these examples are its parity check; the vcc family
is also checked against cell-eval2 itself in ``tests/parity/test_parity_celleval2.py``.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers import ceilings
from helpers.metrics import metric_input, score_families, systema, vcc
from helpers.predictions import Predictions
from helpers.pseudobulk import Pseudobulk, pseudobulk
from helpers.splits import Split

GENES = ["g1", "g2", "g3", "g4"]


def _truth() -> Pseudobulk:
    means = pd.DataFrame(
        [
            [1.0, 1.0, 1.0, 1.0],  # ctrl
            [3.0, 1.0, 1.0, 1.0],  # t1 (train)
            [1.0, 3.0, 1.0, 1.0],  # t2 (train)
            [1.0, 1.0, 4.0, 1.0],  # h1 (held out)
            [1.0, 1.0, 1.0, 5.0],
        ],  # h2 (held out)
        index=pd.Index(["ctrl", "t1", "t2", "h1", "h2"], name="condition"),
        columns=pd.Index(GENES, name="gene"),
    )
    return Pseudobulk(means, pd.Series(10, index=means.index), "toy")


def _split() -> Split:
    return Split(
        "toy",
        0,
        "toy",
        {"ctrl": "train", "t1": "train", "t2": "train", "h1": "test", "h2": "val"},
    )


def _input(values, method="m"):
    truth, split = _truth(), _split()
    pred = Predictions(
        pd.DataFrame(values, index=["h1", "h2"], columns=GENES), method, "toy", 0
    )
    return metric_input(pred, truth, split, GENES)


# --- Systema
# -------------------------------------------------------------------------------


def test_perturbed_mean_is_the_equal_weight_mean_of_training_perturbations_only():
    inp = _input([[1, 1, 4, 1], [1, 1, 1, 5]])
    # train rows t1, t2 (ctrl and the held-out h1, h2 excluded): mean = (2, 2, 1, 1)
    assert list(inp.train.index) == ["t1", "t2"]
    assert systema.perturbed_mean(inp.train).tolist() == [2.0, 2.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="excludes the control"):
        systema.perturbed_mean(_truth().means.loc[["ctrl", "t1"]])


def test_pearson_delta_perturbed_mean_hand_worked():
    # reference m = (2, 2, 1, 1). h1 observed (1, 1, 4, 1) -> y - m = (-1, -1, 3, 0).
    # prediction (2, 2, 3, 1) -> y_hat - m = (0, 0, 2, 0).
    # cor((-1,-1,3,0), (0,0,2,0)): means 0.25 and 0.5; centred (-1.25,-1.25,2.75,-0.25)
    # and
    # (-0.5,-0.5,1.5,-0.5); products 0.625+0.625+4.125+0.125 = 5.5;
    # norms sqrt(1.5625*2+7.5625+0.0625)=sqrt(10.75), sqrt(0.25*3+2.25)=sqrt(3);
    # r = 5.5 / sqrt(32.25) = 5.5 / 5.678908...
    inp = _input([[2, 2, 3, 1], [2, 2, 1, 1]])
    table = systema.score(inp)
    assert table.loc["h1", "pearson_delta_perturbed_mean"] == pytest.approx(
        5.5 / np.sqrt(32.25)
    )
    # h2 predicted exactly m: the change against m is constant -> undefined -> NaN, not
    # 0
    assert np.isnan(table.loc["h2", "pearson_delta_perturbed_mean"])


def test_pearson_delta_perturbed_mean_is_nan_for_constant_predicted_change_not_noise():
    # the reference plus rounding noise is still a constant change
    m = np.array([2.0, 2.0, 1.0, 1.0])
    inp = _input([m + 1e-16, m * (1 + 1e-15)])
    assert systema.score(inp)["pearson_delta_perturbed_mean"].isna().all()


def test_reference_changes_if_control_or_held_out_were_included():
    # guard against the leak: averaging h1/h2 or ctrl into the reference would change
    # the value
    inp = _input([[2, 2, 3, 1], [1, 1, 1, 5]])
    book = systema.score(inp).loc["h1", "pearson_delta_perturbed_mean"]
    y = np.array([1, 1, 4, 1.0])
    y_hat = np.array([2, 2, 3, 1.0])
    leaky = _truth().means.loc[["t1", "t2", "h1", "h2"]].mean().to_numpy()
    with_ctrl = _truth().means.loc[["ctrl", "t1", "t2"]].mean().to_numpy()
    for ref in (leaky, with_ctrl):
        assert np.corrcoef(y_hat - ref, y - ref)[0, 1] != pytest.approx(book)


def test_centroid_accuracy_hand_worked_with_systema_ties():
    # truths A=(0,0), B=(2,0), C=(0,2)
    obs = pd.DataFrame(
        [[0, 0], [2, 0], [0, 2]], index=["A", "B", "C"], columns=["x", "y"], dtype=float
    )
    # A predicted (0,0): distances A 0, B 2, C 2 -> both others farther -> 2/2 = 1
    # B predicted (1,0): A 1, B 1 (tie), C sqrt(5) -> only C strictly farther -> 1/2
    # C predicted (0,3): A 3, B sqrt(13), C 1 -> 2/2 = 1
    pred = pd.DataFrame(
        [[0, 0], [1, 0], [0, 3]], index=["A", "B", "C"], columns=["x", "y"], dtype=float
    )
    assert systema.centroid_accuracies(pred, obs).tolist() == [1.0, 0.5, 1.0]
    # the same prediction for every condition (e.g. no change at (0,0)): A 2/2, B: d_B=2
    # and
    # A (0) closer, C (2) tied -> 0/2, C likewise 0/2
    const = pd.DataFrame(
        [[0, 0]] * 3, index=["A", "B", "C"], columns=["x", "y"], dtype=float
    )
    assert systema.centroid_accuracies(const, obs).tolist() == [1.0, 0.0, 0.0]
    # one condition: no other truth to compare with -> NaN
    assert np.isnan(systema.centroid_accuracies(pred.iloc[:1], obs.iloc[:1]).iloc[0])


def test_systema_family_through_score_families():
    inp = _input([[1, 1, 4, 1], [1, 1, 1, 5]], method="perfect")
    table = score_families(inp, ["systema"])
    assert list(table.columns) == ["method", "seed", "condition", *systema.COLUMNS]
    assert table["centroid_accuracy"].tolist() == [1.0, 1.0]
    assert table["pearson_delta_perturbed_mean"].tolist() == pytest.approx([1.0, 1.0])


# --- VCC
# -------------------------------------------------------------------------------------


def test_mae_hand_worked():
    pred = pd.DataFrame([[1.0, 2.0, 3.0]], index=["p"], columns=["a", "b", "c"])
    obs = pd.DataFrame([[1.5, 2.0, 2.0]], index=["p"], columns=["a", "b", "c"])
    # |(-0.5, 0, 1)| mean = 1.5 / 3
    assert vcc.mae(pred, obs).iloc[0] == pytest.approx(0.5)


def test_discrimination_score_hand_worked_midrank_and_denominator():
    ctrl = pd.Series([0.0, 0.0], index=["x", "y"])
    obs = pd.DataFrame(
        [[1, 0], [0, 1], [2, 0]], index=["P", "Q", "R"], columns=["x", "y"], dtype=float
    )
    # P predicted (1, 0): L1 to P 0, Q 2, R 1 -> rank 0 -> 1 - 0/2 = 1
    # Q predicted (1, 0): to P 0, Q 2, R 1 -> Q is farthest, rank 2 -> 1 - 2/2 = 0
    # R predicted (0.5, 0.5): to P 1, Q 1, R 2 -> rank 2 -> 0
    pred = pd.DataFrame(
        [[1, 0], [1, 0], [0.5, 0.5]],
        index=["P", "Q", "R"],
        columns=["x", "y"],
        dtype=float,
    )
    assert vcc.discrimination_scores(pred, obs, ctrl).tolist() == [1.0, 0.0, 0.0]
    # all three equidistant (prediction (1, 1) vs P, Q: 1, 1; R (2,0): 2 -> not tied)
    # ...
    # a prediction tied with its own and one other: P at (0.5, 0.5): P 1, Q 1, R 2 ->
    # midrank of the tied block {P, Q} = (0 + 1) / 2 = 0.5 -> 1 - 0.5/2 = 0.75
    tied = pd.DataFrame([[0.5, 0.5]], index=["P"], columns=["x", "y"])
    assert vcc.discrimination_scores(tied, obs, ctrl).iloc[0] == pytest.approx(0.75)
    # a single condition cannot be discriminated: NaN (cell-eval2 would return 1.0)
    assert np.isnan(
        vcc.discrimination_scores(pred.iloc[:1], obs.iloc[:1], ctrl).iloc[0]
    )


def test_discrimination_score_drops_every_held_out_target_gene():
    # columns GA, GB are the targets of conditions GA and GA+GB; only "z" is compared
    ctrl = pd.Series([0.0, 0.0, 0.0], index=["GA", "GB", "z"])
    obs = pd.DataFrame(
        [[-5, 0, 1], [-5, -5, 2]],
        index=["GA", "GA+GB"],
        columns=["GA", "GB", "z"],
        dtype=float,
    )
    # predicted GA matches GA+GB on its targets but GA on z: with the targets dropped,
    # d(GA, GA) = |1-1| = 0 < d(GA, GA+GB) = 1 -> 1.0; with them it would be the other
    # way
    pred = pd.DataFrame(
        [[-5, -5, 1], [-5, -5, 2]],
        index=["GA", "GA+GB"],
        columns=["GA", "GB", "z"],
        dtype=float,
    )
    assert vcc.discrimination_scores(pred, obs, ctrl).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="no gene left"):
        vcc.discrimination_scores(
            pred[["GA", "GB"]], obs[["GA", "GB"]], ctrl[["GA", "GB"]]
        )


def _de(target, rows):
    return pd.DataFrame(
        [
            {
                "target": target,
                "feature": f,
                "log2_fold_change": lfc,
                "p_value": p,
                "p_adj": p,
            }
            for f, lfc, p in rows
        ]
    )


def test_de_overlap_hand_worked_and_empty_sets_score_zero():
    real = pd.concat(
        [
            _de(
                "P",
                [
                    ("a", 2.0, 0.01),
                    ("b", -3.0, 0.01),
                    ("c", 0.5, 0.04),
                    ("d", 5.0, 0.2),
                ],
            ),
            _de("Q", [("a", 1.0, 0.5)]),
        ]
    )
    # P: real significant a, b, c -> by |lfc|: b, a, c; k = 3
    # pred significant: d (4), a (2), e is NaN-LFC (masked), b not significant -> d, a
    pred = pd.concat(
        [
            _de(
                "P",
                [
                    ("d", 4.0, 0.001),
                    ("a", 2.0, 0.001),
                    ("e", np.nan, 0.001),
                    ("b", -3.0, 0.3),
                ],
            ),
            _de("Q", [("a", 1.0, 0.001)]),
        ]
    )
    out = vcc.de_overlaps(pred, real, ["P", "Q"])
    # P: top-3 of each: {b, a, c} and {d, a} -> 1 shared / 3
    assert out["P"] == pytest.approx(1 / 3)
    # Q: the truth has no significant gene -> 0 (not agreement), whatever was predicted
    assert out["Q"] == 0.0
    # a prediction with no significant gene -> 0
    none = _de("P", [("a", 0.0, 1.0)])
    assert vcc.de_overlaps(none, real, ["P"])["P"] == 0.0


def test_replicate_score_hand_worked():
    # higher is better, (u - b)/(r - b): (0.7 - 0.5)/(0.9 - 0.5) = 0.5; below b clipped
    # to 0
    assert vcc.replicate_score(0.7, 0.5, 0.9, metric="de_overlap_vcc") == pytest.approx(
        0.5
    )
    assert vcc.replicate_score(0.3, 0.5, 0.9, metric="discrimination_score_l1") == 0.0
    assert vcc.replicate_score(1.0, 0.5, 0.9, metric="de_overlap_vcc") == pytest.approx(
        1.25
    )
    # mae: q = (u - r)/(b - r); u=0.03, b=0.05, r=0.01 -> q = 0.5 -> 1 - q = 0.5
    assert vcc.replicate_score(0.03, 0.05, 0.01, metric="mae") == pytest.approx(0.5)
    # worse than baseline: u = 0.07 -> q = 1.5 -> Box-Cox tail -(1.5^2 - 1)/2 = -0.625
    assert vcc.replicate_score(0.07, 0.05, 0.01, metric="mae") == pytest.approx(-0.625)
    assert vcc.replicate_score(1.0, 0.05, 0.01, metric="mae") == -6.0
    # non-finite value -> the floor; no headroom (replicate not better than baseline) ->
    # NaN
    assert vcc.replicate_score(float("nan"), 0.05, 0.01, metric="mae") == -6.0
    assert vcc.replicate_score(float("nan"), 0.5, 0.9, metric="de_overlap_vcc") == 0.0
    assert np.isnan(vcc.replicate_score(0.5, 0.9, 0.5, metric="de_overlap_vcc"))
    assert np.isnan(vcc.replicate_score(0.03, 0.01, 0.05, metric="mae"))


def test_summarise_needs_the_controls_and_uses_shared_rows():
    rows = []
    for method, (m, d, o) in {
        "mean": (0.05, 0.5, 0.2),
        "split_half_replicate": (0.01, 0.9, 0.6),
        "model": (0.03, 0.7, 0.4),
    }.items():
        for condition in ("A", "B"):
            rows.append(
                {
                    "method": method,
                    "seed": 0,
                    "condition": condition,
                    "mae": m,
                    "discrimination_score_l1": d,
                    "de_overlap_vcc": o,
                }
            )
    # a condition only the model predicted does not enter its aggregate
    rows.append(
        {
            "method": "model",
            "seed": 0,
            "condition": "C",
            "mae": 9.0,
            "discrimination_score_l1": 0.0,
            "de_overlap_vcc": 0.0,
        }
    )
    table = pd.DataFrame(rows)
    out = vcc.summarise(table).set_index("method")
    # model: mae 1 - (0.02/0.04) = 0.5; pds (0.7-0.5)/0.4 = 0.5; de (0.4-0.2)/0.4 = 0.5
    assert out.loc["model"].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert out.loc["mean"].tolist() == pytest.approx([0.0] * 4)
    assert out.loc["split_half_replicate"].tolist() == pytest.approx([1.0] * 4)
    two = pd.concat([table.assign(dataset="d1"), table.assign(dataset="d2")])
    with pytest.raises(ValueError, match="per dataset"):
        vcc.summarise(two)
    with pytest.raises(ValueError, match="split-half replicate"):
        vcc.summarise(table[table["method"] != "split_half_replicate"])


def test_predicted_cells_have_the_predicted_mean_and_no_change_is_the_control():
    rng = np.random.default_rng(0)
    ctrl = np.log1p(rng.poisson(2.0, size=(200, 3)).astype(float))
    target = ctrl.mean(axis=0) + np.array([0.3, -0.2, 0.0])
    pred = pd.DataFrame(
        [target, ctrl.mean(axis=0)], index=["P", "none"], columns=list("abc")
    )
    X, labels = vcc.predicted_cells(pred, ctrl, {"P": 200, "none": 200}, seed=0)
    assert X[labels == "P"].mean(axis=0) == pytest.approx(target, abs=1e-9)
    # "no change" with all control cells: scale factor 1, the control cells themselves
    assert X[labels == "none"] == pytest.approx(ctrl, abs=1e-9)
    assert (X >= 0).all()  # rescaled counts stay non-negative


def test_vcc_score_refuses_without_cells():
    inp = _input([[1, 1, 4, 1], [1, 1, 1, 5]])
    with pytest.raises(ValueError, match="cells"):
        score_families(inp, ["vcc"])


# --- split-half replicate
# ----------------------------------------------------------------------


def _cells() -> ad.AnnData:
    rng = np.random.default_rng(1)
    labels = ["ctrl"] * 40 + ["A"] * 20 + ["B"] * 21
    X = np.log1p(rng.poisson(3.0, size=(len(labels), 5)).astype(float))
    obs = pd.DataFrame(
        {"condition": pd.Categorical(labels)},
        index=[f"c{i}" for i in range(len(labels))],
    )
    return ad.AnnData(X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(5)]))


def test_split_half_replicate_and_reference_are_the_two_disjoint_halves():
    cells = _cells()
    truth = pseudobulk(cells)
    rep = ceilings.split_half_replicate(cells, truth, seed=3)
    ref, ref_cells = ceilings.split_half_reference(cells, truth, seed=3)
    assert rep.method == "split_half_replicate" and list(rep.conditions) == ["A", "B"]
    # A has 20 cells: halves of 10 and 10, so (half A + half B) / 2 is the full mean
    both = (rep.values.loc["A"] + ref.means.loc["A"]) / 2
    assert both.to_numpy() == pytest.approx(truth.means.loc["A"].to_numpy())
    # B has 21 cells: 10 + 10, one left out; the reference cells are exactly half A
    assert ref.n_cells["B"] == 10 and ref.n_cells["ctrl"] == 20
    counts = ref_cells.obs["condition"].value_counts()
    assert counts["A"] == 10 and counts["B"] == 10 and counts["ctrl"] == 20
    assert pseudobulk(ref_cells).means.loc["A"].to_numpy() == pytest.approx(
        ref.means.loc["A"].to_numpy()
    )
    # the replicate differs from its reference (independent cells), and the seed matters
    assert not np.allclose(rep.values.loc["A"], ref.means.loc["A"])
    other = ceilings.split_half_replicate(cells, truth, seed=4)
    assert not np.allclose(other.values.loc["A"], rep.values.loc["A"])


def test_vcc_cache_keeps_different_cells_apart():
    cells = _cells()
    truth = pseudobulk(cells)
    split = Split("toy", 0, "toy", {"ctrl": "train", "A": "test", "B": "val"})
    pred = Predictions(truth.means.loc[["A", "B"]], "m", "", 0)
    ref, ref_cells = ceilings.split_half_reference(cells, truth, seed=0)
    cache: dict = {}
    full = vcc.score(
        metric_input(pred, truth, split, truth.genes, cells=cells, cache=cache)
    )
    half_input = metric_input(
        pred, ref, split, truth.genes, cells=ref_cells, cache=cache
    )
    half = vcc.score(half_input)
    # half A: 10 + 10 cells of A and B, 20 control cells (the full data: 20 + 21 + 40)
    X, labels = vcc.prediction_cells(half_input)
    assert len(X) == 10 + 10 + 20 and (labels == "ctrl").sum() == 20
    alone = vcc.score(metric_input(pred, ref, split, truth.genes, cells=ref_cells))
    # the half-data truth is not served from the full data's cache entry
    pd.testing.assert_frame_equal(half, alone)
    assert not full.equals(half)


def test_vcc_de_overlap_is_nan_for_a_condition_with_one_cell(norman_subset):
    # a rank test needs two cells (scanpy refuses one): such a condition has no DE
    # score, the others are scored as usual
    import numpy as np

    from helpers import baselines
    from helpers.metrics import metric_input, vcc
    from helpers.pseudobulk import pseudobulk
    from helpers.splits import complete_doubles, holdout_split

    labels = norman_subset.obs["condition"].astype(str).to_numpy()
    doubles = complete_doubles(sorted(set(labels)))
    lonely = doubles[0]
    keep = np.ones(len(labels), bool)
    keep[np.flatnonzero(labels == lonely)[1:]] = False
    cells = norman_subset[keep].copy()
    truth = pseudobulk(cells)
    split = holdout_split(truth.conditions, doubles, dataset=truth.dataset)
    pred = baselines.additive(truth.subset(split.train), split.held_out)
    inp = metric_input(pred, truth, split, truth.genes, cells=cells)
    table = vcc.score(inp)
    assert np.isnan(table.loc[lonely, "de_overlap_vcc"])
    others = table.drop(index=lonely)["de_overlap_vcc"]
    assert others.notna().all() and len(others) == len(doubles) - 1


def test_split_half_controls_keep_the_genes_of_the_cells_they_get(norman_subset):
    # a task read backed hands the controls its cells on the evaluation genes only
    from helpers import ceilings
    from helpers.pseudobulk import pseudobulk
    from helpers.splits import complete_doubles

    truth = pseudobulk(norman_subset)
    genes = list(truth.genes[:100])
    cells = norman_subset[:, genes].copy()
    doubles = complete_doubles(truth.conditions)
    replicate = ceilings.split_half_replicate(cells, truth, doubles, seed=1)
    half_a, _ = ceilings.split_half_reference(cells, truth, seed=1)
    assert list(replicate.genes) == genes and list(half_a.genes) == genes
    assert list(replicate.conditions) == doubles
