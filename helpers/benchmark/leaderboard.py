"""The leaderboard: per-method summaries, ratios to the baselines, spread, and the
published rows beside them."""

from __future__ import annotations

import pandas as pd

from ..metrics import common_conditions, forest, summarise
from .tasks import Task

__all__ = ["leaderboard", "spread", "common_set_means", "CHAPTER_7_COLUMNS"]

#: The leaderboard columns chapter 7 defines (the others come from chapters 8 and 9).
CHAPTER_7_COLUMNS = [
    "method",
    "source",
    "n",
    "mean_l2",
    "n_common",
    "mean_l2_common",
    "mean_pearson_delta_common",
    "median_l2",
    "mean_pearson_delta",
    "ratio_to_mean",
    "ratio_to_additive",
    "spread_ratio",
]

_N_BOOT = (
    1000  # the leaderboard shows the mean ratio only; the interval is the chapters' job
)


def spread(values: pd.DataFrame, genes) -> float:
    """Mean over genes of the standard deviation across conditions."""
    return float(values[genes].std(axis=0, ddof=0).mean())


def common_set_means(
    metrics: pd.DataFrame, methods, *, min_coverage: float = 0.5
) -> pd.DataFrame:
    """Each method's mean L2 and Pearson delta on the (dataset, seed, condition)s
    **every** method scored.

    ``mean_l2`` of :func:`helpers.metrics.summarise` averages each method over its own
    rows; where methods predicted different conditions (a linear model whose embedding
    lacks some targets) those means are over different sets and cannot be compared. The
    common set follows :func:`helpers.metrics.forest`'s coverage rule: a method that
    scored fewer than ``min_coverage`` x the best-covered method's (dataset, seed,
    condition)s is left out of the set (and gets NaN), so it does not shrink everyone's
    comparison. Returns method, n_common, mean_l2_common, mean_pearson_delta_common.
    """
    methods = [m for m in methods if m in set(metrics["method"])]
    columns = ["method", "n_common", "mean_l2_common", "mean_pearson_delta_common"]
    if not methods:
        return pd.DataFrame(columns=columns)
    keys = [k for k in ("dataset", "seed") if k in metrics.columns]
    table = metrics[metrics["method"].isin(methods)]
    coverage = (
        table.drop_duplicates([*keys, "condition", "method"]).groupby("method").size()
    )
    kept = [m for m in methods if coverage.get(m, 0) >= min_coverage * coverage.max()]
    common = common_conditions(table, kept, by=keys)
    means = common.groupby("method").agg(
        n_common=("l2", "size"),
        mean_l2_common=("l2", "mean"),
        mean_pearson_delta_common=("pearson_delta", "mean"),
    )
    return means.reindex(methods).rename_axis("method").reset_index()[columns]


def leaderboard(
    task: Task,
    metrics: pd.DataFrame,
    spreads: pd.DataFrame,
    model_names: set[str],
    warnings: list[str],
    all_methods: list[str],
) -> pd.DataFrame:
    board = summarise(metrics, by=("method",))
    absent = [m for m in all_methods if m not in set(board["method"])]
    if absent:
        board = pd.concat(
            [board, pd.DataFrame({"method": absent, "n": 0})], ignore_index=True
        )
    # ratios are compared on the conditions every method predicted; a method that
    # predicts fewer than half of the held-out conditions (e.g. the linear model when
    # targets are not measured) is left out of that common set and gets no ratio, with a
    # warning (the coverage rule of metrics.forest)
    for baseline in ("mean", "additive"):
        if baseline not in set(metrics["method"]):
            continue
        table = forest(metrics, baseline, all_methods, n_boot=_N_BOOT)
        board[f"ratio_to_{baseline}"] = board["method"].map(
            table.set_index("method")["mean_ratio"]
        )
        for dataset, left_out in table.attrs["left_out"].items():
            coverage = table.attrs["coverage"].loc[dataset]
            for method in left_out:
                message = (
                    f"{method}: predicted only {coverage[method]} of "
                    f"{coverage.max()} held-out "
                    "(seed, condition) pairs; no ratios reported for it"
                )
                if message not in warnings:
                    warnings.append(message)
    board = board.merge(common_set_means(metrics, all_methods), on="method", how="left")
    board = board.merge(
        spreads.groupby("method")["spread_ratio"].mean().reset_index(),
        on="method",
        how="left",
    )
    board.insert(
        1,
        "source",
        board["method"].map(
            lambda m: "your model" if m in model_names else "this book"
        ),
    )
    board["dataset"] = task.dataset
    if task.published is not None:
        published = task.published()
        pub = summarise(published, by=("method",))
        for baseline in ("mean", "additive"):
            if baseline in set(published["method"]):
                table = forest(published, baseline, n_boot=_N_BOOT)
                pub[f"ratio_to_{baseline}"] = pub["method"].map(
                    table.set_index("method")["mean_ratio"]
                )
        pub.insert(
            1,
            "source",
            "published" if task.published_comparable else "published (other split)",
        )
        pub["dataset"] = task.dataset
        board = pd.concat([board, pub], ignore_index=True)
    # sorted on the common set (comparable means), then the rest (published rows,
    # methods left out of the common set) by their own mean
    return board.sort_values(
        ["mean_l2_common", "mean_l2"], na_position="last"
    ).reset_index(drop=True)
