"""The paper's published results, loaded through the data registry (introduced in chapter 2).

These are the numbers of Ahlmann-Eltze, Huber & Anders (Nat. Methods 2025) as published in their
Source Data spreadsheets; tables returned here carry ``source = "published"`` so that they are never
confused with results computed in this book.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from . import data
from .splits import Split, split_from_assignment

__all__ = ["METHOD_LABELS", "method_label", "double_metrics", "paper_double_split", "PAPER_DOUBLE_DATASET"]

PAPER_DOUBLE_DATASET = "norman2019"

# The paper's method codes -> the book's method names
_METHOD_CODES = {"additive_model": "additive", "no_change": "no_change"}

METHOD_LABELS = {
    "no_change": "No change",
    "additive": "Additive",
    "mean": "Mean",
    "gears": "GEARS",
    "scgpt": "scGPT",
    "scfoundation": "scFoundation",
    "uce": "UCE*",
    "scbert": "scBERT*",
    "geneformer": "Geneformer*",
    "cpa": "CPA",
    "linear": "Linear model",
}


def method_label(method: str) -> str:
    """Display name of a method (the paper's star marks models used with a linear decoder)."""
    return METHOD_LABELS.get(method, method)


@lru_cache(maxsize=4)
def _sheet(name: str, sheet: str, download: bool) -> pd.DataFrame:
    path = data.fetch(name, download=download, progressbar=False)
    return pd.read_excel(path, sheet_name=sheet)


def double_metrics(*, download: bool = True) -> pd.DataFrame:
    """Per-perturbation metrics of every method on the Norman doubles (Fig. 1a; 5 seeds x 62 doubles).

    Columns: dataset, method, seed, split, condition, l2, pearson_delta, r, source ("published").
    """
    raw = _sheet("paper_perturbation_prediction", "Panel A", download)
    table = pd.DataFrame({
        "dataset": PAPER_DOUBLE_DATASET,
        "method": raw["method"].map(lambda m: _METHOD_CODES.get(m, m)),
        "seed": raw["seed"].astype(int),
        "split": raw["train"],
        "condition": raw["perturbation"],
        "l2": raw["l2"],
        "pearson_delta": raw["r2_delta"],
        "r": raw["r2"],
    })
    table["source"] = "published"
    return table


def paper_double_split(seed: int, conditions, *, download: bool = True) -> Split:
    """The paper's exact partition of the Norman doubles for ``seed`` (1-5).

    The held-out doubles (test / val) are those of the published per-perturbation results; every
    other condition of ``conditions`` (all singles, ``ctrl`` and the remaining doubles) is train.
    """
    published = double_metrics(download=download)
    rows = published[published["seed"] == seed].drop_duplicates("condition")
    if rows.empty:
        raise ValueError(f"The paper used seeds 1-5; no published split for seed {seed}.")
    held = dict(zip(rows["condition"], rows["split"]))
    conditions = [str(c) for c in conditions]
    absent = sorted(set(held) - set(conditions))
    if absent:
        raise ValueError(
            f"{len(absent)} of the paper's held-out doubles for seed {seed} are not in the data (e.g. {absent[:5]}); "
            "paper_double_split needs the full Norman 2019 data (registry: norman2019)."
        )
    assignment = {c: held.get(c, "train") for c in conditions}
    return split_from_assignment(assignment, dataset=PAPER_DOUBLE_DATASET, seed=seed, kind="double",
                                 note="held-out doubles as published by Ahlmann-Eltze et al. 2025")
