"""Metric family ``retrieval``: can the true perturbation be found from its prediction?
(chapter 8)

For each predicted condition ``p`` among the candidates ``Q`` (the conditions of the
:class:`~.inputs.MetricInput`: the held-out conditions the method predicted), with a
reference profile ``r`` and the evaluation genes ``G``:

    s(p, q) = cor( y_hat_p - r, y_q - r )   over G, for every candidate q in Q
    rank(p) = 1 + #{q != p : s(p, q) > s(p, p)} + 0.5 #{q != p : s(p, q) = s(p, p)}

(average rank for ties; rank 1 = the prediction is closest to its own observed change).
A constant predicted change (e.g. "no change" against control) makes every similarity
undefined and all candidates tie: ``rank = (|Q| + 1) / 2``, the rank of a guess.
``normalised_rank = (rank - 1) / (|Q| - 1)``: 0 = always first, 0.5 = chance, 1 =
always last; NaN with fewer than two candidates.

:func:`score` gives the normalised rank twice: with ``r`` the control pseudobulk
(``rank_vs_control``) and with ``r`` the equal-weight mean of the training
perturbations' pseudobulks (``rank_vs_mean``, Systema's reference: it removes the shift
all perturbations share). Lower is better.

Both ranks honour ``inp.exclude_target``: every gene that is a target of a candidate
(both genes of a double) is dropped from ``G`` once, for all pairs (cell-eval2's
``exclusion_scope="panel"``, as Systema's ``centroid_accuracy`` here), so that the
similarities of one row are taken over one gene set and a prediction cannot find its
own perturbation through the spike of its target's transcript.

This module holds the computation (:func:`correlations`, :func:`own_ranks`);
:mod:`helpers.retrieval` wraps it for the book's objects (whole tables with ``rank`` and
``n_candidates``, other candidate sets) and imports it from here, never the reverse.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..conditions import condition_genes
from .inputs import MetricInput
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
    "correlations",
    "own_ranks",
    "normalised",
    "score",
]

NAME = "retrieval"
COLUMNS: list[str] = ["rank_vs_control", "rank_vs_mean"]
NEEDS_CELLS = False


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every row of ``a`` with every row of ``b``: ``out[i, j] =
    cor(a_i, b_j)``; NaN for a row that is constant up to rounding.

    ``a``: (rows x genes) predicted changes; ``b``: (candidates x genes) observed
    changes.
    """

    def standardise(m):
        centred = m - m.mean(axis=1, keepdims=True)
        norm = np.sqrt((centred**2).sum(axis=1, keepdims=True))
        scale = np.maximum(1.0, np.abs(m).max(axis=1, keepdims=True))
        constant = norm <= 1e-12 * scale * np.sqrt(m.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            out = centred / norm
        out[constant[:, 0]] = np.nan
        return out

    return standardise(a) @ standardise(b).T


def own_ranks(similarity: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``rank(p)`` of the module docstring for every row ``p`` of ``similarity``.

    ``similarity``: (predicted x candidates) ``s(p, q)``; ``own``: for each row, the
    column of its own condition. A NaN own similarity (constant prediction) gives
    ``(|Q| + 1) / 2``; NaN similarities of other candidates are not counted.
    """
    n = similarity.shape[1]
    own = np.asarray(own, dtype=np.int64)
    mine = similarity[np.arange(similarity.shape[0]), own][:, None]
    # NaN compares False, so NaN similarities are not counted; the own column is
    # equal to itself once
    greater = (similarity > mine).sum(axis=1)
    ties = (similarity == mine).sum(axis=1) - 1
    rank = 1.0 + greater + 0.5 * ties
    # a constant predicted change: all candidates tie
    return np.where(np.isnan(mine[:, 0]), (n + 1) / 2.0, rank)


def normalised(rank: np.ndarray, n_candidates: int) -> np.ndarray:
    """``(rank - 1) / (n_candidates - 1)``; NaN with fewer than two candidates."""
    rank = np.asarray(rank, dtype=np.float64)
    if n_candidates < 2:
        return np.full(rank.shape, np.nan)
    return (rank - 1.0) / (n_candidates - 1.0)


def score(inp: MetricInput) -> pd.DataFrame:
    """``rank_vs_control`` and ``rank_vs_mean`` per condition of ``inp`` (module
    docstring); the candidates are ``inp``'s conditions.

    ``inp``: one method's predictions on one split (:func:`.inputs.metric_input`).
    """
    n = len(inp.conditions)
    own = np.arange(n)
    out = {}
    keep = np.ones(len(inp.genes), dtype=bool)
    if inp.exclude_target:  # panel scope: the targets of every candidate
        targets = {g for c in inp.conditions for g in condition_genes(str(c))}
        keep = ~pd.Index(inp.genes).isin(sorted(targets))
    references = {"rank_vs_control": inp.ctrl, "rank_vs_mean": inp.train.mean(axis=0)}
    for column, reference in references.items():
        ref = reference[inp.genes].to_numpy(dtype=np.float64)[keep]
        sim = correlations(
            inp.pred.to_numpy()[:, keep] - ref, inp.obs.to_numpy()[:, keep] - ref
        )
        out[column] = normalised(own_ranks(sim, own), n)
    return pd.DataFrame(out, index=pd.Index(inp.conditions, name="condition"))


SPECS = (
    MetricSpec(
        "rank_vs_control",
        NAME,
        "lower",
        False,
        None,
        None,
        "Normalised rank of the own perturbation, changes taken against the control",
        perfect=0.0,
    ),
    MetricSpec(
        "rank_vs_mean",
        NAME,
        "lower",
        False,
        None,
        None,
        "Normalised rank of the own perturbation, changes against the training mean",
        perfect=0.0,
    ),
    MetricSpec(
        "rank",
        NAME,
        "lower",
        False,
        None,
        None,
        "Rank of the own perturbation among the candidates (1 = first)",
        perfect=1.0,
    ),
    MetricSpec(
        "normalised_rank",
        NAME,
        "lower",
        False,
        None,
        None,
        "(rank - 1) / (candidates - 1): 0 = always first, 0.5 = chance",
        perfect=0.0,
    ),
)
