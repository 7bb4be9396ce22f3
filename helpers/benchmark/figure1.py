"""The paper's Figure 1, recomputed beside the published values (chapter 5).

Figure 1 of the paper compares every deep model with predicting no change on the
held-out doubles of the full Norman screen. :func:`table` puts, for each of its rows,
the **mean ratio of a model's L2 to no change's L2 on the same double** (the ratio per
double, averaged, with a percentile-bootstrap interval: :func:`helpers.metrics.forest`)
from the paper's Source Data beside the same ratio of the model the book runs, on the
data the book ran it on. A ratio is compared, not an L2: absolute L2 depends on the
genes and doubles scored, and the book's data (the real Norman subset, the synthetic
screen) are not the paper's.

:data:`ROWS` says which of the book's method names stands for which published model;
the book's own models never carry a published name (``tiny_uce`` stands for UCE* but is
the book's tiny model, not the released one).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..metrics import forest

__all__ = ["ROWS", "table"]

#: (row label, the published method's name, the book's methods that stand for it)
ROWS = (
    ("No change", "no_change", ("no_change",)),
    ("Additive", "additive", ("additive",)),
    ("GEARS", "gears", ("gears",)),
    ("CPA", "cpa", ("cpa_book",)),
    ("scGPT", "scgpt", ("tiny_transformer", "scgpt_human_book")),
    ("scFoundation", "scfoundation", ()),
    ("scBERT*", "scbert", ("tiny_scbert", "scbert_released_book")),
    ("Geneformer*", "geneformer", ("tiny_geneformer", "geneformer_released_book")),
    ("UCE*", "uce", ("tiny_uce", "uce_released_book")),
)

_COLUMNS = ["row", "source", "method", "data", "n", "mean_ratio", "lower", "upper"]


def _data(dataset: str, source: str) -> str:
    """A short label of the data a row was computed on (the registry name)."""
    if source == "published":
        return f"{dataset} (published)"
    if dataset.startswith("simulated"):
        return f"SYNTHETIC: {dataset}"
    return f"{dataset} (this build)"


def _forest_rows(
    metrics: pd.DataFrame, source: str, names: dict, *, n_boot: int, seed: int
) -> pd.DataFrame:
    if "no_change" not in set(metrics["method"]):
        raise InputError(
            f"{source}: the table has no 'no_change' rows; Figure 1's ratios need them "
            "(run the no-change baseline on the same doubles)."
        )
    shown = [m for m in names if m in set(metrics["method"])]
    out = forest(metrics, "no_change", shown, n_boot=n_boot, seed=seed)
    out = out[out["method"].isin(shown)].copy()
    out.attrs = {}  # frame-valued attrs (the common sets) cannot be concatenated
    out["row"] = out["method"].map(names)
    out["source"] = source
    out["data"] = [_data(d, source) for d in out["dataset"]]
    return out


def table(
    published: pd.DataFrame,
    runs: list[pd.DataFrame],
    *,
    n_boot: int = 2000,
    seed: int = 1,
) -> pd.DataFrame:
    """Figure 1's rows: each published model's mean L2 ratio to no change beside the
    ratio of every model the book ran.

    ``published``: the paper's per-double metrics
    (:func:`helpers.published.double_metrics`, all held-out doubles as in the figure);
    ``runs``: the book's per-perturbation metrics tables (dataset, method, seed,
    condition, l2), each holding ``no_change`` on the same doubles; ``n_boot``,
    ``seed``: the bootstrap. Columns: row, source (``published`` / ``this book``),
    method, data, n, mean_ratio, lower, upper; one row per (row, source, data).
    ``attrs["notes"]``: the rows the book does not run.
    """
    published_names = {pub: row for row, pub, _ in ROWS}
    book_names = {name: row for row, _, names in ROWS for name in names}
    parts = [
        _forest_rows(published, "published", published_names, n_boot=n_boot, seed=seed)
    ]
    for run in runs:
        parts.append(
            _forest_rows(run, "this book", book_names, n_boot=n_boot, seed=seed)
        )
    out = pd.concat(parts, ignore_index=True)
    order = {row: i for i, (row, _, _) in enumerate(ROWS)}
    out = (
        out.assign(_order=out["row"].map(order))
        .sort_values(["_order", "source"], kind="stable")
        .drop(columns="_order")
    )
    ran = set(out.loc[out["source"] == "this book", "row"])
    notes = [
        f"{row}: not run by the book in this build"
        for row, _, _ in ROWS
        if row not in ran
    ]
    out = out[_COLUMNS].reset_index(drop=True)
    out.attrs["notes"] = notes
    return out


def chapter_runs(*paths: str | Path) -> tuple[list[pd.DataFrame], list[str]]:
    """The per-perturbation metrics tables saved by other chapters, where they exist:
    (tables, notes on the missing ones). ``paths``: CSV files (e.g. chapter 4's
    ``per_perturbation_metrics.csv``)."""
    tables, notes = [], []
    for path in map(Path, paths):
        if path.exists():
            tables.append(pd.read_csv(path))
        else:
            notes.append(
                f"{path.parent.name}/{path.name} not found (run that chapter on this "
                "profile first): its models are not in the table"
            )
    return tables, notes
