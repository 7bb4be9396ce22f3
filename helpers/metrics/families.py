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

Chapter 8's families are registered too: ``retrieval`` (ranks of the own
perturbation), ``de_agreement`` (top-20 DE overlap), ``ceiling`` (replicate and oracle
bounds from split halves of the truth's cells, and ``norm_*``: 0 = the mean baseline,
1 = the oracle) and ``distribution`` (energy distance of predicted cells).

**What ``"all"`` means**: the families of the peer benchmarks that chapter 9 weighs the
paper's verdict with (Systema, CellSimBench / scPertEval, the Virtual Cell Challenge
2025 and 2026), i.e. every family but :data:`NOT_IN_ALL`. Chapter 8's four families are
diagnostics of the data and of a prediction, not peers' verdicts, and run when named
(``--metrics retrieval``): ``ceiling`` (four of its six columns are bounds of the data,
the same for every method; it cuts every condition's cells into halves five times),
``distribution`` (it needs predicted *cells*: a pseudobulk prediction gets NaN, with the
reason in ``attrs["reason"]``), and ``retrieval`` and ``de_agreement``, whose values
take only a few steps where few conditions are held out (a rank among 5), so that as
votes they would add ties rather than evidence.
"""

from __future__ import annotations

import pandas as pd

from ..errors import InputError
from . import catalog, ceiling, de_agreement, distribution, retrieval
from .inputs import MetricInput

__all__ = [
    "FAMILIES",
    "FAMILY_CHOICES",
    "NOT_IN_ALL",
    "DIRECTIONS",
    "COLUMN_FAMILY",
    "needs_cells",
    "family_names",
    "family_columns",
    "score_families",
    "summarise_families",
    "describe",
]

#: name -> module of every scoring family, in table order: the catalog's family modules
#: (:data:`helpers.metrics.catalog.FAMILY_MODULES`, the one list) but the paper's, which
#: is ``evaluate`` itself.
FAMILIES = {
    module.NAME: module
    for module in catalog.FAMILY_MODULES
    if module.NAME != catalog.PAPER_FAMILY
}
#: Registered, run when named, but not part of ``"all"`` (module docstring).
NOT_IN_ALL = (retrieval.NAME, de_agreement.NAME, ceiling.NAME, distribution.NAME)
FAMILY_CHOICES = ("paper", *FAMILIES, "all")

#: Which way is better for every per-condition column of the scoring families (paper and
#: :data:`FAMILIES`; the chapters rank methods with it): a view of
#: :mod:`helpers.metrics.catalog`, in table order.
DIRECTIONS = catalog.directions(("paper", *FAMILIES))
#: The family each of those columns belongs to (the paper's columns come from
#: ``evaluate``): a view of the catalog.
COLUMN_FAMILY = {column: catalog.SPECS[column].family for column in DIRECTIONS}


def family_names(choice: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"paper"`` -> []; ``"all"`` -> every family but :data:`NOT_IN_ALL`; a name or
    list of names -> those (checked)."""
    names = [choice] if isinstance(choice, str) else list(choice)
    out: list[str] = []
    for name in names:
        if name == "all":
            out += [n for n in FAMILIES if n not in out and n not in NOT_IN_ALL]
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
