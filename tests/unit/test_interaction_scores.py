"""Chapter 6's added scores: weighted / grouped AUROC and AUPRC, crossed intervals,
effect strata,
per-gene scales, the permutation floor and signed agreement.

Oracles: scikit-learn's ``roc_auc_score`` / ``average_precision_score`` (with
``sample_weight``),
hand-computed small cases, and closed forms (a random ranking's expected AUROC is 1/2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from helpers import interactions, uncertainty


def test_weighted_scores_hand_computed():
    """Scores 4, 3, 2, 1 with truth 1, 0, 1, 0: the positives beat 2 + 1 of the 4
    negative pairs (AUROC 3/4); hits at ranks 1 and 3 give AP (1 + 2/3) / 2. Weighted
    cases counted by hand below.
    """
    score, truth = np.array([4.0, 3, 2, 1]), np.array([1, 0, 1, 0], dtype=bool)
    auroc, auprc = interactions.weighted_ranking_scores(score, truth, np.ones((1, 4)))
    assert auroc[0] == pytest.approx(0.75)
    assert auprc[0] == pytest.approx((1 + 2 / 3) / 2)
    # weights 1, 2, 1, 1: positive pairs (4 vs 3) x2, (4 vs 1), (2 vs 1) won;
    # (2 vs 3) x2 lost -> 4 / 6
    # AP: rank 1 precision 1; at score 2 the cumulative weights are 2 positive,
    # 2 negative -> 1/2
    auroc, auprc = interactions.weighted_ranking_scores(
        score, truth, np.array([[1.0, 2, 1, 1]])
    )
    assert auroc[0] == pytest.approx(4 / 6)
    assert auprc[0] == pytest.approx((1 + 0.5) / 2)
    # a tied positive-negative pair counts 1/2
    auroc, _ = interactions.weighted_ranking_scores(
        [1.0, 1.0], [True, False], np.ones((1, 2))
    )
    assert auroc[0] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_and_grouped_scores_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, k = 600, 17
    score = np.round(rng.normal(size=n), 1)  # many ties
    truth = rng.random(n) < 0.15
    groups = rng.integers(0, k, n)
    weights = rng.multinomial(k, np.full(k, 1 / k), size=6).astype(float)
    grouped = interactions.grouped_ranking_scores(score, truth, groups, weights)
    entry = interactions.weighted_ranking_scores(score, truth, weights[:, groups])
    for b in range(len(weights)):
        w = weights[b, groups]
        expected = (
            roc_auc_score(truth, score, sample_weight=w),
            average_precision_score(truth, score, sample_weight=w),
        )
        for got in (grouped, entry):
            assert got[0][b] == pytest.approx(expected[0], rel=1e-12)
            assert got[1][b] == pytest.approx(expected[1], rel=1e-12)


def test_weighted_scores_reject_bad_input():
    with pytest.raises(ValueError, match="columns"):
        interactions.weighted_ranking_scores([1.0, 2.0], [True, False], np.ones((1, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        interactions.weighted_ranking_scores(
            [1.0, 2.0], [True, False], -np.ones((1, 2))
        )
    with pytest.raises(ValueError, match="codes"):
        interactions.grouped_ranking_scores(
            [1.0, 2.0], [True, False], [0, 5], np.ones((1, 2))
        )
    auroc, auprc = interactions.weighted_ranking_scores(
        [1.0, 2.0], [True, True], np.ones((1, 2))
    )
    assert np.isnan(auroc[0]) and np.isnan(auprc[0])  # no negatives: undefined


def test_permutation_floor_matches_the_closed_forms():
    truth = np.zeros(2000, dtype=bool)
    truth[:100] = True
    floor = interactions.permutation_floor(truth, n_perm=300, seed=1)
    assert floor["prevalence"] == pytest.approx(0.05)
    # a random ranking: expected AUROC 1/2
    # (sd ~ sqrt((n_p + n_n + 1) / (12 n_p n_n)) = 0.0296)
    assert floor["auroc_mean"] == pytest.approx(0.5, abs=3 * 0.0296 / np.sqrt(300))
    assert floor["auroc_lower"] < 0.5 < floor["auroc_upper"]
    # expected AP of a random ranking is close to the prevalence for many entries
    assert floor["auprc_mean"] == pytest.approx(0.05, abs=0.01)
    with pytest.raises(ValueError, match="both positive and negative"):
        interactions.permutation_floor(np.ones(5, dtype=bool))


def _joined(rng, methods=("a", "b"), k=30, genes=40, seeds=(1, 2, 3)):
    rows = []
    for seed in seeds:
        held = rng.choice(k, size=k // 2, replace=False)
        for c in held:
            truth = rng.random(genes) < 0.2
            for m in methods:
                noise = rng.normal(size=genes) if m != "perfect" else 0
                rows.append(
                    pd.DataFrame(
                        {
                            "method": m,
                            "seed": seed,
                            "condition": f"C{c}",
                            "gene": [f"g{j}" for j in range(genes)],
                            "pred_minus_add": truth * 1.0 + noise,
                            "non_additive": truth,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)


def test_ranking_bootstrap_estimate_is_the_mean_over_splits_of_sklearns_auroc():
    joined = _joined(np.random.default_rng(0))
    boot = interactions.ranking_bootstrap(joined, n_boot=200, seed=3)
    for method, part in joined.groupby("method"):
        per_seed = [
            roc_auc_score(p["non_additive"], p["pred_minus_add"].abs())
            for _, p in part.groupby("seed")
        ]
        ap = [
            average_precision_score(p["non_additive"], p["pred_minus_add"].abs())
            for _, p in part.groupby("seed")
        ]
        assert boot[method]["auroc"] == pytest.approx(np.mean(per_seed))
        assert boot[method]["auprc"] == pytest.approx(np.mean(ap))
        assert boot[method]["n_seed"] == 3
    table = interactions.ranking_intervals(boot)
    assert (table["auroc_lower"] <= table["auroc"]).all() and (
        table["auroc"] <= table["auroc_upper"]
    ).all()


def test_ranking_comparison_is_paired_and_reports_ties_as_ties():
    rng = np.random.default_rng(1)
    joined = _joined(rng, methods=("a", "perfect"))
    twin = joined[joined["method"] == "a"].assign(method="twin")
    boot = interactions.ranking_bootstrap(pd.concat([joined, twin]), n_boot=300, seed=0)
    # identical predictions under the same draws: every paired difference is exactly 0,
    # a tie
    same = interactions.ranking_comparison(boot, "twin", "a", value="auroc")
    assert same["lower"] == same["upper"] == same["estimate"] == 0
    assert same["direction"] == "inconclusive"
    assert "cannot be told apart" in uncertainty.describe(same)
    # a perfect ranking (AUROC 1 in every resample) against a noisy one: better
    better = interactions.ranking_comparison(boot, "perfect", "a", value="auprc")
    assert boot["perfect"]["auroc"] == 1.0 and np.all(
        boot["perfect"]["boot_auroc"] == 1.0
    )
    assert better["direction"] == "better" and better["lower"] > 0
    with pytest.raises(ValueError, match="No bootstrap for method"):
        interactions.ranking_comparison(boot, "nope", "a")


def test_ranking_bootstrap_resamples_conditions_and_splits():
    """With one split, the bootstrap is the ordinary bootstrap over conditions: its
    spread of the AUROC equals that of resampling conditions by hand with sklearn (same
    draws).
    """
    rng = np.random.default_rng(2)
    joined = _joined(rng, methods=("a",), seeds=(1,))
    boot = interactions.ranking_bootstrap(joined, n_boot=50, seed=7)["a"]["boot_auroc"]
    codes, levels = pd.factorize(joined["condition"], sort=True)
    draws = np.random.default_rng(7).multinomial(
        len(levels), np.full(len(levels), 1 / len(levels)), size=50
    )
    by_hand = [
        roc_auc_score(
            joined["non_additive"],
            joined["pred_minus_add"].abs(),
            sample_weight=d[codes],
        )
        for d in draws
    ]
    np.testing.assert_allclose(boot, by_hand, rtol=1e-12)


def test_expected_effect_is_the_no_change_score_and_strata_split_it():
    table = pd.DataFrame(
        {"ctrl": [1.0] * 6, "additive": [1.1, 0.7, 2.0, 1.0, 3.5, -1.0]}
    )
    effect = interactions.expected_effect(table)
    np.testing.assert_allclose(effect, [0.1, 0.3, 1.0, 0.0, 2.5, 2.0])
    # no change predicts c: its predicted deviation c - e has |.| = |e - c|
    np.testing.assert_allclose(np.abs(table["ctrl"] - table["additive"]), effect)
    strata = interactions.effect_strata(table, n_strata=3, edges=[0.0, 0.2, 1.5, 3.0])
    assert list(strata.cat.codes) == [0, 1, 1, 0, 2, 2]
    assert (
        strata.cat.categories[0] == "1 (smallest)"
        and strata.cat.categories[-1] == "3 (largest)"
    )
    # default edges: tertiles, two entries each
    assert strata.attrs["edges"] == (0.0, 0.2, 1.5, 3.0)
    assert interactions.effect_strata(table, n_strata=3).value_counts().tolist() == [
        2,
        2,
        2,
    ]
    with pytest.raises(ValueError, match="strictly increasing"):
        interactions.effect_strata(table, n_strata=2, edges=[0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="additive"):
        interactions.expected_effect(table.drop(columns="additive"))


def test_gene_scale_is_the_scaled_mad_and_standardise_divides_by_it():
    table = pd.DataFrame(
        {
            "gene": ["g"] * 5 + ["h"] * 5 + ["k"] * 2,
            "deviation": [1.0, 2, 3, 4, 100, 0, 0, 0, 0, 1, 5, 6],
        }
    )
    scale = interactions.gene_scale(table, min_values=5)
    # g: median 3, |x - 3| = 2, 1, 0, 1, 97 -> MAD 1; h: MAD 0 -> no scale;
    # k: too few values
    assert scale["g"] == pytest.approx(1.4826)
    assert np.isnan(scale["h"]) and np.isnan(scale["k"])
    z = interactions.standardise(table, "deviation", scale)
    assert z[4] == pytest.approx(100 / 1.4826) and np.isnan(z[5]) and np.isnan(z[10])


def test_sign_agreement_hand_computed():
    joined = pd.DataFrame(
        {
            "pred_minus_add": [0.5, -0.2, 0.0, 1.0, -3.0],
            "deviation": [0.3, 0.4, -0.1, -2.0, 0.01],
            "non_additive": [True, True, True, True, False],
        }
    )
    rows = interactions.sign_agreement(joined)
    assert len(rows) == 4  # called entries only
    np.testing.assert_array_equal(
        rows["sign_match"].to_numpy(), [1.0, 0.0, np.nan, 0.0]
    )
    with pytest.raises(ValueError, match="deviation"):
        interactions.sign_agreement(joined.drop(columns="deviation"))


def test_stratified_scores_equal_sklearn_within_each_stratum():
    joined = _joined(np.random.default_rng(4), methods=("a",), seeds=(1,))
    strata = pd.Series(np.where(joined.index % 2 == 0, "even", "odd"))
    table = interactions.stratified_ranking_scores(joined, strata)
    for _, row in table.iterrows():
        part = joined[strata.to_numpy() == row["stratum"]]
        assert row["auroc"] == pytest.approx(
            roc_auc_score(part["non_additive"], part["pred_minus_add"].abs())
        )
        assert row["n"] == len(part)
    with pytest.raises(ValueError, match="strata has"):
        interactions.stratified_ranking_scores(joined, strata.iloc[:3])
