"""Pseudobulk profiles, control and changes (introduced in chapter 1).

The paper's definition: the pseudobulk of a condition is the per-gene **mean of the
log-normalised expression** over its cells (not the log of mean counts),

    pseudobulk[p, g] = (1 / n_p) * sum_{cells c of condition p} X[c, g],

the control profile is the pseudobulk of the ``ctrl`` cells, and the change ("delta", the
paper's "log-fold change") is ``delta[p, g] = pseudobulk[p, g] - ctrl[g]``.

:func:`pseudobulk` reads ``X`` in row chunks and never densifies the whole matrix, so it works
on backed AnnData (``load_dataset(..., backed="r")``) of any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .loaders import CONTROL

__all__ = ["Pseudobulk", "pseudobulk", "top_control_genes", "target_gene_changes"]


@dataclass
class Pseudobulk:
    """Per-condition mean expression (conditions x genes) with the number of cells behind each row."""

    means: pd.DataFrame
    n_cells: pd.Series
    dataset: str = ""

    def __post_init__(self):
        if CONTROL not in self.means.index:
            raise ValueError(
                f"Pseudobulk of {self.dataset or 'this dataset'} has no {CONTROL!r} row; the control profile "
                "is needed for changes and baselines. Check obs['condition'] of the AnnData."
            )

    @property
    def conditions(self) -> pd.Index:
        return self.means.index

    @property
    def genes(self) -> pd.Index:
        return self.means.columns

    @property
    def ctrl(self) -> pd.Series:
        """Control pseudobulk (mean log-normalised expression of the control cells)."""
        return self.means.loc[CONTROL]

    @property
    def delta(self) -> pd.DataFrame:
        """Change of every condition relative to control: ``means - ctrl`` (the control row is 0)."""
        return self.means - self.ctrl

    def top_control_genes(self, n: int = 1000) -> pd.Index:
        """The ``n`` genes most expressed in control (see :func:`top_control_genes`)."""
        return top_control_genes(self.ctrl, n)

    def subset(self, conditions=None, genes=None) -> "Pseudobulk":
        """A Pseudobulk restricted to some conditions and/or genes (control must stay in)."""
        conditions = self.conditions if conditions is None else pd.Index(conditions)
        genes = self.genes if genes is None else pd.Index(genes)
        missing = conditions.difference(self.conditions)
        if len(missing):
            raise KeyError(f"Conditions not in the pseudobulk: {list(missing)[:10]}")
        missing = genes.difference(self.genes)
        if len(missing):
            raise KeyError(f"Genes not in the pseudobulk: {list(missing)[:10]}")
        return Pseudobulk(self.means.loc[conditions, genes], self.n_cells.loc[conditions], self.dataset)

    def to_long(self) -> pd.DataFrame:
        """Tidy table: dataset, condition, n_cells, gene, mean, delta."""
        long = self.means.stack().rename("mean").to_frame()
        long["delta"] = self.delta.stack()
        long = long.reset_index()
        long.columns = ["condition", "gene", "mean", "delta"]
        long.insert(1, "n_cells", long["condition"].map(self.n_cells))
        long.insert(0, "dataset", self.dataset)
        return long


def top_control_genes(ctrl: pd.Series, n: int = 1000) -> pd.Index:
    """The ``n`` genes with the highest control expression, the paper's evaluation set.

    Genes are ranked by ``ctrl`` in decreasing order; ties keep the order of the genes in
    ``ctrl`` (first come first), as R's ``rank(..., ties.method = "first")`` in the paper's code.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of genes, got {n}.")
    if n > len(ctrl):
        raise ValueError(f"Asked for the top {n} control-expressed genes, but only {len(ctrl)} genes are measured.")
    order = np.argsort(-ctrl.to_numpy(), kind="stable")
    return ctrl.index[order[:n]]


def pseudobulk(
    adata: ad.AnnData,
    *,
    by: str = "condition",
    layer: str | None = None,
    chunk_size: int = 10_000,
) -> Pseudobulk:
    """Mean expression per condition, computed in row chunks (sparse-aware; works on backed AnnData).

    Formula: ``pseudobulk[p, g] = mean over cells c with obs[by] == p of X[c, g]`` (or of
    ``layers[layer]``). Accumulates in float64. Conditions with no cells are dropped.
    """
    if by not in adata.obs:
        raise KeyError(f"obs has no column {by!r}; load the data with helpers.loaders.load_dataset first.")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive.")
    labels = pd.Categorical(adata.obs[by])
    labels = labels.remove_unused_categories()
    codes = labels.codes
    if (codes < 0).any():
        raise ValueError(f"obs[{by!r}] has missing values for {(codes < 0).sum()} cells.")
    n_cond = len(labels.categories)
    matrix = adata.layers[layer] if layer is not None else adata.X
    sums = np.zeros((n_cond, adata.n_vars), dtype=np.float64)
    for start in range(0, adata.n_obs, chunk_size):
        stop = min(start + chunk_size, adata.n_obs)
        block = matrix[start:stop]
        onehot = sp.csr_matrix(
            (np.ones(stop - start), (codes[start:stop], np.arange(stop - start))),
            shape=(n_cond, stop - start),
        )
        if sp.issparse(block):
            part = onehot @ sp.csr_matrix(block, dtype=np.float64)
            sums += part.toarray()
        else:
            sums += onehot @ np.asarray(block, dtype=np.float64)
    counts = np.bincount(codes, minlength=n_cond)
    conditions = pd.Index([str(c) for c in labels.categories], name="condition")
    means = pd.DataFrame(sums / counts[:, None], index=conditions, columns=pd.Index(adata.var_names, name="gene"))
    n_cells = pd.Series(counts, index=conditions, name="n_cells")
    dataset = adata.uns.get("perturbbook", {}).get("dataset", "") if hasattr(adata, "uns") else ""
    return Pseudobulk(means=means, n_cells=n_cells, dataset=dataset)


def target_gene_changes(pb: Pseudobulk) -> pd.DataFrame:
    """For every perturbed condition and each of its target genes that is measured: ctrl, mean and delta.

    CRISPRa should raise the target's own expression, CRISPRi lower it; targets that are not
    among the measured genes are listed with ``measured = False`` so their absence is visible.
    """
    rows = []
    delta = pb.delta
    for condition in pb.conditions:
        if condition == CONTROL:
            continue
        for gene in condition.split("+"):
            measured = gene in pb.genes
            rows.append(
                {
                    "condition": condition,
                    "target": gene,
                    "measured": measured,
                    "ctrl": pb.ctrl[gene] if measured else np.nan,
                    "mean": pb.means.at[condition, gene] if measured else np.nan,
                    "delta": delta.at[condition, gene] if measured else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=["condition", "target", "measured", "ctrl", "mean", "delta"])
