"""Random controls of matching dimension, crossed intervals, and the dimension
effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import controls, linear, metrics
from helpers.linear import EmbeddingError
from helpers.pseudobulk import Pseudobulk


def _table(n_genes, dim, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        scale * rng.normal(size=(n_genes, dim)), index=[f"G{i}" for i in range(n_genes)]
    )


def test_random_embedding_like_matches_genes_dimension_and_scale():
    table = _table(400, 16, scale=0.05)
    rnd = linear.random_embedding_like(table, seed=3)
    assert rnd.shape == table.shape and list(rnd.index) == list(table.index)
    rms = np.sqrt(np.mean(table.to_numpy() ** 2))
    # 6400 i.i.d. N(0, rms^2) entries: the sample RMS lies within 3 % of rms
    assert np.sqrt(np.mean(rnd.to_numpy() ** 2)) == pytest.approx(rms, rel=0.03)
    assert abs(rnd.to_numpy().mean()) < 4 * rms / np.sqrt(rnd.size)
    # the random table carries nothing of the original: correlation near 0
    assert (
        abs(np.corrcoef(rnd.to_numpy().ravel(), table.to_numpy().ravel())[0, 1]) < 0.05
    )


def test_random_embedding_like_is_deterministic_per_gene_and_seed():
    table = _table(50, 8)
    a, b = (
        linear.random_embedding_like(table, 1),
        linear.random_embedding_like(table, 1),
    )
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(
        a.to_numpy(), linear.random_embedding_like(table, 2).to_numpy()
    )
    # a gene's row does not depend on the other genes (same scale: a copy of the table's
    # rows)
    part = linear.random_embedding_like(table.iloc[::-1], 1)
    np.testing.assert_allclose(part.loc[a.index].to_numpy(), a.to_numpy())
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        linear.random_embedding_like(table, -1)
    with pytest.raises(EmbeddingError, match="NaN"):
        linear.random_embedding_like(table.replace(table.iloc[0, 0], np.nan), 0)
    with pytest.raises(EmbeddingError, match="non-empty"):
        linear.random_embedding_like(table.iloc[:, :0], 0)


def test_random_control_variants_names_seeds_and_pairs():
    tables = {
        "text": _table(30, 384),
        "tiny": _table(30, 32),
        "go": _table(20, 10),
        "other10": _table(25, 10),
    }
    rc = linear.random_control_variants(tables, seeds=range(5))
    assert rc.seeds == (0, 1, 2, 3, 4)
    assert rc.pairs == {
        "linear_G_text": "linear_G_random_d384",
        "linear_P_text": "linear_P_random_d384",
        "linear_G_tiny": "linear_G_random_d32",
        "linear_P_tiny": "linear_P_random_d32",
        "linear_G_go": "linear_G_random_d10",
        "linear_P_go": "linear_P_random_d10",
        "linear_G_other10": "linear_G_random_d10_other10",
        "linear_P_other10": "linear_P_random_d10_other10",
    }
    assert all(sorted(by_seed) == [0, 1, 2, 3, 4] for by_seed in rc.methods.values())
    only_p = linear.random_control_variants(tables, seeds=[7], as_gene=False)
    assert set(only_p.methods) == {
        "linear_P_random_d384",
        "linear_P_random_d32",
        "linear_P_random_d10",
        "linear_P_random_d10_other10",
    }
    with pytest.raises(ValueError, match="distinct integers"):
        linear.random_control_variants(tables, seeds=[1, 1])
    with pytest.raises(ValueError, match="non-empty dict"):
        linear.random_control_variants({})


def _toy_screen(n_genes=60, n_targets=12, seed=0):
    """A toy screen whose singles and doubles are all measured conditions."""
    rng = np.random.default_rng(seed)
    genes = [f"g{i}" for i in range(n_genes)]
    targets = [f"T{i}" for i in range(n_targets)]
    ctrl = rng.uniform(1, 3, n_genes)
    effects = {t: rng.normal(scale=0.5, size=n_genes) for t in targets}
    rows = {"ctrl": ctrl, **{t: ctrl + effects[t] for t in targets}}
    doubles = [f"T{i}+T{i + 1}" for i in range(0, 6, 2)]
    for d in doubles:
        a, b = d.split("+")
        rows[d] = ctrl + effects[a] + effects[b] + rng.normal(scale=0.1, size=n_genes)
    means = pd.DataFrame(rows, index=genes).T
    return Pseudobulk(means, pd.Series(50, index=means.index), "toy"), targets, doubles


def test_a_control_method_fits_the_linear_model_with_its_seeds_random_table():
    from helpers.splits import holdout_split

    pb, targets, doubles = _toy_screen()
    split = holdout_split(pb.conditions, doubles, dataset="toy")
    table = pd.DataFrame(np.ones((len(targets), 6)), index=targets)
    rc = linear.random_control_variants({"x": table}, seeds=[0, 1], as_gene=False)
    train = pb.subset(split.train)
    got = {
        s: rc.methods["linear_P_random_d6"][s](train, doubles).values for s in (0, 1)
    }
    for s in (0, 1):
        expected = linear.linear_model(
            train,
            doubles,
            perturbation_embedding=(linear.random_embedding_like(table, s)),
        ).values
        pd.testing.assert_frame_equal(got[s], expected)
    assert not np.allclose(got[0].to_numpy(), got[1].to_numpy())
    metrics_table = controls.run_seeded(pb, [split], rc, allow_missing=True)
    assert sorted(metrics_table["embedding_seed"].unique()) == [0, 1]
    assert set(metrics_table["method"]) == {"linear_P_random_d6"}
    assert len(metrics_table) == 2 * len(doubles)
    assert metrics_table.attrs["not_fitted"] == []
    # a G control cannot be fitted here (the training-PCA P embeds no target T*): it is
    # listed once per embedding seed instead of printed
    both = linear.random_control_variants({"x": table}, seeds=[0, 1])
    listed = controls.run_seeded(pb, [split], both, allow_missing=True)
    assert set(listed["method"]) == {"linear_P_random_d6"}
    assert [(r["method"], r["embedding_seed"]) for r in listed.attrs["not_fitted"]] == [
        ("linear_G_random_d6", 0),
        ("linear_G_random_d6", 1),
    ]


def _rows(method, l2s, emb_seed=None, seed=1):
    out = [
        {"dataset": "d", "method": method, "seed": seed, "condition": f"P{i}", "l2": v}
        for i, v in enumerate(l2s)
    ]
    if emb_seed is not None:
        for row in out:
            row["embedding_seed"] = emb_seed
    return out


def test_versus_controls_pairs_on_conditions_by_hand():
    rows = (
        _rows("mean", [2.0, 4.0, 1.0, 5.0])
        + _rows("linear_P_x", [1.0, 2.0, 3.0, 4.0])
        + _rows("ctl", [2.0, 3.0, 4.0, 5.0], emb_seed=0)  # 1 worse everywhere
        + _rows("ctl", [4.0, 5.0, 6.0, 7.0], emb_seed=1)
    )  # 3 worse everywhere
    table = pd.DataFrame(rows)
    out = controls.versus_controls(table, {"linear_P_x": "ctl"}, min_conditions=3).iloc[
        0
    ]
    assert out["difference"] == pytest.approx(2.0)  # (1 + 3) / 2 on every condition
    assert out["method_mean"] == pytest.approx(2.5) and out[
        "control_mean"
    ] == pytest.approx(4.5)
    # the differences vary only with the embedding seed (1 or 3): the interval lies in
    # [1, 3]
    assert 1.0 <= out["lower"] <= 2.0 <= out["upper"] <= 3.0
    assert out["n_condition"] == 4 and out["n_embedding_seed"] == 2
    assert out["direction"] == "better" and out["conclusion"] == "better"
    few = controls.versus_controls(
        table, {"linear_P_x": "ctl"}, min_conditions=10
    ).iloc[0]
    assert few["conclusion"] == "too few conditions"


def test_crossed_forest_keeps_forests_common_set_and_ratios():
    rows = (
        _rows("mean", [2.0, 4.0, 1.0, 5.0])
        + _rows("a", [1.0, 2.0, 0.5, 2.5])
        + _rows("b", [4.0, 4.0, 3.0, 5.0])
        + _rows("b", [2.0, 4.0, 1.0, 5.0], seed=2)
        + _rows("mean", [2.0, 4.0, 1.0, 5.0], seed=2)
        + _rows("a", [1.0, 2.0, 0.5, 2.5], seed=2)
    )
    table = pd.DataFrame(rows)
    ours = controls.crossed_forest(table, "mean", n_boot=500).set_index("method")
    plain = metrics.forest(table, "mean", n_boot=10).set_index("method")
    for m in ("mean", "a", "b"):
        assert ours.loc[m, "mean_ratio"] == pytest.approx(plain.loc[m, "mean_ratio"])
        assert ours.loc[m, "n"] == plain.loc[m, "n"] == 8
    assert ours.loc["a", ["lower", "upper"]].tolist() == pytest.approx([0.5, 0.5])
    assert ours.loc["b", "n_condition"] == 4 and ours.loc["b", "n_seed"] == 2
    # b's ratios: seed 1 = 2, 1, 3, 1; seed 2 = 1 everywhere: any resample's mean lies
    # in [1, 3]
    assert (
        1.0
        <= ours.loc["b", "lower"]
        < ours.loc["b", "mean_ratio"]
        < ours.loc["b", "upper"]
        <= 3
    )


def test_high_dimensional_random_P_makes_the_model_the_projected_additive():
    from helpers.splits import holdout_split

    pb, targets, doubles = _toy_screen()
    split = holdout_split(pb.conditions, doubles, dataset="toy")
    demo = controls.additivity_by_dimension(pb, split, [2, 200], seeds=(0, 1), k=5)
    lm = demo[demo["model"] == "linear_P_random"].groupby("dim").mean(numeric_only=True)
    n_train = len(split.train)  # ctrl and the 12 singles
    assert (demo["n_train"] == n_train).all()
    # far above n_train the hat matrix is the identity: weight 1 on the own singles,
    # prediction = projected additive
    assert lm.loc[200, "self_weight"] > 0.98
    assert (
        lm.loc[200, "to_projected_additive"] < 0.05 * lm.loc[2, "to_projected_additive"]
    )
    # with 2 dimensions for 13 conditions it cannot single out a perturbation
    assert lm.loc[2, "self_weight"] < 0.5
    # the additive row, by hand: ||x_A + x_B - ctrl - x_AB|| averaged over the doubles
    means = pb.means
    by_hand = np.mean(
        [
            np.linalg.norm(
                means.loc[d.split("+")].sum() - means.loc["ctrl"] - means.loc[d]
            )
            for d in doubles
        ]
    )
    additive = demo.loc[demo["model"] == "additive", "l2"].item()
    assert additive == pytest.approx(by_hand)
    with pytest.raises(ValueError, match="no double"):
        controls.additivity_by_dimension(pb, holdout_split(pb.conditions, ["T1"]), [2])


def test_paired_comparisons_by_hand_and_the_too_few_rule():
    rows = (
        _rows("mean", [2.0, 4.0, 1.0, 5.0])
        + _rows("a", [1.0, 3.0, 0.0, 4.0])
        + _rows("b", [2.0, 4.0, 1.0, 5.0])
    )
    table = pd.DataFrame(rows)
    out = controls.paired_comparisons(
        table, [("a", "mean"), ("b", "mean"), ("zz", "mean")], min_conditions=4
    ).set_index("method")
    assert list(out.index) == ["a", "b"]  # zz has no rows: skipped
    # a is exactly 1 lower everywhere: difference 1, degenerate interval, "better"
    assert out.loc["a", ["estimate", "lower", "upper"]].tolist() == pytest.approx(
        [1, 1, 1]
    )
    assert out.loc["a", "conclusion"] == "better"
    assert "a is better than mean" in out.loc["a", "sentence"]
    assert out.loc["b", "conclusion"] == "inconclusive"
    few = controls.paired_comparisons(table, [("a", "mean")], min_conditions=5).iloc[0]
    assert (
        few["conclusion"] == "too few conditions"
        and "too few to conclude" in few["sentence"]
    )


def test_beside_controls_puts_each_control_after_its_embedding():
    pairs = {
        "linear_P_text": "linear_P_random_d384",
        "linear_G_go": "linear_G_random_d10",
    }
    pairs["linear_P_tiny"] = "linear_P_random_d32"  # its embedding is not plotted
    methods = [
        "mean",
        "linear_P_random_d384",
        "linear_P_random_d32",
        "linear_P_text",
        "linear_G_go",
        "linear_G_random_d10",
    ]
    assert controls.beside_controls(methods, pairs) == [
        "mean",
        "linear_P_text",
        "linear_P_random_d384",
        "linear_G_go",
        "linear_G_random_d10",
        "linear_P_random_d32",
    ]


def test_crossed_forest_counts_coverage_once_per_embedding_seed():
    rows = (
        _rows("mean", [2.0, 4.0, 1.0, 5.0])
        + _rows("ctl", [4.0, 8.0, 2.0, 10.0], emb_seed=0)  # ratio 2 everywhere
        + _rows("ctl", [2.0, 4.0, 1.0, 5.0], emb_seed=1)  # ratio 1 everywhere
        + _rows("ctl", [2.0, 4.0, 1.0, 5.0], emb_seed=2)
    )
    out = controls.crossed_forest(pd.DataFrame(rows), "mean", n_boot=300)
    out = out.set_index("method")
    assert out.attrs["left_out"] == {"d": []}
    assert out.loc["ctl", "n"] == 12 and out.loc["ctl", "n_embedding_seed"] == 3
    assert out.loc["ctl", "mean_ratio"] == pytest.approx(4 / 3)
    # only the embedding seed varies the ratio: resampled means lie in [1, 2]
    assert 1.0 <= out.loc["ctl", "lower"] <= 4 / 3 <= out.loc["ctl", "upper"] <= 2.0
