"""Chapter 9's table of ranks as a heatmap (``verdict.verdict_ranks`` +
``plotting.rank_heatmap``) and the stacked rank panels' metric labels
(``plotting.metric_ranks``).

The grid and its grouping are checked against a table written out by hand; the figures
are checked with ``tests/unit/test_figures.py``'s collision checker, plus a check that
the labels of one axis do not overlap each other (the metric names are vertical and the
method names horizontal, so their boxes are the letters' boxes).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers import plotting  # noqa: E402
from helpers.benchmark import verdict  # noqa: E402

from .test_figures import collisions, drawn_texts  # noqa: E402

NaN = np.nan

# the verdict's long table (family, metric, derived, direction, method, value, rank) for
# three methods and one positive control (shown, never ranked), by hand
_ROWS = [
    # family, metric, derived, {method: (value, rank)}
    ("paper", "l2", False, {"no_change": (1.4, 2), "additive": (0.5, 1),
                            "mean": (1.5, 3), "split_half_replicate": (0.4, NaN)}),
    ("paper", "pearson_delta", False, {"no_change": (NaN, NaN), "additive": (0.8, 1),
                                       "mean": (0.2, 2),
                                       "split_half_replicate": (0.9, NaN)}),
    ("systema", "centroid_accuracy", False, {"no_change": (0.5, 2),
                                             "additive": (1.0, 1), "mean": (0.5, 2),
                                             "split_half_replicate": (1.0, NaN)}),
    ("calibrated", "book_drf_l2", True, {"no_change": (0.0, 2), "additive": (0.6, 1),
                                        "mean": (-0.1, 3),
                                        "split_half_replicate": (0.7, NaN)}),
    ("vcc", "replicate_score_vcc", True, {"no_change": (0.0, 2), "additive": (0.9, 1),
                                          "mean": (NaN, NaN),
                                          "split_half_replicate": (1.0, NaN)}),
]  # fmt: skip
LONG = pd.DataFrame(
    [
        {
            "family": family,
            "metric": metric,
            "derived": derived,
            "direction": "lower" if metric == "l2" else "higher",
            "method": method,
            "value": value,
            "rank": rank,
        }
        for family, metric, derived, cells in _ROWS
        for method, (value, rank) in cells.items()
    ]
)
# what the heatmap must show: rows grouped by family, derived summaries in their own
# groups, the control left out
EXPECTED = pd.DataFrame(
    [[2, 1, 3], [NaN, 1, 2], [2, 1, 2], [2, 1, 3], [2, 1, NaN]],
    index=pd.MultiIndex.from_tuples(
        [
            ("paper", "l2"),
            ("paper", "pearson_delta"),
            ("systema", "centroid_accuracy"),
            ("calibrated (derived)", "book_drf_l2"),
            ("vcc (derived)", "replicate_score_vcc"),
        ],
        names=["group", "metric"],
    ),
    columns=["no_change", "additive", "mean"],
    dtype=float,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _same_axis_overlaps(fig) -> list[str]:
    """Tick labels of one axis whose drawn boxes overlap (more than half a pixel)."""
    drawn = {id(t) for t in drawn_texts(fig)}
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [
                t
                for tick in axis.get_major_ticks()
                for t in (tick.label1, tick.label2)
                if id(t) in drawn
            ]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for i, (a, box_a) in enumerate(boxes):
                for b, box_b in boxes[i + 1 :]:
                    dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
                    dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
                    if dx > 0.5 and dy > 0.5:
                        found.append(f"{a!r} overlaps {b!r}")
    return found


def test_verdict_ranks_groups_by_family_and_leaves_controls_out():
    pd.testing.assert_frame_equal(verdict.verdict_ranks(LONG), EXPECTED)


def test_heatmap_shows_each_rank_in_its_cell_and_names_the_groups():
    ax = plotting.rank_heatmap(EXPECTED, "norman2019_subset")
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}  # fmt: skip
    for i in range(EXPECTED.shape[0]):
        for j in range(EXPECTED.shape[1]):
            v = EXPECTED.iloc[i, j]
            assert texts[(i, j)] == ("n/a" if np.isnan(v) else f"{v:.0f}"), (i, j)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(
        EXPECTED.index.get_level_values("metric")
    )
    (right,) = [a for a in ax.child_axes]
    groups = [t.get_text() for t in right.get_yticklabels()]
    assert groups == ["paper", "systema", "calibrated (derived)", "vcc (derived)"]
    # each group's label sits at the middle of its rows: paper rows 0-1, then 2, 3, 4
    assert list(right.get_yticks()) == [0.5, 2.0, 3.0, 4.0]
    method_names = [t.get_text().replace("\n", "") for t in ax.get_xticklabels()]
    assert method_names == list(EXPECTED.columns)


def test_heatmap_of_the_chapters_size_has_no_collisions():
    metrics = [
        "l2", "pearson_delta", "r", "pearson_delta_perturbed_mean",
        "centroid_accuracy", "weighted_mse", "r2_delta_weighted", "mae",
        "discrimination_score_l1", "de_overlap_vcc", "planted_pearson",
        "book_drf_weighted_mse", "book_drf_r2_delta_weighted",
        "replicate_score_discrimination_score_l1", "replicate_score_vcc",
    ]  # fmt: skip
    groups = ["paper"] * 3 + ["systema"] * 2 + ["calibrated"] * 2 + ["vcc"] * 3
    groups += ["planted truth"] + ["calibrated (derived)"] * 2 + ["vcc (derived)"] * 2
    methods = ["no_change", "additive", "mean", "linear", "gears",
               "tiny_transformer", "linear_P_other_screen"]  # fmt: skip
    rng = np.random.default_rng(0)
    ranks = pd.DataFrame(
        [rng.permutation(len(methods)) + 1.0 for _ in metrics],
        index=pd.MultiIndex.from_arrays([groups, metrics]),
        columns=methods,
    )
    # the book's longest data label
    fig = plotting.rank_heatmap(ranks, "norman2019").figure
    assert fig.get_figwidth() <= 9.5
    assert not collisions(fig), collisions(fig)
    assert not _same_axis_overlaps(fig), _same_axis_overlaps(fig)


def test_rank_panels_metric_labels_do_not_collide():
    # the chapter's tasks with the book's longest metric names; the real one lacks the
    # planted truth's metric, which the simulated one has after its per-condition ones
    names = {
        "l2": "l2",
        "pearson_delta": "pearson_delta_perturbed_mean",
        "centroid_accuracy": "replicate_score_discrimination_score_l1",
        "book_drf_l2": "book_drf_r2_delta_weighted",
        "replicate_score_vcc": "replicate_score_de_overlap_vcc",
    }
    real = LONG.assign(metric=LONG["metric"].map(names))
    planted = real[real["metric"] == "l2"].assign(
        family="planted truth", metric="planted_pearson", derived=False
    )
    sim = pd.concat([real.iloc[:12], planted, real.iloc[12:]], ignore_index=True)
    fig = plotting.metric_ranks(
        {
            "Ranks by metric: real": (real, "norman2019_subset"),
            "Ranks by metric: simulated": (sim, "simulated_simK562"),
        }
    )
    assert not collisions(fig), collisions(fig)
    assert not _same_axis_overlaps(fig), _same_axis_overlaps(fig)
    # one shared axis, labelled under the last panel: every metric of both panels once
    shown = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert shown == [
        "l2",
        "pearson_delta_perturbed_mean",
        "replicate_score_discrimination_score_l1",
        "planted_pearson",
        "book_drf_r2_delta_weighted",
        "replicate_score_de_overlap_vcc",
    ]


def test_the_overlap_check_finds_crowded_labels():
    # the rank panels as they were: 35-degree labels of 19 long names, 9 inches wide
    fig, ax = plt.subplots(figsize=(4, 3))
    names = [f"replicate_score_metric_{i}" for i in range(19)]
    ax.set_xticks(range(19), names, rotation=0, fontsize=7)
    assert _same_axis_overlaps(fig)
