"""The command line: ``python -m helpers.benchmark --task NAME --predictions FILE.csv [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..predictions import LONG_COLUMNS, PredictionError, Predictions
from .runner import run
from .tasks import get_task, list_tasks

__all__ = ["load_predictions_file", "main"]


def load_predictions_file(path) -> list[Predictions]:
    """Read a predictions CSV in the contract's format; one :class:`Predictions` per seed in it."""
    path = Path(path)
    if not path.exists():
        raise PredictionError(f"No predictions file at {path}.")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise PredictionError(f"{path} is not a readable CSV predictions file ({err}).") from None
    missing = [c for c in LONG_COLUMNS if c not in table.columns]
    if missing:
        raise PredictionError(f"{path}: a predictions file needs the columns {LONG_COLUMNS}; missing {missing}.")
    if table["seed"].isna().any():
        raise PredictionError(f"{path}: every row needs the split seed it was predicted for.")
    return [Predictions.from_long(rows) for _, rows in table.groupby("seed", sort=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.benchmark",
                                     description="Score a predictions file on a benchmark task, beside the baselines.")
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument("--task", help="task name (see --list)")
    parser.add_argument("--predictions", help="CSV with columns dataset, method, seed, condition, gene, prediction")
    parser.add_argument("--out", help="folder for metrics.csv and leaderboard.csv")
    parser.add_argument("--n-top", type=int, default=1000, help="evaluation genes: top n by control expression")
    parser.add_argument("--allow-missing", action="store_true", help="allow held-out conditions without prediction")
    args = parser.parse_args(argv)
    if args.list:
        print(list_tasks().to_string(index=False))
        return 0
    if not args.task or not args.predictions:
        parser.error("--task and --predictions are required (or --list)")
    try:
        result = run(task=args.task, predictions=load_predictions_file(args.predictions), n_top=args.n_top,
                     allow_missing=args.allow_missing)
    except (PredictionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    shown = result.leaderboard.drop(columns=["dataset"]).round(3)
    print(f"task {args.task} ({get_task(args.task).description})")
    print(shown.to_string(index=False))
    for warning in result.warnings:
        print(f"WARNING: {warning}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result.metrics.to_csv(out / "metrics.csv", index=False)
        result.leaderboard.to_csv(out / "leaderboard.csv", index=False)
        print(f"wrote {out / 'metrics.csv'} and {out / 'leaderboard.csv'}")
    return 0
