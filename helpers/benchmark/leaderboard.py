"""The leaderboard: per-method summaries, ratios to the baselines, spread, and the published rows beside them."""

from __future__ import annotations

import pandas as pd

from ..metrics import forest, summarise
from .tasks import Task

__all__ = ["leaderboard", "spread"]

_N_BOOT = 1000  # the leaderboard shows the mean ratio only; the interval is the chapters' job


def spread(values: pd.DataFrame, genes) -> float:
    """Mean over genes of the standard deviation across conditions."""
    return float(values[genes].std(axis=0, ddof=0).mean())


def leaderboard(task: Task, metrics: pd.DataFrame, spreads: pd.DataFrame, model_names: set[str],
                 warnings: list[str], all_methods: list[str]) -> pd.DataFrame:
    board = summarise(metrics, by=("method",))
    absent = [m for m in all_methods if m not in set(board["method"])]
    if absent:
        board = pd.concat([board, pd.DataFrame({"method": absent, "n": 0})], ignore_index=True)
    # ratios are compared on the conditions every method predicted; a method that predicts fewer than
    # half of the held-out conditions (e.g. the linear model when targets are not measured) is left out
    # of that common set and gets no ratio, with a warning (the coverage rule of metrics.forest)
    for baseline in ("mean", "additive"):
        if baseline not in set(metrics["method"]):
            continue
        table = forest(metrics, baseline, all_methods, n_boot=_N_BOOT)
        board[f"ratio_to_{baseline}"] = board["method"].map(table.set_index("method")["mean_ratio"])
        for dataset, left_out in table.attrs["left_out"].items():
            coverage = table.attrs["coverage"].loc[dataset]
            for method in left_out:
                message = (f"{method}: predicted only {coverage[method]} of {coverage.max()} held-out "
                           "(seed, condition) pairs; no ratios reported for it")
                if message not in warnings:
                    warnings.append(message)
    board = board.merge(spreads.groupby("method")["spread_ratio"].mean().reset_index(), on="method", how="left")
    board.insert(1, "source", board["method"].map(lambda m: "your model" if m in model_names else "this book"))
    board["dataset"] = task.dataset
    if task.published is not None:
        published = task.published()
        pub = summarise(published, by=("method",))
        for baseline in ("mean", "additive"):
            if baseline in set(published["method"]):
                table = forest(published, baseline, n_boot=_N_BOOT)
                pub[f"ratio_to_{baseline}"] = pub["method"].map(table.set_index("method")["mean_ratio"])
        pub.insert(1, "source", "published" if task.published_comparable else "published (other split)")
        pub["dataset"] = task.dataset
        board = pd.concat([board, pub], ignore_index=True)
    return board.sort_values("mean_l2").reset_index(drop=True)
