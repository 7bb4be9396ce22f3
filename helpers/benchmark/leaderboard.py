"""The leaderboard: per-method summaries, ratios to the baselines, spread, and the published rows beside them."""

from __future__ import annotations

import pandas as pd

from ..metrics import common_conditions, ratio_to_baseline, summarise
from .tasks import Task

__all__ = ["leaderboard", "spread"]


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
    # of that common set and gets no ratio, with a warning
    counts = metrics.groupby("method").size().reindex(all_methods, fill_value=0)
    covered = counts[counts >= 0.5 * counts.max()].index
    for method in counts.index.difference(covered):
        warnings.append(f"{method}: predicted only {counts[method]} of {counts.max()} held-out (seed, condition) pairs; "
                        "no ratios reported for it")
    common = common_conditions(metrics, covered)
    for baseline in ("mean", "additive"):
        if baseline in set(metrics["method"]):
            ratios = ratio_to_baseline(common, baseline).groupby("method")["ratio"].mean()
            board[f"ratio_to_{baseline}"] = board["method"].map(ratios)
    board = board.merge(spreads.groupby("method")["spread_ratio"].mean().reset_index(), on="method", how="left")
    board.insert(1, "source", board["method"].map(lambda m: "your model" if m in model_names else "this book"))
    board["dataset"] = task.dataset
    if task.published is not None:
        published = task.published()
        pub = summarise(published, by=("method",))
        for baseline in ("mean", "additive"):
            if baseline in set(published["method"]):
                ratios = ratio_to_baseline(common_conditions(published), baseline).groupby("method")["ratio"].mean()
                pub[f"ratio_to_{baseline}"] = pub["method"].map(ratios)
        pub.insert(1, "source", "published" if task.published_comparable else "published (other split)")
        pub["dataset"] = task.dataset
        board = pd.concat([board, pub], ignore_index=True)
    return board.sort_values("mean_l2").reset_index(drop=True)
