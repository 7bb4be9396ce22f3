"""Train / validation / test splits of perturbation conditions (introduced in chapter 2).

A :class:`Split` assigns every condition of a dataset to ``train``, ``val`` or ``test`` and is saved
as JSON, so a reader can reuse exactly the partition a chapter used.

* :func:`double_split`: the paper's double-perturbation split. All singles and ``ctrl`` go to
  train; of the doubles, ``len // 2`` chosen at random go to train, and the rest is split evenly
  into test and val (test gets the extra one if the number is odd). Seeds 1-5 in the paper; the
  held-out set that is evaluated is test + val.
* :func:`single_split`: GEARS' "simulation" split of single perturbations (chapter 3): 75% of
  the perturbed genes seen in training (10% of those as val), the rest unseen (test).
* :func:`helpers.published.paper_double_split`: the exact held-out doubles of the paper's seed, read from its
  published per-perturbation results (for the full Norman data).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .loaders import CONTROL, condition_genes

__all__ = [
    "SplitError", "Split", "double_split", "split_from_assignment", "complete_doubles", "holdout_split", "single_split",
    "HELD_OUT",
]

SUBSETS = ("train", "val", "test")
HELD_OUT = ("test", "val")


class SplitError(ValueError):
    """A split cannot be made or does not fit the data (the message says why)."""


@dataclass(frozen=True)
class Split:
    """Assignment of conditions to train / val / test for one dataset and seed."""

    dataset: str
    seed: int
    kind: str
    assignment: dict[str, str] = field(repr=False)
    note: str = ""

    def __post_init__(self):
        bad = {s for s in self.assignment.values() if s not in SUBSETS}
        if bad:
            raise SplitError(f"Split subsets must be {SUBSETS}; got {sorted(bad)}.")

    def conditions(self, *subsets: str) -> list[str]:
        """Conditions in the given subsets (in the order of the assignment)."""
        unknown = set(subsets) - set(SUBSETS)
        if unknown:
            raise SplitError(f"Unknown subset(s) {sorted(unknown)}; use {SUBSETS}.")
        return [c for c, s in self.assignment.items() if s in subsets]

    @property
    def train(self) -> list[str]:
        return self.conditions("train")

    @property
    def held_out(self) -> list[str]:
        """The evaluated conditions: test + val (as in the paper)."""
        return self.conditions(*HELD_OUT)

    def subset_of(self, condition: str) -> str:
        if condition not in self.assignment:
            raise SplitError(f"Condition {condition!r} is not part of the split of {self.dataset} (seed {self.seed}).")
        return self.assignment[condition]

    def sizes(self) -> dict[str, int]:
        return {s: len(self.conditions(s)) for s in SUBSETS}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"dataset": self.dataset, "seed": self.seed, "condition": list(self.assignment), "split": list(self.assignment.values())}
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"dataset": self.dataset, "seed": self.seed, "kind": self.kind, "note": self.note,
                   "sizes": self.sizes(), "assignment": self.assignment}
        path.write_text(json.dumps(payload, indent=1))
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Split":
        try:
            payload = json.loads(Path(path).read_text())
            return cls(payload["dataset"], int(payload["seed"]), payload["kind"], dict(payload["assignment"]), payload.get("note", ""))
        except (KeyError, json.JSONDecodeError) as err:
            raise SplitError(f"{path} is not a split file written by Split.to_json ({err}).") from None


def double_split(conditions, seed: int, *, dataset: str = "") -> Split:
    """The paper's double-perturbation split (see the module docstring); deterministic per seed.

    ``conditions``: all conditions of the dataset (``ctrl``, singles ``A``, doubles ``A+B``).
    Raises :class:`SplitError` if there are no doubles or a double's singles are missing from the
    data (the additive baseline needs them in training).
    """
    conditions = list(dict.fromkeys(str(c) for c in conditions))
    if CONTROL not in conditions:
        raise SplitError("The conditions contain no 'ctrl'; every baseline needs the control.")
    doubles = sorted(c for c in conditions if len(condition_genes(c)) == 2)
    if len(doubles) < 2:
        raise SplitError(f"A double-perturbation split needs at least 2 doubles; found {len(doubles)}.")
    singles = {c for c in conditions if len(condition_genes(c)) == 1}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(doubles))
    n_train = len(doubles) // 2
    held = [doubles[i] for i in order[n_train:]]
    n_test = len(held) - len(held) // 2
    assignment = {c: "train" for c in conditions if c not in doubles}
    for i in order[:n_train]:
        assignment[doubles[i]] = "train"
    for j, c in enumerate(held):
        assignment[c] = "test" if j < n_test else "val"
    missing = sorted({g for d in doubles for g in condition_genes(d)} - singles)
    note = f"doubles whose single perturbations are not all measured: {missing}" if missing else ""
    return Split(dataset, seed, "double", {c: assignment[c] for c in conditions}, note)


def split_from_assignment(assignment: dict[str, str] | pd.DataFrame, *, dataset: str, seed: int, kind: str,
                          note: str = "") -> Split:
    """Build a :class:`Split` from a mapping (or a table with columns condition, split)."""
    if isinstance(assignment, pd.DataFrame):
        missing = {"condition", "split"} - set(assignment.columns)
        if missing:
            raise SplitError(f"The split table lacks columns {sorted(missing)}.")
        assignment = dict(zip(assignment["condition"].astype(str), assignment["split"].astype(str)))
    return Split(dataset, seed, kind, dict(assignment), note)


def complete_doubles(conditions) -> list[str]:
    """Doubles ``A+B`` whose singles ``A`` and ``B`` are both among ``conditions`` (sorted)."""
    conditions = {str(c) for c in conditions}
    return sorted(c for c in conditions if len(condition_genes(c)) == 2 and set(condition_genes(c)) <= conditions)


def holdout_split(conditions, held_out, *, val=(), dataset: str = "", seed: int = 0, subset: str = "test") -> Split:
    """Hold out exactly ``held_out`` (as ``subset``) and ``val`` (as val); every other condition is train."""
    conditions = [str(c) for c in conditions]
    held, val = set(map(str, held_out)), set(map(str, val))
    unknown = sorted((held | val) - set(conditions))
    if unknown:
        raise SplitError(f"Held-out conditions not in the data: {unknown[:5]}.")
    if held & val:
        raise SplitError(f"Conditions both held out and in val: {sorted(held & val)[:5]}.")
    return Split(dataset, seed, "holdout",
                 {c: subset if c in held else "val" if c in val else "train" for c in conditions})


def _floor(x: float) -> int:
    return int(np.floor(x + 1e-9))


def single_split(conditions, seed: int, *, dataset: str = "", train_gene_fraction: float = 0.75,
                 val_fraction: float = 0.1) -> Split:
    """GEARS' "simulation" split for single perturbations, in the book's own code (no GEARS import).

    The perturbed genes are shuffled with ``seed``; ``floor(0.75 n)`` of them are seen in training
    and the rest are the test set (unseen perturbations). Of the training genes,
    ``floor(0.9 n_train)`` stay in train and the rest become val. ``ctrl`` is train. Doubles, if
    any, are assigned to train only when both genes are train genes, otherwise to test.
    Seed-1 sizes for 81 singles (Adamson): 54 / 6 / 21, as reported for the paper.
    """
    if not 0 < train_gene_fraction < 1 or not 0 <= val_fraction < 1:
        raise SplitError("train_gene_fraction must lie in (0, 1) and val_fraction in [0, 1).")
    conditions = list(dict.fromkeys(str(c) for c in conditions))
    if CONTROL not in conditions:
        raise SplitError("The conditions contain no 'ctrl'; every baseline needs the control.")
    genes = sorted({g for c in conditions for g in condition_genes(c)})
    if len(genes) < 3:
        raise SplitError(f"A single-perturbation split needs at least 3 perturbed genes; found {len(genes)}.")
    rng = np.random.default_rng(seed)
    order = [genes[i] for i in rng.permutation(len(genes))]
    n_seen = _floor(train_gene_fraction * len(genes))
    n_train = _floor((1 - val_fraction) * n_seen)
    subset_of_gene = {g: "train" for g in order[:n_train]}
    subset_of_gene.update({g: "val" for g in order[n_train:n_seen]})
    subset_of_gene.update({g: "test" for g in order[n_seen:]})
    assignment = {}
    for c in conditions:
        targets = condition_genes(c)
        if not targets:
            assignment[c] = "train"
        elif len(targets) == 1:
            assignment[c] = subset_of_gene[targets[0]]
        else:
            assignment[c] = "train" if all(subset_of_gene[g] == "train" for g in targets) else "test"
    return Split(dataset, seed, "simulation", assignment)
