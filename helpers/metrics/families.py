"""The metric families and the one function that scores a set of them (chapter 9).

A family is a module of :mod:`helpers.metrics` with

* ``NAME`` (``"systema"``, ...), ``COLUMNS`` (the per-condition columns it adds to
  ``evaluate``'s table), ``NEEDS_CELLS`` (True if it needs the truth's cells, e.g. for
  DE statistics);
* ``score(inp: MetricInput) -> pd.DataFrame``: one row per condition of ``inp`` (index =
  condition), columns ``COLUMNS``;
* optionally ``summarise(metrics: pd.DataFrame) -> pd.DataFrame``: calibrated summaries
  per method (one row per method) from a table holding several methods, the controls
  included.

The paper's family is :func:`helpers.metrics.paper.evaluate` itself (``l2``,
``pearson_delta``, ``r``); ``--metrics paper`` adds nothing to it.
"""

from __future__ import annotations

import pandas as pd

from ..errors import InputError
from . import calibrated, catalog, systema, vcc
from .inputs import MetricInput

__all__ = [
    "FAMILIES",
    "FAMILY_CHOICES",
    "DIRECTIONS",
    "COLUMN_FAMILY",
    "needs_cells",
    "family_names",
    "family_columns",
    "score_families",
    "summarise_families",
    "describe",
]

FAMILIES = {module.NAME: module for module in (systema, calibrated, vcc)}
FAMILY_CHOICES = ("paper", *FAMILIES, "all")

#: Which way is better for every per-condition column of the scoring families (paper and
#: :data:`FAMILIES`; the chapters rank methods with it): a view of
#: :mod:`helpers.metrics.catalog`, in table order.
DIRECTIONS = catalog.directions(("paper", *FAMILIES))
#: The family each of those columns belongs to (the paper's columns come from
#: ``evaluate``): a view of the catalog.
COLUMN_FAMILY = {column: catalog.SPECS[column].family for column in DIRECTIONS}


def family_names(choice: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"paper"`` -> []; ``"all"`` -> every family; a name or list of names -> those
    (checked)."""
    names = [choice] if isinstance(choice, str) else list(choice)
    out: list[str] = []
    for name in names:
        if name == "all":
            out += [n for n in FAMILIES if n not in out]
        elif name == "paper":
            continue
        elif name in FAMILIES:
            if name not in out:
                out.append(name)
        else:
            raise InputError(
                f"Unknown metric family {name!r}; choose from "
                f"{', '.join(FAMILY_CHOICES)}."
            )
    return out


def family_columns(families) -> list[str]:
    """The per-condition columns the families add, in order."""
    return [col for name in family_names(families) for col in FAMILIES[name].COLUMNS]


def describe(families="all") -> pd.DataFrame:
    """One row per per-condition column of the paper and of ``families``: family,
    metric, which way is better (from :mod:`helpers.metrics.catalog`, where each
    column's peer and description are too), and whether the family needs the cells.
    """
    names = ["paper", *family_names(families)]
    modules = {"paper": None, **FAMILIES}
    rows = [
        {
            "family": name,
            "metric": column,
            "better": catalog.SPECS[column].direction,
            "needs_cells": bool(modules[name] and modules[name].NEEDS_CELLS),
        }
        for name in names
        for column in catalog.columns([name])
    ]
    return pd.DataFrame(rows)


def needs_cells(families) -> bool:
    """True if any family of ``families`` needs the truth's cells."""
    return any(FAMILIES[name].NEEDS_CELLS for name in family_names(families))


def score_families(inp: MetricInput, families) -> pd.DataFrame:
    """Per-condition columns of every family in ``families`` for one method and split.

    Returns columns method, seed, condition and :func:`family_columns`. A family that
    needs cells raises :class:`helpers.errors.InputError` when ``inp.cells`` is None.
    """
    names = family_names(families)
    table = pd.DataFrame(index=pd.Index(inp.conditions, name="condition"))
    for name in names:
        module = FAMILIES[name]
        if module.NEEDS_CELLS and inp.cells is None:
            raise InputError(
                f"The {name!r} metrics need the truth's cells in memory (DE "
                "statistics); "
                "this task has none loaded. Use a task with cells, or --metrics paper."
            )
        part = module.score(inp)
        table = table.join(part.reindex(table.index)[module.COLUMNS])
    table = table.reset_index()
    table.insert(0, "method", inp.method)
    table.insert(1, "seed", inp.seed)
    return table


def summarise_families(metrics: pd.DataFrame, families) -> pd.DataFrame:
    """Calibrated summaries per method of every family that has them, joined on
    ``method``."""
    out = None
    for name in family_names(families):
        summarise = getattr(FAMILIES[name], "summarise", None)
        if summarise is None:
            continue
        part = summarise(metrics)
        out = part if out is None else out.merge(part, on="method", how="outer")
    return (
        pd.DataFrame({"method": pd.unique(metrics["method"])}) if out is None else out
    )
