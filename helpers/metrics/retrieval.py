"""Metric family ``retrieval``: can the true perturbation be found from its prediction?
(chapter 8)

Computed by :func:`helpers.retrieval.retrieval_ranks` (formula there): the predicted
change of condition ``p`` is compared with the observed change of every candidate
condition, and ``rank`` is the position of ``p`` itself (1 = first), ``normalised_rank =
(rank - 1) / (|Q| - 1)`` (0 = always first, 0.5 = chance, 1 = always last). The
benchmark (:func:`helpers.benchmark.beyond.extra_columns`) keeps the normalised rank
twice, with the change taken against the control (``rank_vs_control``) and against the
mean of the training perturbations (``rank_vs_mean``). Lower is better for all of them.

This module holds the family's facts (its columns and their specs); the computation
lives in :mod:`helpers.retrieval`, which imports :mod:`helpers.metrics`, never the
reverse.
"""

from __future__ import annotations

from .spec import MetricSpec

__all__ = ["NAME", "COLUMNS", "NEEDS_CELLS", "SPECS"]

NAME = "retrieval"
COLUMNS: list[str] = ["rank_vs_control", "rank_vs_mean"]
NEEDS_CELLS = False

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
