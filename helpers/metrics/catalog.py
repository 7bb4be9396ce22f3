"""The metric catalog: every metric column of the book, once (chapters 8 and 9).

Each family module of :mod:`helpers.metrics` declares the :class:`~.spec.MetricSpec` of
its columns in ``SPECS`` (column, family, which way is better, whether it needs cells,
the peer function and the peer's name, one line of description); this module collects
them. Every table that needs such a fact reads it here:
:data:`helpers.metrics.families.DIRECTIONS` (a view of the scoring families),
:func:`helpers.compare.paired_test` (the sign of a paired difference),
:mod:`helpers.benchmark.verdict` (ranks and votes) and :func:`describe`.

Adding a metric to a family = one ``MetricSpec`` in that family's ``SPECS`` (and its
column computed by the family's ``score``); nothing else lists it.

The families, in the order their columns appear in the book's tables:

* scoring families (:data:`helpers.metrics.families.FAMILIES`, ``--metrics``): ``paper``
  (:mod:`.paper`), ``systema``, ``calibrated``, ``vcc``;
* chapter 8's families, registered in :data:`helpers.metrics.families.FAMILIES` as well
  (they run only when named, not in ``"all"``):
  ``retrieval``, ``de_agreement``, ``ceiling``, ``distribution``.
"""

from __future__ import annotations

import pandas as pd

from ..errors import InputError
from . import (
    calibrated,
    ceiling,
    de_agreement,
    distribution,
    paper,
    retrieval,
    systema,
    vcc,
    vcc2026,
)
from .spec import MetricSpec

__all__ = [
    "MetricSpec",
    "FAMILY_MODULES",
    "PAPER_FAMILY",
    "SPECS",
    "spec",
    "direction",
    "columns",
    "directions",
    "lower_is_better",
    "describe",
]

#: The paper's family: :func:`helpers.metrics.paper.evaluate`'s own columns.
PAPER_FAMILY = paper.NAME
#: Every family module, in table order: the one list of the families
#: (:data:`helpers.metrics.families.FAMILIES` is these but the paper's).
FAMILY_MODULES = (
    paper,
    systema,
    calibrated,
    vcc,
    vcc2026,
    retrieval,
    de_agreement,
    ceiling,
    distribution,
)


def _collect() -> dict[str, MetricSpec]:
    out: dict[str, MetricSpec] = {}
    for module in FAMILY_MODULES:
        for item in module.SPECS:
            if item.family != module.NAME:
                raise InputError(
                    f"{module.__name__} declares {item.column!r} for family "
                    f"{item.family!r}; a module declares its own family's columns."
                )
            if item.column in out:
                raise InputError(
                    f"Metric column {item.column!r} is declared by both the "
                    f"{out[item.column].family!r} and the {item.family!r} family; "
                    "give one of them another name."
                )
            out[item.column] = item
        undeclared = [c for c in module.COLUMNS if c not in out]
        if undeclared:
            raise InputError(
                f"{module.__name__}.COLUMNS has {undeclared} without a MetricSpec; "
                "add one to its SPECS."
            )
    return out


#: column -> spec, for every metric column of the book (families in table order).
SPECS: dict[str, MetricSpec] = _collect()


def spec(column: str) -> MetricSpec:
    """The spec of metric ``column``; an unknown column is refused in one line."""
    if column not in SPECS:
        raise InputError(
            f"No known direction for the metric column {column!r}: it is not in "
            "helpers.metrics.catalog; use one of "
            f"{sorted(c for c, s in SPECS.items() if s.role == 'score')}, or add a "
            "MetricSpec to its family module's SPECS."
        )
    return SPECS[column]


def direction(column: str) -> str:
    """``"lower"`` or ``"higher"``: which way is better for ``column``
    (:func:`spec`)."""
    return spec(column).direction


def columns(families=None, *, role: str | None = "score") -> list[str]:
    """The catalog's columns of ``families`` (names; default all) with ``role`` (None:
    any role), in table order."""
    names = None if families is None else set(families)
    return [
        c
        for c, s in SPECS.items()
        if (names is None or s.family in names) and (role is None or s.role == role)
    ]


def directions(families=None, *, role: str | None = "score") -> dict[str, str]:
    """``{column: direction}`` of :func:`columns` ``(families, role=role)``."""
    return {c: SPECS[c].direction for c in columns(families, role=role)}


def lower_is_better(families=None) -> frozenset[str]:
    """The per-condition score columns of ``families`` (default all) where lower is
    better."""
    return frozenset(c for c, d in directions(families).items() if d == "lower")


def describe(families=None, *, role: str | None = None) -> pd.DataFrame:
    """One row per column of :func:`columns` ``(families, role=role)``: family, metric,
    better, needs_cells, role, perfect, peer_function, peer_name, description.

    ``families``: family names (default all); ``role``: ``"score"``, ``"reference"``,
    ``"summary"`` or None for all.
    """
    rows = [
        {
            "family": s.family,
            "metric": s.column,
            "better": s.direction,
            "needs_cells": s.needs_cells,
            "role": s.role,
            "perfect": s.perfect,
            "peer_function": s.peer_function,
            "peer_name": s.peer_name,
            "description": s.description,
        }
        for s in (SPECS[c] for c in columns(families, role=role))
    ]
    return pd.DataFrame(rows)
