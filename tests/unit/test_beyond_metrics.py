"""Chapter 8's metrics against hand-computed or theoretical expectations (not against
their own output)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers import audit, baselines, ceilings, cells, compare, retrieval
from helpers.predictions import PredictionError, Predictions
from helpers.pseudobulk import Pseudobulk, pseudobulk
from helpers.splits import complete_doubles, holdout_split, split_from_assignment


def make_cells(profiles: dict[str, np.ndarray], genes=None, name="toy") -> ad.AnnData:
    """AnnData with one row per cell; profiles maps condition -> (cells x genes)
    array."""
    rows, labels = [], []
    for condition, block in profiles.items():
        rows.append(np.asarray(block, dtype=np.float64))
        labels += [condition] * len(block)
    X = np.vstack(rows)
    genes = genes or [f"g{j}" for j in range(X.shape[1])]
    obs = pd.DataFrame(
        {"condition": pd.Categorical(labels)},
        index=[f"c{i}" for i in range(len(labels))],
    )
    adata = ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))
    adata.uns["perturbbook"] = {"dataset": name}
    return adata


# ------------------------------------------------------------------ noise ceiling


def test_ceiling_of_two_cells_is_the_distance_between_them_by_hand():
    ctrl = [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    x1, x2 = (
        [3.0, 1.0, 0.0, 2.0],
        [2.0, 1.5, 0.5, 1.0],
    )  # two cells: each half is one of them
    adata = make_cells({"ctrl": ctrl, "A": [x1, x2]})
    table = ceilings.noise_ceiling(adata, seed=3, n_repeats=1)
    row = table.set_index("condition").loc["A"]
    l2_by_hand = np.sqrt(1 + 0.25 + 0.25 + 1)  # ||x1 - x2||
    d1, d2 = np.subtract(x1, 1.0), np.subtract(x2, 1.0)
    r_by_hand = np.corrcoef(d1, d2)[0, 1]
    assert row["l2_half"] == pytest.approx(l2_by_hand, abs=1e-12)
    assert row["pearson_delta_half"] == pytest.approx(r_by_hand, abs=1e-12)
    assert row["l2_ceiling"] == pytest.approx(l2_by_hand / np.sqrt(2), abs=1e-12)
    assert row["pearson_delta_ceiling"] == pytest.approx(
        2 * r_by_hand / (1 + r_by_hand), abs=1e-12
    )
    assert list(table["condition"]) == ["A"]  # ctrl is not a perturbation


def test_spearman_brown_by_hand():
    assert ceilings.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert ceilings.spearman_brown(0.6, factor=3) == pytest.approx(1.8 / 2.2)


def test_a_prediction_equal_to_the_other_half_scores_the_half_ceiling(norman_subset):
    from helpers.metrics import evaluate

    truth = pseudobulk(norman_subset)
    half_a, half_b = ceilings.split_halves(norman_subset, seed=11)
    assert half_a.n_cells.equals(half_b.n_cells.loc[half_a.conditions])
    assert (half_a.n_cells == (truth.n_cells // 2).loc[half_a.conditions]).all()
    conditions = [c for c in truth.conditions if c != "ctrl"]
    # score half B as a prediction of half A, with the full control as in the ceiling
    means_a = half_a.means.copy()
    means_a.loc["ctrl"] = truth.ctrl
    truth_a = Pseudobulk(means_a, half_a.n_cells, truth.dataset)
    pred = Predictions(half_b.means.loc[conditions], "other_half", truth.dataset)
    scored = evaluate(pred, truth_a).set_index("condition")
    table = ceilings.noise_ceiling(
        norman_subset, truth, seed=11, n_repeats=1
    ).set_index("condition")
    np.testing.assert_allclose(
        table["l2_half"], scored.loc[table.index, "l2"], rtol=1e-12
    )
    np.testing.assert_allclose(
        table["pearson_delta_half"],
        scored.loc[table.index, "pearson_delta"],
        rtol=1e-12,
    )


def test_full_size_ceiling_matches_independent_replicates_in_theory():
    """Gaussian cells with known means: the corrected ceiling estimates what a replicate
    reaches."""
    rng = np.random.default_rng(0)
    n_genes, n_cells, sigma = 400, 60, 1.0
    mu_ctrl = rng.normal(3.0, 0.5, n_genes)
    effects = {f"P{i}": rng.normal(0, 0.25, n_genes) for i in range(12)}
    profiles = {"ctrl": mu_ctrl + rng.normal(0, sigma, (2000, n_genes))}
    for name, effect in effects.items():
        profiles[name] = mu_ctrl + effect + rng.normal(0, sigma, (n_cells, n_genes))
    adata = make_cells(profiles)
    table = ceilings.noise_ceiling(adata, seed=1, n_repeats=5).set_index("condition")
    # theory: two independent n-cell means differ by noise of variance 2 sigma^2 / n per
    # gene
    expected_l2 = np.sqrt(n_genes * 2 * sigma**2 / n_cells)
    np.testing.assert_allclose(table["l2_ceiling"].mean(), expected_l2, rtol=0.03)
    # replicate correlation: var(effect) / (var(effect) + sigma^2 / n), control ~exact
    # (2000 cells)
    expected_r = 0.25**2 / (0.25**2 + sigma**2 / n_cells)
    assert table["pearson_delta_ceiling"].mean() == pytest.approx(expected_r, abs=0.03)
    assert (
        table["pearson_delta_half"].mean() < expected_r - 0.05
    )  # halves understate it


def test_normalised_scores_by_hand():
    metrics = pd.DataFrame(
        {
            "dataset": "toy",
            "seed": 1,
            "condition": ["A", "A", "A"],
            "method": ["mean", "x", "y"],
            "l2": [3.0, 2.0, 1.0],
            "pearson_delta": [0.2, 0.5, 0.8],
        }
    )
    ceiling = pd.DataFrame(
        {
            "dataset": ["toy"],
            "condition": ["A"],
            "l2_ceiling": [1.5],
            "pearson_delta_ceiling": [0.7],
            "l2_oracle": [1.0],
            "pearson_delta_oracle": [0.8],
        }
    )
    out = ceilings.normalised_scores(metrics, ceiling).set_index("method")
    assert out.loc["mean", "norm_l2"] == 0 and out.loc["y", "norm_l2"] == 1
    assert out.loc["x", "norm_l2"] == pytest.approx(0.5)
    assert out.loc["x", "norm_pearson_delta"] == pytest.approx(0.5)
    summary = ceilings.normalised_summary(metrics, ceiling).set_index("method")
    assert summary.loc["x", "norm_l2"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="No rows of the baseline"):
        ceilings.normalised_scores(metrics[metrics["method"] != "mean"], ceiling)


# ------------------------------------------------------------------ retrieval


def toy_truth():
    means = pd.DataFrame(
        [
            [1.0, 1.0, 1.0, 1.0],
            [3.0, 1.0, 1.0, 1.0],
            [1.0, 3.0, 1.0, 1.0],
            [1.0, 1.0, 1.0, 3.0],
        ],
        index=["ctrl", "A", "B", "C"],
        columns=["g0", "g1", "g2", "g3"],
    )
    return Pseudobulk(means, pd.Series(10, index=means.index), "toy")


def test_perfect_prediction_has_rank_one_and_no_change_ranks_like_a_guess():
    truth = toy_truth()
    perfect = Predictions(truth.means.loc[["A", "B", "C"]], "perfect", "toy")
    ranks = retrieval.retrieval_ranks(perfect, truth)
    assert (ranks["rank"] == 1).all() and (ranks["normalised_rank"] == 0).all()
    flat = Predictions(
        pd.DataFrame([truth.ctrl] * 3, index=["A", "B", "C"]), "no_change", "toy"
    )
    ranks = retrieval.retrieval_ranks(flat, truth)
    assert (ranks["rank"] == 2.0).all() and (
        ranks["normalised_rank"] == 0.5
    ).all()  # (3 + 1) / 2


def test_swapped_prediction_ranks_last_by_hand():
    truth = toy_truth()
    values = truth.means.loc[["B", "A", "C"]].copy()
    values.index = ["A", "B", "C"]  # A predicted as B's profile and vice versa
    ranks = retrieval.retrieval_ranks(
        Predictions(values, "swap", "toy"), truth
    ).set_index("condition")
    # s(A, B) = 1 > s(A, A) = s(A, C) = -1/3: rank 1 + 1 + 0.5 * 1 = 2.5
    assert ranks.loc["A", "rank"] == 2.5 and ranks.loc["C", "rank"] == 1


def test_mean_reference_removes_the_shared_shift():
    """Systema's point: a prediction of the average perturbation identifies nothing vs
    the mean."""
    shared = np.array([2.0, 2.0, -1.0, 0.0, 1.0])
    means = pd.DataFrame(
        [
            np.zeros(5),
            shared + [0.5, 0, 0, 0, 0],
            shared + [0, 0.5, 0, 0, 0],
            shared + [0, 0, 0, 0.5, 0],
        ],
        index=["ctrl", "A", "B", "C"],
        columns=[f"g{j}" for j in range(5)],
    )
    truth = Pseudobulk(means + 5, pd.Series(10, index=means.index), "toy")
    average = truth.means.loc[["A", "B", "C"]].mean(axis=0)
    pred = Predictions(
        pd.DataFrame([average] * 3, index=["A", "B", "C"]), "mean", "toy"
    )
    vs_ctrl = retrieval.retrieval_ranks(pred, truth, reference="control")
    vs_mean = retrieval.retrieval_ranks(pred, truth, reference="mean")
    # vs control every candidate is almost equally similar; vs the mean change all tie
    # exactly
    assert (vs_mean["rank"] == 2.0).all()
    assert vs_ctrl["rank"].mean() == pytest.approx(2.0)


def test_de_overlap_finds_planted_genes():
    rng = np.random.default_rng(0)
    n_genes = 30
    base = rng.poisson(2.0, (80, n_genes)).astype(float)
    changed = rng.poisson(2.0, (80, n_genes)).astype(float)
    changed[:, :5] += 6  # genes g0..g4 are strongly up in A
    adata = make_cells({"ctrl": np.log1p(base), "A": np.log1p(changed)})
    truth = pseudobulk(adata)
    observed = retrieval.de_genes(adata, ["A"], n_de=5)
    assert sorted(observed["A"]) == [f"g{j}" for j in range(5)]
    right = truth.means.loc[["A"]]
    wrong = truth.means.loc[["ctrl"]].copy()
    wrong.index = ["A"]
    wrong.iloc[0, 10:15] += 3.0
    assert (
        retrieval.de_overlap(Predictions(right, "right", "toy"), truth, adata, n_de=5)[
            "de_overlap"
        ].iloc[0]
        == 1
    )
    assert (
        retrieval.de_overlap(Predictions(wrong, "wrong", "toy"), truth, adata, n_de=5)[
            "de_overlap"
        ].iloc[0]
        == 0
    )
    flat = Predictions(truth.means.loc[["ctrl"]].set_axis(["A"]), "no_change", "toy")
    assert np.isnan(
        retrieval.de_overlap(flat, truth, adata, n_de=5, observed_de=observed)[
            "de_overlap"
        ].iloc[0]
    )


# ------------------------------------------------------------------ split audit


def test_audit_of_the_real_subset_split_is_clean(norman_subset):
    truth = pseudobulk(norman_subset)
    split = holdout_split(
        truth.conditions, complete_doubles(truth.conditions), dataset=truth.dataset
    )
    report = audit.audit_split(
        split, adata=norman_subset, claims=["seen_singles", "doubles_only"]
    )
    assert report.ok
    table = report.table.set_index("check")
    assert table.loc["shared_cells", "status"] == "ok"
    n_held = len(split.held_out)
    assert table.loc["doubles_recombine_seen_singles", "count"] == n_held
    report.raise_for_leaks()
    claim = audit.audit_split(
        split, claims=["unseen_targets"]
    )  # held-out doubles reuse seen genes
    assert not claim.ok
    with pytest.raises(audit.SplitLeakError, match="unseen_targets"):
        claim.raise_for_leaks()


def test_audit_errors_on_real_leaks():
    adata = make_cells(
        {
            "ctrl": [[1, 0], [2, 0]],
            "A": [[3, 1]],
            "B": [[0, 4]],
            "A+B": [[3, 1], [5, 5]],
            "B+A": [[2, 2]],
        }
    )
    split = split_from_assignment(
        {"ctrl": "test", "A": "train", "B": "train", "A+B": "train", "B+A": "test"},
        dataset="toy",
        seed=1,
        kind="hand",
    )
    report = audit.audit_split(split, adata=adata)
    leaks = set(report.leaks["check"])
    # ctrl is held out, and B+A is the training A+B written the other way round; the A+B
    # cell equal to the A cell is no leak (both are training cells)
    assert {"ctrl_held_out", "same_perturbation"} <= leaks
    with pytest.raises(audit.SplitLeakError, match="same_perturbation"):
        report.raise_for_leaks()


def test_audit_finds_a_copied_cell():
    adata = make_cells(
        {"ctrl": [[1, 0]], "A": [[3, 1]], "B": [[0, 4]], "A+B": [[7, 1], [0, 4]]}
    )
    split = split_from_assignment(
        {"ctrl": "train", "A": "train", "B": "train", "A+B": "test"},
        dataset="toy",
        seed=1,
        kind="hand",
    )
    table = audit.audit_split(split, adata=adata).table.set_index("check")
    assert (
        table.loc["shared_cells", "status"] == "leak"
        and table.loc["shared_cells", "count"] == 1
    )


# ------------------------------------------------------------------ paired test


def test_permutation_p_value_matches_exact_enumeration():
    metrics = pd.DataFrame(
        {
            "dataset": "toy",
            "seed": 1,
            "condition": list("abcd") * 2,
            "method": ["x"] * 4 + ["y"] * 4,
            "l2": [1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    out = compare.paired_test(
        metrics, "x", "y", n_perm=20_000, n_boot=2000, seed=0
    ).iloc[0]
    # d = 1, 2, 3, 4 (x better); of the 16 sign patterns only all-plus and all-minus
    # reach |mean| 2.5
    assert out["mean_diff"] == 2.5
    assert out["p_value"] == 2 / 16 and out["exact"]
    assert (
        not out["better"] and not out["worse"]
    )  # p = 0.125: four conditions cannot decide
    assert 1.0 <= out["lower"] <= out["upper"] <= 4.0


def test_constant_difference_gives_a_degenerate_interval_and_nan_rows_are_dropped():
    rows = []
    for seed in (1, 2, 3):
        for i, c in enumerate("abcde"):
            rows.append(
                {
                    "dataset": "toy",
                    "seed": seed,
                    "condition": c,
                    "method": "x",
                    "pearson_delta": 0.5 + i / 10,
                }
            )
            rows.append(
                {
                    "dataset": "toy",
                    "seed": seed,
                    "condition": c,
                    "method": "y",
                    "pearson_delta": 0.2 + i / 10 if c != "e" else np.nan,
                }
            )
    out = compare.paired_test(
        pd.DataFrame(rows), "x", "y", value="pearson_delta", n_boot=500, n_perm=500
    ).iloc[0]
    assert out["mean_diff"] == pytest.approx(0.3)
    assert out["lower"] == pytest.approx(0.3) and out["upper"] == pytest.approx(0.3)
    assert out["n_dropped"] == 3 and out["n_seeds"] == 3 and out["n_conditions"] == 4


# ------------------------------------------------------------------ predicted cells


def test_energy_distance_by_hand():
    pred = make_cells({"ctrl": [[0.0]], "A": [[0.0], [2.0]]})
    obs = make_cells({"ctrl": [[0.0]], "A": [[1.0]]})
    # 2 E|X - Y| - E|X - X'| - E|Y - Y'| = 2 * 1 - (0 + 2 + 2 + 0) / 4 - 0 = 1
    out = cells.energy_distances(pred, obs, genes=["g0"])
    assert out["energy_distance"].iloc[0] == pytest.approx(1.0)
    same = cells.energy_distances(obs, obs, genes=["g0"])
    assert same["energy_distance"].iloc[0] == pytest.approx(0.0)


def test_predicted_cells_round_trip_through_the_peer_layout(tmp_path, norman_subset):
    truth = pseudobulk(norman_subset)
    split = holdout_split(
        truth.conditions, complete_doubles(truth.conditions), dataset=truth.dataset
    )
    pred = baselines.additive(truth.subset(split.train), split.held_out)
    exported = cells.to_cell_eval(pred, truth.ctrl, n_cells=3)
    assert set(exported.obs["target_gene"]) == set(split.held_out) | {"non-targeting"}
    path = tmp_path / "pred.h5ad"
    exported.write_h5ad(path)
    back = cells.predictions_from_cells(
        cells.read_predicted_cells(path), method="additive", dataset=truth.dataset
    )
    np.testing.assert_allclose(
        back.values.loc[pred.conditions, pred.genes], pred.values, atol=1e-6
    )
    assert (
        pred.values.to_numpy() < 0
    ).any()  # the additive prediction can be negative: kept


def test_predicted_cells_errors_name_the_problem(norman_subset):
    bad = ad.AnnData(
        np.ones((2, 2)),
        obs=pd.DataFrame({"perturbation": ["A", "B"]}, index=["a", "b"]),
    )
    with pytest.raises(PredictionError, match="target_gene"):
        cells.read_predicted_cells(bad)
    no_ctrl = ad.AnnData(
        np.ones((2, 2)), obs=pd.DataFrame({"target_gene": ["A", "B"]}, index=["a", "b"])
    )
    with pytest.raises(PredictionError, match="no control cells"):
        cells.read_predicted_cells(no_ctrl)
    nan = ad.AnnData(
        np.array([[np.nan, 1.0], [1.0, 1.0]]),
        obs=pd.DataFrame({"target_gene": ["A", "non-targeting"]}, index=["a", "b"]),
    )
    with pytest.raises(PredictionError, match="NaN"):
        cells.read_predicted_cells(nan)


def test_a_conditions_ceiling_does_not_depend_on_the_other_conditions(norman_subset):
    truth = pseudobulk(norman_subset)
    everything = ceilings.noise_ceiling(
        norman_subset, truth, seed=4, n_repeats=2
    ).set_index("condition")
    two = ceilings.noise_ceiling(
        norman_subset, truth, ["KLF1", "CBL+CNN1"], seed=4, n_repeats=2
    ).set_index("condition")
    pd.testing.assert_frame_equal(two, everything.loc[two.index])


def test_de_sets_vcc_agree_with_the_vcc_family_and_explain_its_zeros(norman_subset):
    from helpers.metrics import vcc
    from helpers.metrics.inputs import metric_input
    from helpers.pseudobulk import top_control_genes

    truth = pseudobulk(norman_subset)
    split = holdout_split(
        truth.conditions, complete_doubles(truth.conditions)[:3], dataset=truth.dataset
    )
    genes = top_control_genes(truth.ctrl, 200)
    for pred in (
        baselines.additive(truth.subset(split.train), split.held_out),
        baselines.no_change(truth.subset(split.train), split.held_out),
    ):
        sets = retrieval.de_sets_vcc(
            pred, truth, norman_subset, split=split, genes=genes
        )
        peer = vcc.score(metric_input(pred, truth, split, genes, cells=norman_subset))
        np.testing.assert_allclose(sets["de_overlap_vcc"], peer["de_overlap_vcc"])
        # the definition: 0 wherever either significant set is empty
        empty = (sets["n_sig_observed"] == 0) | (sets["n_sig_predicted"] == 0)
        assert (sets.loc[empty, "de_overlap_vcc"] == 0).all()
    # "no change" predicts the control: its rescaled control cells have no significant
    # gene
    assert (sets["n_sig_predicted"] == 0).all()
