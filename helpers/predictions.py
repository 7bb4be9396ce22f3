"""The predictions contract: one format for every method (introduced in chapter 2).

Whatever a method is (a baseline, the linear model, a fine-tuned network, your own model), it hands
over a :class:`Predictions`: predicted **pseudobulk** profiles (mean log-normalised expression, the
same units as :class:`helpers.pseudobulk.Pseudobulk.means`), one row per condition and one column
per gene, labelled with the method, the dataset and the split seed. On disk it is a tidy CSV with
columns ``dataset, method, seed, condition, gene, prediction`` (``.csv`` or ``.csv.gz``).

:func:`helpers.metrics.evaluate` is the only consumer; it checks the predictions against the truth
and the split before computing any metric.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PredictionError", "Predictions", "LONG_COLUMNS"]

LONG_COLUMNS = ["dataset", "method", "seed", "condition", "gene", "prediction"]


class PredictionError(ValueError):
    """Predictions that break the contract (the message names the problem and the fix)."""


@dataclass
class Predictions:
    """Predicted pseudobulk profiles of one method on one dataset and split seed."""

    values: pd.DataFrame  # conditions x genes
    method: str
    dataset: str
    seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.values, pd.DataFrame):
            raise PredictionError(f"values must be a pandas DataFrame (conditions x genes), got {type(self.values).__name__}.")
        if not self.method:
            raise PredictionError("Predictions need a method name.")
        values = self.values
        if values.index.has_duplicates:
            dup = values.index[values.index.duplicated()].unique().tolist()[:5]
            raise PredictionError(f"{self.method}: conditions predicted more than once: {dup}.")
        if values.columns.has_duplicates:
            dup = values.columns[values.columns.duplicated()].unique().tolist()[:5]
            raise PredictionError(f"{self.method}: duplicated gene columns: {dup}.")
        try:
            array = values.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise PredictionError(f"{self.method}: predictions must be numbers.") from None
        bad = ~np.isfinite(array)
        if bad.any():
            rows, cols = np.nonzero(bad)
            examples = [f"{values.index[r]}/{values.columns[c]}" for r, c in zip(rows[:5], cols[:5])]
            raise PredictionError(
                f"{self.method}: {bad.sum()} predicted values are NaN or infinite (e.g. {examples}). "
                "Predict every gene you submit, or leave the gene out."
            )
        self.values = pd.DataFrame(array, index=values.index.astype(str), columns=values.columns.astype(str))
        self.values.index.name, self.values.columns.name = "condition", "gene"

    @property
    def conditions(self) -> pd.Index:
        return self.values.index

    @property
    def genes(self) -> pd.Index:
        return self.values.columns

    def to_long(self) -> pd.DataFrame:
        """Tidy table with the columns of :data:`LONG_COLUMNS`."""
        long = self.values.stack().rename("prediction").reset_index()
        long.insert(0, "dataset", self.dataset)
        long.insert(1, "method", self.method)
        long.insert(2, "seed", self.seed if self.seed is not None else pd.NA)
        return long[LONG_COLUMNS]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tidy CSV (gzip-compressed if the name ends in ``.gz``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_long().to_csv(path, index=False)
        return path

    @classmethod
    def from_long(cls, table: pd.DataFrame) -> "Predictions":
        """Rebuild from a tidy table holding one method / dataset / seed."""
        missing = [c for c in LONG_COLUMNS if c not in table.columns]
        if missing:
            raise PredictionError(
                f"A predictions table needs the columns {LONG_COLUMNS}; missing {missing}. "
                "Write it with Predictions.save or build it with those columns."
            )
        for key in ("dataset", "method", "seed"):
            distinct = table[key].dropna().unique()
            if len(distinct) > 1:
                raise PredictionError(f"The table holds several values of {key!r} ({list(distinct)[:5]}); split it first.")
        if table.duplicated(["condition", "gene"]).any():
            raise PredictionError("The table has more than one prediction for some (condition, gene) pairs.")
        wide = table.pivot(index="condition", columns="gene", values="prediction")
        if wide.isna().any().any():
            raise PredictionError(
                "Some conditions lack predictions for some genes (every condition must cover the same genes)."
            )
        seed = table["seed"].dropna()
        return cls(wide, str(table["method"].iloc[0]), str(table["dataset"].iloc[0]),
                   int(seed.iloc[0]) if len(seed) else None)

    def renamed(self, method: str) -> "Predictions":
        """The same predictions under another method name."""
        return Predictions(self.values, method, self.dataset, self.seed)

    @classmethod
    def load_all(cls, path: str | os.PathLike) -> list["Predictions"]:
        """Read a predictions CSV (``.csv`` / ``.csv.gz``, the contract's columns): one
        :class:`Predictions` per seed in it, in seed order (rows without a seed form one more set)."""
        path = Path(path)
        if not path.exists():
            raise PredictionError(f"No predictions file at {path}.")
        try:
            table = pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            raise PredictionError(f"{path} is not a readable CSV predictions file ({err}).") from None
        missing = [c for c in LONG_COLUMNS if c not in table.columns]
        if missing:
            raise PredictionError(f"{path}: a predictions file needs the columns {LONG_COLUMNS}; missing {missing}. "
                                  "Write it with Predictions.save.")
        return [cls.from_long(rows) for _, rows in table.groupby("seed", sort=True, dropna=False)]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Predictions":
        """Read a file written by :meth:`save` holding one seed (see :meth:`load_all` for several)."""
        sets = cls.load_all(path)
        if len(sets) != 1:
            raise PredictionError(f"{path} holds predictions for {len(sets)} seeds "
                                  f"({[p.seed for p in sets]}); read it with Predictions.load_all.")
        return sets[0]
