"""The VCC family's DE test (helpers.metrics.vcc.wilcoxon_vs_control) against scanpy's
own ``rank_genes_groups(method="wilcoxon", tie_correct=True, reference="ctrl")``, the
test cell-eval2's CPU path calls: same p-values and adjusted p-values on data with the
ties of log-normalised counts (many zeros, repeated values), constant genes, groups of
2 cells and groups larger than the control."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from helpers.metrics import vcc


def _cells(seed: int, sizes: dict[str, int], n_genes: int = 60) -> tuple:
    rng = np.random.default_rng(seed)
    labels = np.concatenate([[name] * n for name, n in sizes.items()])
    counts = rng.poisson(rng.gamma(0.5, 1.0, n_genes), (len(labels), n_genes))
    shift = {name: rng.gamma(1.0, 1.0, n_genes) for name in sizes}
    for name in sizes:  # each group its own rates, so some genes really differ
        rows = labels == name
        rate = shift[name] * (name != "ctrl") + 0.3
        counts[rows] = rng.poisson(rate, counts[rows].shape)
    X = np.log1p(counts * 1e4 / np.maximum(counts.sum(1, keepdims=True), 1))
    X[:, 0] = 0.0  # a gene no cell expresses
    X[:, 1] = 1.5  # a gene every cell expresses equally
    order = rng.permutation(len(labels))
    return X[order], labels[order]


def _scanpy(X, labels, groups):
    genes = [f"g{i}" for i in range(X.shape[1])]
    adata = ad.AnnData(
        X.copy(),
        obs=pd.DataFrame(
            {"condition": pd.Categorical(labels)},
            index=[f"c{i}" for i in range(len(labels))],
        ),
        var=pd.DataFrame(index=genes),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(
            adata,
            groupby="condition",
            groups=groups,
            reference="ctrl",
            method="wilcoxon",
            tie_correct=True,
            n_genes=adata.n_vars,
        )
    res = adata.uns["rank_genes_groups"]
    out = {}
    for g in groups:
        frame = pd.DataFrame(
            {"p": res["pvals"][g], "adj": res["pvals_adj"][g]},
            index=np.asarray(res["names"][g], dtype=str),
        ).loc[genes]
        out[g] = (frame["p"].to_numpy(), frame["adj"].to_numpy())
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wilcoxon_equals_scanpy(seed):
    sizes = {"ctrl": 150, "A": 40, "B": 2, "C": 300, "D+E": 26}
    X, labels = _cells(seed, sizes)
    groups = [g for g in sizes if g != "ctrl"]
    ours = vcc.wilcoxon_vs_control(X, labels, groups)
    theirs = _scanpy(X, labels, groups)
    for g in groups:
        np.testing.assert_allclose(ours[g][0], theirs[g][0], rtol=1e-12, atol=0)
        np.testing.assert_allclose(ours[g][1], theirs[g][1], rtol=1e-12, atol=0)
        assert ours[g][0][0] == 1.0 and ours[g][0][1] == 1.0  # constant genes
    assert (ours["C"][1] < 0.05).any()  # real differences are found


def test_de_table_keeps_the_gene_order_and_cell_eval2_columns():
    sizes = {"ctrl": 80, "A": 30, "B": 12}
    X, labels = _cells(5, sizes, n_genes=20)
    genes = pd.Index([f"g{i}" for i in range(20)])
    table = vcc.de_table(X, labels, genes, ["A", "B"])
    assert list(table.columns) == [
        "target",
        "feature",
        "log2_fold_change",
        "p_value",
        "p_adj",
    ]
    theirs = _scanpy(X, labels, ["A", "B"])
    for g in ("A", "B"):
        part = table[table["target"] == g]
        assert list(part["feature"]) == list(genes)
        np.testing.assert_allclose(part["p_adj"], theirs[g][1], rtol=1e-12, atol=0)
