"""helpers.noise: the sampling-noise floor of L2, checked against known truth.

Oracles: Gaussian cells drawn around a known mean ``mu`` (the actual distance of the
observed mean to ``mu``, and the actual L2 of an additive prediction of an exactly
additive double), and a two-cell case computed by hand.
"""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.noise import additive_floor, sampling_noise


def _gaussian_screen(n_doubles=40, n_genes=300, n_cells=100, seed=0):
    """ctrl, A_k, B_k and A_k+B_k with mu_AB = mu_A + mu_B - mu_ctrl (exactly
    additive)."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.2, 1.0, n_genes)
    mu = {"ctrl": rng.normal(1.0, 0.5, n_genes)}
    for k in range(n_doubles):
        a, b = f"A{k}", f"B{k}"
        mu[a] = mu["ctrl"] + rng.normal(0, 0.5, n_genes)
        mu[b] = mu["ctrl"] + rng.normal(0, 0.5, n_genes)
        mu[f"{a}+{b}"] = mu[a] + mu[b] - mu["ctrl"]
    blocks, labels, observed = [], [], {}
    for k, (condition, m) in enumerate(mu.items()):
        n = n_cells + (k % 3)  # some odd sizes: the halves leave one cell out
        cells = m + sigma * rng.standard_normal((n, n_genes))
        blocks.append(cells)
        labels += [condition] * n
        observed[condition] = cells.mean(axis=0)
    adata = ad.AnnData(
        X=np.vstack(blocks),
        obs=pd.DataFrame(
            {"condition": labels}, index=[f"c{i}" for i in range(len(labels))]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )
    adata.uns["perturbbook"] = {"dataset": "gaussian_test"}
    return adata, mu, observed


@pytest.fixture(scope="module")
def screen():
    return _gaussian_screen()


def test_floor_matches_the_actual_distance_to_the_known_mean(screen):
    adata, mu, observed = screen
    table = sampling_noise(adata, adata.var_names, seed=3).set_index("condition")
    actual = pd.Series({c: np.linalg.norm(observed[c] - mu[c]) for c in mu})
    # averaged over 121 conditions the estimators agree with the oracle to ~1%
    for column in ("floor_l2", "floor_l2_genes"):
        ratio = table[column].reindex(actual.index).mean() / actual.mean()
        assert ratio == pytest.approx(1.0, abs=0.03), column
    # without the split-half correction (||A - B|| instead of ||A - B|| / 2) it would
    # be 2x
    assert table["floor_l2"].mean() < 1.1 * actual.mean()


def test_additive_floor_matches_the_actual_additive_error(screen):
    adata, mu, observed = screen
    doubles = [c for c in mu if "+" in c]
    floors = additive_floor(sampling_noise(adata, adata.var_names), doubles)
    actual = np.array(
        [
            np.linalg.norm(
                observed[d.split("+")[0]]
                + observed[d.split("+")[1]]
                - observed["ctrl"]
                - observed[d]
            )
            for d in doubles
        ]
    )
    assert floors["floor_additive_l2"].mean() / actual.mean() == pytest.approx(
        1.0, abs=0.03
    )
    assert floors["floor_additive_l2_genes"].mean() / actual.mean() == pytest.approx(
        1.0, abs=0.03
    )
    # the additive floor is about twice the single-condition floor (four equal terms)
    assert (floors["floor_additive_l2"] / floors["floor_l2"]).mean() == pytest.approx(
        2.0, rel=0.1
    )


def test_two_cells_by_hand():
    # a condition of two cells: the halves are one cell each, so both estimators give
    # sum_g (x1 - x2)^2 / 4 (split halves: m = 1, n = 2; variance: s^2 = (x1 - x2)^2 /
    # 2)
    X = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 3.0], [1.0, 0.0]])
    adata = ad.AnnData(
        X=X,
        obs=pd.DataFrame({"condition": ["ctrl", "ctrl", "A", "A"]}, index=list("abcd")),
        var=pd.DataFrame(index=["g1", "g2"]),
    )
    table = sampling_noise(adata, ["g1", "g2"]).set_index("condition")
    expected = {"ctrl": (4 + 1) / 4, "A": (0 + 9) / 4}
    for condition, v in expected.items():
        assert table.loc[condition, "v_halves"] == pytest.approx(v)
        assert table.loc[condition, "v_genes"] == pytest.approx(v)
        assert table.loc[condition, "floor_l2"] == pytest.approx(np.sqrt(v))


def test_backed_data_gives_the_same_table(tmp_path, screen):
    adata = screen[0][:1500].copy()
    adata.X = sp.csr_matrix(adata.X)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    genes = adata.var_names[:50]
    in_memory = sampling_noise(adata, genes, seed=1)
    backed = sampling_noise(ad.read_h5ad(path, backed="r"), genes, seed=1)
    pd.testing.assert_frame_equal(in_memory, backed)


def test_bad_input_says_what_to_do(screen):
    adata = screen[0]
    with pytest.raises(ValueError, match="not in the data"):
        sampling_noise(adata, ["no_such_gene"])
    with pytest.raises(ValueError, match="have no cells"):
        sampling_noise(adata, adata.var_names, conditions=["Z1"])
    table = sampling_noise(adata, adata.var_names[:10], conditions=["A0"])
    with pytest.raises(ValueError, match="no row for"):
        additive_floor(table, ["A0+B0"])
    with pytest.raises(ValueError, match="not a double"):
        additive_floor(table, ["A0"])


def _metrics(l2, method="additive"):
    return pd.DataFrame(
        {
            "method": method,
            "seed": 1,
            "condition": [f"p{i}" for i in range(len(l2))],
            "l2": l2,
        }
    )


def _floors(values):
    return pd.DataFrame(
        {
            "condition": [f"p{i}" for i in range(len(values))],
            "floor_additive_l2": values,
        }
    )


def test_compare_with_floor_directions():
    from helpers.noise import compare_with_floor

    rng = np.random.default_rng(1)
    floor = rng.uniform(0.4, 0.6, 30)
    # an error at the floor (noise around it) cannot be told apart from it
    at = compare_with_floor(_metrics(floor + rng.normal(0, 0.05, 30)), _floors(floor))
    assert "cannot be told apart from sampling noise" in at["sentence"]
    above = compare_with_floor(_metrics(floor + 1.0), _floors(floor))
    assert above["estimate"] == pytest.approx(1.0)
    assert above["ratio"] == pytest.approx((floor.mean() + 1.0) / floor.mean())
    assert "exceeds what sampling noise alone gives" in above["sentence"]
    few = compare_with_floor(_metrics(floor[:5] + 1.0), _floors(floor[:5]))
    assert few["too_few"] and "too few conditions to conclude" in few["sentence"]
    with pytest.raises(ValueError, match="No noise floor"):
        compare_with_floor(_metrics(floor), _floors(floor[:3]))
    with pytest.raises(ValueError, match="No rows of method"):
        compare_with_floor(_metrics(floor, "gears"), _floors(floor))
