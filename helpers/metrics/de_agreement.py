"""Metric family ``de_agreement``: do the predicted top changes hit the observed DE
genes? (chapter 8)

Computed by :func:`helpers.retrieval.de_overlap` (formula there): the share of the
observed top-20 DE genes of a condition (scanpy's t-test of its cells against the
control cells, :func:`helpers.retrieval.de_genes`) that are among the 20 largest
predicted changes. Higher is better, 1 = all found. Chapter 9's ``de_overlap_vcc``
(:mod:`helpers.metrics.vcc`) is the Virtual Cell Challenge's version of the same idea.

This module holds the family's facts (its column and its spec); the computation lives in
:mod:`helpers.retrieval`.
"""

from __future__ import annotations

from .spec import MetricSpec

__all__ = ["NAME", "COLUMNS", "NEEDS_CELLS", "SPECS"]

NAME = "de_agreement"
COLUMNS: list[str] = ["de_overlap"]
NEEDS_CELLS = True

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
