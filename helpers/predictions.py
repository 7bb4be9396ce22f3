"""The predictions contract: one format for every method (introduced in chapter 2).

Whatever a method is (a baseline, the linear model, a fine-tuned network, your own
model), it hands over a :class:`Predictions`: predicted **pseudobulk** profiles (mean
log-normalised expression, the same units as
:class:`helpers.pseudobulk.Pseudobulk.means`), one row per condition and one column per
gene, labelled with the method, the dataset and the split seed. On disk it is a tidy CSV
with columns ``dataset, method, seed, condition, gene, prediction`` (``.csv`` or
``.csv.gz``).

:func:`helpers.metrics.evaluate` is the only consumer; it checks the predictions against
the truth and the split before computing any metric.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BookError

__all__ = ["PredictionError", "Predictions", "LONG_COLUMNS"]

LONG_COLUMNS = ["dataset", "method", "seed", "condition", "gene", "prediction"]


class PredictionError(BookError, ValueError):
    """Predictions that break the contract (the message names the problem and the
    fix)."""


def _other_separator(columns) -> str | None:
    """``';'`` or a tab if a CSV's header was read as one column holding several
    names."""
    if len(columns) != 1:
        return None
    header = str(columns[0])
    for separator in (";", "\t", "|"):
        if sum(name in header.split(separator) for name in LONG_COLUMNS) >= 2:
            return separator
    return None


def _separator_message(path, separator: str) -> str:
    return (
        f"{path} is separated by {separator!r}, not by commas (as a spreadsheet "
        "with a European "
        "locale writes it): save it as comma-separated CSV with a point as the "
        "decimal mark "
        "(e.g. DataFrame.to_csv or Predictions.save)."
    )


def _check_prediction_column(table: pd.DataFrame, path) -> None:
    """Missing values and text in the ``prediction`` column, named as such with an
    example row."""
    values = table["prediction"]
    missing = values.isna()
    if missing.any():
        row = table.index[missing.to_numpy()][0]
        example = table.loc[row]
        raise PredictionError(
            f"{path}: {int(missing.sum())} missing values (empty cells or n/a) "
            "in the 'prediction' column, "
            f"e.g. line {row + 2}: condition {example['condition']!r}, gene "
            f"{example['gene']!r}. Fill "
            "them, or leave those genes out for every condition."
        )
    numbers = pd.to_numeric(values, errors="coerce")
    text = numbers.isna()
    if text.any():
        row = table.index[text.to_numpy()][0]
        value = str(values.loc[row])
        hint = (
            " It looks like a decimal comma: write numbers with a decimal point."
            if "," in value
            else ""
        )
        raise PredictionError(
            f"{path}: {int(text.sum())} values in the 'prediction' column are "
            "not numbers, e.g. line "
            f"{row + 2}: {value!r}.{hint}"
        )


@dataclass
class Predictions:
    """Predicted pseudobulk profiles of one method on one dataset and split seed."""

    values: pd.DataFrame  # conditions x genes
    method: str
    dataset: str
    seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.values, pd.DataFrame):
            raise PredictionError(
                "values must be a pandas DataFrame (conditions x genes), got "
                f"{type(self.values).__name__}."
            )
        if not self.method:
            raise PredictionError("Predictions need a method name.")
        values = self.values
        if values.index.has_duplicates:
            dup = values.index[values.index.duplicated()].unique().tolist()[:5]
            raise PredictionError(
                f"{self.method}: conditions predicted more than once: {dup}."
            )
        if values.columns.has_duplicates:
            dup = values.columns[values.columns.duplicated()].unique().tolist()[:5]
            raise PredictionError(f"{self.method}: duplicated gene columns: {dup}.")
        try:
            array = values.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise PredictionError(
                f"{self.method}: predictions must be numbers."
            ) from None
        bad = ~np.isfinite(array)
        if bad.any():
            rows, cols = np.nonzero(bad)
            examples = [
                f"{values.index[r]}/{values.columns[c]}"
                for r, c in zip(rows[:5], cols[:5])
            ]
            raise PredictionError(
                f"{self.method}: {bad.sum()} predicted values are NaN or "
                f"infinite (e.g. {examples}). "
                "Predict every gene you submit, or leave the gene out."
            )
        self.values = pd.DataFrame(
            array, index=values.index.astype(str), columns=values.columns.astype(str)
        )
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
                f"A predictions table needs the columns {LONG_COLUMNS}; missing "
                f"{missing}. "
                "Write it with Predictions.save or build it with those columns."
            )
        for key in ("dataset", "method", "seed"):
            distinct = table[key].dropna().unique()
            if len(distinct) > 1:
                raise PredictionError(
                    f"The table holds several values of {key!r} "
                    f"({list(distinct)[:5]}); split it first."
                )
        if table.duplicated(["condition", "gene"]).any():
            raise PredictionError(
                "The table has more than one prediction for some (condition, "
                "gene) pairs."
            )
        wide = table.pivot(index="condition", columns="gene", values="prediction")
        if wide.isna().any().any():
            raise PredictionError(
                "Some conditions lack predictions for some genes (every "
                "condition must cover the same genes)."
            )
        seed = table["seed"].dropna()
        return cls(
            wide,
            str(table["method"].iloc[0]),
            str(table["dataset"].iloc[0]),
            int(seed.iloc[0]) if len(seed) else None,
        )

    def renamed(self, method: str) -> "Predictions":
        """The same predictions under another method name."""
        return Predictions(self.values, method, self.dataset, self.seed)

    @classmethod
    def load_all(cls, path: str | os.PathLike) -> list["Predictions"]:
        """Read a predictions CSV (``.csv`` / ``.csv.gz``, the contract's columns): one
        :class:`Predictions` per seed in it, in seed order (rows without a seed form one
        more set)."""
        path = Path(path)
        if path.is_dir():
            raise PredictionError(
                f"{path} is a folder, not a predictions file: pass the .csv (or .h5ad "
                "of predicted cells) inside it."
            )
        if not path.exists():
            raise PredictionError(f"No predictions file at {path}.")
        try:
            table = pd.read_csv(path)
        except pd.errors.ParserError as err:
            try:
                separator = _other_separator(pd.read_csv(path, nrows=0).columns)
            except (
                pd.errors.ParserError,
                UnicodeDecodeError,
                pd.errors.EmptyDataError,
            ):
                separator = None
            if separator:
                raise PredictionError(_separator_message(path, separator)) from None
            raise PredictionError(
                f"{path} is not a readable CSV predictions file "
                f"({str(err).strip()}). Rows with more "
                "fields than the header often mean decimal commas: write numbers "
                "with a decimal "
                "point."
            ) from None
        except (UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            raise PredictionError(
                f"{path} is not a readable CSV predictions file ({err})."
            ) from None
        except OSError as err:
            raise PredictionError(f"{path} could not be read ({err}).") from None
        separator = _other_separator(table.columns)
        if separator:
            raise PredictionError(_separator_message(path, separator))
        if not isinstance(table.index, pd.RangeIndex):
            raise PredictionError(
                f"{path}: the rows have more fields than the header, which most "
                "often means decimal "
                "commas (0,5 read as two fields): write numbers with a decimal point."
            )
        missing = [c for c in LONG_COLUMNS if c not in table.columns]
        if missing:
            raise PredictionError(
                f"{path}: a predictions file needs the columns {LONG_COLUMNS}; "
                f"missing {missing}. "
                "Write it with Predictions.save."
            )
        _check_prediction_column(table, path)
        return [
            cls.from_long(rows)
            for _, rows in table.groupby("seed", sort=True, dropna=False)
        ]

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Predictions":
        """Read a file written by :meth:`save` holding one seed (see :meth:`load_all`
        for several)."""
        sets = cls.load_all(path)
        if len(sets) != 1:
            raise PredictionError(
                f"{path} holds predictions for {len(sets)} seeds "
                f"({[p.seed for p in sets]}); read it with Predictions.load_all."
            )
        return sets[0]
