"""The command line: ``python -m helpers.benchmark --task NAME --predictions FILE.csv [--out DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..predictions import PredictionError, Predictions
from .runner import run
from .tasks import get_task, list_tasks

__all__ = ["main"]


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
        result = run(task=args.task, predictions=Predictions.load_all(args.predictions), n_top=args.n_top,
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
