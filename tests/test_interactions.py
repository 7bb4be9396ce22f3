"""Interactions: the empirical null recovers known nulls; classes and rankings reproduce the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import interactions
from helpers.pseudobulk import pseudobulk

from .conftest import SHARED

REF = SHARED / "reference" / "ahlmann_eltze_2025"


@pytest.mark.parametrize("mean, sd, p0, seed", [(0.0068, 0.0576, 0.83, 0), (-0.02, 0.1, 0.95, 1), (0.0, 1.0, 0.9, 2)])
def test_empirical_null_recovers_a_known_null(mean, sd, p0, seed):
    rng = np.random.default_rng(seed)
    n = 120_000
    n0 = int(p0 * n)
    n1 = n - n0
    # alternatives away from the null on both sides (buffering- and synergy-like), little mass in the centre
    values = np.concatenate([rng.normal(mean, sd, n0),
                             rng.normal(mean - 4 * sd, 1.5 * sd, n1 // 2),
                             mean + rng.uniform(3 * sd, 8 * sd, n1 - n1 // 2)])
    fit = interactions.fit_empirical_null(values)
    assert fit.mean == pytest.approx(mean, abs=0.05 * sd)
    assert fit.sd == pytest.approx(sd, rel=0.06)
    assert fit.proportion == pytest.approx(p0, abs=0.04)
    assert fit.lower < mean < fit.upper
    # thresholds sit where the null no longer explains the data: a few sd from the null mean
    assert 2 * sd < fit.upper - mean < 6 * sd and 2 * sd < mean - fit.lower < 6 * sd


def test_pure_null_calls_almost_nothing():
    values = np.random.default_rng(3).normal(0, 0.05, 50_000)
    fit = interactions.fit_empirical_null(values)
    assert fit.proportion > 0.95
    assert fit.is_non_additive(values).mean() < 0.01


def test_too_few_values():
    with pytest.raises(ValueError, match="many values"):
        interactions.fit_empirical_null(np.zeros(10))


@pytest.fixture(scope="module")
def top_predicted():
    return pd.read_csv(REF / "double_top_predicted_interactions.csv")


def test_top_500_predicted_class_counts_match_the_paper(top_predicted):
    table = top_predicted.rename(columns={"baseline": "ctrl", "ref": "additive"})
    table["predicted_class"] = interactions.predicted_classes(table["value"], table["ctrl"], table["additive"])
    counts = interactions.top_k_composition(table, k=500).set_index("method")
    expected = {"scgpt": (351, 149, 0), "uce": (333, 167, 0), "scbert": (333, 167, 0), "scfoundation": (221, 274, 5),
                "gears": (267, 216, 17), "geneformer": (189, 230, 81), "cpa": (17, 403, 80), "no_change": (500, 0, 0)}
    for method, (buffering, opposite, synergy) in expected.items():
        assert tuple(counts.loc[method, ["buffering", "opposite", "synergy"]]) == (buffering, opposite, synergy), method


def test_observed_labels_agree_with_thresholds_of_about_0_2(top_predicted):
    upper, lower = 0.201, -0.2135  # inside the bracket recovered in the method spec (section 3.2)
    d = top_predicted["obs_minus_add"].to_numpy()
    non_additive = (d > upper) | (d < lower)
    assert (non_additive == (top_predicted["interaction_label"] != "Additive").to_numpy()).all()
    # synergy moves away from control along the additive direction, buffering back towards it
    direction = np.sign(top_predicted["ref"] - top_predicted["baseline"])
    synergy = top_predicted["interaction_label"] == "Synergy"
    buffering = top_predicted["interaction_label"] == "Buffering"
    assert (np.sign(d[synergy]) == direction[synergy]).all()
    assert (np.sign(d[buffering]) == -direction[buffering]).all()


def test_observed_classes_rules():
    table = pd.DataFrame({
        "ctrl": [1.0, 1.0, 1.0, 1.0, 1.0],
        "A": [1.5, 1.5, 0.5, 1.5, 1.1],
        "B": [1.5, 1.5, 0.5, 0.5, 1.1],
        "AB": [2.8, 1.6, 0.6, 1.6, 1.2],
    })
    table["additive"] = table["A"] + table["B"] - table["ctrl"]
    table["deviation"] = table["AB"] - table["additive"]
    labels = interactions.observed_classes(table, lower=-0.2, upper=0.2)
    assert list(labels) == ["synergy", "buffering", "buffering", "other", "additive"]


def test_planted_interactions_are_recovered_on_the_simulator():
    from helpers.simulate import simulate_screen

    screen = simulate_screen(n_genes=1000, cells_per_condition=100, seed=2, interaction_fraction=0.3)
    pb = pseudobulk(screen.adata)
    genes = pb.top_control_genes(500)
    table = interactions.deviations(pb, genes=genes)
    fit = interactions.fit_empirical_null(table["deviation"])
    called = fit.is_non_additive(table["deviation"])
    planted = screen.truth.interactions.set_index(["condition", "gene"]).index
    truth = pd.MultiIndex.from_frame(table[["condition", "gene"]]).isin(planted)
    tpr = (called & truth).sum() / truth.sum()
    fdp = (called & ~truth).sum() / called.sum()
    prevalence = truth.mean()
    # planted entries are ~0.6% of all; calls are >90% right (chance: <1%) and find a third or more of them
    assert prevalence < 0.02 and tpr > 0.3 and fdp < 0.2, (tpr, fdp)


def test_tpr_fdp_curve_and_scores():
    truth = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    perfect = interactions.tpr_fdp_curve(np.arange(8)[::-1] * truth + 0.0, truth)
    assert perfect["tpr"].iloc[0] == 1.0
    random = interactions.tpr_fdp_curve(np.arange(8)[::-1], truth)
    assert random.set_index("fdp").loc[0.0, "tpr"] == pytest.approx(2 / 3)
    scores = interactions.ranking_scores(np.arange(8)[::-1], truth)
    assert 0 <= scores["auroc"] <= 1 and scores["positives"] == 3
    with pytest.raises(ValueError, match="No true interactions"):
        interactions.tpr_fdp_curve([1.0, 2.0], [False, False])


def test_predicted_classes_cartoon():
    c, r = np.array([1.0] * 4), np.array([2.0] * 4)
    v = np.array([1.0, 1.5, 2.5, 0.5])
    assert list(interactions.predicted_classes(v, c, r)) == ["buffering", "buffering", "synergy", "opposite"]
    down = interactions.predicted_classes([0.5, -0.5, 1.2], [1.0] * 3, [0.0] * 3)
    assert list(down) == ["buffering", "synergy", "opposite"]
