"""Replicate agreement vs the oracle bound (helpers.ceilings), checked on Gaussian cells
whose true means are known: the estimates from split halves are compared with the actual
distances to the known mean, which the code under test never sees."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers import ceilings
from helpers.benchmark import beyond


def gaussian_screen(seed=0, n_genes=600, n_conditions=16, effect_sd=0.2):
    """Cells = mu_p + noise with gene-specific sd; an odd and an even number of cells
    per condition.

    Returns (AnnData, true means of the conditions, control profile's true mean, noise
    sd).
    """
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.5, 1.5, n_genes)  # heterogeneous noise across genes
    mu_ctrl = rng.normal(3.0, 0.5, n_genes)
    mus, blocks, labels = (
        {},
        [mu_ctrl + sigma * rng.standard_normal((3000, n_genes))],
        [],
    )
    labels += ["ctrl"] * 3000
    for i in range(n_conditions):
        name = f"P{i}"
        mus[name] = mu_ctrl + rng.normal(0.0, effect_sd, n_genes)
        n = 41 if i % 2 else 60  # odd cell counts leave one cell out of the halves
        blocks.append(mus[name] + sigma * rng.standard_normal((n, n_genes)))
        labels += [name] * n
    X = np.vstack(blocks)
    genes = [f"g{j}" for j in range(n_genes)]
    obs = pd.DataFrame(
        {"condition": pd.Categorical(labels)},
        index=[f"c{i}" for i in range(len(labels))],
    )
    adata = ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))
    adata.uns["perturbbook"] = {"dataset": "gauss"}
    return adata, pd.DataFrame(mus, index=genes).T, mu_ctrl, sigma


def test_oracle_and_replicate_estimates_match_the_known_truth():
    adata, mu, _, sigma = gaussian_screen()
    table = ceilings.noise_ceiling(adata, seed=2, n_repeats=5, n_top=600).set_index(
        "condition"
    )
    labels = adata.obs["condition"].astype(str).to_numpy()
    X = adata.X.toarray()
    ctrl = X[labels == "ctrl"].mean(axis=0)
    actual_oracle_l2, actual_oracle_r, actual_rep_l2, actual_rep_r = [], [], [], []
    rng = np.random.default_rng(99)
    for name in table.index:
        y = X[labels == name].mean(
            axis=0
        )  # the full-data truth a model is scored against
        n = int((labels == name).sum())
        # an independent replicate of the same size, drawn from the known mean
        y_rep = (
            mu.loc[name].to_numpy() + sigma * rng.standard_normal((n, len(sigma)))
        ).mean(axis=0)
        actual_oracle_l2.append(np.linalg.norm(mu.loc[name].to_numpy() - y))
        actual_oracle_r.append(
            np.corrcoef(mu.loc[name].to_numpy() - ctrl, y - ctrl)[0, 1]
        )
        actual_rep_l2.append(np.linalg.norm(y_rep - y))
        actual_rep_r.append(np.corrcoef(y_rep - ctrl, y - ctrl)[0, 1])
    # closed form of the oracle distance: sqrt(sum sigma^2 / n)
    closed = np.sqrt((sigma**2).sum() / table["n_cells"].to_numpy())
    np.testing.assert_allclose(
        actual_oracle_l2, closed, rtol=0.08
    )  # the simulation is right
    np.testing.assert_allclose(table["l2_oracle"], actual_oracle_l2, rtol=0.08)
    assert table["l2_oracle"].mean() == pytest.approx(
        np.mean(actual_oracle_l2), rel=0.02
    )
    assert table["l2_ceiling"].mean() == pytest.approx(np.mean(actual_rep_l2), rel=0.03)
    assert table["pearson_delta_oracle"].mean() == pytest.approx(
        np.mean(actual_oracle_r), abs=0.01
    )
    assert table["pearson_delta_ceiling"].mean() == pytest.approx(
        np.mean(actual_rep_r), abs=0.015
    )
    # the oracle is better than a replicate by the factors derived in the docstring
    assert (table["l2_oracle"] < table["l2_ceiling"]).all()
    assert (table["pearson_delta_oracle"] > table["pearson_delta_ceiling"]).all()
    # odd n: the halves have floor(n / 2) cells and the correction uses the exact depth
    odd = table[table["n_cells"] == 41]
    assert (odd["n_half"] == 20).all()
    np.testing.assert_allclose(
        odd["l2_oracle"], odd["l2_half"] * np.sqrt(20 / 82), rtol=1e-12
    )


def test_a_model_can_beat_the_replicate_but_not_the_oracle():
    """A prediction closer to mu than a replicate's noise beats the replicate, never the
    oracle."""
    adata, mu, _, sigma = gaussian_screen(seed=5)
    table = ceilings.noise_ceiling(adata, seed=0, n_repeats=5, n_top=600).set_index(
        "condition"
    )
    labels = adata.obs["condition"].astype(str).to_numpy()
    X = adata.X.toarray()
    rng = np.random.default_rng(7)
    model_l2 = []
    for name in table.index:
        y = X[labels == name].mean(axis=0)
        n = int((labels == name).sum())
        # the model's error: half the noise variance of a replicate (independent of the
        # test cells)
        pred = mu.loc[name].to_numpy() + sigma * rng.standard_normal(
            len(sigma)
        ) / np.sqrt(2 * n)
        model_l2.append(np.linalg.norm(pred - y))
    assert np.mean(model_l2) < table["l2_ceiling"].mean()
    assert np.mean(model_l2) > table["l2_oracle"].mean()
    # the decomposition recovers the model's own error, sqrt(S / (2 n)) by construction
    metrics = pd.DataFrame(
        {
            "dataset": "gauss",
            "seed": 0,
            "condition": list(table.index) * 2,
            "method": ["model"] * len(table) + ["mean"] * len(table),
            "l2": model_l2 + [10.0] * len(table),
            "pearson_delta": 0.5,
        }
    )
    summary = ceilings.normalised_summary(metrics, table.reset_index()).set_index(
        "method"
    )
    n = table["n_cells"].to_numpy()
    own = np.sqrt(np.mean((sigma**2).sum() / (2 * n)))
    noise = np.sqrt(np.mean((sigma**2).sum() / n))
    assert summary.loc["model", "error_l2"] == pytest.approx(own, rel=0.15)
    assert summary.loc["model", "noise_l2"] == pytest.approx(noise, rel=0.05)
    assert summary.loc["model", "error_l2"] < summary.loc["model", "noise_l2"]


def test_two_cells_by_hand_and_oracle_pearson_edges():
    ctrl = np.ones((2, 4))
    x1, x2 = [3.0, 1.0, 0.0, 2.0], [2.0, 1.5, 0.5, 1.0]
    obs = pd.DataFrame(
        {"condition": pd.Categorical(["ctrl", "ctrl", "A", "A"])}, index=list("abcd")
    )
    adata = ad.AnnData(
        sp.csr_matrix(np.vstack([ctrl, [x1, x2]])),
        obs=obs,
        var=pd.DataFrame(index=[f"g{j}" for j in range(4)]),
    )
    row = ceilings.noise_ceiling(adata, seed=3, n_repeats=1).iloc[0]
    l2 = np.sqrt(1 + 0.25 + 0.25 + 1)
    r = np.corrcoef(np.subtract(x1, 1), np.subtract(x2, 1))[0, 1]
    assert row["l2_oracle"] == pytest.approx(
        l2 / 2
    )  # n = 2, halves of 1 cell: l2_half / 2
    assert row["pearson_delta_oracle"] == pytest.approx(np.sqrt(2 * r / (1 + r)))
    assert ceilings.oracle_pearson(-0.2) == 0.0
    assert np.isnan(ceilings.oracle_pearson(np.nan))


def _toy_metrics():
    # the baseline "mean" scores conditions A, B, C; method "x" only A and B, "y" all
    # three
    return pd.DataFrame(
        {
            "dataset": "toy",
            "seed": 0,
            "condition": ["A", "B", "C", "A", "B", "A", "B", "C"],
            "method": ["mean"] * 3 + ["x"] * 2 + ["y"] * 3,
            "l2": [4.0, 6.0, 20.0, 3.0, 5.0, 3.0, 5.0, 19.0],
            "pearson_delta": [0.2, 0.4, 0.0, 0.5, 0.6, 0.5, 0.6, 0.1],
        }
    )


def _toy_ceiling():
    return pd.DataFrame(
        {
            "dataset": "toy",
            "condition": ["A", "B", "C"],
            "l2_ceiling": [2.0, 3.0, 10.0],
            "pearson_delta_ceiling": [0.7, 0.8, 0.5],
            "l2_oracle": [1.0, 2.0, 8.0],
            "pearson_delta_oracle": [0.8, 0.9, 0.7],
        }
    )


def test_normalised_summary_averages_baseline_and_method_over_the_same_rows():
    summary = ceilings.normalised_summary(_toy_metrics(), _toy_ceiling()).set_index(
        "method"
    )
    # by hand, on x's rows A and B: baseline l2 (4 + 6) / 2 = 5, x 4, oracle 1.5 ->
    # (5-4)/(5-1.5)
    assert summary.loc["x", "base_l2"] == pytest.approx(5.0)
    assert summary.loc["x", "norm_l2"] == pytest.approx(1 / 3.5)
    # Pearson: baseline 0.3, x 0.55, oracle 0.85 -> 0.25 / 0.55; replicate 0.75 -> 0.25
    # / 0.45
    assert summary.loc["x", "norm_pearson_delta"] == pytest.approx(0.25 / 0.55)
    assert summary.loc["x", "norm_pearson_delta_replicate"] == pytest.approx(
        0.25 / 0.45
    )
    assert summary.loc["x", "norm_l2_replicate"] == pytest.approx(1 / 2.5)
    # error and noise: ((9 - 1) + (25 - 4)) / 2 = 14.5 and (1 + 4) / 2 = 2.5
    assert summary.loc["x", "error_l2"] == pytest.approx(np.sqrt(14.5))
    assert summary.loc["x", "noise_l2"] == pytest.approx(np.sqrt(2.5))
    # y on all three: baseline 10, y 9, oracle 11/3
    assert summary.loc["y", "norm_l2"] == pytest.approx(1 / (10 - 11 / 3))
    assert summary.loc["mean", "norm_l2"] == pytest.approx(0.0)
    assert summary.loc["x", "n"] == 2 and summary.loc["y", "n"] == 3


def test_board_columns_average_over_the_same_rows():
    table = ceilings.normalised_scores(_toy_metrics(), _toy_ceiling())
    board = beyond.board_columns(table).set_index("method")
    assert board.loc["x", "norm_l2"] == pytest.approx(1 / 3.5)
    assert board.loc["x", "oracle_l2"] == pytest.approx(1.5)
    assert board.loc["y", "norm_l2"] == pytest.approx(1 / (10 - 11 / 3))


def test_normalised_scores_refuse_a_ceiling_without_oracle_columns():
    old = _toy_ceiling().drop(columns=["l2_oracle", "pearson_delta_oracle"])
    with pytest.raises(ValueError, match="noise_ceiling"):
        ceilings.normalised_scores(_toy_metrics(), old)
