"""Chapter 8's metrics in the benchmark: audit, noise ceiling, retrieval, DE agreement,
cells, paired test.

:func:`run` and :func:`score_methods` (in :mod:`.runner`, which imports this module,
never the reverse) call these when the task has cells in memory (the quick tasks: the
real Norman subset and the simulated screens); for the paper's large backed files the
cell-based columns are left out with a warning (they would read every cell into memory).

* :func:`audit` - :func:`helpers.audit.audit_split` of every split before scoring; real
  leaks raise.
* :func:`extra_columns` - per (method, seed, condition): ``rank_vs_control`` /
  ``rank_vs_mean`` (normalised retrieval rank, :mod:`helpers.retrieval`: 0 = own
  perturbation first, 0.5 = chance), ``de_overlap`` (top-20 DE genes), ``l2_ceiling`` /
  ``pearson_delta_ceiling`` (replicate agreement), ``l2_oracle`` /
  ``pearson_delta_oracle`` (best achievable) and ``norm_l2`` / ``norm_pearson_delta``
  (:mod:`helpers.ceilings`, 0 = mean baseline, 1 = the oracle).
* :func:`board_columns` - their means per method for the leaderboard (normalised scores
  of the means, as :func:`helpers.ceilings.normalised_summary`: method and baseline
  averaged over the same rows).
* :func:`load_cells` - predicted cells (AnnData or ``.h5ad``, cell-eval layout) ->
  Predictions through the book's pseudobulk, and :func:`energy_table` for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .. import audit as audit_mod
from ..cells import (
    CONTROL_LABEL,
    PERTURBATION_KEY,
    energy_distances,
    predictions_from_cells,
    read_predicted_cells,
)
from ..ceilings import noise_ceiling, normalised_scores
from ..metrics import ceiling as ceiling_family
from ..metrics import de_agreement
from ..metrics import retrieval as retrieval_family
from ..predictions import Predictions
from ..pseudobulk import top_control_genes
from ..retrieval import de_genes, de_overlap, retrieval_ranks
from .tasks import Task

__all__ = [
    "has_cells",
    "audit",
    "extra_columns",
    "board_columns",
    "load_cells",
    "energy_table",
    "is_cells_input",
    "EXTRA_COLUMNS",
    "N_DE",
]

#: The per-condition columns of chapter 8's families (specs: helpers.metrics.catalog)
EXTRA_COLUMNS = [
    *retrieval_family.COLUMNS,
    *de_agreement.COLUMNS,
    *ceiling_family.COLUMNS,
]
#: Those averaged per method on the board (the ceiling family's are rescaled there)
_MEANS = [*retrieval_family.COLUMNS, *de_agreement.COLUMNS]
N_DE = 20
_CACHE: dict[tuple[str, str], object] = {}


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


def _cached(task: Task, key: str, compute):
    if (task.name, key) not in _CACHE:
        _CACHE[(task.name, key)] = compute()
    return _CACHE[(task.name, key)]


def _genes(task: Task, n_top: int) -> pd.Index:
    return top_control_genes(task.truth.ctrl, min(n_top, len(task.truth.genes)))


def extra_columns(
    task: Task, split, runs: dict[str, Predictions], n_top: int
) -> pd.DataFrame:
    """Retrieval ranks, DE overlap and noise-ceiling columns for one split (module
    docstring)."""
    truth = task.truth
    genes = _genes(task, n_top)
    adata = task.adata()
    held_all = sorted({c for s in task.splits for c in s.held_out})
    # computed once per task and read back by add_ceiling
    _cached(
        task,
        f"ceiling{n_top}",
        lambda: noise_ceiling(adata, truth, held_all, seed=0, n_repeats=5, genes=genes),
    )
    observed_de = _cached(
        task, f"de{n_top}", lambda: de_genes(adata, held_all, n_de=N_DE, genes=genes)
    )
    tables = []
    for method, pred in runs.items():
        conditions = [c for c in pred.conditions if c in split.held_out]
        if len(conditions) < 2:
            continue
        pred = Predictions(
            pred.values.loc[conditions], method, pred.dataset, split.seed
        )
        keys = ["condition"]
        ctrl = retrieval_ranks(
            pred, truth, reference="control", split=split, genes=genes
        )
        mean = retrieval_ranks(pred, truth, reference="mean", split=split, genes=genes)
        de = de_overlap(
            pred, truth, adata, n_de=N_DE, genes=genes, observed_de=observed_de
        )
        table = ctrl[keys].copy()
        table["rank_vs_control"] = ctrl["normalised_rank"].to_numpy()
        table["rank_vs_mean"] = (
            mean.set_index("condition")
            .loc[table["condition"], "normalised_rank"]
            .to_numpy()
        )
        table["de_overlap"] = (
            de.set_index("condition").loc[table["condition"], "de_overlap"].to_numpy()
        )
        table.insert(0, "method", method)
        table.insert(1, "seed", split.seed)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def add_ceiling(task: Task, metrics: pd.DataFrame, n_top: int) -> pd.DataFrame:
    """Join the ceilings and the normalised scores (0 = mean baseline, 1 = oracle) onto
    metrics."""
    ceiling = _CACHE.get((task.name, f"ceiling{n_top}"))
    if ceiling is None or "mean" not in set(metrics["method"]):
        return metrics
    return normalised_scores(metrics, ceiling, baseline="mean", by=("dataset", "seed"))


def board_columns(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean retrieval ranks and DE overlap, and normalised scores of the
    mean L2 / Pearson delta (0 = mean baseline, 1 = oracle), the method's and the
    baseline's means taken over the same (seed, condition) rows; ``ceiling_*`` is the
    replicate agreement, ``oracle_*`` the best achievable score on those rows."""
    present = [c for c in EXTRA_COLUMNS if c in metrics.columns]
    if not present:
        return pd.DataFrame({"method": []})
    grouped = metrics.groupby("method", sort=False)
    out = grouped[[c for c in _MEANS if c in present]].mean()
    if "l2_oracle" in present:
        rows = metrics[metrics["l2_oracle"].notna()]
        keys = ["seed", "condition"]
        base = rows[rows["method"] == "mean"].set_index(keys)
        if len(base):
            frame = {}
            for method, part in rows.groupby("method", sort=False):
                index = part.set_index(keys).index
                part = part[index.isin(base.index)]
                paired = base.loc[part.set_index(keys).index]
                b_l2, b_pd = paired["l2"].mean(), paired["pearson_delta"].mean()
                o_l2, o_pd = (
                    part["l2_oracle"].mean(),
                    part["pearson_delta_oracle"].mean(),
                )
                m_l2, m_pd = part["l2"].mean(), part["pearson_delta"].mean()
                with np.errstate(divide="ignore", invalid="ignore"):
                    frame[method] = {
                        "ceiling_l2": part["l2_ceiling"].mean(),
                        "ceiling_pearson_delta": part["pearson_delta_ceiling"].mean(),
                        "oracle_l2": o_l2,
                        "oracle_pearson_delta": o_pd,
                        "norm_l2": (b_l2 - m_l2) / (b_l2 - o_l2),
                        "norm_pearson_delta": (m_pd - b_pd) / (o_pd - b_pd),
                    }
            out = out.join(pd.DataFrame.from_dict(frame, orient="index"))
            if "mean" in out.index:  # 0 by definition, not a sum-order rounding residue
                out.loc["mean", ["norm_l2", "norm_pearson_delta"]] = 0.0
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
    cells."""
    labels = set(cells.obs["condition"].astype(str))
    conditions = [c for c in split.held_out if c in labels]
    table = energy_distances(
        cells, task.adata(), conditions, genes=_genes(task, n_top), seed=split.seed
    )
    table.insert(0, "method", method)
    table.insert(1, "seed", split.seed)
    return table
