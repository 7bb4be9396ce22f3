"""Two protocols, one data set: which protocol choice flips which of the paper's
conclusions? (chapter 9, issue 30 item 4)

Ahlmann-Eltze et al. (2025) find that no deep model beats simple baselines; Miller et
al. (2025, CellSimBench) find that deep models do beat them. scPertEval (Schaefer et
al. 2026) argues that the difference is a set of protocol choices. A **protocol** here
is four of them (:class:`Protocol`):

* ``split``: ``"paper"`` - the task's seeded splits (:mod:`helpers.splits`, the paper's
  partitions; ``method_spec.md`` sections 2.1 and 4.1) - or ``"cv5"`` - 5-fold
  cross-validation over the perturbations (CellSimBench's split as scPertEval's
  authors describe it; scPertEval itself has no splits, and the fold assignment here
  is the book's own, not CellSimBench's code): the task's perturbations of
  its kind (the doubles whose singles are measured, or the singles) are shuffled with a
  seed and dealt into 5 folds; each fold is held out once, everything else trains.
* ``genes``: ``"top1000"`` - the 1,000 genes most expressed in control (the paper,
  ``method_spec.md`` 2.4; scPertEval's ``heg`` space, ``np.argsort(-control_mean)[:k]``)
  - or ``"all"`` - every measured gene. The paper's data sets are the GEARS files: the
  5,000 most variable genes plus the perturbed genes, which is CellSimBench's "HVG union
  perturbed genes" panel (scPertEval ``blocks/spaces/catalog.py``).
* ``metric``: ``"paper"`` - L2 and Pearson delta (``method_spec.md`` 2.4) - or
  ``"calibrated"`` - CellSimBench's DE-weighted MSE and DE-weighted R2 of the change
  (:mod:`helpers.metrics.calibrated`; scPertEval ``wmse_exp2`` and
  ``weighted_r2_*_exp2``). Each metric choice is a pair: an **error** metric and a
  **correlation** metric (the R2 of the change plays the correlation's role).
  CellSimBench also rescales each metric between a negative and a positive control
  (the DRF). The book's per-method DRF (a ratio of means,
  :func:`helpers.metrics.calibrated.book_drf`) orders the methods exactly as the
  metric's mean does, so it cannot change a ranking claim; the peers' mean of clipped
  per-condition ratios can, for the reason :mod:`helpers.metrics.calibrated` gives, and
  is not used to rank methods. The ranking claims below are decided by the weighted
  metrics themselves.
* ``reference``: what a change is measured from, for the correlation metric:
  ``"control"`` - the control pseudobulk ``c`` (the paper; scPertEval
  ``pearson_ctrl``) - or ``"perturbed"`` - the equal-weight mean of every *other*
  perturbation's pseudobulk, ``m_p = (sum_q y_q - y_p) / (K - 1)`` over the ``K``
  perturbations of the data (scPertEval ``pearson_pert``, its source
  ``all_perturbed_mean``, leave-one-out). This reference includes the held-out
  perturbations, as the peer's does (chapter 9 measures how much that moves a score).

Per held-out condition ``p`` with prediction ``y_hat``, observation ``y``, reference
``r`` (``c`` or ``m_p``) and DE weights ``w`` over the evaluation genes ``G``:

* paper: ``error = ||y_hat - y||_2``; ``correlation = cor(y_hat - r, y - r)``;
* calibrated: ``error = sum_g w_g (y_hat_g - y_g)^2``;
  ``correlation = 1 - sum_g w_g (d_g - d_hat_g)^2 / sum_g w_g (d_g - dbar)^2`` with
  ``d = y - r``, ``d_hat = y_hat - r``, ``dbar = sum_g w_g d_g``; the weights are
  scPertEval's (min-max normalised squared Welch t of ``p``'s cells vs every other
  perturbed cell, over ``G``; :func:`helpers.metrics.calibrated.mejia_weights`).

The columns keep the catalog's names (``l2``, ``pearson_delta``, ``weighted_mse``,
``r2_delta_weighted``) so that :func:`helpers.benchmark.verdict.claim_support` checks
the paper's claims (:data:`helpers.benchmark.verdict.CLAIMS`) with its resampling of
conditions x splits; the ``reference`` column says what the change was measured from.

:data:`PAPER` and :data:`CELLSIMBENCH` are the two protocols; :func:`variants` adds the
four protocols that change ONE choice of the paper's towards CellSimBench's;
:func:`decompose` runs them all on a task and returns, per variant, claim and metric
role, whether the claim holds, fails or is undecided, its effect with a 95% interval,
and whether it flips relative to the paper's protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..conditions import CONTROL, condition_genes
from ..errors import InputError
from ..metrics import calibrated
from ..metrics.paper import l2, pearson_delta
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk, top_control_genes
from ..splits import Split, complete_doubles, holdout_split
from .runner import family_cells, run_methods
from .tasks import Task
from .verdict import CLAIMS, claim_support, resampled_means

__all__ = [
    "Protocol",
    "PAPER",
    "CELLSIMBENCH",
    "CHOICES",
    "PROFILE_TASKS",
    "METRIC_COLUMNS",
    "variants",
    "claim_methods",
    "gene_set",
    "perturbed_reference",
    "cv_splits",
    "protocol_splits",
    "score_protocol",
    "decompose",
    "decomposition_table",
    "testable",
    "flip_counts",
    "findings",
    "figure",
]

#: The four choices of a protocol, in the order the variants change them.
CHOICES = ("split", "genes", "metric", "reference")
#: metric choice -> (error column, correlation column)
METRIC_COLUMNS = {
    "paper": ("l2", "pearson_delta"),
    "calibrated": ("weighted_mse", "r2_delta_weighted"),
}
_ALLOWED = {
    "split": ("paper", "cv5"),
    "genes": ("top1000", "all"),
    "metric": tuple(METRIC_COLUMNS),
    "reference": ("control", "perturbed"),
}
#: Quick profile: the real Norman subset and the simulator (SYNTHETIC); paper profile:
#: Replogle K562 essential, the screen scPertEval's tutorial uses (wired, not run here).
PROFILE_TASKS = {
    "quick": ("norman_subset_doubles", "simulated_doubles", "simulated_singles"),
    "paper": ("replogle_k562_essential_singles",),
}
N_FOLDS = 5
FOLD_SEED = 0


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol: four choices and where each comes from.

    ``name``: a label; ``split``: ``"paper"`` or ``"cv5"``; ``genes``: ``"top1000"`` or
    ``"all"``; ``metric``: ``"paper"`` or ``"calibrated"``; ``reference``:
    ``"control"`` or ``"perturbed"`` (module docstring); ``sources``: (choice, citation)
    pairs saying where each choice comes from.
    """

    name: str
    split: str
    genes: str
    metric: str
    reference: str
    sources: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for choice in CHOICES:
            value = getattr(self, choice)
            if value not in _ALLOWED[choice]:
                raise InputError(
                    f"Protocol {self.name!r}: {choice}={value!r} is not one of "
                    f"{_ALLOWED[choice]}; pick one of those."
                )

    def source(self, choice: str) -> str:
        """Where this protocol's ``choice`` comes from (one line)."""
        return dict(self.sources).get(choice, "")

    def choices(self) -> dict[str, str]:
        """``{choice: value}`` for the four :data:`CHOICES`."""
        return {choice: getattr(self, choice) for choice in CHOICES}


PAPER = Protocol(
    "paper",
    "paper",
    "top1000",
    "paper",
    "control",
    (
        ("split", "Ahlmann-Eltze et al. 2025: seeded splits (method_spec.md 2.1, 4.1)"),
        (
            "genes",
            "Ahlmann-Eltze et al. 2025: top 1,000 control genes (method_spec 2.4)",
        ),
        ("metric", "Ahlmann-Eltze et al. 2025: L2 and Pearson delta (method_spec 2.4)"),
        (
            "reference",
            "Ahlmann-Eltze et al. 2025: change from control (method_spec 1.3)",
        ),
    ),
)
CELLSIMBENCH = Protocol(
    "cellsimbench",
    "cv5",
    "all",
    "calibrated",
    "perturbed",
    (
        ("split", "Miller et al. 2025 (CellSimBench): 5-fold CV over perturbations"),
        ("genes", "Miller et al. 2025: HVG union perturbed genes (scPertEval catalog)"),
        ("metric", "Miller et al. 2025; scPertEval wmse_exp2, weighted_r2_*_exp2"),
        (
            "reference",
            "Miller et al. 2025; scPertEval pearson_pert (all_perturbed_mean)",
        ),
    ),
)


def variants() -> list[Protocol]:
    """The paper's protocol, the four that change ONE choice towards CellSimBench's
    (named ``"paper + <choice>"``), and CellSimBench's."""
    out = [PAPER]
    for choice in CHOICES:
        value = getattr(CELLSIMBENCH, choice)
        sources = tuple(
            (c, CELLSIMBENCH.source(c) if c == choice else PAPER.source(c))
            for c in CHOICES
        )
        out.append(
            replace(PAPER, name=f"paper + {choice}", sources=sources, **{choice: value})
        )
    return [*out, CELLSIMBENCH]


def gene_set(truth: Pseudobulk, choice: str, *, k: int = 1000) -> pd.Index:
    """The evaluation genes of a gene-set ``choice``.

    ``truth``: the observed pseudobulks; ``choice``: ``"top1000"`` - the ``k`` genes
    most expressed in control (:func:`helpers.pseudobulk.top_control_genes`; all genes
    where fewer are measured) - or ``"all"``; ``k``: the size of the top set.
    """
    if choice == "all":
        return pd.Index(truth.genes)
    if choice != "top1000":
        raise InputError(f"Gene set {choice!r} is unknown; use 'top1000' or 'all'.")
    return top_control_genes(truth.ctrl, min(k, len(truth.genes)))


def perturbed_reference(truth: Pseudobulk, conditions, genes=None) -> pd.DataFrame:
    """scPertEval's ``all_perturbed_mean`` for each of ``conditions``: the equal-weight
    mean of every other perturbation's pseudobulk, ``m_p = (S - y_p) / (K - 1)`` with
    ``S`` the sum over the ``K`` perturbed conditions of ``truth`` (control excluded).

    ``truth``: the observed pseudobulks; ``conditions``: the conditions to centre;
    ``genes``: the genes (default all). Returns conditions x genes.
    """
    genes = pd.Index(truth.genes if genes is None else genes)
    perturbed = [c for c in truth.conditions if c != CONTROL]
    if len(perturbed) < 2:
        raise InputError(
            "A perturbed-mean reference needs at least two perturbed conditions."
        )
    means = truth.means.loc[perturbed, genes].astype(np.float64)
    total = means.sum(axis=0)
    missing = [c for c in conditions if c not in means.index]
    if missing:
        raise InputError(
            f"Condition(s) {missing[:5]} are not perturbed conditions of the truth; "
            "centre only observed perturbations."
        )
    own = means.loc[list(conditions)]
    return (total - own) / (len(perturbed) - 1)


def cv_splits(
    truth: Pseudobulk, kind: str, *, n_folds: int = N_FOLDS, seed: int = FOLD_SEED
) -> list[Split]:
    """CellSimBench's split: ``n_folds``-fold cross-validation over the perturbations.

    ``truth``: the observed pseudobulks; ``kind``: ``"double"`` (folds over the doubles
    whose singles are measured, every single trains) or ``"single"`` (folds over the
    singles); ``n_folds``: the number of folds; ``seed``: the shuffle's seed
    (``numpy.random.default_rng``). Fold ``k`` is a split with ``seed = k`` (1..n).
    """
    conditions = [str(c) for c in truth.conditions]
    if kind == "double":
        pool = complete_doubles(conditions)
    elif kind == "single":
        pool = sorted(
            c for c in conditions if c != CONTROL and len(condition_genes(c)) == 1
        )
    else:
        raise InputError(f"kind must be 'double' or 'single'; got {kind!r}.")
    if len(pool) < n_folds:
        raise InputError(
            f"{len(pool)} perturbations cannot fill {n_folds} folds; use fewer folds."
        )
    order = np.random.default_rng(seed).permutation(len(pool))
    shuffled = [pool[i] for i in order]
    return [
        holdout_split(
            conditions, shuffled[k::n_folds], dataset=truth.dataset, seed=k + 1
        )
        for k in range(n_folds)
    ]


def protocol_splits(
    task: Task, protocol: Protocol, *, max_splits: int | None = None
) -> list[Split]:
    """The splits of ``protocol`` on ``task``: the task's own (its first ``max_splits``;
    None = all) or the 5 cross-validation folds (:func:`cv_splits`, always all)."""
    if protocol.split == "cv5":
        return cv_splits(task.truth, task.kind)
    return task.splits if max_splits is None else task.splits[:max_splits]


def score_protocol(
    predictions,
    truth: Pseudobulk,
    protocol: Protocol,
    *,
    t_stats: pd.DataFrame | None = None,
    n_top: int = 1000,
) -> pd.DataFrame:
    """Per held-out condition, the protocol's error and correlation metric.

    ``predictions``: :class:`helpers.predictions.Predictions` (any number, each with
    its split seed); ``truth``: the observed pseudobulks; ``protocol``: the
    :class:`Protocol` (its split is the caller's: the predictions already are for it);
    ``t_stats``: conditions x genes Welch t of each condition vs all other perturbed
    cells (:func:`helpers.metrics.calibrated.de_vs_all_perturbed`), needed by the
    calibrated metrics; ``n_top``: the size of the top gene set. Returns columns
    method, seed, condition, reference and the two metric columns of
    :data:`METRIC_COLUMNS` (module docstring for the formulas).
    """
    if protocol.metric == "calibrated" and t_stats is None:
        raise InputError(
            "The calibrated metrics need the truth's DE statistics (t_stats); "
            "compute them with calibrated.de_vs_all_perturbed(cells)[0]."
        )
    genes = gene_set(truth, protocol.genes, k=n_top)
    error, correlation = METRIC_COLUMNS[protocol.metric]
    if t_stats is not None and protocol.metric == "calibrated":
        t_rows = {c: i for i, c in enumerate(t_stats.index)}
        t_values = t_stats.reindex(columns=genes).to_numpy(dtype=np.float64)
    rows = []
    for pred in predictions:
        conditions = [c for c in pred.conditions if c != CONTROL]
        if not conditions:
            continue
        p = pred.values.loc[conditions, genes].to_numpy(dtype=np.float64)
        o = truth.means.loc[conditions, genes].to_numpy(dtype=np.float64)
        if protocol.reference == "control":
            ref = np.broadcast_to(truth.ctrl[genes].to_numpy(dtype=np.float64), p.shape)
        else:
            ref = perturbed_reference(truth, conditions, genes).to_numpy()
        for i, condition in enumerate(conditions):
            if protocol.metric == "paper":
                e = l2(p[i], o[i])
                c = pearson_delta(p[i], o[i], ref[i])
            else:
                if condition not in t_rows:
                    raise InputError(
                        f"No DE statistics for {condition!r}; compute t_stats on "
                        "the task's full cells."
                    )
                w = calibrated.mejia_weights(t_values[t_rows[condition]])
                e = calibrated.weighted_mse(p[i], o[i], w)
                c = calibrated.r2_delta_weighted(p[i], o[i], ref[i], w)
            rows.append(
                {
                    "method": pred.method,
                    "seed": pred.seed,
                    "condition": condition,
                    "reference": protocol.reference,
                    error: e,
                    correlation: c,
                }
            )
    return pd.DataFrame(
        rows, columns=["method", "seed", "condition", "reference", error, correlation]
    )


def _best(values: np.ndarray, columns: list[int], direction: str) -> np.ndarray:
    part = values[:, columns]
    ok = np.isfinite(part).any(axis=1)
    out = np.full(len(values), np.nan)
    fill = np.inf if direction == "lower" else -np.inf
    filled = np.where(np.isfinite(part), part, fill)
    pick = filled.min(axis=1) if direction == "lower" else filled.max(axis=1)
    out[ok] = pick[ok]
    return out


def _effects(resampled: dict, claim, metric: str) -> tuple[float, float, float]:
    """The claim's margin under ``metric``: best of ``worse`` minus best of ``better``
    for an error (positive = the claim holds), the reverse for a correlation; observed
    value and 95% percentile interval over the resamples."""
    methods = resampled["methods"]
    values, direction = resampled["values"][metric], resampled["direction"][metric]
    ranked = [m for i, m in enumerate(methods) if np.isfinite(values[0, i])]
    sides = [
        [methods.index(m) for m in side if m in ranked]
        for side in (claim.better, claim.worse)
    ]
    if not all(sides):
        return np.nan, np.nan, np.nan
    better, worse = (_best(values, side, direction) for side in sides)
    margin = worse - better if direction == "lower" else better - worse
    rest = margin[1:][np.isfinite(margin[1:])]
    if not len(rest):
        return float(margin[0]), np.nan, np.nan
    lower, upper = np.quantile(rest, [0.025, 0.975])
    return float(margin[0]), float(lower), float(upper)


def claim_methods(task: Task) -> list[str]:
    """The reference methods of ``task`` that a claim of its kind names (the others
    cannot change a verdict; fitting them would only cost time)."""
    named = {
        m
        for claim in CLAIMS
        if claim.kind in (task.kind, "any")
        for m in (*claim.better, *claim.worse)
    }
    return [m for m in task.reference_methods() if m in named]


def _predictions_for(
    task: Task,
    splits: list[Split],
    extra: dict[str, list[Predictions]] | None,
    methods: list[str],
) -> list[Predictions]:
    """The task's reference ``methods`` fitted on ``splits`` through the benchmark's
    one path (:func:`helpers.benchmark.runner.run_methods`), plus ``extra`` predictions
    whose seed and held-out conditions match a split exactly."""
    every = task.reference_methods()
    unknown = [m for m in methods if m not in every]
    if unknown:
        raise InputError(
            f"Task {task.name!r} has no reference method(s) {unknown}; choose from "
            f"{sorted(every)}."
        )
    _, predictions = run_methods(
        task.truth, splits, {m: every[m] for m in methods}, allow_missing=True
    )
    held = {split.seed: set(split.held_out) for split in splits}
    for name, preds in (extra or {}).items():
        for pred in preds:
            if pred.seed in held and set(pred.conditions) >= held[pred.seed]:
                # the held-out conditions only: a model's training conditions are
                # never scored
                keep = [c for c in pred.conditions if c in held[pred.seed]]
                predictions.append(
                    replace(pred, values=pred.values.loc[keep]).renamed(name)
                )
    return [p for p in predictions if len(p.conditions)]


def decompose(
    task: Task,
    protocols=None,
    *,
    extra: dict[str, list[Predictions]] | None = None,
    methods=None,
    max_splits: int | None = None,
    n_top: int = 1000,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Run every protocol of ``protocols`` on ``task`` and check the paper's claims.

    ``task``: a benchmark task; ``protocols``: default :func:`variants`; ``extra``:
    method name -> predictions per split seed (chapter 4's models), used only where
    they were made for the very split (the paper's splits; the cross-validation folds
    have none, so claims about those models are not testable there); ``methods``: the
    reference methods to fit (default :func:`claim_methods`: those the claims name);
    ``max_splits``:
    the task's first splits only (None = all; the folds are always all 5); ``n_top``:
    the top gene set's size; ``n_boot``, ``seed``: resamples of conditions x splits
    (:func:`helpers.benchmark.verdict.resampled_means`).

    Returns (the long table - one row per protocol, claim and metric role: task,
    protocol, changed, the four choices (split, genes, ``metrics`` - the metric
    choice - and reference), claim, key, metric (the column), role, better, worse,
    n_conditions, n_splits, effect, lower, upper, support, against, result; and
    protocol name -> per-condition table). The methods are fitted once per split
    choice.
    """
    protocols = variants() if protocols is None else list(protocols)
    methods = claim_methods(task) if methods is None else list(methods)
    truth = task.truth
    fitted: dict[str, list[Predictions]] = {}
    t_stats = None
    if any(p.metric == "calibrated" for p in protocols):
        cells = family_cells(task, "calibrated", pd.Index(truth.genes))
        t_stats = calibrated.de_vs_all_perturbed(cells)[0]
    rows, per_condition = [], {}
    for protocol in protocols:
        if protocol.split not in fitted:
            splits = protocol_splits(task, protocol, max_splits=max_splits)
            use = extra if protocol.split == "paper" else None
            fitted[protocol.split] = _predictions_for(task, splits, use, methods)
        table = score_protocol(
            fitted[protocol.split], truth, protocol, t_stats=t_stats, n_top=n_top
        )
        per_condition[protocol.name] = table
        resampled = resampled_means(table, n_boot=n_boot, seed=seed)
        support = claim_support(table, task.kind, CLAIMS, resampled=resampled)
        changed = [c for c in CHOICES if getattr(protocol, c) != getattr(PAPER, c)]
        roles = dict(zip(METRIC_COLUMNS[protocol.metric], ("error", "correlation")))
        claims = {c.key: c for c in CLAIMS}
        for row in support[~support["derived"]].itertuples():
            effect, lower, upper = _effects(resampled, claims[row.key], row.metric)
            rows.append(
                {
                    "task": task.name,
                    "protocol": protocol.name,
                    "changed": ", ".join(changed) or "none",
                    "split": protocol.split,
                    "genes": protocol.genes,
                    "metrics": protocol.metric,
                    "reference": protocol.reference,
                    "n_genes": len(gene_set(truth, protocol.genes, k=n_top)),
                    "key": row.key,
                    "claim": row.claim,
                    "metric": row.metric,
                    "role": roles[row.metric],
                    "better": row.better,
                    "worse": row.worse,
                    "n_conditions": row.n_conditions,
                    "n_splits": row.n_splits,
                    "effect": effect,
                    "lower": lower,
                    "upper": upper,
                    "support": row.support,
                    "against": row.against,
                    "result": row.result,
                }
            )
    return _with_status(pd.DataFrame(rows)), per_condition


def _with_status(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``paper_result`` (the paper protocol's result for the same task, claim and
    metric role) and ``status``: "flips" where both are decided (holds / fails) and
    differ; else the result itself (holds, fails, undecided, not testable)."""
    if table.empty:
        return table
    base = table[table["protocol"] == PAPER.name].set_index(["task", "key", "role"])[
        "result"
    ]
    keys = pd.MultiIndex.from_frame(table[["task", "key", "role"]])
    paper = base.reindex(keys).to_numpy()
    decided = {"holds", "fails"}
    status = [
        "flips" if (r in decided and p in decided and r != p) else r
        for r, p in zip(table["result"], paper)
    ]
    return table.assign(paper_result=paper, status=status)


def decomposition_table(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The decomposition as one wide table: rows the testable (task, claim, metric
    role) (:func:`testable`), columns the protocols; each cell ``status: effect
    [lower, upper]`` (module docstring).

    ``table``: :func:`decompose`'s long table (several tasks concatenated);
    ``digits``: rounding of the effect and interval.
    """
    if table.empty:
        raise InputError("The decomposition table is empty; run decompose first.")

    def cell(row) -> str:
        if not np.isfinite(row.effect):
            return row.status
        return (
            f"{row.status}: {row.effect:.{digits}g} "
            f"[{row.lower:.{digits}g}, {row.upper:.{digits}g}]"
        )

    table = testable(table)
    order = list(pd.unique(table["protocol"]))
    wide = table.assign(cell=table.apply(cell, axis=1)).pivot(
        index=["task", "key", "role"], columns="protocol", values="cell"
    )
    return wide[order]


def testable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`decompose`'s table whose (task, claim, metric role) is
    testable under at least one protocol (a claim about a method no protocol has, e.g.
    a deep model on the simulator, says nothing about protocols).

    ``table``: :func:`decompose`'s long table.
    """
    keys = ["task", "key", "role"]
    some = table.groupby(keys, sort=False)["result"].transform(
        lambda r: (r != "not testable").any()
    )
    return table[some.astype(bool)]


def flip_counts(table: pd.DataFrame) -> pd.DataFrame:
    """How many testable (task, claim, metric role) rows (:func:`testable`) each
    protocol leaves in each status (holds, fails, flips, undecided, not testable);
    rows = protocols in table order.

    ``table``: :func:`decompose`'s long table (several tasks concatenated).
    """
    table = testable(table)
    order = list(pd.unique(table["protocol"]))
    counts = table.groupby("protocol")["status"].value_counts().unstack(fill_value=0)
    columns = [s for s in _COLOURS if s in counts.columns]
    return counts.reindex(index=order)[columns]


def _describe(row) -> str:
    if row.result == "not testable":
        return "not testable"
    head = f"flips to {row.result}" if row.status == "flips" else row.result
    return (
        f"{head} (support {row.support:.2f}, margin {row.effect:.3g} "
        f"[{row.lower:.3g}, {row.upper:.3g}], {row.n_conditions} perturbations x "
        f"{row.n_splits} split(s))"
    )


def findings(table: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """The decomposition's verdicts as Markdown bullets, one per testable (task, claim,
    metric role), written from :func:`decompose`'s table: the result under the paper's
    protocol, what changing each single choice does to it, and the result under
    CellSimBench's protocol, each with support, margin (positive = the claim holds) and
    95% interval; then one line naming the claims no protocol can test.

    ``table``: :func:`decompose`'s long table; ``labels``: task -> how to name its data.
    """
    labels = labels or {}
    lines = []
    keys = ["task", "key", "role"]
    kept = testable(table)
    for (task, key, role), part in kept.groupby(keys, sort=False):
        part = part.set_index("protocol")
        paper = part.loc[PAPER.name]
        detail = [f"paper's protocol ({paper.metric}): {_describe(paper)}"]
        changes: dict[str, list[str]] = {}
        for row in part[part["changed"].isin(CHOICES)].itertuples():
            if row.result == paper.result:
                phrase = "unchanged"
            elif row.status == "flips":
                phrase = f"flips to {row.result} (support {row.support:.2f})"
            elif row.result == "not testable":
                phrase = "not testable"
            else:
                phrase = f"{row.result} (support {row.support:.2f})"
            changes.setdefault(phrase, []).append(row.changed)
        for phrase, choices in changes.items():
            detail.append(f"changing the {' or the '.join(choices)}: {phrase}")
        if CELLSIMBENCH.name in part.index:
            other = part.loc[CELLSIMBENCH.name]
            detail.append(
                f"CellSimBench's protocol ({other.metric}): {_describe(other)}"
            )
        where = labels.get(task, task)
        claim = part["claim"].iloc[0]
        lines.append(
            f"- *{claim}* ({where}, {role} metric): " + "; ".join(detail) + "."
        )
    dropped = table.drop(kept.index)[["task", "claim"]].drop_duplicates()
    if len(dropped):
        names = "; ".join(
            f"*{row.claim}* ({labels.get(row.task, row.task)})"
            for row in dropped.itertuples()
        )
        lines.append(
            "- Not testable under any protocol (a method it needs is missing): "
            f"{names}."
        )
    return "\n".join(lines)


_COLOURS = {
    "holds": "#4c9a2a",
    "fails": "#3d6bb3",
    "flips": "#d1495b",
    "undecided": "#bdbdbd",
    "not testable": "#ffffff",
}


def figure(table: pd.DataFrame, *, labels: dict[str, str] | None = None):
    """One figure: rows the testable (task, claim, metric role), columns the
    protocols; each cell coloured by its status (holds, fails, flips against the
    paper's protocol, undecided, not testable) and labelled with its support.

    ``table``: :func:`decompose`'s long table; ``labels``: task -> how to name its data
    (e.g. "SYNTHETIC doubles"). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    labels = labels or {}
    table = testable(table)
    order = list(pd.unique(table["protocol"]))
    rows = table[["task", "key", "role"]].drop_duplicates().reset_index(drop=True)
    statuses = list(_COLOURS)
    grid = np.zeros((len(rows), len(order)))
    text = np.full(grid.shape, "", dtype=object)
    index = {tuple(r): i for i, r in enumerate(rows.itertuples(index=False))}
    for row in table.itertuples():
        i, j = index[(row.task, row.key, row.role)], order.index(row.protocol)
        grid[i, j] = statuses.index(row.status)
        text[i, j] = "" if not np.isfinite(row.support) else f"{row.support:.2f}"
    fig, ax = plt.subplots(figsize=(1.3 * len(order) + 4, 0.34 * len(rows) + 1.6))
    cmap = ListedColormap([_COLOURS[s] for s in statuses])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(statuses) - 0.5, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(order)):
            ax.text(j, i, text[i, j], ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(
        range(len(rows)),
        [
            f"{labels.get(r.task, r.task)} | {r.key} | {r.role}"
            for r in rows.itertuples()
        ],
        fontsize=7,
    )
    ax.set_xticks(np.arange(-0.5, len(order)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="#888888", linewidth=0.4)
    ax.tick_params(which="minor", length=0)
    ax.set_title(
        "Which protocol choice flips which claim (cell: support that the claim holds)",
        fontsize=9,
    )
    ax.legend(
        handles=[
            Patch(facecolor=_COLOURS[s], edgecolor="#888888", label=s) for s in statuses
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout()
    return fig
