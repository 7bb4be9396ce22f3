"""Train / validation / test splits of perturbation conditions (introduced in chapter
2).

A :class:`Split` assigns every condition of a dataset to ``train``, ``val`` or ``test``
and is saved as JSON, so a reader can reuse exactly the partition a chapter used.

* :func:`double_split`: the paper's double-perturbation split. All singles and ``ctrl``
  go to train; of the doubles, ``len // 2`` chosen at random go to train, and the rest
  is split evenly into test and val (test gets the extra one if the number is odd).
  Seeds 1-5 in the paper; the held-out set that is evaluated is test + val.
* :func:`gears_simulation_split` (= :func:`single_split`): GEARS' "simulation" split of
  single perturbations (chapter 3), ported from GEARS v0.1.2 with its numpy seeding: 75%
  of the perturbed genes seen in training (10% of those as val), the rest unseen (test).
* :func:`helpers.published.paper_single_split`: the paper's exact partition of Adamson /
  Replogle K562 / RPE1 for seed 1 or 2 (GEARS' split, checked against the published
  labels).
* :func:`helpers.published.paper_double_split`: the exact held-out doubles of the
  paper's seed, read from its published per-perturbation results (for the full Norman
  data).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .loaders import CONTROL, condition_genes
from .errors import BookError

__all__ = [
    "SplitError",
    "Split",
    "double_split",
    "split_from_assignment",
    "complete_doubles",
    "holdout_split",
    "single_split",
    "gears_simulation_split",
    "HELD_OUT",
]

SUBSETS = ("train", "val", "test")
HELD_OUT = ("test", "val")


class SplitError(BookError, ValueError):
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
            raise SplitError(
                f"Condition {condition!r} is not part of the split of "
                f"{self.dataset} (seed {self.seed})."
            )
        return self.assignment[condition]

    def sizes(self) -> dict[str, int]:
        return {s: len(self.conditions(s)) for s in SUBSETS}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "dataset": self.dataset,
                "seed": self.seed,
                "condition": list(self.assignment),
                "split": list(self.assignment.values()),
            }
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "dataset": self.dataset,
            "seed": self.seed,
            "kind": self.kind,
            "note": self.note,
            "sizes": self.sizes(),
            "assignment": self.assignment,
        }
        path.write_text(json.dumps(payload, indent=1))
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Split":
        try:
            payload = json.loads(Path(path).read_text())
            return cls(
                payload["dataset"],
                int(payload["seed"]),
                payload["kind"],
                dict(payload["assignment"]),
                payload.get("note", ""),
            )
        except (KeyError, json.JSONDecodeError) as err:
            raise SplitError(
                f"{path} is not a split file written by Split.to_json ({err})."
            ) from None


def double_split(conditions, seed: int, *, dataset: str = "") -> Split:
    """The paper's double-perturbation split (see the module docstring); deterministic
    per seed.

    ``conditions``: all conditions of the dataset (``ctrl``, singles ``A``, doubles
    ``A+B``). Raises :class:`SplitError` if there are no doubles or a double's singles
    are missing from the data (the additive baseline needs them in training).
    """
    conditions = list(dict.fromkeys(str(c) for c in conditions))
    if CONTROL not in conditions:
        raise SplitError(
            "The conditions contain no 'ctrl'; every baseline needs the control."
        )
    doubles = sorted(c for c in conditions if len(condition_genes(c)) == 2)
    if len(doubles) < 2:
        raise SplitError(
            "A double-perturbation split needs at least 2 doubles; found "
            f"{len(doubles)}."
        )
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
    note = (
        f"doubles whose single perturbations are not all measured: {missing}"
        if missing
        else ""
    )
    return Split(dataset, seed, "double", {c: assignment[c] for c in conditions}, note)


def split_from_assignment(
    assignment: dict[str, str] | pd.DataFrame,
    *,
    dataset: str,
    seed: int,
    kind: str,
    note: str = "",
) -> Split:
    """Build a :class:`Split` from a mapping (or a table with columns condition, split).

    ``assignment``: condition -> ``"train"`` / ``"val"`` / ``"test"``; ``dataset``: the
    data's name; ``seed``: the split's seed; ``kind``: what kind of split it is;
    ``note``: a line about its source.
    """
    if isinstance(assignment, pd.DataFrame):
        missing = {"condition", "split"} - set(assignment.columns)
        if missing:
            raise SplitError(f"The split table lacks columns {sorted(missing)}.")
        assignment = dict(
            zip(assignment["condition"].astype(str), assignment["split"].astype(str))
        )
    return Split(dataset, seed, kind, dict(assignment), note)


def complete_doubles(conditions) -> list[str]:
    """Doubles ``A+B`` whose singles ``A`` and ``B`` are both among ``conditions``
    (sorted)."""
    conditions = {str(c) for c in conditions}
    return sorted(
        c
        for c in conditions
        if len(condition_genes(c)) == 2 and set(condition_genes(c)) <= conditions
    )


def holdout_split(
    conditions,
    held_out,
    *,
    val=(),
    dataset: str = "",
    seed: int = 0,
    subset: str = "test",
) -> Split:
    """Hold out exactly ``held_out`` (as ``subset``) and ``val`` (as val); every other
    condition is train.

    ``conditions``: all conditions of the data; ``dataset``: its name; ``seed``:
    recorded with the split.
    """
    conditions = [str(c) for c in conditions]
    held, val = set(map(str, held_out)), set(map(str, val))
    unknown = sorted((held | val) - set(conditions))
    if unknown:
        raise SplitError(f"Held-out conditions not in the data: {unknown[:5]}.")
    if held & val:
        raise SplitError(
            f"Conditions both held out and in val: {sorted(held & val)[:5]}."
        )
    return Split(
        dataset,
        seed,
        "holdout",
        {
            c: subset if c in held else "val" if c in val else "train"
            for c in conditions
        },
    )


def _choose(values: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """GEARS' draw: reseed numpy's legacy global generator, then ``choice(values,
    int(n * fraction), replace=False)``. Legacy ``RandomState.choice`` without
    replacement takes the first ``size`` entries of ``permutation(n)``; ``int``
    truncates (81 genes -> 60 seen, 21 unseen)."""
    order = np.random.RandomState(seed).permutation(len(values))
    return values[order[: int(len(values) * fraction)]]


def _simulation_round(
    perts: list[str], fraction: float, combo_fraction: float, seed: int
):
    """One round of GEARS' ``DataSplitter.get_simulation_split`` on GEARS-style labels
    (``A+ctrl`` / ``A+B``); returns (kept, held out)."""
    genes = np.unique(
        [g for p in np.unique(perts) for g in p.split("+") if g != CONTROL]
    )
    seen = set(_choose(genes, fraction, seed).tolist())
    singles = [p for p in perts if CONTROL in p.split("+")]
    combos = [p for p in perts if CONTROL not in p.split("+")]

    def genes_of(p):
        return [g for g in p.split("+") if g != CONTROL]

    kept = [p for p in singles if any(g in seen for g in genes_of(p))]
    held = [p for p in singles if not any(g in seen for g in genes_of(p))]
    n_seen = {p: sum(g in seen for g in genes_of(p)) for p in combos}
    held += [p for p in combos if n_seen[p] == 1]
    both_seen = (
        np.unique([p for p in combos if n_seen[p] == 2])
        if combos
        else np.array([], dtype=str)
    )
    if len(both_seen):
        combo_kept = set(_choose(both_seen, combo_fraction, seed).tolist())
    else:
        combo_kept = set()
    held += [p for p in both_seen.tolist() if p not in combo_kept]
    kept += [p for p in both_seen.tolist() if p in combo_kept]
    held += [p for p in combos if n_seen[p] == 0]
    return kept, held


def gears_simulation_split(
    conditions,
    seed: int,
    *,
    dataset: str = "",
    train_gene_set_size: float = 0.75,
    combo_seen2_train_frac: float = 0.75,
) -> Split:
    """GEARS' ``simulation`` split (``PertData.prepare_split(split='simulation',
    seed=seed)``), own code.

    The algorithm of GEARS v0.1.2 ``DataSplitter.split_data`` /
    ``get_simulation_split``:

    1. the perturbed genes, sorted and unique (``np.unique``), are drawn with numpy's
       legacy generator reseeded to ``seed``: ``int(0.75 n)`` of them are seen in
       training, the rest are unseen, and their single perturbations are the **test**
       set;
    2. doubles with one seen gene and doubles with none go to test; of the doubles with
       both genes seen (sorted), ``int(0.75 m)`` drawn after reseeding stay in train,
       the rest go to test;
    3. the same procedure runs again on the training perturbations with fractions 0.9 /
       0.9 and the same seed: what it holds out is **val**; ``ctrl`` is train.

    It reproduces every test / val label that Ahlmann-Eltze et al. published for Adamson
    and the Replogle screens (seeds 1 and 2) only when ``conditions`` is exactly the
    perturbation list GEARS had after its GO filter (81 / 1,087 / 1,534 singles): the
    draw depends on every gene's rank. Conditions are the book's canonical labels
    (``ctrl``, ``A``, ``A+B``).
    """
    conditions = list(dict.fromkeys(str(c) for c in conditions))
    if CONTROL not in conditions:
        raise SplitError(
            "The conditions contain no 'ctrl'; every baseline needs the control."
        )
    genes = sorted({g for c in conditions for g in condition_genes(c)})
    if len(genes) < 3:
        raise SplitError(
            "A single-perturbation split needs at least 3 perturbed genes; "
            f"found {len(genes)}."
        )
    if CONTROL in genes:
        raise SplitError(
            "A perturbed gene is literally called 'ctrl'; rename it before splitting."
        )
    # GEARS labels: singles are "A+ctrl"; doubles keep the order of the data
    gears_label = {
        c: (f"{c}+{CONTROL}" if len(condition_genes(c)) == 1 else c)
        for c in conditions
        if c != CONTROL
    }
    perts = list(gears_label.values())
    train, test = _simulation_round(
        perts, train_gene_set_size, combo_seen2_train_frac, seed
    )
    train, val = _simulation_round(train, 0.9, 0.9, seed)
    subset = {p: "train" for p in train}
    subset.update({p: "val" for p in val})
    subset.update({p: "test" for p in test})
    assignment = {
        c: "train" if c == CONTROL else subset[gears_label[c]] for c in conditions
    }
    return Split(dataset, seed, "simulation", assignment)


def single_split(conditions, seed: int, *, dataset: str = "") -> Split:
    """The single-perturbation split of the paper: GEARS' "simulation" split
    (:func:`gears_simulation_split`). Seed-1 sizes for 81 singles (Adamson): 54 / 6 /
    21.

    ``conditions``: all conditions of the data; ``seed``: the random split's seed;
    ``dataset``: its name.
    """
    return gears_simulation_split(conditions, seed, dataset=dataset)
