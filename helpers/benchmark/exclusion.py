"""Does the perturbed gene's own transcript decide the ranking of the methods?
(chapter 9)

A perturbation changes its own target most (CRISPRi knocks it down, CRISPRa raises it).
Where the target is measured, one gene can carry a correlation across genes, a
retrieval or a top-DE list, and several 2025 papers (Wong et al., Csendes et al., the
PEREGGRN authors) show that including it can flip such rankings. The metrics accept
``exclude_target=True`` (:mod:`helpers.metrics.paper`, "Target-gene exclusion"); this
module scores the same predictions both ways and compares the rankings:

* :func:`measured_targets` - how many of a task's target genes are among its
  evaluation genes (where none is, the option cannot change anything);
* :func:`score_excluded` - the metrics that honour the option (:data:`HONOURING`),
  recomputed with ``exclude_target=True`` for the methods of a
  :func:`helpers.benchmark.verdict.score_all` run, on the same truth (half A of each
  held-out condition where the run scored positive controls) and the same genes;
* :func:`exclusion_ranks` - per metric, each method's mean and rank with and without
  the targets, and the **support** of "the best method changes": the share of
  resamples of the held-out conditions (and splits; the same resamples both ways,
  :func:`helpers.benchmark.verdict.resampled_means`) in which the best method without
  the targets differs from the best with them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..ceilings import evaluation_truth
from ..conditions import CONTROL, condition_genes
from ..errors import InputError
from ..metrics import evaluate, family_names, metric_input, score_families
from ..metrics.families import DIRECTIONS
from ..pseudobulk import top_control_genes
from .runner import family_cells
from .tasks import Task
from .verdict import SUPPORT_THRESHOLD, Scored, resampled_means

__all__ = [
    "HONOURING",
    "measured_targets",
    "score_excluded",
    "exclusion_ranks",
]

#: The per-condition metrics that honour ``exclude_target`` (family -> columns): the
#: correlations and rankings across genes. The per-gene averages (l2, mae,
#: weighted_mse) keep every gene, and ``discrimination_score_l1`` and the ``vcc2026``
#: family leave the targets out always (cell-eval2's default and its vcc2026 preset).
HONOURING = {
    "paper": ["pearson_delta", "r"],
    "systema": ["pearson_delta_perturbed_mean", "centroid_accuracy"],
    "calibrated": ["r2_delta_weighted"],
    "vcc": ["de_overlap_vcc"],
    "vcc2026": [],
    "retrieval": ["rank_vs_control", "rank_vs_mean"],
    "de_agreement": ["de_overlap"],
}
_KEYS = ["method", "seed", "condition"]


def measured_targets(task: Task, *, n_top: int = 1000) -> dict:
    """How many of ``task``'s target genes are measured among its evaluation genes.

    Returns a dict: ``n_genes`` (evaluation genes: the ``n_top`` most expressed in
    control), ``n_targets`` (distinct target genes of the task's perturbations),
    ``measured`` (those among the evaluation genes, sorted) and ``held_out_measured``
    (the held-out conditions of the task's splits with a measured target).
    """
    truth = task.truth
    genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    targets = {g for c in truth.conditions if c != CONTROL for g in condition_genes(c)}
    measured = sorted(targets.intersection(genes))
    held = {
        c
        for split in task.splits
        for c in split.held_out
        if set(condition_genes(c)) & set(measured)
    }
    return {
        "n_genes": len(genes),
        "n_targets": len(targets),
        "measured": measured,
        "held_out_measured": sorted(held),
    }


def score_excluded(
    task: Task,
    scored: Scored,
    *,
    families="all",
    n_top: int = 1000,
    max_splits: int | None = None,
) -> pd.DataFrame:
    """The :data:`HONOURING` columns of every method of ``scored``, with each
    condition's targets left out (``exclude_target=True``).

    ``task``, ``scored``: the task and its :func:`helpers.benchmark.verdict.score_all`
    result (its ``predictions`` are rescored; the positive controls are not: they are
    shown, never ranked); ``families``: the families it was scored with; ``n_top``: its
    evaluation genes; ``max_splits``: rescore only the first splits of ``scored`` (None
    = all). The truth is the one ``score_all`` used: half A of each held-out condition
    where a family needs cells (:func:`helpers.ceilings.evaluation_truth`, same split
    seed, same halves), else all cells. Columns: method, seed, condition and the
    honouring columns of ``families``.

    The paper's and Systema's columns are recomputed for every condition (the centroid
    accuracy of one condition depends on the targets of all of them). The calibrated
    and vcc columns of a condition depend only on that condition (its DE weights, its
    DE lists); where none of its targets is an evaluation gene the option changes
    nothing, so only the conditions with a measured target are rescored and the others
    keep ``scored``'s values, which are the same numbers.
    """
    names = family_names(families)
    truth = task.truth
    genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    cells = family_cells(task, names, genes)
    splits = {split.seed: split for split in task.splits}
    seeds = list(scored.predictions)[:max_splits]
    missing = [seed for seed in seeds if seed not in splits]
    if missing:
        raise InputError(
            f"The scored predictions hold split seeds {missing} that task "
            f"{task.name!r} does not have; pass the score_all result of this task."
        )
    names = [n for n in names if HONOURING.get(n)]  # vcc2026: targets out always
    # a panel-scope metric of one condition depends on the targets of all of them
    cheap = [n for n in names if n in ("systema", "retrieval")]
    local = [n for n in names if n not in cheap]
    columns = HONOURING["paper"] + [c for n in names for c in HONOURING[n]]
    copied = [c for n in local for c in HONOURING[n]]
    measured = set(genes)
    tables = []
    for seed in seeds:
        split, runs = splits[seed], scored.predictions[seed]
        if cells is None:
            reference, reference_cells = truth, None
        else:
            reference, reference_cells = evaluation_truth(truth, cells, split)
        cache: dict = {}
        for pred in runs.values():
            part = evaluate(
                pred,
                reference,
                split,
                genes=genes,
                allow_missing=True,
                exclude_target=True,
            )
            if not len(part):
                continue
            part = part[_KEYS + HONOURING["paper"]]
            options = dict(cells=reference_cells, cache=cache, exclude_target=True)
            if cheap:
                inp = metric_input(pred, reference, split, genes, **options)
                part = part.merge(score_families(inp, cheap), on=_KEYS, how="left")
            if local:
                part = part.merge(_kept(scored.metrics, part, copied), on=_KEYS)
                hit = [
                    c
                    for c in part["condition"]
                    if measured.intersection(condition_genes(c))
                ]
                if hit:
                    inp = metric_input(
                        pred, reference, split, genes, conditions=hit, **options
                    )
                    new = score_families(inp, local).set_index(_KEYS)[copied]
                    part = part.set_index(_KEYS)
                    part.loc[new.index, copied] = new.to_numpy()
                    part = part.reset_index()
            tables.append(part)
    return pd.concat(tables, ignore_index=True)[_KEYS + columns]


def _kept(
    metrics: pd.DataFrame, rows: pd.DataFrame, columns: list[str]
) -> pd.DataFrame:
    """``metrics``' values of ``columns`` on the (method, seed, condition)s of
    ``rows``; every row must be there."""
    keys = rows[_KEYS]
    found = keys.merge(metrics[_KEYS + columns], on=_KEYS, how="left", indicator=True)
    if (found["_merge"] != "both").any():
        raise InputError(
            "The scored metrics lack rows of the scored predictions; pass the metrics "
            "and predictions of the same score_all run."
        )
    return found.drop(columns="_merge")


def exclusion_ranks(
    with_target: pd.DataFrame,
    without_target: pd.DataFrame,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    threshold: float = SUPPORT_THRESHOLD,
) -> pd.DataFrame:
    """Each method's mean and rank under each honouring metric, with and without the
    targets, and how often the best method changes.

    ``with_target``: the per-condition table of
    :func:`helpers.benchmark.verdict.score_all` (controls and other columns are
    dropped); ``without_target``: :func:`score_excluded`'s table of the same rows;
    ``n_boot``, ``seed``: resamples of the held-out conditions and splits, the same for
    both tables (:func:`helpers.benchmark.verdict.resampled_means`); ``threshold``: the
    support needed to say that the best method changes (or stays).

    One row per (metric, method): ``mean_with``, ``mean_without``, ``rank_with``,
    ``rank_without`` (1 = best among the methods; undefined means get no rank), and per
    metric ``best_with``, ``best_without`` (observed), ``support_change`` (the share of
    resamples whose best method without the targets differs from the one with them,
    resamples where either is undefined left out), ``support_order_change`` (the share
    of resamples in which any method's rank differs), ``n_conditions``, ``n_splits`` and
    ``result``: "changes" (support >= ``threshold``), "stays" (support <= 1 -
    ``threshold``) or "undecided".
    """
    metrics = [c for c in without_target.columns if c in DIRECTIONS]
    methods = list(pd.unique(without_target["method"]))
    keys = without_target[_KEYS].astype({"seed": "object"})
    left = with_target[with_target["method"].isin(methods)][_KEYS + metrics]
    left = left.astype({"seed": "object"}).merge(keys, on=_KEYS, how="inner")
    if len(left) != len(without_target):
        raise InputError(
            "The two tables do not hold the same (method, seed, condition) rows; pass "
            "score_all's metrics and score_excluded's table of the same run."
        )
    right = without_target.astype({"seed": "object"})
    r_with = resampled_means(left, n_boot=n_boot, seed=seed)
    r_without = resampled_means(right, n_boot=n_boot, seed=seed)
    if r_with["methods"] != r_without["methods"]:
        raise InputError(
            "The two tables keep different methods; score both with the same methods."
        )
    order = r_with["methods"]
    rows = []
    for metric in metrics:
        lower = DIRECTIONS[metric] == "lower"
        a, b = r_with["values"][metric], r_without["values"][metric]
        best_a, best_b = _best_index(a, lower), _best_index(b, lower)
        usable = (best_a[1:] >= 0) & (best_b[1:] >= 0)
        support = (
            float((best_a[1:] != best_b[1:])[usable].mean())
            if usable.any()
            else float("nan")
        )
        orders = [_order(v, lower) for v in (a, b)]
        both = (best_a[1:] >= 0) | (best_b[1:] >= 0)
        order_change = float(
            (orders[0][1:] != orders[1][1:]).any(axis=1)[both].mean()
            if both.any()
            else np.nan
        )
        result = (
            "changes"
            if support >= threshold
            else "stays"
            if support <= 1 - threshold
            else "undecided"
        )
        ranks = [
            pd.Series(v[0]).rank(ascending=lower, method="min").to_numpy()
            for v in (a, b)
        ]
        for i, method in enumerate(order):
            rows.append(
                {
                    "metric": metric,
                    "method": method,
                    "mean_with": a[0, i],
                    "mean_without": b[0, i],
                    "rank_with": ranks[0][i],
                    "rank_without": ranks[1][i],
                    "best_with": order[best_a[0]] if best_a[0] >= 0 else None,
                    "best_without": order[best_b[0]] if best_b[0] >= 0 else None,
                    "support_change": support,
                    "support_order_change": order_change,
                    "n_conditions": r_with["n_conditions"],
                    "n_splits": r_with["n_splits"],
                    "n_resamples": int(usable.sum()),
                    "result": result,
                }
            )
    return pd.DataFrame(rows)


def _order(values: np.ndarray, lower: bool) -> np.ndarray:
    """Per row (resample), each method's rank (1 = best, ties share the best rank),
    0 where its mean is undefined."""
    v = np.where(np.isfinite(values), values, np.inf if lower else -np.inf)
    ranks = rankdata(v if lower else -v, method="min", axis=1)
    return np.where(np.isfinite(values), ranks, 0)


def _best_index(values: np.ndarray, lower: bool) -> np.ndarray:
    """Per row of ``values`` (resamples x methods), the column of the best finite value;
    -1 where no value is finite or the best is shared (a tie has no single best)."""
    v = np.where(np.isfinite(values), values, np.inf if lower else -np.inf)
    best = v.min(axis=1) if lower else v.max(axis=1)
    ties = (v == best[:, None]).sum(axis=1)
    out = np.argmin(v, axis=1) if lower else np.argmax(v, axis=1)
    return np.where(np.isfinite(best) & (ties == 1), out, -1)
