"""The simulator: deterministic, Norman-shaped, and its truth is the truth."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from helpers import loaders
from helpers.errors import InputError
from helpers.pseudobulk import pseudobulk
from helpers.simulate import (
    counts_from_log_normalised,
    log_normalise,
    simulate_screen,
    write_norman_scale_h5ad,
)


@pytest.fixture(scope="module")
def screen():
    return simulate_screen(
        n_genes=600, cells_per_condition=40, cell_lines=("lineA", "lineB"), seed=3
    )


def test_same_seed_same_data_and_truth(screen):
    again = simulate_screen(
        n_genes=600, cells_per_condition=40, cell_lines=("lineA", "lineB"), seed=3
    )
    for line in screen.adatas:
        assert (screen.adatas[line].X != again.adatas[line].X).nnz == 0
        assert (
            screen.adatas[line].obs["condition"] == again.adatas[line].obs["condition"]
        ).all()
    assert screen.truth.interactions.equals(again.truth.interactions)
    other = simulate_screen(n_genes=600, cells_per_condition=40, seed=4)
    assert (other.adata.X != screen.adata.X).nnz > 0


def test_norman_shape(screen):
    adata = screen.adata
    table = loaders.condition_table(adata)
    assert table["kind"].value_counts().to_dict() == {
        "control": 1,
        "single": 100,
        "double": 124,
    }
    assert adata.n_vars == 600 and adata.uns["perturbbook"]["synthetic"] is True
    assert (
        "counts" in adata.layers and adata.uns["perturbbook"]["layout"] == "simulated"
    )
    # every double's singles are present, as in Norman
    singles = set(table.loc[table["kind"] == "single", "condition"])
    for double in table.loc[table["kind"] == "double", "condition"]:
        assert set(double.split("+")) <= singles


def test_X_is_log_normalised_counts(screen):
    adata = screen.adata
    counts = adata.layers["counts"][:50].toarray()
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(adata.X[:50].toarray(), expected, rtol=1e-5, atol=1e-6)


def test_doubles_are_additive_plus_planted_interactions(screen):
    truth = screen.truth
    for double in truth.double_effects.index[:40]:
        a, b = double.split("+")
        additive = truth.single_effects.loc[a] + truth.single_effects.loc[b]
        deviation = truth.double_effects.loc[double] - additive
        planted = truth.interactions[
            truth.interactions["condition"] == double
        ].set_index("gene")
        assert set(deviation[deviation.abs() > 0].index) == set(planted.index)
        np.testing.assert_allclose(deviation[planted.index], planted["interaction"])
        # planted only where both singles move the gene the same way; buffering shrinks,
        # synergy amplifies
        same_sign = np.sign(truth.single_effects.loc[a, planted.index]) == np.sign(
            truth.single_effects.loc[b, planted.index]
        )
        assert same_sign.all()
        ratio = planted["interaction"] / planted["additive"]
        assert (ratio[planted["type"] == "buffering"].between(-0.9, -0.5)).all()
        assert (ratio[planted["type"] == "synergy"].between(0.6, 1.5)).all()
    assert set(truth.interactions["type"]) == {"buffering", "synergy"}


def test_pseudobulk_recovers_the_true_effects(screen):
    pb = pseudobulk(screen.adata)
    top = pb.top_control_genes(300)
    singles = screen.truth.single_effects.index
    true = screen.truth.single_effects.loc[singles, top].to_numpy().ravel()
    observed = pb.delta.loc[singles, top].to_numpy().ravel()
    # log1p of normalised counts compresses changes of weakly expressed genes, so r is
    # ~0.75, not 1
    assert np.corrcoef(true, observed)[0, 1] > 0.7


def test_planted_interactions_are_visible_in_the_data(screen):
    pb = pseudobulk(screen.adata)
    top = set(pb.top_control_genes(300))
    planted = screen.truth.interactions[screen.truth.interactions["gene"].isin(top)]
    delta = pb.delta
    observed_dev = []
    for row in planted.itertuples():
        a, b = row.condition.split("+")
        observed_dev.append(
            delta.at[row.condition, row.gene]
            - delta.at[a, row.gene]
            - delta.at[b, row.gene]
        )
    # the sign of the observed deviation from additivity follows the planted interaction
    agree = np.sign(observed_dev) == np.sign(planted["interaction"].to_numpy())
    assert agree.mean() > 0.8


def test_second_cell_line_shares_programs_not_baseline(screen):
    truth = screen.truth
    line_b = screen.adatas["lineB"]
    conditions_b = set(line_b.obs["condition"])
    assert "ctrl" in conditions_b and not any("+" in c for c in conditions_b)
    assert conditions_b - {"ctrl"} < set(truth.single_effects.index)
    r = np.corrcoef(truth.baseline.loc["lineA"], truth.baseline.loc["lineB"])[0, 1]
    assert 0.6 < r < 0.95
    pb_a, pb_b = pseudobulk(screen.adatas["lineA"]), pseudobulk(line_b)
    shared = sorted(conditions_b - {"ctrl"})
    genes = pb_a.top_control_genes(200).intersection(pb_b.top_control_genes(200))
    r_delta = np.corrcoef(
        pb_a.delta.loc[shared, genes].to_numpy().ravel(),
        pb_b.delta.loc[shared, genes].to_numpy().ravel(),
    )[0, 1]
    assert r_delta > 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_single": 10, "n_genes": 5}, "n_single must be <= n_genes"),
        ({"n_single": 5, "n_double": 11}, "only 10 pairs"),
        ({"modality": "CRISPRx"}, "modality"),
        ({"cells_per_condition": 0}, "at least 1"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_screen(**kwargs)


def test_norman_scale_writer_streams_a_canonical_file(tmp_path):
    path = write_norman_scale_h5ad(
        tmp_path / "sim.h5ad",
        n_cells=2500,
        n_genes=300,
        n_single=20,
        n_double=15,
        chunk_cells=700,
        seed=1,
    )
    backed = loaders.read_canonical(path, backed="r")
    assert backed.shape == (2500, 300) and backed.uns["perturbbook"]["synthetic"]
    memory = loaders.read_canonical(path)
    a, b = pseudobulk(backed, chunk_size=333).means, pseudobulk(memory).means
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-10)
    assert len(a) == 1 + 20 + 15
    again = write_norman_scale_h5ad(
        tmp_path / "sim2.h5ad",
        n_cells=2500,
        n_genes=300,
        n_single=20,
        n_double=15,
        chunk_cells=700,
        seed=1,
    )
    assert (loaders.read_canonical(again).X != memory.X).nnz == 0
    assert not list(tmp_path.glob("*.part"))


def test_counts_from_log_normalised_inverts_log_normalise_by_hand():
    # totals 9, 6 and 0: cell 1 holds a single count (exact without sizes), cell 2's
    # smallest count is 2 (halved: 1, 2), cell 3 is empty (no size, zeros)
    counts = np.array([[1, 3, 0, 5], [2, 4, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    x = log_normalise(sp.csr_matrix(counts))
    before = x.copy()
    got, size = counts_from_log_normalised(x)
    expected = [[1, 3, 0, 5], [1, 2, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(got.toarray(), expected)
    np.testing.assert_allclose(size[:2], [9.0, 3.0], rtol=1e-5)
    assert np.isnan(size[2]) and (x != before).nnz == 0  # the input is not changed
    got, size = counts_from_log_normalised(x.toarray(), [9.0, 6.0, 1.0])
    np.testing.assert_array_equal(got.toarray(), counts)
    with pytest.raises(InputError, match="2 size factors for 3 cells"):
        counts_from_log_normalised(x, [9.0, 6.0])
