"""Does a prediction identify its perturbation? Retrieval ranks and DE agreement
(introduced in chapter 8).

**Retrieval rank.** For each predicted condition ``p`` among the candidates ``Q`` (by
default every condition that was predicted, i.e. the held-out set), with a reference
profile ``r`` and the evaluation genes ``G``:

    s(p, q) = cor( y_hat_p - r, y_q - r )   over G, for every candidate q in Q
    rank(p) = 1 + #{q != p : s(p, q) > s(p, p)} + 0.5 #{q != p : s(p, q) = s(p, p)}

(average rank for ties; rank 1 = the prediction is closest to its own observed change).
When the predicted change ``y_hat_p - r`` is constant (e.g. "no change" against control)
every similarity is undefined and all candidates tie: ``rank = (|Q| + 1) / 2``, the rank
of a guess. ``normalised_rank = (rank - 1) / (|Q| - 1)``: 0 = always first, 0.5 =
chance, 1 = always last.

Two references (``reference=``):

* ``"control"``: ``r = c``, the control pseudobulk - changes vs control (Pearson delta's
  view).
* ``"mean"``: ``r = `` the mean observed pseudobulk of the **training** perturbations
  (ctrl excluded) when a split is given, else of all perturbed conditions of the truth.
  Following Systema (Viñas Torné et al. 2025), subtracting the average perturbation
  removes the systematic shift shared by all perturbations, so only
  perturbation-specific changes can identify ``p``.

**DE agreement.** ``de_overlap`` = ``|T_p ∩ P_p| / n`` where ``T_p`` are the top-``n``
DE genes of the observed cells of ``p`` vs control cells (scanpy's
``rank_genes_groups``, Welch t-test by default - Wilcoxon on request, ~20x slower -
ranked by adjusted p-value then |score|, within ``G``) and ``P_p`` the ``n`` genes of
``G`` with the largest predicted ``|y_hat_p - c|`` (a pseudobulk prediction has no cells
to test). A constant predicted change has no top genes: NaN.

**Why the VCC's DE overlap differs** (:func:`de_sets_vcc`). ``de_overlap`` always
compares two lists of ``n`` genes, significant or not, so a prediction's largest changes
always meet some of the observed top genes. cell-eval2's ``de_overlap_vcc``
(:mod:`helpers.metrics.vcc`) compares **significant** sets: ``k`` = the observed cells'
genes with Wilcoxon ``p_adj < 0.05``, and the genes significant in the *predicted cells*
(control cells rescaled to the prediction); a condition with ``k = 0``, or a prediction
with no significant gene, scores 0. :func:`de_sets_vcc` reports both set sizes per
condition, so a 0 can be traced to its cause.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from .errors import InputError
from .loaders import CONTROL
from .metrics.de_agreement import overlap, top_de_genes
from .metrics.retrieval import correlations, normalised, own_ranks
from .predictions import PredictionError, Predictions
from .pseudobulk import Pseudobulk, top_control_genes
from .splits import Split

__all__ = [
    "retrieval_ranks",
    "similarity_matrix",
    "reference_profile",
    "de_genes",
    "de_overlap",
    "de_sets_vcc",
    "RETRIEVAL_COLUMNS",
    "DE_COLUMNS",
]

RETRIEVAL_COLUMNS = [
    "dataset",
    "method",
    "seed",
    "condition",
    "reference",
    "rank",
    "n_candidates",
    "normalised_rank",
]
DE_COLUMNS = ["dataset", "method", "seed", "condition", "n_de", "de_overlap"]


def _eval_genes(
    truth: Pseudobulk, predictions: Predictions, genes, n_top: int
) -> pd.Index:
    if genes is None:
        genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    genes = pd.Index(genes)
    missing = genes.difference(predictions.genes)
    if len(missing):
        raise PredictionError(
            f"{predictions.method}: {len(missing)} evaluation genes are not predicted "
            f"(e.g. {list(missing)[:5]}); predict all genes of the dataset."
        )
    return genes


def reference_profile(
    truth: Pseudobulk, reference: str, split: Split | None = None
) -> pd.Series:
    """The profile changes are taken against: ``ctrl`` or the mean perturbation (module
    docstring)."""
    if reference == "control":
        return truth.ctrl
    if reference == "mean":
        pool = split.train if split is not None else list(truth.conditions)
        pool = [c for c in pool if c != CONTROL and c in truth.conditions]
        if not pool:
            raise InputError(
                "No perturbed training conditions to average for reference='mean'."
            )
        return truth.means.loc[pool].mean(axis=0)
    raise InputError(f"reference must be 'control' or 'mean', got {reference!r}.")


def similarity_matrix(
    predictions: Predictions,
    truth: Pseudobulk,
    *,
    reference: str = "control",
    split: Split | None = None,
    candidates=None,
    n_top: int = 1000,
    genes=None,
) -> pd.DataFrame:
    """``s(p, q)``: predicted conditions (rows) x candidate observed conditions
    (columns).

    ``predictions``: one method's predictions; ``truth``: the observed pseudobulk;
    ``reference``: ``"control"`` or ``"mean"``, subtracted before correlating;
    ``split``: whose training conditions make the ``"mean"`` reference; ``candidates``:
    the observed conditions (columns; default: the predicted ones); ``n_top``,
    ``genes``: the evaluation genes.
    """
    genes = _eval_genes(truth, predictions, genes, n_top)
    ref = reference_profile(truth, reference, split)[genes].to_numpy()
    conditions = [c for c in predictions.conditions if c != CONTROL]
    candidates = (
        conditions if candidates is None else [c for c in candidates if c != CONTROL]
    )
    absent = [c for c in candidates if c not in truth.conditions]
    if absent:
        raise PredictionError(f"Candidate conditions not observed: {absent[:5]}.")
    pred = predictions.values.loc[conditions, genes].to_numpy() - ref
    obs = truth.means.loc[candidates, genes].to_numpy() - ref
    return pd.DataFrame(
        correlations(pred, obs),
        index=pd.Index(conditions, name="condition"),
        columns=pd.Index(candidates, name="candidate"),
    )


def retrieval_ranks(
    predictions: Predictions,
    truth: Pseudobulk,
    *,
    reference: str = "control",
    split: Split | None = None,
    candidates=None,
    n_top: int = 1000,
    genes=None,
) -> pd.DataFrame:
    """Rank of the true perturbation among the candidates (formula: module docstring).

    One row per predicted condition; columns :data:`RETRIEVAL_COLUMNS`.

    ``predictions``: one method's predictions; ``truth``: the observed pseudobulk;
    ``reference``: ``"control"`` or ``"mean"``, subtracted before correlating;
    ``split``: whose training conditions make the ``"mean"`` reference; ``n_top``,
    ``genes``: the evaluation genes.
    """
    sim = similarity_matrix(
        predictions,
        truth,
        reference=reference,
        split=split,
        candidates=candidates,
        n_top=n_top,
        genes=genes,
    )
    n = sim.shape[1]
    absent = [c for c in sim.index if c not in sim.columns]
    if absent:
        raise PredictionError(
            f"{absent[0]!r} is predicted but not among the candidates; include it."
        )
    rank = own_ranks(sim.to_numpy(), sim.columns.get_indexer(sim.index))
    rows = [
        {
            "dataset": truth.dataset or predictions.dataset,
            "method": predictions.method,
            "seed": predictions.seed if predictions.seed is not None else pd.NA,
            "condition": condition,
            "reference": reference,
            "rank": float(rank[i]),
            "n_candidates": n,
            "normalised_rank": float(normalised(rank[i], n)),
        }
        for i, condition in enumerate(sim.index)
    ]
    return pd.DataFrame(rows, columns=RETRIEVAL_COLUMNS)


def de_genes(
    adata: ad.AnnData, conditions, *, n_de: int = 20, genes=None, method: str = "t-test"
) -> dict[str, list[str]]:
    """Top-``n_de`` DE genes of each condition's cells vs the control cells: the
    ``de_agreement`` family's :func:`helpers.metrics.de_agreement.top_de_genes`.

    ``adata``: the cells (with the control); ``conditions``: the conditions whose DE
    genes are wanted; ``n_de``: how many; ``genes``: the genes tested (default: all);
    ``method``: scanpy's test (``"t-test"`` or ``"wilcoxon"``).
    """
    return top_de_genes(adata, conditions, n_de=n_de, genes=genes, method=method)


def de_overlap(
    predictions: Predictions,
    truth: Pseudobulk,
    adata: ad.AnnData,
    *,
    n_de: int = 20,
    n_top: int = 1000,
    genes=None,
    observed_de: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Share of the observed top-``n_de`` DE genes that are among the predicted
    top-``n_de`` changes.

    ``observed_de`` (from :func:`de_genes`) can be passed to reuse the scanpy run across
    methods. Columns :data:`DE_COLUMNS`.

    ``predictions``: one method's predictions; ``truth``: the observed pseudobulk;
    ``adata``: the cells; ``n_top``: the evaluation genes (the top ``n_top``
    control-expressed genes unless ``genes`` is given).
    """
    genes = _eval_genes(truth, predictions, genes, n_top)
    if n_de > len(genes):
        raise InputError(f"n_de={n_de} exceeds the {len(genes)} evaluation genes.")
    conditions = [c for c in predictions.conditions if c != CONTROL]
    if observed_de is None:
        observed_de = de_genes(adata, conditions, n_de=n_de, genes=genes)
    ctrl = truth.ctrl[genes].to_numpy()
    rows = []
    for condition in conditions:
        change = np.abs(predictions.values.loc[condition, genes].to_numpy() - ctrl)
        value = overlap(change, genes, observed_de[condition], n_de)
        rows.append(
            {
                "dataset": truth.dataset or predictions.dataset,
                "method": predictions.method,
                "seed": predictions.seed if predictions.seed is not None else pd.NA,
                "condition": condition,
                "n_de": n_de,
                "de_overlap": value,
            }
        )
    return pd.DataFrame(rows, columns=DE_COLUMNS)


def de_sets_vcc(
    predictions: Predictions,
    truth: Pseudobulk,
    adata: ad.AnnData,
    *,
    split: Split,
    n_top: int = 1000,
    genes=None,
) -> pd.DataFrame:
    """Per held-out condition: the sizes of the two significant DE sets behind
    ``de_overlap_vcc`` and the score itself (module docstring).

    ``predictions``: one method's predictions; ``truth``: the observed pseudobulk;
    ``adata``: the cells, in memory; ``split``: the split whose test conditions are
    scored; ``n_top``, ``genes``: the evaluation genes (top ``n_top`` control-expressed
    genes unless ``genes`` is given).

    Columns: method, condition, n_sig_observed (``k``: observed genes with ``p_adj <
    0.05``), n_sig_predicted (genes significant in the predicted cells), de_overlap_vcc
    (as :func:`helpers.metrics.vcc.score` computes it, from the same DE tables).
    """
    from .metrics import vcc
    from .metrics.inputs import metric_input

    if adata.isbacked:
        raise InputError("de_sets_vcc needs cells in memory; pass adata.to_memory().")
    genes = _eval_genes(truth, predictions, genes, n_top)
    inp = metric_input(predictions, truth, split, genes, cells=adata)
    if not inp.conditions:
        raise PredictionError(
            f"{predictions.method}: no held-out condition of the split is predicted."
        )
    labels = adata.obs["condition"].astype(str).to_numpy()
    use = np.isin(labels, inp.conditions + [CONTROL])
    cols = adata.var_names.get_indexer(genes)
    X = adata.X[np.flatnonzero(use)][:, cols]
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
    observed = vcc.de_table(X, labels[use], genes, inp.conditions)
    predicted = vcc.de_table(*vcc.prediction_cells(inp), genes, inp.conditions)

    def significant(table):
        hit = (table["p_adj"] < vcc.P_ADJ_THRESHOLD) & table["log2_fold_change"].notna()
        return hit.groupby(table["target"]).sum()

    overlap = vcc.de_overlaps(predicted, observed, inp.conditions)
    return pd.DataFrame(
        {
            "method": predictions.method,
            "condition": inp.conditions,
            "n_sig_observed": significant(observed)
            .reindex(inp.conditions)
            .to_numpy(dtype=int),
            "n_sig_predicted": significant(predicted)
            .reindex(inp.conditions)
            .to_numpy(dtype=int),
            "de_overlap_vcc": overlap.reindex(inp.conditions).to_numpy(),
        }
    )
