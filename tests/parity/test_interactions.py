"""Interactions: the empirical null recovers known nulls; classes and rankings reproduce
the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import interactions
from helpers.pseudobulk import pseudobulk

from tests.conftest import SHARED

REF = SHARED / "reference" / "ahlmann_eltze_2025"


@pytest.mark.parametrize(
    "mean, sd, p0, seed",
    [(0.0068, 0.0576, 0.83, 0), (-0.02, 0.1, 0.95, 1), (0.0, 1.0, 0.9, 2)],
)
def test_empirical_null_recovers_a_known_null(mean, sd, p0, seed):
    rng = np.random.default_rng(seed)
    n = 120_000
    n0 = int(p0 * n)
    n1 = n - n0
    # alternatives away from the null on both sides (buffering- and synergy-like),
    # little mass in the centre
    values = np.concatenate(
        [
            rng.normal(mean, sd, n0),
            rng.normal(mean - 4 * sd, 1.5 * sd, n1 // 2),
            mean + rng.uniform(3 * sd, 8 * sd, n1 - n1 // 2),
        ]
    )
    fit = interactions.fit_empirical_null(values)
    assert fit.mean == pytest.approx(mean, abs=0.05 * sd)
    assert fit.sd == pytest.approx(sd, rel=0.06)
    assert fit.proportion == pytest.approx(p0, abs=0.04)
    assert fit.lower < mean < fit.upper
    # thresholds sit where the null no longer explains the data: a few sd from the null
    # mean
    assert 2 * sd < fit.upper - mean < 6 * sd and 2 * sd < mean - fit.lower < 6 * sd


def test_pure_null_calls_almost_nothing():
    values = np.random.default_rng(3).normal(0, 0.05, 50_000)
    fit = interactions.fit_empirical_null(values)
    assert fit.proportion > 0.95
    assert fit.is_non_additive(values).mean() < 0.01


def test_too_few_values():
    with pytest.raises(ValueError, match="many values"):
        interactions.fit_empirical_null(np.zeros(10))


LOCFDR = SHARED / "reference" / "locfdr"
LOCFDR_CASES = ["paper_scale", "heavy_tailed", "small", "norman_subset"]


@pytest.fixture(scope="module")
def locfdr_cases():
    if not (LOCFDR / "cases.csv").exists():
        pytest.skip(
            f"R's locfdr reference outputs not found at {LOCFDR} (the shared "
            "folder ../shared is absent)."
        )
    return pd.read_csv(LOCFDR / "cases.csv").set_index("case")


@pytest.mark.parametrize("case", LOCFDR_CASES)
def test_empirical_null_equals_r_locfdr(case, locfdr_cases):
    """R's locfdr 1.1-8, ``locfdr(d, nulltype = 1)``, and the paper's thresholds, on
    four shared vectors."""
    expected = locfdr_cases.loc[case]
    values = pd.read_csv(LOCFDR / f"{case}_values.csv")["deviation"].to_numpy()
    r_fdr = pd.read_csv(LOCFDR / f"{case}_locfdr.csv")
    assert len(values) == expected["n"]
    fit = interactions.fit_empirical_null(values)
    assert fit.upper == pytest.approx(expected["upper"], rel=0.005)
    assert fit.lower == pytest.approx(expected["lower"], rel=0.005)
    assert fit.mean == pytest.approx(expected["delta"], rel=0.01)
    assert fit.sd == pytest.approx(expected["sigma"], rel=0.01)
    assert fit.proportion == pytest.approx(expected["p0"], rel=0.01)
    np.testing.assert_allclose(fit.values, r_fdr["deviation"].to_numpy())
    np.testing.assert_allclose(
        fit.local_fdr, r_fdr["fdr"].to_numpy(), rtol=0, atol=0.01
    )


def test_a_histogram_squeezed_by_extreme_values_fails_clearly_and_pct_trims_it():
    """A narrow null (sd 0.01) under a few values out to +-2: the 119 equal bins over
    the full range put the bulk in a handful of bins and the Poisson GLM's IRLS
    diverges; the error names locfdr's ``pct``."""
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.normal(0, 0.01, 120_000),
            rng.normal(0, 0.3, 1000),
            rng.uniform(-2, 2, 200),
        ]
    )
    with pytest.raises(ValueError, match="pct="):
        interactions.fit_empirical_null(values)
    fit = interactions.fit_empirical_null(values, pct=0.001)
    assert fit.sd == pytest.approx(0.01, rel=0.05) and fit.proportion > 0.95
    assert fit.lower < 0 < fit.upper
    with pytest.raises(ValueError, match="pct must be"):
        interactions.fit_empirical_null(values, pct=0.5)


@pytest.fixture(scope="module")
def top_predicted():
    return pd.read_csv(REF / "double_top_predicted_interactions.csv")


def test_top_500_predicted_class_counts_match_the_paper(top_predicted):
    table = top_predicted.rename(columns={"baseline": "ctrl", "ref": "additive"})
    table["predicted_class"] = interactions.predicted_classes(
        table["value"], table["ctrl"], table["additive"]
    )
    counts = interactions.top_k_composition(table, k=500).set_index("method")
    expected = {
        "scgpt": (351, 149, 0),
        "uce": (333, 167, 0),
        "scbert": (333, 167, 0),
        "scfoundation": (221, 274, 5),
        "gears": (267, 216, 17),
        "geneformer": (189, 230, 81),
        "cpa": (17, 403, 80),
        "no_change": (500, 0, 0),
    }
    for method, (buffering, opposite, synergy) in expected.items():
        assert tuple(counts.loc[method, ["buffering", "opposite", "synergy"]]) == (
            buffering,
            opposite,
            synergy,
        ), method


def test_published_labels_follow_the_books_threshold_rule_and_directions(top_predicted):
    """The paper's labels (Panel F) against the book's rules: ``non_additive`` with
    thresholds inside the bracket that the published labels pin down (method spec 3.2:
    upper in (0.2005, 0.2028], lower in [-0.2142, -0.2131)), and the direction of
    synergy / buffering from ``predicted_classes`` applied to the observed values."""
    d = top_predicted["obs_minus_add"].to_numpy()
    published_non_additive = (
        top_predicted["interaction_label"] != "Additive"
    ).to_numpy()
    for lower, upper in [(-0.2141, 0.2006), (-0.2132, 0.2028)]:
        called = interactions.non_additive(d, lower, upper)
        assert (called == published_non_additive).all()
    # thresholds outside the bracket disagree with the published labels (the check has
    # teeth)
    assert (
        interactions.non_additive(d, -0.2141, 0.199) != published_non_additive
    ).any()
    observed = interactions.predicted_classes(
        top_predicted["ground_truth"], top_predicted["baseline"], top_predicted["ref"]
    )
    for label in ("Synergy", "Buffering"):
        rows = (top_predicted["interaction_label"] == label).to_numpy()
        assert rows.sum() > 100
        assert (observed[rows] == label.lower()).all(), label


def test_thresholds_implied_by_the_published_labels_match_the_method_spec(
    top_predicted,
):
    """Method spec 3.2 (read off Panel F by hand): upper in (0.2005, 0.2028], lower in
    [-0.2142, -0.2131)."""
    bracket = interactions.thresholds_implied_by_labels(
        top_predicted["obs_minus_add"], top_predicted["interaction_label"] != "Additive"
    ).set_index("threshold")
    assert bracket.loc["upper", "from"] == pytest.approx(0.2005, abs=5e-5)
    assert bracket.loc["upper", "to"] == pytest.approx(0.2028, abs=5e-5)
    assert bracket.loc["lower", "from"] == pytest.approx(-0.2142, abs=5e-5)
    assert bracket.loc["lower", "to"] == pytest.approx(-0.2131, abs=5e-5)
    with pytest.raises(ValueError, match="not consistent"):
        interactions.thresholds_implied_by_labels(
            [0.1, 0.3, 0.5, -0.1, -0.3], [False, True, False, False, True]
        )


def test_observed_classes_rules():
    table = pd.DataFrame(
        {
            "ctrl": [1.0, 1.0, 1.0, 1.0, 1.0],
            "A": [1.5, 1.5, 0.5, 1.5, 1.1],
            "B": [1.5, 1.5, 0.5, 0.5, 1.1],
            "AB": [2.8, 1.6, 0.6, 1.6, 1.2],
        }
    )
    table["additive"] = table["A"] + table["B"] - table["ctrl"]
    table["deviation"] = table["AB"] - table["additive"]
    labels = interactions.observed_classes(table, lower=-0.2, upper=0.2)
    assert list(labels) == ["synergy", "buffering", "buffering", "other", "additive"]


def test_planted_interactions_are_recovered_on_the_simulator():
    from helpers.simulate import simulate_screen

    screen = simulate_screen(
        n_genes=1000, cells_per_condition=100, seed=2, interaction_fraction=0.3
    )
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
    # planted entries are ~0.6% of all; calls are >90% right (chance: <1%) and find a
    # third or more of them
    assert prevalence < 0.02 and tpr > 0.3 and fdp < 0.2, (tpr, fdp)


def test_simulator_plants_mostly_buffering():
    """Chapter 6 says the simulated screen's planted interactions are mostly buffering
    (a design choice that favours "no change" by construction); the chapter prints the
    share, this checks the claim."""
    from helpers.simulate import simulate_screen

    planted = simulate_screen(
        n_genes=1000, cells_per_condition=20, interaction_fraction=0.5, seed=2
    ).truth.interactions
    shares = planted["type"].value_counts(normalize=True)
    assert set(shares.index) == {"buffering", "synergy"}
    assert shares["buffering"] > 0.6


def test_tpr_fdp_curve_follows_the_papers_recipe():
    """Hand-computed with the paper's recipe: ranked truth 1,1,0,1,0,0,0,0 gives (fdp,
    tpr) points (0, 1/3), (0, 2/3), (1/3, 2/3), (1/4, 1), ...; sorted by fdp with the
    running max of tp: (0, 1/3), (0, 2/3), (1/4, 1), (1/3, 1), (2/5, 1), (1/2, 1), (4/7,
    1), (5/8, 1); ties at fdp 0 averaged to 1/2 (R's approx, ties = mean); linear
    between; 1 beyond the last fdp reached."""
    truth = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    curve = interactions.tpr_fdp_curve(
        np.arange(8)[::-1], truth, grid=[0.0, 0.1, 0.2, 0.25, 0.3, 0.625, 0.7]
    )
    np.testing.assert_allclose(curve["tpr"], [0.5, 0.7, 0.9, 1.0, 1.0, 1.0, 1.0])
    assert list(curve["point"]) == [
        "reached",
        "interpolated",
        "interpolated",
        "reached",
        "interpolated",
        "reached",
        "outside",
    ]
    # a ranking whose first entry is false never reaches fdp 0: TPR 0 there (yleft = 0)
    # points (1, 0), (1/2, 1/2), (1/3, 1); sorted by fdp the running max of tp is 2
    # throughout: TPR 1 from 1/3
    late = interactions.tpr_fdp_curve(
        [3.0, 2.0, 1.0], [False, True, True], grid=[0.0, 0.25, 0.4, 0.5]
    )
    np.testing.assert_allclose(late["tpr"], [0.0, 0.0, 1.0, 1.0])
    assert list(late["point"]) == ["outside", "outside", "interpolated", "reached"]
    with pytest.raises(ValueError, match="No true interactions"):
        interactions.tpr_fdp_curve([1.0, 2.0], [False, False])


def test_ranking_scores_exact():
    """AUROC by the Mann-Whitney count: positives scored 7, 6, 4 against negatives 5, 3,
    2, 1, 0 win 5 + 5 + 4 of 15 pairs; average precision: hits at ranks 1, 2, 4 -> (1 +
    1 + 3/4) / 3."""
    truth = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    scores = interactions.ranking_scores(np.arange(8)[::-1], truth)
    assert scores["auroc"] == pytest.approx(14 / 15)
    assert scores["auprc"] == pytest.approx(2.75 / 3)
    assert scores["positives"] == 3 and scores["n"] == 8


def test_predicted_classes_cartoon():
    c, r = np.array([1.0] * 4), np.array([2.0] * 4)
    v = np.array([1.0, 1.5, 2.5, 0.5])
    assert list(interactions.predicted_classes(v, c, r)) == [
        "buffering",
        "buffering",
        "synergy",
        "opposite",
    ]
    down = interactions.predicted_classes([0.5, -0.5, 1.2], [1.0] * 3, [0.0] * 3)
    assert list(down) == ["buffering", "synergy", "opposite"]
