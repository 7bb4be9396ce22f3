"""The paper's published results, loaded through the data registry (introduced in
chapter 2).

These are the numbers of Ahlmann-Eltze, Huber & Anders (Nat. Methods 2025) as published
in their Source Data spreadsheets; tables returned here carry ``source = "published"``
so that they are never confused with results computed in this book.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from . import data
from .errors import InputError
from .splits import Split, gears_simulation_split, split_from_assignment

__all__ = [
    "METHOD_LABELS",
    "method_label",
    "double_metrics",
    "single_metrics",
    "paper_double_split",
    "PAPER_DOUBLE_DATASET",
    "PAPER_SINGLE_DATASETS",
    "PAPER_SINGLE_SEEDS",
    "paper_conditions",
    "published_single_labels",
    "paper_single_split",
    "TRANSFER_SOURCE",
    "double_interaction_curves",
    "double_top_interactions",
    "observed_class_shares",
]

PAPER_DOUBLE_DATASET = "norman2019"

# The paper's method codes -> the book's method names
_METHOD_CODES = {
    "additive_model": "additive",
    "no_change": "no_change",
    "lpm_selftrained": "linear",
    "lpm_randomGeneEmb": "linear_random_G",
    "lpm_randomPertEmb": "linear_random_P",
    "lpm_scgptGeneEmb": "linear_G_scgpt",
    "lpm_scFoundationGeneEmb": "linear_G_scfoundation",
    "lpm_gearsPertEmb": "linear_P_gears_go",
    "lpm_k562PertEmb": "linear_P_k562",
    "lpm_rpe1PertEmb": "linear_P_rpe1",
}

# single-perturbation datasets of the paper (Fig. 2) -> number of single perturbations
# GEARS had after its GO filter (method_spec.md section 1.1); the paper's splits are
# GEARS' "simulation" split with seeds 1 and 2. A view of the registry
# (data/registry.toml: paper_n_singles).
PAPER_SINGLE_DATASETS = {
    name: e.paper_n_singles
    for name, e in data.load_registry().items()
    if e.paper_n_singles is not None
}
PAPER_SINGLE_SEEDS = (1, 2)

# the paper's Fig. 2c "P from the other Replogle screen" for each single-perturbation
# dataset (a view of the registry's transfer_source), grouped by source screen (the
# order in which single_metrics appends the transfer rows: adamson, RPE1, then K562)
TRANSFER_SOURCE = {
    name: source
    for source, name in sorted(
        (data.get_entry(name).transfer_source, name) for name in PAPER_SINGLE_DATASETS
    )
}

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
    "linear": "LM (training G, P)",
    "linear_random_G": "LM, random G",
    "linear_random_P": "LM, random P",
    "linear_G_scgpt": "LM, G from scGPT",
    "linear_G_scfoundation": "LM, G from scFoundation",
    "linear_P_gears_go": "LM, P from GEARS GO",
    "linear_P_k562": "LM, P from K562",
    "linear_P_rpe1": "LM, P from RPE1",
    "linear_P_other_screen": "LM, P from other screen",
}


def method_label(method: str) -> str:
    """Display name of ``method`` (the paper's star marks models used with a linear
    decoder)."""
    return METHOD_LABELS.get(method, method)


@lru_cache(maxsize=4)
def _sheet(name: str, sheet: str, download: bool) -> pd.DataFrame:
    path = data.fetch(name, download=download, progressbar=False)
    return pd.read_excel(path, sheet_name=sheet)


def double_metrics(*, download: bool = True) -> pd.DataFrame:
    """Per-perturbation metrics of every method on the Norman doubles (Fig. 1a; 5 seeds
    x 62 doubles).

    Columns: dataset, method, seed, split, condition, l2, pearson_delta, r, source
    ("published"). ``download``: fetch the spreadsheet if it is not cached (``False``:
    raise instead).
    """
    raw = _sheet("paper_perturbation_prediction", "Panel A", download)
    table = pd.DataFrame(
        {
            "dataset": PAPER_DOUBLE_DATASET,
            "method": raw["method"].map(lambda m: _METHOD_CODES.get(m, m)),
            "seed": raw["seed"].astype(int),
            "split": raw["train"],
            "condition": raw["perturbation"],
            "l2": raw["l2"],
            "pearson_delta": raw["r2_delta"],
            "r": raw["r2"],
        }
    )
    table["source"] = "published"
    return table


def paper_double_split(seed: int, conditions, *, download: bool = True) -> Split:
    """The paper's exact partition of the Norman doubles for ``seed`` (1-5).

    The held-out doubles (test / val) are those of the published per-perturbation
    results; every other condition of ``conditions`` (all singles, ``ctrl`` and the
    remaining doubles) is train. ``download``: fetch the spreadsheet if it is not cached
    (``False``: raise instead).
    """
    published = double_metrics(download=download)
    rows = published[published["seed"] == seed].drop_duplicates("condition")
    if rows.empty:
        raise InputError(
            f"The paper used seeds 1-5; no published split for seed {seed}: use one of "
            "them."
        )
    held = dict(zip(rows["condition"], rows["split"]))
    conditions = [str(c) for c in conditions]
    absent = sorted(set(held) - set(conditions))
    if absent:
        raise InputError(
            f"{len(absent)} of the paper's held-out doubles for seed {seed} are "
            f"not in the data (e.g. {absent[:5]}); "
            "paper_double_split needs the full Norman 2019 data (registry: norman2019)."
        )
    assignment = {c: held.get(c, "train") for c in conditions}
    return split_from_assignment(
        assignment,
        dataset=PAPER_DOUBLE_DATASET,
        seed=seed,
        kind="double",
        note="held-out doubles as published by Ahlmann-Eltze et al. 2025",
    )


def single_metrics(
    *, panel: str = "C", held_out_only: bool = True, download: bool = True
) -> pd.DataFrame:
    """Per-perturbation metrics on Adamson and Replogle K562 / RPE1 (Fig. 2; seeds 1-2).

    ``panel="C"`` includes the linear-model variants; ``"A"`` the methods of Fig. 2a.
    Conditions are in the book's canonical form (``"GENE"``, not ``"GENE+ctrl"``). The
    transfer variant of each dataset (P from the other Replogle screen, see
    :data:`TRANSFER_SOURCE`) is added as ``linear_P_other_screen``. Columns as
    :func:`double_metrics`. ``held_out_only``: keep the test / val rows only.
    ``download``: fetch the spreadsheet if it is not cached (``False``: raise instead).
    """
    from .loaders import normalize_condition

    raw = _sheet("paper_single_perturbation_prediction", f"Panel {panel}", download)
    table = pd.DataFrame(
        {
            "dataset": raw["dataset_name"],
            "method": raw["method"].map(lambda m: _METHOD_CODES.get(m, m)),
            "seed": raw["seed"].astype(int),
            "split": raw["train"],
            "condition": raw["perturbation"].map(normalize_condition),
            "l2": raw["l2"],
            "pearson_delta": raw["r2_delta"],
            "r": raw["r2"],
        }
    )
    if held_out_only:
        table = table[table["split"].isin(["test", "val"])]
    transfer = []
    for dataset, source in TRANSFER_SOURCE.items():
        code = (
            "linear_P_k562" if source == "replogle_k562_essential" else "linear_P_rpe1"
        )
        rows = table[(table["dataset"] == dataset) & (table["method"] == code)]
        transfer.append(rows.assign(method="linear_P_other_screen"))
    table = pd.concat([table, *transfer], ignore_index=True)
    table["source"] = "published"
    return table.reset_index(drop=True)


# the paper's dataset ids (suppl-dataset_overview.xlsx) -> the book's registry names
# (a view of the registry's paper_id)
_PAPER_DATASET_IDS = {
    e.paper_id: name for name, e in data.load_registry().items() if e.paper_id
}


def paper_conditions(dataset: str, *, download: bool = True) -> list[str]:
    """Every condition of ``dataset`` that the paper analysed (after GEARS' GO filter),
    ``ctrl`` included.

    From the UMAP panel of the paper's dataset overview
    (``suppl-dataset_overview.xlsx``, Panel B), which has one row per condition: Norman
    225 (ctrl, 100 singles, 124 doubles), Adamson 82, Replogle K562 1,088, RPE1 1,535.
    Canonical labels (``ctrl``, ``A``, ``A+B``), in the spreadsheet's order.
    """
    from .loaders import normalize_condition

    ids = {book: paper for paper, book in _PAPER_DATASET_IDS.items()}
    if dataset not in ids:
        raise InputError(f"The paper's datasets are {sorted(ids)}; got {dataset!r}.")
    raw = _sheet("paper_suppl_dataset_overview", "Panel B", download)
    return [
        normalize_condition(p) for p in raw.loc[raw["dataset"] == ids[dataset], "pert"]
    ]


def published_single_labels(
    dataset: str, seed: int, *, download: bool = True
) -> dict[str, str]:
    """Every split label the paper published for ``dataset`` and ``seed``: condition ->
    train / val / test.

    Panel A lists the evaluated held-out perturbations, Panel C also training
    perturbations for which the linear-model variants were scored; together they label a
    subset of the perturbations (e.g. 52 of Adamson's 81 over both seeds). Conditions in
    the book's canonical form; ``ctrl`` is left out. Raises ``ValueError`` for an
    unknown dataset or seed, or if the two panels disagree.
    """
    from .loaders import normalize_condition

    if dataset not in PAPER_SINGLE_DATASETS:
        raise InputError(
            "The paper's single-perturbation datasets are "
            f"{sorted(PAPER_SINGLE_DATASETS)}; got {dataset!r}."
        )
    if seed not in PAPER_SINGLE_SEEDS:
        raise InputError(
            f"The paper used seeds {PAPER_SINGLE_SEEDS} for single perturbations; "
            f"got {seed}."
        )
    labels: dict[str, str] = {}
    for panel in ("A", "C"):
        raw = _sheet("paper_single_perturbation_prediction", f"Panel {panel}", download)
        rows = raw[(raw["dataset_name"] == dataset) & (raw["seed"] == seed)]
        for pert, subset in zip(
            rows["perturbation"].map(normalize_condition), rows["train"]
        ):
            if pert == "ctrl":
                continue
            if labels.setdefault(pert, subset) != subset:
                raise InputError(
                    f"The published tables give {pert!r} two labels "
                    f"({labels[pert]}, {subset})."
                )
    return labels


def paper_single_split(
    dataset: str, seed: int, conditions, *, download: bool = True
) -> Split:
    """The paper's exact partition of the single-perturbation ``dataset`` (Adamson,
    Replogle K562 / RPE1) for ``seed`` (1 or 2); ``download``: fetch the spreadsheet
    if it is not cached (``False``: raise instead).

    The paper used GEARS' ``simulation`` split
    (:func:`helpers.splits.gears_simulation_split`) on the data after GEARS' GO filter,
    seeds 1 and 2. This function runs that split on ``conditions`` and checks it against
    every label the paper published for the seed (:func:`published_single_labels`). On
    the paper's perturbation lists (:func:`paper_conditions`: 81 / 1,087 / 1,534
    singles) they agree on every label (tests/parity/test_paper_partitions.py). On other
    perturbation lists (e.g. stand-ins with other names) the GEARS draw differs; then
    the published labels are imposed on the perturbations they cover (the evaluated
    ones, so the rows still compare one to one with the published methods), GEARS' split
    decides the rest, a warning says how many labels were imposed, and ``Split.note``
    records it. Raises ``ValueError`` if a published held-out perturbation is missing
    from ``conditions``.
    """
    import warnings

    labels = published_single_labels(dataset, seed, download=download)
    conditions = [str(c) for c in conditions]
    present = set(conditions)
    absent = sorted(c for c, s in labels.items() if s != "train" and c not in present)
    if absent:
        raise InputError(
            f"{len(absent)} of the paper's held-out perturbations of {dataset} "
            f"(seed {seed}) are not in the data "
            f"(e.g. {absent[:5]}); paper_single_split needs the "
            f"GEARS-distributed {dataset} data after "
            "GEARS' GO filter (registry entry of the same name)."
        )
    split = gears_simulation_split(conditions, seed, dataset=dataset)
    differ = {
        c: s for c, s in labels.items() if c in present and split.assignment[c] != s
    }
    n_singles = sum(1 for c in conditions if c != "ctrl" and "+" not in c)
    if not differ:
        return Split(
            dataset,
            seed,
            "simulation",
            split.assignment,
            "GEARS simulation split; equals all "
            f"{sum(c in present for c in labels)} labels published by "
            "Ahlmann-Eltze et al. 2025",
        )
    note = (
        f"GEARS simulation split on {n_singles} singles (the paper's data had "
        f"{PAPER_SINGLE_DATASETS[dataset]}): "
        f"{len(differ)} of {len(labels)} published labels differed and were imposed"
    )
    warnings.warn(
        f"{dataset} seed {seed}: {note}. The data are not the paper's "
        "perturbation list.",
        stacklevel=2,
    )
    assignment = {c: differ.get(c, s) for c, s in split.assignment.items()}
    return Split(dataset, seed, "simulation+published", assignment, note)


def double_interaction_curves(*, download: bool = True) -> pd.DataFrame:
    """TPR vs false-discovery proportion of each method's predicted interactions
    (Fig. 1c; averaged over seeds). ``download``: fetch the spreadsheet if it is not
    cached (``False``: raise instead)."""
    raw = _sheet("paper_perturbation_prediction", "Panel C", download)
    table = raw.assign(method=raw["method"].map(lambda m: _METHOD_CODES.get(m, m)))
    return table.assign(source="published")


def double_top_interactions(*, download: bool = True) -> pd.DataFrame:
    """The top-500 predicted interactions of each method (Fig. 1f), in the book's column
    names.

    Columns: condition, gene, ctrl, AB (observed), additive, value (prediction),
    deviation (observed minus additive), pred_minus_add, method, seed, observed_class
    (the paper's label, lower case), source. ``download``: fetch the spreadsheet if it
    is not cached (``False``: raise instead).
    """
    raw = _sheet("paper_perturbation_prediction", "Panel F", download)
    return pd.DataFrame(
        {
            "condition": raw["perturbation"],
            "gene": raw["gene_name"],
            "ctrl": raw["baseline"],
            "AB": raw["ground_truth"],
            "additive": raw["ref"],
            "value": raw["value"],
            "deviation": raw["obs_minus_add"],
            "pred_minus_add": raw["pred_minus_add"],
            "method": raw["method"].map(lambda m: _METHOD_CODES.get(m, m)),
            "seed": raw["seed"],
            "observed_class": raw["interaction_label"].str.lower(),
            "source": "published",
        }
    )


def observed_class_shares(*, download: bool = True) -> pd.DataFrame:
    """Observed (double, gene) class counts and shares on the full Norman data
    (Fig. 1e).
    ``download``: fetch the spreadsheet if it is not cached
    (``False``: raise instead)."""
    raw = _sheet("paper_perturbation_prediction", "Panel E", download)
    return pd.DataFrame(
        {
            "observed_class": raw["label"].str.lower(),
            "n": raw["n"],
            "share": raw["frac"],
            "source": "published",
        }
    )
