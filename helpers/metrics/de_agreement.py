"""Metric family ``de_agreement``: do the predicted top changes hit the observed DE
genes? (chapter 8)

``de_overlap = |T_p ∩ P_p| / n`` where ``T_p`` are the top-``n`` DE genes of the
observed cells of ``p`` against the control cells (:func:`top_de_genes`: scanpy's
``rank_genes_groups``, Welch t-test by default - Wilcoxon on request, ~20x slower -
ranked by adjusted p-value then |score|, within the evaluation genes ``G``) and ``P_p``
the ``n`` genes of ``G`` with the largest predicted ``|y_hat_p - c|`` (a pseudobulk
prediction has no cells to test). ``n`` = :data:`N_DE` (20). A constant predicted change
has no top genes: NaN. Higher is better, 1 = all found. Chapter 9's ``de_overlap_vcc``
(:mod:`helpers.metrics.vcc`) is the Virtual Cell Challenge's version of the same idea:
it compares significant sets, not two top-``n`` lists (see :mod:`helpers.retrieval`).

With ``inp.exclude_target`` the condition's own target genes (both genes of a double)
are left out of both lists: ``T_p`` is then the first ``n`` observed DE genes that are
not targets, and ``P_p`` the ``n`` largest predicted changes among the other genes.

This module holds the computation; :mod:`helpers.retrieval` wraps it for the book's
objects (other ``n``, whole tables) and imports it from here, never the reverse.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd

from ..conditions import CONTROL, condition_genes
from ..errors import InputError
from .inputs import MetricInput
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
    "N_DE",
    "top_de_genes",
    "overlap",
    "observed_top_genes",
    "score",
]

NAME = "de_agreement"
COLUMNS: list[str] = ["de_overlap"]
NEEDS_CELLS = True
#: How many top genes are compared.
N_DE = 20


def top_de_genes(
    adata: ad.AnnData, conditions, *, n_de: int = N_DE, genes=None, method="t-test"
) -> dict[str, list[str]]:
    """Top-``n_de`` DE genes of each condition's cells against the control cells.

    Uses ``scanpy.tl.rank_genes_groups(groupby="condition", reference="ctrl",
    method=method)`` on ``X`` (log-normalised) restricted to ``genes`` (default: all);
    ties in the adjusted p-value are broken by |score|. Each condition is tested against
    the control on its own, so its list does not depend on the other conditions asked
    for. Deterministic (neither test draws random numbers).

    ``adata``: the cells (with the control, canonical ``obs["condition"]``);
    ``conditions``: the conditions whose DE genes are wanted; ``n_de``: how many;
    ``genes``: the genes tested; ``method``: scanpy's test.
    """
    import scanpy as sc

    conditions = [c for c in conditions if c != CONTROL]
    labels = adata.obs["condition"].astype(str)
    keep = labels.isin(conditions + [CONTROL]).to_numpy()
    cols = (
        slice(None) if genes is None else adata.var_names.get_indexer(pd.Index(genes))
    )
    if genes is not None and (np.asarray(cols) < 0).any():
        raise InputError(
            "Some DE genes are not measured in the cells; pass genes of the cells."
        )
    block = adata.X[np.flatnonzero(keep)][:, cols]
    # dense: scanpy's fast path
    block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
    sub = ad.AnnData(
        block.astype(np.float64),
        obs=pd.DataFrame(
            {"condition": pd.Categorical(labels[keep])}, index=adata.obs_names[keep]
        ),
        var=pd.DataFrame(index=adata.var_names[cols]),
    )
    with warnings.catch_warnings():  # scanpy's own PerformanceWarnings / log2 of 0
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(
            sub,
            groupby="condition",
            groups=conditions,
            reference=CONTROL,
            method=method,
            n_genes=sub.n_vars,
        )
    result = sub.uns["rank_genes_groups"]
    out = {}
    for condition in conditions:
        table = pd.DataFrame(
            {
                "names": result["names"][condition],
                "scores": result["scores"][condition],
                "pvals_adj": result["pvals_adj"][condition],
            }
        )
        table["abs_score"] = table["scores"].abs()
        table = table.sort_values(
            ["pvals_adj", "abs_score"], ascending=[True, False], kind="stable"
        )
        out[condition] = table["names"].astype(str).head(n_de).tolist()
    return out


def overlap(change, genes, observed, n_de: int = N_DE) -> float:
    """``|T ∩ P| / n_de``: ``P`` = the ``n_de`` genes with the largest ``change``
    (stable order), ``T`` = the first ``n_de`` of ``observed``; NaN for a constant
    ``change``.

    ``change``: the predicted ``|y_hat - c|`` per gene of ``genes``; ``genes``: their
    names; ``observed``: the observed top DE genes, best first; ``n_de``: how many.
    """
    change = np.asarray(change, dtype=np.float64)
    if change.max() - change.min() <= 1e-12 * max(1.0, change.max()):
        return np.nan  # constant predicted change: no top genes
    top = pd.Index(genes)[np.argsort(-change, kind="stable")[:n_de]]
    return len(set(top) & set(observed[:n_de])) / n_de


def observed_top_genes(inp: MetricInput, n_de: int = N_DE) -> dict[str, list[str]]:
    """The observed top DE genes of ``inp``'s conditions, computed once per task:
    kept in ``inp.cache`` (keyed by the evaluation genes and ``n_de``) and extended with
    the conditions it lacks.

    ``inp``: the metric input (its cells are tested); ``n_de``: how many genes.
    """
    if inp.cells is None:
        raise InputError(
            "The de_agreement family needs the truth's cells; use a task with cells."
        )
    key = (NAME, n_de, tuple(inp.genes))
    known = inp.cache.setdefault(key, {})
    missing = [c for c in inp.conditions if c not in known]
    if missing:
        known.update(top_de_genes(inp.cells, missing, n_de=n_de, genes=inp.genes))
    return known


def score(inp: MetricInput) -> pd.DataFrame:
    """``de_overlap`` per condition of ``inp`` (module docstring); NaN for every
    condition, with ``attrs["reason"]``, when there are fewer than :data:`N_DE`
    evaluation genes.

    ``inp``: one method's predictions on one split, with the truth's cells.
    """
    index = pd.Index(inp.conditions, name="condition")
    if len(inp.genes) < N_DE:
        out = pd.DataFrame({"de_overlap": np.nan}, index=index)
        out.attrs["reason"] = (
            f"de_overlap compares {N_DE} genes; there are {len(inp.genes)} evaluation "
            "genes"
        )
        return out
    ctrl = inp.ctrl[inp.genes].to_numpy(dtype=np.float64)
    if not inp.exclude_target:
        observed = observed_top_genes(inp)
        values = [
            overlap(np.abs(inp.pred.loc[c].to_numpy() - ctrl), inp.genes, observed[c])
            for c in inp.conditions
        ]
        return pd.DataFrame({"de_overlap": values}, index=index)
    # two more observed genes than compared: a double's two targets may be among them
    observed = observed_top_genes(inp, N_DE + 2)
    values = []
    for c in inp.conditions:
        targets = condition_genes(str(c))
        mask = ~pd.Index(inp.genes).isin(targets)
        change = np.abs(inp.pred.loc[c].to_numpy() - ctrl)[mask]
        kept = [g for g in observed[c] if g not in targets]
        values.append(overlap(change, pd.Index(inp.genes)[mask], kept))
    return pd.DataFrame({"de_overlap": values}, index=index)


SPECS = (
    MetricSpec(
        "de_overlap",
        NAME,
        "higher",
        True,
        None,
        None,
        "Share of the observed top-20 DE genes among the 20 largest predicted changes",
        perfect=1.0,
    ),
)
