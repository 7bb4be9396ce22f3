"""Figures shared by the chapters (introduced in chapter 1). Every figure is titled with
its dataset.

Side-by-side panels come from :func:`panels`; :func:`titled` places each panel's data
label so that no two titles collide: one figure-level label above the row when every
panel shows the same data, otherwise a label under each panel's title, every line
wrapped to its panel's width.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath
from matplotlib.ticker import MaxNLocator

from .profiles import dataset_label

__all__ = [
    "panels",
    "titled",
    "place_labels",
    "wrap",
    "cells_per_condition",
    "delta_heatmap",
    "strongest_changes",
    "strip_plot",
    "prediction_scatter",
    "error_curves",
    "forest_plot",
    "interaction_cartoon",
    "null_fit_plot",
    "qq_plot",
    "tpr_fdp_plot",
    "class_mosaic",
    "similarity_heatmap",
    "rank_lines",
    "metric_ranks",
    "rank_heatmap",
]

TITLE_SIZE = 10
_KEY = "_perturbbook_title"  # (title, data label) that titled() stored on an Axes
# share of a panel's width (the figure's, for the shared label) a title line may take
_FILL = 0.86


def panels(n: int, *, width: float = 4.5, height: float = 3.6):
    """A row of ``n`` side-by-side panels (``fig, axes``) for the helpers' ``ax=``.

    Constrained layout keeps titles, the figure-level data label, tick labels and colour
    bars apart; :func:`titled` decides where the data label goes. ``width``: inches per
    panel.

    ``height``: the height of the row in inches.
    """
    fig, axes = plt.subplots(
        1, n, figsize=(width * n, height), layout="constrained", squeeze=False
    )
    return fig, axes[0]


def _text_width(text: str, size: float) -> float:
    """Width in inches of one line of ``text`` at ``size`` points (default font)."""
    path = TextPath((0, 0), text, size=size, prop=FontProperties())
    return path.get_extents().width / 72


def wrap(text: str, width: float, size: float = TITLE_SIZE) -> str:
    """``text`` broken at spaces into lines at most ``width`` inches wide (a single
    longer word stays whole)."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and _text_width(candidate, size) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return "\n".join(lines)


def _panel_width(ax) -> float:
    """Inches of figure width the panel's grid cell(s) get (the axes alone are narrower:
    they shrink for their labels)."""
    fig_width = ax.figure.get_figwidth()
    spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    if spec is None:
        return ax.get_position().width * fig_width
    return fig_width * len(spec.colspan) / spec.get_gridspec().ncols


def titled(ax, title: str, dataset: str) -> None:
    """Title a panel with what it shows and the data it comes from (a registry name,
    labelled by :func:`helpers.profiles.dataset_label`, or a free-text source).

    The one place a figure's data label is set. A single panel gets a two-line title
    (what, then which data). When several panels of a figure are titled, each call
    re-places every label of the figure: one data label shared by all panels becomes the
    figure's suptitle, different ones stay under each panel's title; every line is
    wrapped to fit its panel, so side-by-side titles never run into each other.

    ``ax``: the axes; ``dataset``: the data's name, written under the title.
    """
    setattr(ax, _KEY, (title, dataset_label(dataset)))
    place_labels(ax.figure)


def _panel_title(ax, title: str) -> None:
    """A title without a data label (for panels that label their data elsewhere, e.g. in
    a legend), wrapped like :func:`titled`'s."""
    setattr(ax, _KEY, (title, None))
    place_labels(ax.figure)


def place_labels(fig) -> None:
    """(Re-)place the titles and data labels :func:`titled` stored on ``fig``'s axes."""
    titled_axes = [ax for ax in fig.axes if getattr(ax, _KEY, None)]
    labelled = [getattr(ax, _KEY)[1] for ax in titled_axes]
    labelled = [label for label in labelled if label is not None]
    labels = set(labelled)
    shared = len(labelled) > 1 and len(labels) == 1
    for ax in titled_axes:
        title, label = getattr(ax, _KEY)
        width = _FILL * _panel_width(ax)
        text = wrap(title, width)
        if label is not None and not shared:
            text += "\n" + wrap(label, width)
        ax.set_title(text, fontsize=TITLE_SIZE)
    if shared:
        label = wrap(next(iter(labels)), _FILL * fig.get_figwidth())
        fig.suptitle(label, fontsize=TITLE_SIZE)
        fig._perturbbook_suptitle = True
    elif getattr(fig, "_perturbbook_suptitle", False):  # a label placed here earlier
        fig.suptitle("")  # no longer applies
        fig._perturbbook_suptitle = False


def cells_per_condition(table: pd.DataFrame, dataset: str, ax=None):
    """Horizontal bars of the number of cells per condition, coloured by kind (control /
    single / double).

    ``table``: one row per condition (columns condition, n_cells, kind); ``dataset``:
    the data's name (in the title); ``ax``: the axes (a new figure if None).
    """
    ax = ax or plt.subplots(figsize=(6, max(3, 0.18 * len(table))))[1]
    colours = {"control": "0.3", "single": "tab:blue", "double": "tab:orange"}
    ax.barh(
        table["condition"],
        table["n_cells"],
        color=[colours.get(k, "tab:gray") for k in table["kind"]],
    )
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("cells")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, colours.keys(), loc="lower right", fontsize=8)
    titled(ax, "Cells per condition", dataset)
    return ax


def strongest_changes(
    delta: pd.DataFrame, n_genes: int = 30, n_conditions: int | None = None
) -> pd.DataFrame:
    """The genes with the largest mean |delta| across conditions (control row dropped).

    ``n_genes``: how many genes; ``n_conditions``: keep only the conditions with the
    largest changes (default: all).
    """
    delta = delta.drop(index="ctrl", errors="ignore")
    if n_conditions is not None:
        delta = delta.loc[delta.abs().mean(axis=1).nlargest(n_conditions).index]
    genes = delta.abs().mean(axis=0).nlargest(n_genes).index
    return delta[genes]


def delta_heatmap(
    delta: pd.DataFrame,
    dataset: str,
    ax=None,
    *,
    title: str = "Change vs control (log1p units)",
):
    """Heatmap of a conditions x genes table of changes, symmetric colour scale around
    0.

    ``delta``: the conditions x genes table; ``dataset``: the data's name (in the
    title); ``ax``: the axes (a new figure if None); ``title``: the panel title.
    """
    ax = (
        ax
        or plt.subplots(
            figsize=(0.25 * delta.shape[1] + 2, 0.2 * delta.shape[0] + 1.5)
        )[1]
    )
    limit = float(np.nanmax(np.abs(delta.to_numpy()))) or 1.0
    image = ax.imshow(
        delta.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto"
    )
    ax.set_xticks(range(delta.shape[1]), delta.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(delta.shape[0]), delta.index, fontsize=7)
    ax.figure.colorbar(image, ax=ax, shrink=0.6, label="pseudobulk - ctrl")
    titled(ax, title, dataset)
    return ax


def strip_plot(
    metrics: pd.DataFrame,
    dataset: str,
    *,
    value: str = "l2",
    ax=None,
    order=None,
    title: str | None = None,
    source_col: str | None = None,
):
    """The paper's Fig. 1a style: one jittered point per (perturbation, seed), a red
    bar at each method's mean, and a dashed line at the best mean. Methods from a
    ``source == "published"`` column are marked.

    ``metrics``: the per-perturbation metrics; ``dataset``: the data's name (in the
    title); ``value``: the metric column drawn; ``ax``: the axes (a new figure if None);
    ``order``: the methods' order; ``title``: the panel title; ``source_col``: the
    column that marks published rows.
    """
    from .published import method_label

    table = metrics.dropna(subset=[value])
    means = table.groupby("method")[value].mean()
    order = list(order) if order is not None else list(means.sort_values().index)
    ax = ax or plt.subplots(figsize=(1.0 * len(order) + 2, 3.8))[1]
    rng = np.random.default_rng(0)
    for i, method in enumerate(order):
        values = table.loc[table["method"] == method, value].to_numpy()
        if len(values) == 0:
            continue
        published = (
            source_col
            and (table.loc[table["method"] == method, source_col] == "published").any()
        )
        ax.scatter(
            i + rng.uniform(-0.28, 0.28, len(values)),
            values,
            s=6,
            alpha=0.45,
            color="tab:gray" if published else "tab:blue",
            linewidths=0,
        )
        ax.hlines(values.mean(), i - 0.35, i + 0.35, color="red", linewidth=2.5)
    best = min(means[m] for m in order if m in means)
    ax.axhline(best, color="black", linestyle="--", linewidth=0.8)
    labels = []
    for m in order:
        published = (
            source_col
            and (table.loc[table["method"] == m, source_col] == "published").any()
        )
        labels.append(method_label(m) + ("\n(published)" if published else ""))
    ax.set_xticks(range(len(order)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(
        {"l2": "prediction error (L2)", "pearson_delta": "Pearson delta"}.get(
            value, value
        )
    )
    titled(ax, title or f"{value} per held-out perturbation (red: mean)", dataset)
    return ax


def prediction_scatter(
    prediction: pd.Series,
    observed: pd.Series,
    ctrl: pd.Series,
    *,
    dataset: str,
    method: str,
    condition: str,
    ax=None,
):
    """The paper's Fig. 1b style: predicted vs observed expression per gene, control as
    reference.

    ``prediction``, ``observed`` and ``ctrl``: expression per gene of one condition
    (predicted, observed) and of the control; ``dataset``, ``method``, ``condition``:
    named in the title; ``ax``: the axes (a new figure if None).
    """
    from .metrics import l2, pearson_delta

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    ax.scatter(
        observed,
        prediction,
        s=5,
        alpha=0.5,
        label="prediction",
        color="tab:blue",
        linewidths=0,
    )
    ax.scatter(
        observed, ctrl, s=5, alpha=0.3, label="control", color="tab:gray", linewidths=0
    )
    lims = [
        min(observed.min(), prediction.min()),
        max(observed.max(), prediction.max()),
    ]
    ax.plot(lims, lims, color="black", linewidth=0.6)
    ax.set_xlabel("observed (log1p)")
    ax.set_ylabel("predicted (log1p)")
    ax.legend(fontsize=7, loc="upper left")
    pd_ = pearson_delta(prediction, observed, ctrl)
    titled(
        ax,
        f"{condition}: {method}, L2 = {l2(prediction, observed):.2f}, Pearson "
        f"delta = {pd_:.2f}",
        dataset,
    )
    return ax


def error_curves(curves: pd.DataFrame, dataset: str, ax=None):
    """Mean L2 over the top-n genes against n, one line per method (and per gene
    ordering).

    ``curves``: the error-vs-top-n table; ``dataset``: the data's name (in the title);
    ``ax``: the axes (a new figure if None).
    """
    from .published import method_label

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    mean = curves.groupby(["method", "sorted_by", "n"])["l2"].mean().reset_index()
    styles = {"control": "-", "de": "--"}
    for (method, order), rows in mean.groupby(["method", "sorted_by"]):
        ax.plot(
            rows["n"],
            rows["l2"],
            styles.get(order, ":"),
            label=f"{method_label(method)} ({order})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("number of genes considered (top n)")
    ax.set_ylabel("mean L2")
    ax.legend(fontsize=7)
    titled(
        ax,
        "Error vs number of genes (solid: by control expr., dashed: by observed "
        "change)",
        dataset,
    )
    return ax


def forest_plot(
    forest: pd.DataFrame,
    dataset_labels: dict | None = None,
    *,
    order=None,
    ax=None,
    title: str = "Error relative to the mean baseline (mean ratio, 95% bootstrap CI)",
    xlabel: str = "L2 / L2 of the mean baseline (lower is better)",
):
    """The paper's Fig. 2c: one row per method, one column of points per dataset, ratio
    1 = as good as "mean".

    ``forest``: output of :func:`helpers.metrics.bootstrap_mean_ratio` (columns dataset,
    method, mean_ratio, lower, upper; an optional ``source`` column marks published
    rows).

    ``dataset_labels``: dataset -> column label; ``order``: the methods' order (rows);
    ``ax``: the axes (a new figure if None); ``title``: the panel title; ``xlabel``:
    the x axis' label.
    """
    from .published import method_label

    datasets = list(dict.fromkeys(forest["dataset"]))
    order = (
        list(order)
        if order is not None
        else list(
            forest.groupby("method")["mean_ratio"]
            .mean()
            .sort_values(ascending=False)
            .index
        )
    )
    ax = ax or plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))[1]
    offsets = np.linspace(-0.25, 0.25, len(datasets)) if len(datasets) > 1 else [0.0]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for d, (dataset, offset) in enumerate(zip(datasets, offsets)):
        rows = forest[forest["dataset"] == dataset].set_index("method")
        ys = [i + offset for i, m in enumerate(order) if m in rows.index]
        ms = [m for m in order if m in rows.index]
        label = (dataset_labels or {}).get(dataset, dataset_label(dataset))
        ax.errorbar(
            rows.loc[ms, "mean_ratio"],
            ys,
            xerr=[
                rows.loc[ms, "mean_ratio"] - rows.loc[ms, "lower"],
                rows.loc[ms, "upper"] - rows.loc[ms, "mean_ratio"],
            ],
            fmt="o",
            ms=4,
            capsize=2,
            color=colours[d % len(colours)],
            label=label,
        )
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    labels = []
    for m in order:
        published = (
            "source" in forest
            and (forest.loc[forest["method"] == m, "source"] == "published").all()
        )
        labels.append(method_label(m) + (" (published)" if published else ""))
    ax.set_yticks(range(len(order)), labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, loc="best")
    _panel_title(ax, title)
    return ax


def figure1_beside(table: pd.DataFrame, ax=None):
    """The paper's Figure 1 recomputed (:func:`helpers.benchmark.figure1.table`): per
    row, the published model's mean L2 ratio to no change and the book's, one colour
    per data set, the book's method named in the row label.

    ``table``: the output of :func:`helpers.benchmark.figure1.table`; ``ax``: the axes
    (a new figure if None).
    """
    book = (
        table[table["source"] == "this book"]
        .groupby("row")["method"]
        .agg(lambda s: ", ".join(dict.fromkeys(s)))
    )
    rows = list(dict.fromkeys(table["row"]))
    published = table[table["source"] == "published"].set_index("row")["method"]
    label = {
        r: r
        if r not in book.index or book[r] == published.get(r)
        else f"{r} (book: {book[r]})"
        for r in rows
    }
    forest = table.assign(method=table["row"].map(label), dataset=table["data"])
    return forest_plot(
        forest,
        {d: d for d in forest["dataset"]},
        order=[label[r] for r in rows][::-1],
        ax=ax,
        title="Figure 1 recomputed: each model's L2 over no change's, per held-out "
        "double (mean, 95% bootstrap CI)",
        xlabel="L2 / L2 of no change (lower is better)",
    )


def interaction_cartoon(ax=None):
    """The paper's Fig. 1d idea drawn by code: control, the two singles, the additive
    expectation, and where a double lands for each class (buffering, synergy, opposite).

    ``ax``: the axes (a new figure if None).
    """
    ax = ax or plt.subplots(figsize=(6.5, 3))[1]
    ctrl, a, b = 1.0, 1.6, 1.8
    additive = a + b - ctrl
    positions = {"ctrl": ctrl, "A": a, "B": b, "A + B - ctrl\n(additive)": additive}
    for i, (label, value) in enumerate(positions.items()):
        ax.bar(i, value, color="0.6" if i < 3 else "0.3")
        ax.text(i, value + 0.05, label, ha="center", va="bottom", fontsize=8)
    outcomes = {
        "buffering": (ctrl + additive) / 2,
        "synergy": additive + 0.9,
        "opposite": ctrl - 0.5,
    }
    colours = {"buffering": "tab:blue", "synergy": "tab:red", "opposite": "tab:purple"}
    for j, (label, value) in enumerate(outcomes.items()):
        x = 4 + j
        ax.bar(x, value, color=colours[label])
        ax.text(x, value + 0.05, f"AB:\n{label}", ha="center", va="bottom", fontsize=8)
    ax.axhline(ctrl, color="black", linewidth=0.7, linestyle=":")
    ax.axhline(additive, color="0.3", linewidth=0.7, linestyle="--")
    ax.set_xticks([])
    ax.set_ylabel("expression of one gene")
    ax.set_ylim(0, additive + 1.6)
    _panel_title(ax, "Interaction classes of a double A+B for one gene (schematic)")
    return ax


def null_fit_plot(fit, dataset: str, ax=None):
    """Histogram density of the deviations with the fitted mixture and the
    empirical-null component.

    ``fit``: the empirical-null fit (:func:`helpers.interactions.fit_empirical_null`);
    ``dataset``: the data's name (in the title); ``ax``: the axes (a new figure if
    None).
    """
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    table = fit.density
    width = table["centre"].iloc[1] - table["centre"].iloc[0]
    ax.bar(
        table["centre"],
        table["count"] / (table["count"].sum() * width),
        width=width,
        color="0.8",
        label="observed",
    )
    ax.plot(
        table["centre"],
        table["mixture_density"],
        color="black",
        linewidth=1,
        label="fitted mixture f",
    )
    ax.plot(
        table["centre"],
        table["null_density"],
        color="tab:red",
        linewidth=1,
        label=f"null p0 N({fit.mean:.3f}, {fit.sd:.3f}²), p0 = {fit.proportion:.2f}",
    )
    for t in (fit.lower, fit.upper):
        ax.axvline(t, color="tab:blue", linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    observed = table["count"] / (table["count"].sum() * width)
    ax.set_ylim(max(1e-3, 0.3 * observed[observed > 0].min()), 5 * observed.max())
    ax.set_xlabel("deviation from additive, d = AB - (A + B - ctrl)")
    ax.set_ylabel("density (log scale)")
    ax.legend(fontsize=7)
    titled(ax, f"Empirical null; thresholds {fit.lower:.3f} / {fit.upper:.3f}", dataset)
    return ax


def qq_plot(fit, dataset: str, ax=None, *, max_points: int = 5000):
    """Quantiles of the deviations against those of the fitted null normal.

    ``fit``: the empirical-null fit (:func:`helpers.interactions.fit_empirical_null`);
    ``dataset``: the data's name (in the title); ``ax``: the axes (a new figure if
    None); ``max_points``: at most this many quantiles are drawn.
    """
    from scipy import stats

    ax = ax or plt.subplots(figsize=(4, 4))[1]
    values = np.sort(fit.values)
    idx = np.unique(
        np.linspace(0, len(values) - 1, min(max_points, len(values))).astype(int)
    )
    probs = (idx + 0.5) / len(values)
    theoretical = stats.norm.ppf(probs, fit.mean, fit.sd)
    ax.scatter(theoretical, values[idx], s=3, color="tab:blue")
    lims = [values.min(), values.max()]
    ax.plot(lims, lims, color="black", linewidth=0.7)
    ax.set_xlabel("quantile of the fitted null")
    ax.set_ylabel("observed quantile of d")
    titled(ax, "QQ plot of deviations vs the empirical null", dataset)
    return ax


def tpr_fdp_plot(
    curves: pd.DataFrame,
    dataset: str,
    ax=None,
    *,
    title: str = "Finding interactions: TPR vs FDP",
):
    """True-positive rate against false-discovery proportion, one line per method
    (``source`` marks published).

    ``curves``: columns method, fdp, tpr (and ``source``); ``dataset``: the data's name
    (in the title); ``ax``: the axes (a new figure if None); ``title``: the panel title.
    """
    from .published import method_label

    ax = ax or plt.subplots(figsize=(5, 3.8))[1]
    for method, rows in curves.groupby("method", sort=False):
        mean = rows.groupby("fdp")["tpr"].mean()
        published = "source" in rows and (rows["source"] == "published").all()
        ax.plot(
            mean.index,
            mean.values,
            linestyle="--" if published else "-",
            label=method_label(method) + (" (published)" if published else ""),
        )
    ax.set_xlabel("false-discovery proportion")
    ax.set_ylabel("true-positive rate")
    ax.legend(fontsize=7)
    titled(ax, title, dataset)
    return ax


def class_mosaic(
    composition: pd.DataFrame,
    dataset: str,
    ax=None,
    *,
    title: str = "Predicted class of the top predictions",
):
    """Stacked bars: share of buffering / opposite / synergy among each method's top-k
    predicted interactions.

    ``composition``: :func:`helpers.interactions.top_k_composition`'s table;
    ``dataset``: the data's name (in the title); ``ax``: the axes (a new figure if
    None); ``title``: the panel title.
    """
    from .published import method_label

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    colours = {"buffering": "tab:blue", "opposite": "tab:purple", "synergy": "tab:red"}
    table = composition.set_index("method")
    shares = table[list(colours)].div(table[list(colours)].sum(axis=1), axis=0)
    bottom = np.zeros(len(shares))
    for cls, colour in colours.items():
        ax.bar(range(len(shares)), shares[cls], bottom=bottom, color=colour, label=cls)
        bottom += shares[cls].to_numpy()
    labels = [
        method_label(m)
        + (
            " (published)"
            if "source" in table and table.loc[m, "source"] == "published"
            else ""
        )
        for m in shares.index
    ]
    ax.set_xticks(range(len(shares)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share of top predictions")
    ax.legend(fontsize=7, loc="upper right")
    titled(ax, title, dataset)
    return ax


def similarity_heatmap(
    similarity: pd.DataFrame,
    dataset: str,
    ax=None,
    *,
    title: str = "Predicted vs observed change: correlation",
):
    """Heatmap of a predicted x observed correlation matrix
    (:func:`helpers.retrieval.similarity_matrix`), colour scale -1 to 1; the image is
    ``ax.images[0]`` (for a shared colour bar).

    ``similarity``: the matrix; ``dataset``: the data's name (in the title); ``ax``:
    the axes (a new figure if None); ``title``: the panel title.
    """
    ax = ax or plt.subplots(figsize=(4.5, 3.8), layout="constrained")[1]
    ax.imshow(similarity.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    columns, rows = list(similarity.columns), list(similarity.index)
    ax.set_xticks(range(len(columns)), columns, rotation=60, fontsize=7, ha="right")
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel("observed change")
    ax.set_ylabel("predicted change")
    titled(ax, title, dataset)
    return ax


def rank_lines(
    ranked: pd.DataFrame,
    dataset: str,
    ax=None,
    *,
    title: str = "Ranking of methods by metric",
):
    """One line per method (rows of ``ranked``) through its rank by each metric
    (columns), 1 = best, on top.

    ``dataset``: the data's name (in the title); ``ax``: the axes (a new figure if
    None); ``title``: the panel title.
    """
    from .published import method_label

    ax = ax or plt.subplots(figsize=(5, 3.4), layout="constrained")[1]
    positions = range(ranked.shape[1])
    for method, values in ranked.iterrows():
        ax.plot(positions, values.to_numpy(), marker="o", label=method_label(method))
    ax.set_xticks(positions, list(ranked.columns), rotation=30, fontsize=7, ha="right")
    ax.invert_yaxis()
    ax.set_ylabel("rank (1 = best)")
    titled(ax, title, dataset)
    return ax


def _metric_order(lists) -> list[str]:
    """One order of every metric of several panels: each list's order is kept, a metric
    missing from the order so far goes right after its predecessor in its own list."""
    order: list[str] = []
    for metrics in lists:
        for i, metric in enumerate(metrics):
            if metric in order:
                continue
            before = metrics[i - 1] if i else None
            position = order.index(before) + 1 if before in order else len(order)
            order.insert(position, metric)
    return order


def _groups(labels) -> list[tuple[str, int, int]]:
    """Consecutive runs of equal ``labels``: (label, first position, last position)."""
    runs: list[tuple[str, int, int]] = []
    for i, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], i)
        else:
            runs.append((label, i, i))
    return runs


def metric_ranks(tables: dict[str, tuple[pd.DataFrame, str]], *, width: float = 9.0):
    """How the ranking of the methods moves from metric to metric (chapter 9): one panel
    per task, stacked, x = metrics grouped by family, y = rank (1 = best), one line per
    method.

    ``tables``: title -> (the long table of :func:`helpers.benchmark.verdict.verdict`,
    dataset). Unranked values (positive controls, undefined metrics) are not drawn.
    Panels are stacked, not side by side, so each keeps its own data label under its
    title. All panels share one x axis (every metric of every panel, in family order, a
    metric a panel lacks left empty there); its labels are written once, under the
    last panel, vertically, so that neighbouring names cannot run into each other; the
    families are named above the first panel.

    ``width``: the figure width in inches.
    """
    ranked = {title: long[long["rank"].notna()] for title, (long, _) in tables.items()}
    metrics = _metric_order(
        [list(dict.fromkeys(part["metric"])) for part in ranked.values()]
    )
    family = {}
    for part in ranked.values():
        first = part.drop_duplicates("metric").set_index("metric")
        derived = (
            first["derived"].astype(bool)
            if "derived" in first
            else pd.Series(False, index=first.index)
        )
        names = first["family"].astype(str)
        family |= names.where(~derived, names + " (derived)").to_dict()
    groups = _groups([family[m] for m in metrics])
    fig, axes = plt.subplots(
        len(tables),
        1,
        figsize=(width, 2.6 * len(tables) + 2.2),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    position = {m: i for i, m in enumerate(metrics)}
    for ax, (title, (_, dataset)) in zip(axes[:, 0], tables.items()):
        for method, part in ranked[title].groupby("method", sort=False):
            x = part["metric"].map(position).to_numpy()
            order = np.argsort(x)
            ax.plot(x[order], part["rank"].to_numpy()[order], marker="o", label=method)
        for _, first, _last in groups[1:]:
            ax.axvline(first - 0.5, color="0.8", lw=0.8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.invert_yaxis()
        ax.set_ylabel("rank (1 = best)")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        titled(ax, title, dataset)
    bottom = axes[-1, 0]
    bottom.set_xticks(range(len(metrics)), metrics, rotation=90, fontsize=7)
    bottom.set_xlim(-0.5, len(metrics) - 0.5)
    top = axes[0, 0].secondary_xaxis("top")
    slot = (width - 2.4) / max(
        len(metrics), 1
    )  # inches per metric (axes ~ width - 2.4)
    top.set_xticks(
        [(first + last) / 2 for _, first, last in groups],
        [
            wrap(name, 0.9 * slot * (last - first + 1), 7)
            for name, first, last in groups
        ],
        fontsize=7,
    )
    top.tick_params(length=0)
    return fig


def _wrap_name(name: str, width: float, size: float) -> str:
    """``name`` broken after underscores into lines at most ``width`` inches wide (a
    single longer piece stays whole)."""
    pieces = [p for p in name.replace("_", "_\n").split("\n") if p]
    lines: list[str] = []
    for piece in pieces:
        if lines and _text_width(lines[-1] + piece, size) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    return "\n".join(lines)


def rank_heatmap(
    ranks: pd.DataFrame,
    dataset: str,
    ax=None,
    *,
    title: str = "Rank of each method by each metric (1 = best)",
):
    """The ranks of every method under every metric as a grid (chapter 9): rows =
    metrics grouped by family (the groups named on the right, separated by lines),
    columns = methods, each cell coloured by and labelled with the rank; ``n/a`` where
    the metric is undefined for the method.

    ``ranks``: :func:`helpers.benchmark.verdict.verdict_ranks`' grid (rows (group,
    metric), columns methods); ``dataset``: the data's name (in the title); ``ax``: the
    axes (a new figure sized to the grid if None); ``title``: the panel title. The
    values behind the ranks are in the verdict table the chapter saves.
    """
    n_rows, n_cols = ranks.shape
    column_width = min(0.95, 4.6 / max(n_cols, 1))  # the figure stays 9 inches wide
    if ax is None:
        size = (2.9 + column_width * n_cols + 1.5, 1.7 + 0.27 * n_rows)
        ax = plt.subplots(figsize=size, layout="constrained")[1]
    values = ranks.to_numpy(dtype=float)
    top = np.nanmax(values) if np.isfinite(values).any() else 1.0
    cmap = plt.get_cmap("YlGn_r").with_extremes(bad="0.92")
    ax.imshow(
        np.ma.masked_invalid(values),
        cmap=cmap,
        vmin=1,
        vmax=max(top, 2.0),
        aspect="auto",
    )
    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i, j]
            shade = (v - 1) / max(top - 1, 1) if np.isfinite(v) else 1.0
            ax.text(
                j,
                i,
                f"{v:.0f}" if np.isfinite(v) else "n/a",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shade < 0.45 else ("0.45" if np.isnan(v) else "black"),
            )
    metrics = list(ranks.index.get_level_values(-1))
    groups = _groups(list(ranks.index.get_level_values(0)))
    ax.set_yticks(range(n_rows), metrics, fontsize=8)
    names = [_wrap_name(str(m), column_width * 0.9, 8) for m in ranks.columns]
    ax.set_xticks(range(n_cols), names, fontsize=8)
    ax.tick_params(length=0)
    for _, first, _last in groups[1:]:
        ax.axhline(first - 0.5, color="white", lw=3)
    right = ax.secondary_yaxis("right")
    right.set_yticks(
        [(first + last) / 2 for _, first, last in groups],
        [name for name, _, _ in groups],
        fontsize=8,
    )
    right.tick_params(length=0)
    titled(ax, title, dataset)
    return ax
