"""Pseudobulk against a dense reference; chunked and backed reading; evaluation
genes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import loaders
from helpers.pseudobulk import (
    Pseudobulk,
    pseudobulk,
    target_gene_changes,
    top_control_genes,
)

from tests.gears_layout import make_gears_adata


def dense_reference(adata) -> pd.DataFrame:
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    frame = pd.DataFrame(X.astype(np.float64), columns=adata.var_names)
    return frame.groupby(adata.obs["condition"].astype(str).values).mean()


def test_real_subset_matches_dense_reference(norman_subset):
    pb = pseudobulk(
        norman_subset, chunk_size=700
    )  # several chunks, boundaries inside conditions
    ref = dense_reference(norman_subset).loc[pb.conditions]
    np.testing.assert_allclose(
        pb.means.to_numpy(), ref.to_numpy(), rtol=1e-10, atol=1e-12
    )
    assert pb.n_cells["ctrl"] == 100 and pb.n_cells.sum() == norman_subset.n_obs
    assert pb.dataset == "norman2019_subset"
    np.testing.assert_allclose(pb.delta.loc["ctrl"].to_numpy(), 0.0)
    np.testing.assert_allclose(
        pb.delta.loc["KLF1"], pb.means.loc["KLF1"] - pb.means.loc["ctrl"]
    )


def test_chunk_size_does_not_change_the_result(norman_subset):
    a = pseudobulk(norman_subset, chunk_size=1).means
    b = pseudobulk(norman_subset, chunk_size=10_000).means
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("dense", [True, False])
def test_backed_file_matches_in_memory(tmp_path, dense):
    path = tmp_path / "perturb_processed.h5ad"
    make_gears_adata(n_per_condition=30, dense=dense).write_h5ad(path)
    backed = loaders.read_gears(path, dataset="toy", backed="r")
    memory = loaders.read_gears(path, dataset="toy")
    a = pseudobulk(backed, chunk_size=17).means
    b = pseudobulk(memory).means
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(
        b.to_numpy(), dense_reference(memory).loc[b.index].to_numpy(), rtol=1e-10
    )


def test_top_control_genes_breaks_ties_first_come():
    ctrl = pd.Series([1.0, 3.0, 2.0, 3.0, 0.5], index=list("abcde"))
    assert list(top_control_genes(ctrl, 3)) == ["b", "d", "c"]
    with pytest.raises(ValueError, match="only 5 genes"):
        top_control_genes(ctrl, 6)


def test_subset_top_genes(norman_subset):
    pb = pseudobulk(norman_subset)
    top = pb.top_control_genes(10)
    assert len(top) == 10 and pb.ctrl[top].is_monotonic_decreasing
    assert pb.ctrl[top].min() >= pb.ctrl.drop(top).max()


def test_pseudobulk_needs_a_control_row():
    means = pd.DataFrame([[1.0]], index=["A"], columns=["g"])
    with pytest.raises(ValueError, match="no 'ctrl' row"):
        Pseudobulk(means, pd.Series([3], index=["A"]), "toy")


def test_target_gene_changes_on_real_subset(norman_subset):
    targets = target_gene_changes(pseudobulk(norman_subset))
    measured = targets[targets["measured"]]
    # only TMSB4X of the subset's targets is among its 500 genes; CRISPRa raises it
    assert list(measured["target"].unique()) == ["TMSB4X"]
    assert (measured["delta"] > 0).all()
    assert targets["measured"].sum() < len(targets)


def test_subset_and_long_table(norman_subset):
    pb = pseudobulk(norman_subset)
    small = pb.subset(["ctrl", "KLF1"], pb.genes[:5])
    long = small.to_long()
    assert len(long) == 10 and set(long.columns) == {
        "dataset",
        "condition",
        "n_cells",
        "gene",
        "mean",
        "delta",
    }
    with pytest.raises(KeyError, match="Conditions not in the pseudobulk"):
        pb.subset(["ctrl", "NOPE"])


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_equals_scanpy_aggregate_on_a_small_sparse_example(fmt):
    """scanpy.get.aggregate(by="condition", func="mean") is the independent oracle."""
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    rng = np.random.default_rng(7)
    X = sp.random(400, 60, density=0.15, format="csr", random_state=3, dtype=np.float32)
    X.data = np.log1p(X.data * 20).astype(np.float32)
    labels = rng.choice(
        ["ctrl", "A", "B", "A+B", "C"], size=400
    )  # cells of a condition interleaved
    obs = pd.DataFrame(
        {"condition": pd.Categorical(labels)}, index=[f"c{i}" for i in range(400)]
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(60)])
    matrix = {"csr": X, "csc": X.tocsc(), "dense": X.toarray()}[fmt]
    adata = ad.AnnData(matrix, obs=obs, var=var)
    ours = pseudobulk(adata, chunk_size=37).means
    oracle = sc.get.aggregate(
        ad.AnnData(X, obs=obs, var=var), by="condition", func="mean"
    )
    expected = pd.DataFrame(
        np.asarray(oracle.layers["mean"]),
        index=oracle.obs_names.astype(str),
        columns=oracle.var_names,
    )
    np.testing.assert_allclose(
        ours.loc[expected.index].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-10
    )
