"""The benchmark's task registry: which data, which splits, which reference methods, which published results.

A :class:`Task` names a dataset (loaded lazily), the splits a model is scored on, the baselines and
linear models its leaderboard always shows, and where available the paper's published per-perturbation
results. :data:`TASKS` holds the registered tasks; :func:`list_tasks` / :func:`get_task` look them up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from .. import linear
from ..baselines import BASELINES
from ..loaders import load_dataset
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk, pseudobulk
from ..published import (
    PAPER_SINGLE_SEEDS,
    TRANSFER_SOURCE,
    double_metrics,
    paper_double_split,
    paper_single_split,
    single_metrics,
)
from ..simulate import SimulationTruth, simulate_screen
from ..splits import Split, complete_doubles, double_split, holdout_split, single_split

__all__ = ["Method", "Task", "TaskData", "TASKS", "list_tasks", "get_task"]

Method = Callable[..., Predictions]


@dataclass
class TaskData:
    """What a model gets for one split: training pseudobulks, the split, and (on request) training cells."""

    pseudobulk: Pseudobulk
    split: Split
    task: "Task" = field(repr=False)

    @property
    def seed(self) -> int:
        return self.split.seed

    @property
    def dataset(self) -> str:
        return self.pseudobulk.dataset

    @property
    def genes(self) -> pd.Index:
        return self.pseudobulk.genes

    def cells(self):
        """The single cells of the training conditions (canonical AnnData; read into memory)."""
        adata = self.task.adata()
        mask = adata.obs["condition"].isin(self.split.train).to_numpy()
        return adata[mask].to_memory() if adata.isbacked else adata[mask].copy()


@dataclass
class Task:
    """A benchmark task: a dataset, its splits, the reference methods and the published results."""

    name: str
    profile: str
    kind: str  # "double" or "single"
    description: str
    loader: Callable[[], tuple]  # -> (AnnData or None, Pseudobulk, other Pseudobulk or None)
    make_splits: Callable[[Pseudobulk], list[Split]]
    published: Callable[[], pd.DataFrame] | None = None
    published_comparable: bool = False  # True if the published results used the very same splits
    planted: Callable[[], SimulationTruth] | None = None  # simulated tasks: the truth behind the cells

    @cached_property
    def _loaded(self):
        return self.loader()

    def adata(self):
        adata = self._loaded[0]
        if adata is None:
            raise ValueError(f"Task {self.name!r} provides pseudobulks only.")
        return adata

    @property
    def other_screen(self) -> Pseudobulk | None:
        """Pseudobulk of the screen that provides the transfer embedding (single-perturbation tasks), else None."""
        return self._loaded[2]

    @cached_property
    def truth(self) -> Pseudobulk:
        """Observed pseudobulks of every condition (the answer key; never handed to a model)."""
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
            return {name: BASELINES[name] for name in ("no_change", "additive", "mean")} | {"linear": linear.linear_model}
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
    return [holdout_split(pb.conditions, complete_doubles(pb.conditions), dataset=pb.dataset, seed=1)]


_SIMULATED = {
    "doubles": dict(seed=0),
    "singles": dict(n_genes=2000, n_single=300, n_double=0, cells_per_condition=50, modality="CRISPRi",
                    cell_lines=("simK562", "simRPE1"), second_line_overlap=0.8, seed=0),
}
_SCREENS: dict = {}


def _screen(kind: str):
    """The simulated screen of a quick task (drawn once per process; same seed -> same screen)."""
    if kind not in _SCREENS:
        _SCREENS[kind] = simulate_screen(**_SIMULATED[kind])
    return _SCREENS[kind]


def _simulated_doubles():
    screen = _screen("doubles")
    return screen.adata, pseudobulk(screen.adata), None


def _simulated_singles():
    screen = _screen("singles")
    return screen.adatas["simK562"], pseudobulk(screen.adatas["simK562"]), pseudobulk(screen.adatas["simRPE1"])


def _double_splits(pb: Pseudobulk) -> list[Split]:
    return [double_split(pb.conditions, seed, dataset=pb.dataset) for seed in range(1, 6)]


def _single_splits(pb: Pseudobulk) -> list[Split]:
    return [single_split(pb.conditions, seed, dataset=pb.dataset) for seed in (1, 2)]


def _paper_single_splits(pb: Pseudobulk) -> list[Split]:
    return [paper_single_split(pb.dataset, seed, pb.conditions) for seed in PAPER_SINGLE_SEEDS]


def _norman_full():
    adata, pb = _load_registered("norman2019", backed="r")
    return adata, pb, None


def _paper_double_splits(pb: Pseudobulk) -> list[Split]:
    return [paper_double_split(seed, pb.conditions) for seed in range(1, 6)]


def _single_loader(name: str):
    def load():
        adata, pb = _load_registered(name, backed="r")
        _, other = _load_registered(TRANSFER_SOURCE[name], backed="r")
        return adata, pb, other

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


_register(Task("norman_subset_doubles", "quick", "double",
               "Real Norman 2019 subset: predict the 5 doubles whose singles are measured (1 split, 500 genes).",
               _norman_subset, _subset_splits))
_register(Task("simulated_doubles", "quick", "double",
               "SYNTHETIC Norman-shaped screen (100 singles, 124 doubles): the paper's double split, seeds 1-5.",
               _simulated_doubles, _double_splits, planted=lambda: _screen("doubles").truth))
_register(Task("simulated_singles", "quick", "single",
               "SYNTHETIC screen of 300 CRISPRi singles: unseen-perturbation split (GEARS style), seeds 1-2; "
               "a second synthetic cell line provides the transfer embedding.",
               _simulated_singles, _single_splits, planted=lambda: _screen("singles").truth))
_register(Task("norman_doubles", "paper", "double",
               "Norman 2019 (full, 19,264 genes): the paper's five published splits, 62 held-out doubles each.",
               _norman_full, _paper_double_splits, _published_doubles, published_comparable=True))
for _name, _label in [("adamson", "Adamson 2016"), ("replogle_k562_essential", "Replogle 2022 K562"),
                      ("replogle_rpe1_essential", "Replogle 2022 RPE1")]:
    _register(Task(f"{_name}_singles", "paper", "single",
                   f"{_label}: unseen single perturbations, the paper's GEARS simulation split, seeds 1-2 "
                   "(checked against every published split label).",
                   _single_loader(_name), _paper_single_splits, _published_singles(_name),
                   published_comparable=True))


def list_tasks() -> pd.DataFrame:
    """The available tasks: name, profile (quick = offline), kind, description."""
    return pd.DataFrame([{"task": t.name, "profile": t.profile, "kind": t.kind, "description": t.description}
                         for t in TASKS.values()])


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}. Tasks: {', '.join(TASKS)} (see list_tasks()).")
    return TASKS[name]
