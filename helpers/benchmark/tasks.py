"""The benchmark's task registry: which data, which splits, which reference methods,
which published results.

A :class:`Task` names a dataset (loaded lazily), the splits a model is scored on, the
baselines and linear models its leaderboard always shows, and where available the
paper's published per-perturbation results. :data:`TASKS` holds the registered tasks;
:func:`list_tasks` / :func:`get_task` look them up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from .. import linear
from ..baselines import BASELINES
from ..data import get_entry, load_registry
from ..errors import InputError
from ..loaders import load_dataset
from ..models.contract import Method, TaskData
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk, pseudobulk
from ..published import (
    PAPER_SINGLE_SEEDS,
    double_metrics,
    paper_double_split,
    paper_single_split,
    single_metrics,
)
from ..simulate import SimulationTruth, simulate_screen
from ..splits import Split, complete_doubles, double_split, holdout_split, single_split

__all__ = ["Method", "Task", "TaskData", "TASKS", "list_tasks", "get_task"]


@dataclass
class Task:
    """A benchmark task: a dataset, its splits, the reference methods and the published
    results."""

    name: str
    profile: str
    kind: str  # "double" or "single"
    description: str
    loader: Callable[
        [], tuple
    ]  # -> (AnnData or None, Pseudobulk, other Pseudobulk or None)
    make_splits: Callable[[Pseudobulk], list[Split]]
    published: Callable[[], pd.DataFrame] | None = None
    published_comparable: bool = (
        False  # True if the published results used the very same splits
    )
    planted: Callable[[], SimulationTruth] | None = (
        None  # simulated tasks: the truth behind the cells
    )

    @cached_property
    def _loaded(self):
        return self.loader()

    def adata(self):
        adata = self._loaded[0]
        if adata is None:
            raise InputError(f"Task {self.name!r} provides pseudobulks only.")
        return adata

    @property
    def other_screen(self) -> Pseudobulk | None:
        """Pseudobulk of the screen that provides the transfer embedding
        (single-perturbation tasks), else None."""
        return self._loaded[2]

    @cached_property
    def truth(self) -> Pseudobulk:
        """Observed pseudobulks of every condition (the answer key; never handed to a
        model)."""
        return self._loaded[1]

    @cached_property
    def splits(self) -> list[Split]:
        return self.make_splits(self.truth)

    @property
    def dataset(self) -> str:
        return self.truth.dataset

    def training_data(self, split: Split) -> TaskData:
        return TaskData(self.truth.subset(split.train), split, self)

    def reference_methods(self) -> dict[str, Method]:
        """The baselines and linear models this task's leaderboard always shows."""
        if self.kind == "double":
            return {
                name: BASELINES[name] for name in ("no_change", "additive", "mean")
            } | {"linear": linear.linear_model}
        return {"mean": BASELINES["mean"], **linear.paper_variants(self.other_screen)}

    @property
    def reference_baseline(self) -> str:
        return "additive" if self.kind == "double" else "mean"


def _load_registered(name: str, backed=None):
    adata = load_dataset(name, backed=backed)
    return adata, pseudobulk(adata)


def _norman_subset():
    adata, pb = _load_registered("norman2019_subset")
    return adata, pb, None


def _subset_splits(pb: Pseudobulk) -> list[Split]:
    return [
        holdout_split(
            pb.conditions, complete_doubles(pb.conditions), dataset=pb.dataset, seed=1
        )
    ]


_SIMULATED = {
    "doubles": dict(seed=0),
    "singles": dict(
        n_genes=2000,
        n_single=300,
        n_double=0,
        cells_per_condition=50,
        modality="CRISPRi",
        cell_lines=("simK562", "simRPE1"),
        second_line_overlap=0.8,
        seed=0,
    ),
}
_SCREENS: dict = {}


def _screen(kind: str):
    """The simulated screen of a quick task (drawn once per process; same seed -> same
    screen)."""
    if kind not in _SCREENS:
        _SCREENS[kind] = simulate_screen(**_SIMULATED[kind])
    return _SCREENS[kind]


def _simulated_doubles():
    screen = _screen("doubles")
    return screen.adata, pseudobulk(screen.adata), None


def _simulated_singles():
    screen = _screen("singles")
    return (
        screen.adatas["simK562"],
        pseudobulk(screen.adatas["simK562"]),
        pseudobulk(screen.adatas["simRPE1"]),
    )


def _double_splits(pb: Pseudobulk) -> list[Split]:
    return [
        double_split(pb.conditions, seed, dataset=pb.dataset) for seed in range(1, 6)
    ]


def _single_splits(pb: Pseudobulk) -> list[Split]:
    return [single_split(pb.conditions, seed, dataset=pb.dataset) for seed in (1, 2)]


def _paper_single_splits(pb: Pseudobulk) -> list[Split]:
    return [
        paper_single_split(pb.dataset, seed, pb.conditions)
        for seed in PAPER_SINGLE_SEEDS
    ]


def _norman_full():
    adata, pb = _load_registered("norman2019", backed="r")
    return adata, pb, None


def _paper_double_splits(pb: Pseudobulk) -> list[Split]:
    return [paper_double_split(seed, pb.conditions) for seed in range(1, 6)]


def _other_screen(name: str) -> Pseudobulk | None:
    """Pseudobulk of the registry entry ``name``'s ``transfer_source`` (None where it
    has none)."""
    source = get_entry(name).transfer_source
    return _load_registered(source, backed="r")[1] if source else None


def _single_loader(name: str):
    def load():
        adata, pb = _load_registered(name, backed="r")
        return adata, pb, _other_screen(name)

    return load


def _published_doubles():
    return double_metrics()


def _published_singles(dataset: str):
    def load():
        table = single_metrics()
        return table[table["dataset"] == dataset]

    return load


TASKS: dict[str, Task] = {}


def _register(task: Task) -> None:
    TASKS[task.name] = task


_register(
    Task(
        "norman_subset_doubles",
        "quick",
        "double",
        "Real Norman 2019 subset: predict the 5 doubles whose singles are "
        "measured (1 split, 500 genes).",
        _norman_subset,
        _subset_splits,
    )
)
_register(
    Task(
        "simulated_doubles",
        "quick",
        "double",
        "SYNTHETIC Norman-shaped screen (100 singles, 124 doubles): the paper's "
        "double split, seeds 1-5.",
        _simulated_doubles,
        _double_splits,
        planted=lambda: _screen("doubles").truth,
    )
)
_register(
    Task(
        "simulated_singles",
        "quick",
        "single",
        "SYNTHETIC screen of 300 CRISPRi singles: unseen-perturbation split "
        "(GEARS style), seeds 1-2; "
        "a second synthetic cell line provides the transfer embedding.",
        _simulated_singles,
        _single_splits,
        planted=lambda: _screen("singles").truth,
    )
)
_register(
    Task(
        "norman_doubles",
        "paper",
        "double",
        "Norman 2019 (full, 19,264 genes): the paper's five published splits, 62 "
        "held-out doubles each.",
        _norman_full,
        _paper_double_splits,
        _published_doubles,
        published_comparable=True,
    )
)
# one single-perturbation task per registry entry with benchmark = "singles"
# (data/registry.toml): the paper's datasets (paper_n_singles) with its published splits
# and results, any other with GEARS-style single splits, seeds 1-2
_PAPER_SPLIT_NOTE = (
    "unseen single perturbations, the paper's GEARS simulation split, seeds 1-2 "
    "(checked against every published split label)."
)
for _name, _entry in load_registry().items():
    if _entry.benchmark != "singles":
        continue
    _label = _entry.short_label or _entry.display_label
    if _entry.paper_n_singles is not None:
        _register(
            Task(
                f"{_name}_singles",
                "paper",
                "single",
                f"{_label}: {_PAPER_SPLIT_NOTE}",
                _single_loader(_name),
                _paper_single_splits,
                _published_singles(_name),
                published_comparable=True,
            )
        )
    else:
        _register(
            Task(
                f"{_name}_singles",
                "paper",
                "single",
                f"{_label}: unseen single perturbations, GEARS-style simulation "
                "split, seeds 1-2.",
                _single_loader(_name),
                _single_splits,
            )
        )


def list_tasks() -> pd.DataFrame:
    """The available tasks: name, profile (quick = offline), kind, description."""
    return pd.DataFrame(
        [
            {
                "task": t.name,
                "profile": t.profile,
                "kind": t.kind,
                "description": t.description,
            }
            for t in TASKS.values()
        ]
    )


def get_task(name: str) -> Task:
    """The registered task called ``name`` (:func:`list_tasks` lists them)."""
    if name not in TASKS:
        raise InputError(
            f"Unknown task {name!r}. Tasks: {', '.join(TASKS)} (see list_tasks())."
        )
    return TASKS[name]


# --------------------------------------------------------------------------------------
# Atlas-scale tasks (chapter 10): pseudobulks computed by the Dask reduction of
# helpers.scale from lazily read files; everything downstream (splits, baselines, linear
# model, evaluate) unchanged.


def _gwps_singles():
    from ..scale import pseudobulk as dask_pseudobulk
    from ..scale.loaders import load_replogle_gwps

    screen = load_replogle_gwps(download=False)
    pb = dask_pseudobulk(screen, "condition", counts=True)
    return None, pb, _other_screen("replogle_k562_gwps")


_register(
    Task(
        "replogle_k562_gwps_singles",
        "paper",
        "single",
        "Replogle 2022 genome-wide K562 CRISPRi (raw single-cell file, ~2.0 M "
        "cells, ~9,800 "
        "perturbations; pseudobulk by helpers.scale on Dask): unseen single "
        "perturbations, GEARS-style "
        "simulation split, seeds 1-2; the RPE1 essential screen provides the "
        "transfer embedding.",
        _gwps_singles,
        _single_splits,
    )
)


TAHOE_HELD_OUT_LINE = None  # None: the first cell line (sorted) of the loaded shards


class CellLineTransferTask(Task):
    """Predict every drug's effect in a held-out cell line from the other lines
    (Tahoe-100M).

    ``truth``: pseudobulk of the held-out line's cells per drug (its plate-matched
    ``DMSO_TF`` wells are ``ctrl``); one split, training = its control only, held out =
    every drug. References: ``no_change`` and ``other_lines_mean`` (the drug's mean
    change over the other lines, added to the held-out line's control).
    """

    def reference_methods(self) -> dict[str, Method]:
        other = self.other_screen

        def other_lines_mean(
            train_pb: Pseudobulk, conditions, *, seed=None
        ) -> Predictions:
            conditions = list(conditions)
            change = (
                other.means.loc[conditions, train_pb.genes] - other.ctrl[train_pb.genes]
            )
            values = change + train_pb.ctrl
            values.index.name = "condition"
            return Predictions(values, "other_lines_mean", train_pb.dataset, seed)

        return {
            "no_change": BASELINES["no_change"],
            "other_lines_mean": other_lines_mean,
        }

    @property
    def reference_baseline(self) -> str:
        return "other_lines_mean"


def _tahoe_transfer(folder=None, held_out_line=None):
    def load():
        from ..scale import group_means
        from ..scale.loaders import load_tahoe

        screen = load_tahoe(folder, download=False)
        lines = sorted(screen.obs["cell_line_id"].astype(str).unique())
        line = held_out_line or TAHOE_HELD_OUT_LINE or lines[0]
        by_line = group_means(screen, ["cell_line_id", "condition"], counts=True)
        labels = by_line.means.index.str.split("|", n=1)
        held = labels.str[0] == line
        if not held.any():
            raise InputError(
                f"Cell line {line!r} is not in the Tahoe shards (lines: {lines[:10]})."
            )
        truth = Pseudobulk(
            by_line.means[held].set_axis(labels[held].str[1]).rename_axis("condition"),
            by_line.n_cells[held]
            .set_axis(labels[held].str[1])
            .rename_axis("condition"),
            dataset=f"tahoe100m_{line}",
        )
        # other lines: each line's change from its own control, averaged; as a
        # Pseudobulk around 0
        rest = by_line.means[~held].set_axis(
            pd.MultiIndex.from_arrays([labels[~held].str[0], labels[~held].str[1]])
        )
        changes = (
            rest
            - rest.xs("ctrl", level=1)
            .reindex(rest.index.get_level_values(0))
            .to_numpy()
        )
        mean_change = changes.groupby(level=1).mean()
        other = Pseudobulk(
            mean_change.rename_axis("condition"),
            pd.Series(1, index=mean_change.index.rename("condition"), name="n_cells"),
            dataset="tahoe100m_other_lines",
        )
        return None, truth, other

    return load


def _tahoe_splits(pb: Pseudobulk) -> list[Split]:
    drugs = [c for c in pb.conditions if c != "ctrl"]
    return [holdout_split(pb.conditions, drugs, dataset=pb.dataset, seed=1)]


_register(
    CellLineTransferTask(
        "tahoe_heldout_cell_line",
        "paper",
        "single",
        "Tahoe-100M (parquet shards; pseudobulk by helpers.scale on Dask): every "
        "drug's effect in a held-out "
        "cell line, predicted from the other lines; references no_change and the "
        "drug's mean over the other "
        "lines.",
        _tahoe_transfer(),
        _tahoe_splits,
    )
)
