"""Pseudobulk profiles, control and changes (introduced in chapter 1).

The paper's definition: the pseudobulk of a condition is the per-gene **mean of the
log-normalised expression** over its cells (not the log of mean counts),

    pseudobulk[p, g] = (1 / n_p) * sum_{cells c of condition p} X[c, g],

the control profile is the pseudobulk of the ``ctrl`` cells, and the change ("delta",
the paper's "log-fold change") is ``delta[p, g] = pseudobulk[p, g] - ctrl[g]``.

:func:`pseudobulk` never densifies the whole matrix: in-memory sparse data are summed in
one pass over the non-zeros, backed AnnData (``load_dataset(..., backed="r")``) of any
size in row chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .loaders import CONTROL
from .errors import InputError

__all__ = [
    "Pseudobulk",
    "pseudobulk",
    "group_sums",
    "top_control_genes",
    "target_gene_changes",
]


@dataclass
class Pseudobulk:
    """Per-condition mean expression (conditions x genes) with the number of cells
    behind each row."""

    means: pd.DataFrame
    n_cells: pd.Series
    dataset: str = ""

    def __post_init__(self):
        if CONTROL not in self.means.index:
            raise InputError(
                f"Pseudobulk of {self.dataset or 'this dataset'} has no "
                f"{CONTROL!r} row; the control profile "
                "is needed for changes and baselines. Check obs['condition'] of "
                "the AnnData."
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
        """Change of every condition relative to control: ``means - ctrl`` (the control
        row is 0)."""
        return self.means - self.ctrl

    def top_control_genes(self, n: int = 1000) -> pd.Index:
        """The ``n`` genes most expressed in control (see :func:`top_control_genes`)."""
        return top_control_genes(self.ctrl, n)

    def subset(self, conditions=None, genes=None) -> "Pseudobulk":
        """A Pseudobulk restricted to some conditions and/or genes (control must stay
        in)."""
        conditions = self.conditions if conditions is None else pd.Index(conditions)
        genes = self.genes if genes is None else pd.Index(genes)
        missing = conditions.difference(self.conditions)
        if len(missing):
            raise KeyError(f"Conditions not in the pseudobulk: {list(missing)[:10]}")
        missing = genes.difference(self.genes)
        if len(missing):
            raise KeyError(f"Genes not in the pseudobulk: {list(missing)[:10]}")
        return Pseudobulk(
            self.means.loc[conditions, genes],
            self.n_cells.loc[conditions],
            self.dataset,
        )

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

    Genes are ranked by ``ctrl`` in decreasing order; ties keep the order of the genes
    in ``ctrl`` (first come first), as R's ``rank(..., ties.method = "first")`` in the
    paper's code.
    """
    if n < 1:
        raise InputError(f"n must be a positive number of genes, got {n}.")
    if n > len(ctrl):
        raise InputError(
            f"Asked for the top {n} control-expressed genes, but only "
            f"{len(ctrl)} genes are measured."
        )
    order = np.argsort(-ctrl.to_numpy(), kind="stable")
    return ctrl.index[order[:n]]


@numba.njit(cache=True, nogil=True)
def _csr_group_sums(
    indptr, indices, data, codes, row_offset, n_rows, sums
):  # pragma: no cover (jitted)
    """``sums[codes[r], indices[p]] += data[p]`` over the CSR rows ``row_offset ..
    row_offset + n_rows``.

    One pass over the non-zeros, accumulating in the float64 ``sums``; ``codes`` is
    indexed by the global row number, ``indptr`` by the local one.
    """
    for r in range(n_rows):
        c = codes[row_offset + r]
        for p in range(indptr[r], indptr[r + 1]):
            sums[c, indices[p]] += data[p]


def _add_block(block, codes: np.ndarray, start: int, sums: np.ndarray) -> None:
    """Add the rows of ``block`` (cells ``start ..``) to the per-condition ``sums``
    (float64)."""
    n_rows = block.shape[0]
    if sp.issparse(block):
        block = (
            block if block.format == "csr" else sp.csr_matrix(block)
        )  # duplicates just add up
        _csr_group_sums(
            block.indptr, block.indices, block.data, codes, start, n_rows, sums
        )
    else:
        onehot = sp.csr_matrix(
            (np.ones(n_rows), (codes[start : start + n_rows], np.arange(n_rows))),
            shape=(sums.shape[0], n_rows),
        )
        sums += onehot @ np.asarray(block, dtype=np.float64)


def group_sums(
    matrix, codes: np.ndarray, n_groups: int, *, chunk_size: int = 10_000
) -> np.ndarray:
    """``sums[k, g] = sum of matrix[c, g] over the rows c with codes[c] == k`` (float64,
    n_groups x genes).

    Rows with a negative code are skipped. The engine of :func:`pseudobulk` (same passes
    over the data); chapter 8 uses it to pseudobulk random halves of the cells in one
    pass.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if len(codes) != matrix.shape[0]:
        raise InputError(f"{len(codes)} codes for {matrix.shape[0]} rows.")
    sums = np.zeros((n_groups + 1, matrix.shape[1]), dtype=np.float64)
    codes = np.where(codes < 0, n_groups, codes)  # skipped rows go to a scratch row
    if isinstance(matrix, sp.csr_matrix | sp.csr_array):
        _add_block(matrix, codes, 0, sums)
    else:
        for start in range(0, matrix.shape[0], chunk_size):
            stop = min(start + chunk_size, matrix.shape[0])
            _add_block(matrix[start:stop], codes, start, sums)
    return sums[:n_groups]


def pseudobulk(
    adata: ad.AnnData,
    *,
    by: str = "condition",
    layer: str | None = None,
    chunk_size: int = 10_000,
) -> Pseudobulk:
    """Mean expression per condition (sparse-aware; works on backed AnnData).

    Formula: ``pseudobulk[p, g] = mean over cells c with obs[by] == p of X[c, g]``
    (or of ``layers[layer]``). Accumulates in float64. Conditions with no cells are
    dropped.

    Sparse CSR matrices in memory are summed in one pass over their non-zeros without
    any copy (a compiled loop: ``sums[condition of cell, gene] += value``); backed
    files and other formats are read ``chunk_size`` rows at a time. Peak extra memory
    is the conditions x genes float64 table plus one chunk.
    ``benchmarks/bench_pseudobulk_vs_scanpy.py`` compares it with
    ``scanpy.get.aggregate`` (the test suite checks they agree to 1e-10).

    ``adata``: the canonical cells (in memory or backed).
    """
    if by not in adata.obs:
        raise KeyError(
            f"obs has no column {by!r}; load the data with "
            "helpers.loaders.load_dataset first."
        )
    if chunk_size < 1:
        raise InputError("chunk_size must be positive.")
    labels = pd.Categorical(adata.obs[by])
    labels = labels.remove_unused_categories()
    codes = np.asarray(labels.codes, dtype=np.int64)
    if (codes < 0).any():
        raise InputError(
            f"obs[{by!r}] has missing values for {(codes < 0).sum()} cells."
        )
    n_cond = len(labels.categories)
    matrix = adata.layers[layer] if layer is not None else adata.X
    sums = group_sums(matrix, codes, n_cond, chunk_size=chunk_size)
    counts = np.bincount(codes, minlength=n_cond)
    conditions = pd.Index([str(c) for c in labels.categories], name="condition")
    means = pd.DataFrame(
        sums / counts[:, None],
        index=conditions,
        columns=pd.Index(adata.var_names, name="gene"),
    )
    n_cells = pd.Series(counts, index=conditions, name="n_cells")
    dataset = (
        adata.uns.get("perturbbook", {}).get("dataset", "")
        if hasattr(adata, "uns")
        else ""
    )
    return Pseudobulk(means=means, n_cells=n_cells, dataset=dataset)


def target_gene_changes(pb: Pseudobulk) -> pd.DataFrame:
    """For every perturbed condition and each of its target genes that is measured:
    ctrl, mean and delta.

    CRISPRa should raise the target's own expression, CRISPRi lower it; targets that are
    not among the measured genes are listed with ``measured = False`` so their absence
    is visible.

    ``pb``: the pseudobulk.
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
    return pd.DataFrame(
        rows, columns=["condition", "target", "measured", "ctrl", "mean", "delta"]
    )
