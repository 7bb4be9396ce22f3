"""Metric family ``distribution``: predicted cells against observed cells (chapter 8).

Computed by :func:`helpers.cells.energy_distances` (formula there): the energy distance
(V-statistic) between the predicted and the observed cells of a condition over the
evaluation genes, the value of ``dcor.energy_distance``; 0 iff the two samples coincide
as distributions (for large samples). Lower is better. It needs predicted *cells*, so
the benchmark computes it only for an ``.h5ad`` of predicted cells.

This module holds the family's facts (its column and its spec); the computation lives in
:mod:`helpers.cells`.
"""

from __future__ import annotations

from .spec import MetricSpec

__all__ = ["NAME", "COLUMNS", "NEEDS_CELLS", "SPECS"]

NAME = "distribution"
COLUMNS: list[str] = ["energy_distance"]
NEEDS_CELLS = True

SPECS = (
    MetricSpec(
        "energy_distance",
        NAME,
        "lower",
        True,
        "dcor.energy_distance",
        "energy_distance",
        "Energy distance between predicted and observed cells of a condition",
        perfect=0.0,
    ),
)
