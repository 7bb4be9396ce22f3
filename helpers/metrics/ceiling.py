"""Metric family ``ceiling``: the best score the data allow, and how far a method gets
(chapter 8).

Computed by :func:`helpers.ceilings.noise_ceiling` and
:func:`helpers.ceilings.normalised_scores` (formulas there). Per condition:

* ``l2_ceiling`` / ``pearson_delta_ceiling``: the agreement of two independent
  replicates of the experiment (``*_half``: of its two halves); ``l2_oracle`` /
  ``pearson_delta_oracle``: the score of the true mean, the best achievable. These are
  the same for every method (bounds from the data, role ``reference``): they are shown
  beside the methods, never compared between them.
* ``norm_l2 = (l2_base - l2) / (l2_base - l2_oracle)`` and ``norm_pearson_delta``
  likewise: 0 = the mean baseline, 1 = the oracle; higher is better.

The leaderboard's per-method columns (:func:`helpers.benchmark.beyond.board_columns`):
``ceiling_*`` and ``oracle_*`` (means of the bounds) and ``norm_*`` of the means;
:func:`helpers.ceilings.normalised_summary` adds ``norm_*_replicate`` (1 = a replicate).

This module holds the family's facts (its columns and their specs); the computation
lives in :mod:`helpers.ceilings`, which imports :mod:`helpers.metrics`, never the
reverse.
"""

from __future__ import annotations

from .spec import MetricSpec

__all__ = ["NAME", "COLUMNS", "NEEDS_CELLS", "SPECS"]

NAME = "ceiling"
COLUMNS: list[str] = [
    "l2_ceiling",
    "pearson_delta_ceiling",
    "l2_oracle",
    "pearson_delta_oracle",
    "norm_l2",
    "norm_pearson_delta",
]
NEEDS_CELLS = True


def _bound(column: str, direction: str, what: str, role: str) -> MetricSpec:
    return MetricSpec(column, NAME, direction, True, None, None, what, role=role)


SPECS = (
    _bound("l2_ceiling", "lower", "L2 of two independent replicates", "reference"),
    _bound(
        "pearson_delta_ceiling",
        "higher",
        "Pearson delta of two independent replicates",
        "reference",
    ),
    _bound("l2_oracle", "lower", "L2 of the true mean (best achievable)", "reference"),
    _bound(
        "pearson_delta_oracle",
        "higher",
        "Pearson delta of the true mean (best achievable)",
        "reference",
    ),
    MetricSpec(
        "norm_l2",
        NAME,
        "higher",
        True,
        None,
        None,
        "L2 rescaled: 0 = mean baseline, 1 = the oracle",
        perfect=1.0,
    ),
    MetricSpec(
        "norm_pearson_delta",
        NAME,
        "higher",
        True,
        None,
        None,
        "Pearson delta rescaled: 0 = mean baseline, 1 = the oracle",
        perfect=1.0,
    ),
    _bound("l2_half", "lower", "L2 of two half-size replicates", "reference"),
    _bound(
        "pearson_delta_half",
        "higher",
        "Pearson delta of two half-size replicates",
        "reference",
    ),
    _bound("ceiling_l2", "lower", "mean L2 of two replicates (board)", "reference"),
    _bound(
        "ceiling_pearson_delta",
        "higher",
        "mean Pearson delta of two replicates (board)",
        "reference",
    ),
    _bound("oracle_l2", "lower", "mean L2 of the true mean (board)", "reference"),
    _bound(
        "oracle_pearson_delta",
        "higher",
        "mean Pearson delta of the true mean (board)",
        "reference",
    ),
    _bound(
        "norm_l2_replicate",
        "higher",
        "mean L2 rescaled: 0 = mean baseline, 1 = a replicate",
        "summary",
    ),
    _bound(
        "norm_pearson_delta_replicate",
        "higher",
        "mean Pearson delta rescaled: 0 = mean baseline, 1 = a replicate",
        "summary",
    ),
)
