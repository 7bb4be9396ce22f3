"""The linear model Y ~ G W P^T + b: closed form, recovery, embeddings, splits,
forest-plot numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import linear, metrics, published
from helpers.linear import EmbeddingError, fit_linear_model, solve_two_sided_ridge
from helpers.pseudobulk import Pseudobulk
from helpers.splits import SplitError, single_split


def test_closed_form_equals_brute_force_vectorised_ridge():
    """vec(W) minimises ||vec(Y) - (P kron G) vec(W)||^2 + lambda (||G W||^2 + ||W
    P^T||^2 + lambda ||W||^2)."""
    rng = np.random.default_rng(0)
    G, P, Y = (
        rng.normal(size=(30, 4)),
        rng.normal(size=(12, 3)),
        rng.normal(size=(30, 12)),
    )
    for lam in (0.0, 0.1, 5.0):
        W = solve_two_sided_ridge(G, Y, P, lam)
        X = np.kron(P, G)  # vec(G W P^T) = (P kron G) vec(W), column-major vec
        K, Kp = G.shape[1], P.shape[1]
        penalty = lam * (
            np.kron(np.eye(Kp), G.T @ G)
            + np.kron(P.T @ P, np.eye(K))
            + lam * np.eye(K * Kp)
        )
        brute = np.linalg.solve(
            X.T @ X + penalty, X.T @ Y.reshape(-1, order="F")
        ).reshape(K, Kp, order="F")
        np.testing.assert_allclose(W, brute, rtol=1e-9, atol=1e-10)
    # lambda = 0: ordinary least squares of the Kronecker design
    ols = np.linalg.lstsq(np.kron(P, G), Y.reshape(-1, order="F"), rcond=None)[
        0
    ].reshape(4, 3, order="F")
    np.testing.assert_allclose(solve_two_sided_ridge(G, Y, P, 0.0), ols, rtol=1e-8)


def test_recovers_W_from_data_generated_by_the_model():
    """Y = G W P^T exactly (training embeddings centred, so b = 0): the fit returns W
    and exact predictions."""
    rng = np.random.default_rng(1)
    genes = [f"g{i}" for i in range(60)]
    targets = [f"t{i}" for i in range(40)]
    G = pd.DataFrame(rng.normal(size=(60, 5)), index=genes)
    W = rng.normal(size=(5, 4))
    P_train = rng.normal(size=(30, 4))
    P_train -= P_train.mean(
        axis=0
    )  # with ctrl's zero row, the training embeddings sum to 0
    P = pd.DataFrame(
        np.vstack([np.zeros((1, 4)), P_train, rng.normal(size=(10, 4))]),
        index=["ctrl", *targets],
    )
    ctrl = pd.Series(rng.uniform(1, 3, 60), index=genes)
    change = G.to_numpy() @ W @ P.to_numpy().T  # genes x conditions; 0 for ctrl
    means = pd.DataFrame(
        (ctrl.to_numpy()[:, None] + change).T, index=P.index, columns=genes
    )
    pb = Pseudobulk(means, pd.Series(100, index=means.index), "toy")
    fit = fit_linear_model(
        pb.subset(["ctrl", *targets[:30]]),
        gene_embedding=G,
        perturbation_embedding=P,
        predict_conditions=targets[30:],
        ridge=1e-10,
    )
    np.testing.assert_allclose(fit.b.to_numpy(), 0.0, atol=1e-10)
    np.testing.assert_allclose(fit.W, W, rtol=1e-6, atol=1e-8)
    pred, unpredictable = fit.predict(targets[30:])
    assert unpredictable == []
    np.testing.assert_allclose(
        pred.values.to_numpy(), pb.means.loc[targets[30:]].to_numpy(), atol=1e-8
    )


def test_pca_embedding_shapes_and_missing_targets(norman_subset):
    from helpers.pseudobulk import pseudobulk

    pb = pseudobulk(norman_subset)
    G = linear.pca_gene_embedding(pb, k=10)
    assert G.shape == (500, 10) and list(G.index) == list(pb.genes)
    P, missing = linear.perturbation_embedding_from_genes(G, pb.conditions)
    # only TMSB4X (and ctrl) of the subset's targets is measured, so the others cannot
    # be embedded
    assert list(P.index) == ["ctrl", "TMSB4X"]
    assert len(missing) == len(pb.conditions) - 2
    np.testing.assert_allclose(P.loc["ctrl"], 0.0)


def test_external_gene_embedding_alignment_reports_missing_genes():
    genes = ["A", "B", "C", "D"]
    table = pd.DataFrame(np.eye(3), index=["B", "D", "Z"])
    aligned, missing = linear.align_gene_embedding(table, genes)
    assert list(aligned.index) == ["B", "D"] and missing == ["A", "C"]
    with pytest.raises(EmbeddingError, match="None of the 2 genes"):
        linear.align_gene_embedding(table, ["X", "Y"])
    with pytest.raises(EmbeddingError, match="NaN"):
        linear.align_gene_embedding(table.replace(1.0, np.nan), genes)
    with pytest.raises(EmbeddingError, match="duplicated"):
        linear.align_gene_embedding(pd.concat([table, table]), genes)


@pytest.fixture(scope="module")
def sim_single():
    from helpers.pseudobulk import pseudobulk
    from helpers.simulate import simulate_screen

    screen = simulate_screen(
        n_genes=400,
        n_single=80,
        n_double=0,
        cells_per_condition=30,
        modality="CRISPRi",
        cell_lines=("lineA", "lineB"),
        second_line_overlap=0.9,
        seed=5,
    )
    return pseudobulk(screen.adatas["lineA"]), pseudobulk(screen.adatas["lineB"])


def test_linear_model_variants_run_and_report_unpredictable(sim_single):
    pb, other = sim_single
    split = single_split(pb.conditions, seed=1, dataset=pb.dataset)
    train = pb.subset(split.train)
    for kwargs in (
        {},
        {"gene_embedding": "random"},
        {"perturbation_embedding": "random"},
        {"perturbation_embedding": linear.pca_perturbation_embedding(other)},
    ):
        fit = fit_linear_model(train, predict_conditions=split.held_out, **kwargs)
        pred, unpredictable = fit.predict(split.held_out, seed=1)
        assert set(pred.conditions) | set(unpredictable) == set(split.held_out)
        table = metrics.evaluate(pred, pb, split, allow_missing=True)
        assert len(table) == len(pred.conditions) and np.isfinite(table["l2"]).all()
    transfer = fit_linear_model(
        train,
        predict_conditions=split.held_out,
        perturbation_embedding=linear.pca_perturbation_embedding(other),
    )
    _, unpredictable = transfer.predict(split.held_out)
    assert unpredictable == [c for c in split.held_out if c not in other.conditions]


def test_transfer_embedding_beats_mean_on_the_two_line_simulation(sim_single):
    from helpers import benchmark, baselines
    from functools import partial

    pb, other = sim_single
    splits_ = [single_split(pb.conditions, seed=s, dataset=pb.dataset) for s in (1, 2)]
    methods = {
        "mean": baselines.mean_baseline,
        "linear": linear.linear_model,
        "linear_P_other_screen": partial(
            linear.linear_model,
            perturbation_embedding=linear.pca_perturbation_embedding(other),
        ),
    }
    table, _ = benchmark.run_methods(pb, splits_, methods, allow_missing=True)
    ratios = metrics.forest(table, "mean", n_boot=500)
    transfer = ratios.set_index("method").loc["linear_P_other_screen", "mean_ratio"]
    assert (
        transfer < 0.95
    )  # perturbation programs are shared between the simulated lines


def test_single_split_sizes_match_the_paper():
    for n, expected in [
        (81, (54, 6, 21)),
        (1087, (733, 82, 272)),
        (1534, (1035, 115, 384)),
    ]:
        conditions = ["ctrl", *[f"G{i}" for i in range(n)]]
        split = single_split(conditions, seed=1)
        sizes = split.sizes()
        assert (sizes["train"] - 1, sizes["val"], sizes["test"]) == expected
    conditions = ["ctrl", *[f"G{i}" for i in range(81)]]
    assert (
        single_split(conditions, 1).assignment == single_split(conditions, 1).assignment
    )
    assert (
        single_split(conditions, 1).assignment != single_split(conditions, 2).assignment
    )
    with pytest.raises(SplitError, match="at least 3"):
        single_split(["ctrl", "A"], 1)


def test_forest_plot_numbers_recomputed_from_the_published_results():
    """metrics.forest on the paper's per-perturbation L2 reproduces the published Fig.
    2c numbers."""
    table = published.single_metrics()
    methods = [
        "mean",
        "linear",
        "gears",
        "scgpt",
        "uce",
        "scbert",
        "geneformer",
        "cpa",
        "linear_P_other_screen",
        "linear_G_scgpt",
        "linear_G_scfoundation",
        "linear_random_G",
        "linear_random_P",
        "linear_P_gears_go",
    ]
    forest = metrics.forest(table, "mean", methods)
    n = forest[forest["method"] == "mean"].set_index("dataset")["n"].to_dict()
    assert n == {
        "adamson": 20,
        "replogle_k562_essential": 214,
        "replogle_rpe1_essential": 224,
    }
    assert forest.attrs["left_out"] == {d: [] for d in n}
    forest = forest.set_index(["dataset", "method"])
    expected = {  # the paper's Fig. 2c (method_spec.md 4.7)
        ("adamson", "linear_P_other_screen"): 0.86,
        ("replogle_k562_essential", "linear_P_other_screen"): 0.89,
        ("replogle_rpe1_essential", "linear_P_other_screen"): 0.89,
        ("adamson", "linear"): 1.03,
        ("replogle_k562_essential", "linear"): 0.99,
        ("replogle_rpe1_essential", "linear"): 0.96,
        ("adamson", "scgpt"): 1.29,
        ("replogle_k562_essential", "scgpt"): 1.09,
        ("replogle_rpe1_essential", "scgpt"): 1.14,
        ("replogle_k562_essential", "linear_G_scfoundation"): 0.95,
    }
    for key, value in expected.items():
        assert forest.loc[key, "mean_ratio"] == pytest.approx(value, abs=0.006), key
    lower, upper = forest.loc[("adamson", "linear_P_other_screen"), ["lower", "upper"]]
    assert lower == pytest.approx(0.76, abs=0.02) and upper == pytest.approx(
        0.95, abs=0.02
    )


def _rows(dataset, method, l2s, seed=1):
    return [
        {
            "dataset": dataset,
            "method": method,
            "seed": seed,
            "condition": f"P{i}",
            "l2": v,
        }
        for i, v in enumerate(l2s)
        if v is not None
    ]


def test_forest_coverage_rule_common_set_and_ratio_by_hand():
    """A hand-computed example: the coverage rule, the common set and the ratios of
    metrics.forest."""
    rows = (
        _rows("d", "mean", [2.0, 4.0, 1.0, 5.0])
        + _rows("d", "a", [1.0, 2.0, 0.5, 2.5])  # half of the mean's error everywhere
        + _rows("d", "b", [4.0, None, 3.0, 5.0])  # misses P1: 3 of 4 >= 50 %, kept
        + _rows("d", "c", [1.0, None, None, None])
    )  # 1 of 4 < 50 %: left out
    table = metrics.forest(pd.DataFrame(rows), "mean", n_boot=200).set_index("method")
    assert set(table.index) == {"mean", "a", "b"}
    assert table.attrs["left_out"] == {"d": ["c"]}
    assert table.attrs["dropped"] == {
        "d": 1
    }  # P1 is not in the common set (b lacks it)
    assert table.attrs["coverage"].loc["d"].to_dict() == {
        "mean": 4,
        "a": 4,
        "b": 3,
        "c": 1,
    }
    assert (table["n"] == 3).all()
    # a: 0.5 on P0, P2, P3: every bootstrap mean is 0.5
    assert table.loc["a", ["mean_ratio", "lower", "upper"]].tolist() == pytest.approx(
        [0.5, 0.5, 0.5]
    )
    # b: ratios 4/2, 3/1, 5/5 -> mean 2; the interval lies within [1, 3] and contains 2
    assert table.loc["b", "mean_ratio"] == pytest.approx(2.0)
    assert 1.0 <= table.loc["b", "lower"] < 2.0 < table.loc["b", "upper"] <= 3.0
    assert table.loc[
        "mean", ["mean_ratio", "lower", "upper"]
    ].tolist() == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="No rows of the baseline 'additive'"):
        metrics.forest(pd.DataFrame(rows), "additive")


def test_chapter3_quick_profile_claims_hold_on_its_simulated_screens():
    """Chapter 3's prose on its quick profile: on the two simulated lines (the chapter's
    own parameters), the training-only linear model lands within a few percent of the
    mean, random embeddings do not beat the mean, and the embedding learned on the other
    line does (all by the simulator's construction)."""
    from helpers import baselines, benchmark
    from helpers.pseudobulk import pseudobulk
    from helpers.simulate import simulate_screen

    screen = simulate_screen(
        n_genes=2000,
        n_single=300,
        n_double=0,
        cells_per_condition=50,
        modality="CRISPRi",
        cell_lines=("simK562", "simRPE1"),
        second_line_overlap=0.8,
        seed=0,
    )
    pbs = [pseudobulk(a) for a in screen.adatas.values()]
    tables = []
    for pb, other in (pbs, pbs[::-1]):
        splits_ = [
            single_split(pb.conditions, seed, dataset=pb.dataset) for seed in (1, 2)
        ]
        methods = {
            "mean": baselines.mean_baseline,
            **linear.paper_variants(other, k=10, ridge=0.1),
        }
        tables.append(
            benchmark.run_methods(pb, splits_, methods, n_top=1000, allow_missing=True)[
                0
            ]
        )
    forest = metrics.forest(pd.concat(tables, ignore_index=True), "mean", n_boot=2000)
    for dataset, rows in forest.groupby("dataset"):
        rows = rows.set_index("method")
        assert abs(rows.loc["linear", "mean_ratio"] - 1) < 0.05, (
            dataset
        )  # "near the mean"
        assert (rows.loc[["linear_random_G", "linear_random_P"], "upper"] >= 1).all(), (
            dataset
        )  # no better
        assert rows.loc["linear_P_other_screen", "upper"] < 1, (
            dataset
        )  # better than the mean
