"""Chapter 8 in the benchmark: what is not a metric (the split audit, predicted cells,
caching and joining), around chapter 8's metric families.

The metrics themselves are families of :mod:`helpers.metrics` (the one contract of
:mod:`helpers.metrics.families`, ``score(inp)`` per method and split):
:mod:`~helpers.metrics.retrieval` (``rank_vs_control``, ``rank_vs_mean``),
:mod:`~helpers.metrics.de_agreement` (``de_overlap``), :mod:`~helpers.metrics.ceiling`
(the bounds and ``norm_l2`` / ``norm_pearson_delta``: 0 = mean baseline, 1 = the oracle)
and :mod:`~helpers.metrics.distribution` (``energy_distance`` of predicted cells).
:func:`run` and :func:`score_methods` (in :mod:`.runner`, which imports this module,
never the reverse) call these when the task has cells in memory (the quick tasks: the
real Norman subset and the simulated screens); for the paper's large backed files the
cell-based columns are left out with a warning (they would read every cell into memory).

* :func:`audit` - :func:`helpers.audit.audit_split` of every split before scoring; real
  leaks raise.
* :func:`extra_columns` - per (method, seed, condition): the columns of
  :data:`EXTRA_FAMILIES` from :func:`helpers.metrics.score_families`, with one cache of
  the truth's DE genes and bounds per task.
* :func:`board_columns` - their means per method for the leaderboard, and the ceiling
  family's normalised scores of the means (:func:`helpers.metrics.ceiling.board`).
* :func:`load_cells` - predicted cells (AnnData or ``.h5ad``, cell-eval layout) ->
  Predictions through the book's pseudobulk, and :func:`energy_table` (the
  ``distribution`` family's table) for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import pandas as pd

from .. import audit as audit_mod
from ..cells import (
    CONTROL_LABEL,
    PERTURBATION_KEY,
    predictions_from_cells,
    read_predicted_cells,
)
from ..metrics import ceiling as ceiling_family
from ..metrics import de_agreement, distribution, families, metric_input
from ..metrics import retrieval as retrieval_family
from ..predictions import Predictions
from ..pseudobulk import top_control_genes
from .tasks import Task

__all__ = [
    "has_cells",
    "audit",
    "extra_columns",
    "board_columns",
    "load_cells",
    "energy_table",
    "is_cells_input",
    "EXTRA_FAMILIES",
    "EXTRA_COLUMNS",
    "N_DE",
]

#: Chapter 8's families that score a pseudobulk prediction, in table order
_MODULES = (retrieval_family, de_agreement, ceiling_family)
EXTRA_FAMILIES = tuple(module.NAME for module in _MODULES)
#: The per-condition columns of those families (specs: helpers.metrics.catalog)
EXTRA_COLUMNS = [column for module in _MODULES for column in module.COLUMNS]
#: Those averaged per method on the board (the ceiling family's are rescaled there)
_MEANS = [*retrieval_family.COLUMNS, *de_agreement.COLUMNS]
N_DE = de_agreement.N_DE
#: One MetricInput cache per (task, evaluation genes): the truth's DE genes and bounds
_CACHE: dict[tuple[str, int], dict] = {}


def has_cells(task: Task) -> bool:
    """True if the task's cells are in memory (then the cell-based columns are
    computed)."""
    try:
        adata = task.adata()
    except ValueError:
        return False
    return not adata.isbacked


def audit(task: Task, splits, warnings: list[str]) -> pd.DataFrame:
    """Audit every split (with the cells where they are in memory); raise on leaks,
    report the rest."""
    adata = task.adata() if has_cells(task) else None
    tables = []
    for split in splits:
        report = audit_mod.audit_split(split, task.truth.conditions, adata=adata)
        report.raise_for_leaks()
        table = report.table.copy()
        table.insert(0, "seed", split.seed)
        tables.append(table)
    out = pd.concat(tables, ignore_index=True)
    if adata is None:
        warnings.append(
            f"split audit of {task.name!r} without the cell-level check (cells "
            "are not in memory)"
        )
    return out


def _genes(task: Task, n_top: int) -> pd.Index:
    return top_control_genes(task.truth.ctrl, min(n_top, len(task.truth.genes)))


def _score(inp, names) -> pd.DataFrame:
    """:func:`helpers.metrics.score_families` of ``names`` (chapter 8's families, which
    ``"all"`` leaves out: :data:`helpers.metrics.families.NOT_IN_ALL`)."""
    return families.score_families(inp, list(names))


def extra_columns(
    task: Task, split, runs: dict[str, Predictions], *, n_top: int = 1000, skip=()
) -> pd.DataFrame:
    """The columns of :data:`EXTRA_FAMILIES` for every run of one split, against the
    task's truth and cells (the families' ``score``; DE genes and bounds of the truth
    computed once per task).

    ``task``: a task with cells in memory; ``split``: the split; ``runs``: method ->
    predictions; ``n_top``: the evaluation genes; ``skip``: families already scored
    (e.g. requested by ``--metrics``), left out here.
    """
    names = [name for name in EXTRA_FAMILIES if name not in set(skip)]
    genes = _genes(task, n_top)
    cache = _CACHE.setdefault((task.name, n_top), {})
    cells = task.adata()
    tables = []
    for method, pred in runs.items():
        pred = Predictions(pred.values, method, pred.dataset, split.seed)
        inp = metric_input(pred, task.truth, split, genes, cells=cells, cache=cache)
        if len(inp.conditions):
            tables.append(_score(inp, names))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def board_columns(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean retrieval ranks and DE overlap, and the ceiling family's
    :func:`helpers.metrics.ceiling.board` (normalised scores of the mean L2 / Pearson
    delta, 0 = mean baseline, 1 = oracle; ``ceiling_*`` the replicate agreement,
    ``oracle_*`` the best achievable score, on the same rows).

    ``metrics``: per-condition rows of several methods with :data:`EXTRA_COLUMNS`.
    """
    present = [c for c in EXTRA_COLUMNS if c in metrics.columns]
    if not present:
        return pd.DataFrame({"method": []})
    out = metrics.groupby("method", sort=False)[[c for c in _MEANS if c in present]]
    out = out.mean()
    bounds = ceiling_family.board(metrics)
    if len(bounds):
        out = out.join(bounds)
    out.index.name = "method"
    return out.reset_index()


def is_cells_input(predictions) -> bool:
    """True for predicted cells: an AnnData or a path ending in ``.h5ad``."""
    if isinstance(predictions, ad.AnnData):
        return True
    return isinstance(predictions, str | os.PathLike) and str(predictions).endswith(
        ".h5ad"
    )


def load_cells(
    source,
    *,
    name: str | None,
    dataset: str,
    genes,
    perturbation_key: str = PERTURBATION_KEY,
    control_label: str = CONTROL_LABEL,
) -> tuple[ad.AnnData, Predictions]:
    """Predicted cells -> (canonical cells, their pseudobulk Predictions; no seed: a
    one-split task)."""
    cells = read_predicted_cells(
        source,
        perturbation_key=perturbation_key,
        control_label=control_label,
        genes=genes,
    )
    method = name or (
        Path(source).stem if not isinstance(source, ad.AnnData) else "your_cells"
    )
    return cells, predictions_from_cells(cells, method=method, dataset=dataset)


def energy_table(
    task: Task, cells: ad.AnnData, split, method: str, n_top: int
) -> pd.DataFrame:
    """Energy distance of the predicted cells of each held-out condition to the observed
    cells: the ``distribution`` family's table (with ``n_pred`` and ``n_obs``).

    ``task``: a task with cells in memory; ``cells``: the predicted cells (canonical
    labels); ``split``: its held-out conditions and seed; ``method``: the name;
    ``n_top``: the evaluation genes.
    """
    labels = set(cells.obs["condition"].astype(str))
    conditions = [c for c in split.held_out if c in labels]
    table = distribution.energy_distances(
        cells, task.adata(), conditions, genes=_genes(task, n_top), seed=split.seed
    )
    table.insert(0, "method", method)
    table.insert(1, "seed", split.seed)
    return table
