"""Which of the paper's conclusions survive which metric, and how sure can we be?
(chapter 9)

One set of predictions, every metric family of :mod:`helpers.metrics`, one table:

* :func:`score_all` - the task's reference methods (and any predictions you add, e.g.
  chapter 4's models) and the positive controls on every split, scored by
  :func:`helpers.metrics.evaluate` plus the families' columns, all against **one truth**
  (:func:`evaluation_truth`: half A of each held-out condition's cells; the positive
  controls are made from half B), and the calibrated summaries per method. On a
  simulated task it adds ``planted_pearson``: the correlation of the predicted change
  with the **planted** change of the simulator
  (:class:`helpers.simulate.SimulationTruth`).
* :func:`method_means` - one value per (method, metric) on the common set of
  perturbations.
* :func:`verdict` - rows = metrics, one value and rank per method (1 = best). Positive
  controls are shown, not ranked: they are made from the held-out cells themselves. A
  metric that is undefined for a method (NaN, e.g. a correlation of "no change") gives
  that method no rank. ``derived`` marks the per-method summaries
  (:data:`DERIVED_PREFIXES`: the book's DRF and cell-eval2's replicate scale), which
  rescale or average the per-condition metrics.
* :func:`conclusions` - each of the paper's claims (:data:`CLAIMS`) under every metric,
  with its **support**: the share of resamples of the held-out conditions (and splits)
  in which it holds (:func:`resampled_means`, :func:`claim_support`). Only the
  independent per-condition metrics vote; a claim is stated as holding only where its
  support reaches :data:`SUPPORT_THRESHOLD`.
* :func:`graded_agreement` - which metric orders methods of known, graded quality
  (:func:`graded_predictions`) as their planted error and planted correlation do, over
  several simulator seeds, with intervals. (:func:`agreement_with_planted`, Spearman's
  rho over a task's few reference methods, is kept for small tables; most of those
  methods are null on a simulated screen, so it ranks noise.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..ceilings import evaluation_truth
from ..errors import InputError
from ..metrics import calibrated, catalog, evaluate, family_names, metric_input, vcc
from ..metrics.families import DIRECTIONS, FAMILIES, score_families
from ..metrics.paper import pearson_delta
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk, top_control_genes
from ..uncertainty import crossed_interval, crossed_weights
from .runner import POSITIVE_CONTROLS, family_cells, positive_controls, run_methods
from .tasks import Task

__all__ = [
    "Claim",
    "CLAIMS",
    "Scored",
    "DEEP_MODELS",
    "deep_model_predictions",
    "score_all",
    "method_means",
    "verdict",
    "verdict_wide",
    "verdict_ranks",
    "agreement_with_planted",
    "conclusions",
    "findings",
    "reference_choice",
    "evaluation_truth",
    "resampled_means",
    "claim_support",
    "method_intervals",
    "uninformative_conditions",
    "graded_agreement",
    "graded_predictions",
    "planted_change",
    "scale_check",
    "GRADED",
    "DERIVED_PREFIXES",
    "SUPPORT_THRESHOLD",
    "PLANTED",
]

#: The deep models a chapter may add (chapter 4's outputs): GEARS and the book's model
#: with scGPT's architecture (a tiny one trained from scratch on the quick profile, the
#: released scGPT_human weights fine-tuned by the book on the paper profile).
DEEP_MODELS = ("gears", "tiny_transformer", "scgpt_human_book")
PLANTED = "planted_pearson"
_KEYS = ["method", "seed", "condition"]
#: Per-method summaries computed from the per-condition metrics (rescalings or averages
#: of them): reported in the verdict, never counted as separate votes in
#: :func:`conclusions`.
DERIVED_PREFIXES = ("book_drf_", "replicate_score_")
#: A claim is stated as holding (or failing) only where this share of resamples agrees.
SUPPORT_THRESHOLD = 0.95


@dataclass(frozen=True)
class Claim:
    """A conclusion of the paper as a ranking statement: the best of ``better`` ranks
    above the best of ``worse``. ``kind``: the tasks it is about ("double", "single" or
    "any")."""

    key: str
    text: str
    better: tuple[str, ...]
    worse: tuple[str, ...]
    kind: str = "any"


CLAIMS = (
    Claim(
        "additive_beats_deep",
        "The additive baseline beats the deep models on double perturbations",
        ("additive",),
        DEEP_MODELS,
        "double",
    ),
    Claim(
        "simple_beats_deep",
        "No deep model beats the best simple baseline (no change, mean, additive)",
        ("no_change", "mean", "additive"),
        DEEP_MODELS,
        "double",
    ),
    Claim(
        "additive_beats_naive",
        "Adding the single effects beats predicting no change or the mean",
        ("additive",),
        ("no_change", "mean"),
        "double",
    ),
    Claim(
        "linear_beats_mean",
        "The linear model (training-data embeddings) beats the mean baseline on "
        "unseen single perturbations",
        ("linear",),
        ("mean",),
        "single",
    ),
    # the objection's side (CellSimBench): on calibrated metrics deep models beat the
    # mean baseline
    Claim(
        "mean_not_beaten_by_deep",
        "No deep model beats the mean baseline",
        ("mean",),
        DEEP_MODELS,
        "double",
    ),
)


def deep_model_predictions(
    folder, task: Task
) -> tuple[dict[str, list[Predictions]], list[str]]:
    """Chapter 4's saved predictions (``<name>_predictions.csv`` in ``folder``) that fit
    ``task``: same dataset, only its split seeds. Returns (name -> predictions per seed,
    notes on what was left out and why)."""
    from pathlib import Path

    found, notes = {}, []
    seeds = {split.seed for split in task.splits}
    for name in DEEP_MODELS:
        path = Path(folder) / f"{name}_predictions.csv"
        if not path.exists():
            notes.append(
                f"{name}: no {path.name} (run chapter 4 on this profile first); "
                "left out"
            )
            continue
        preds = Predictions.load_all(path)
        usable = [p for p in preds if p.dataset == task.dataset and p.seed in seeds]
        if not usable:
            notes.append(
                f"{name}: {path.name} holds predictions for "
                f"{sorted({p.dataset for p in preds})}, not for "
                f"{task.dataset!r}; left out"
            )
            continue
        found[name] = usable
    return found, notes


@dataclass
class Scored:
    """What :func:`score_all` returns: per-condition ``metrics``, calibrated
    ``summaries`` per method, and the methods' ``predictions`` (split seed -> method ->
    Predictions). Unpacks as ``metrics, summaries = score_all(...)``."""

    metrics: pd.DataFrame
    summaries: pd.DataFrame
    predictions: dict[int, dict[str, Predictions]]

    def __iter__(self):
        return iter((self.metrics, self.summaries))


def score_all(
    task: Task,
    extra: dict[str, list[Predictions]] | None = None,
    *,
    families="all",
    n_top: int = 1000,
    max_splits: int | None = None,
) -> Scored:
    """Every metric family on the task's reference methods, ``extra`` predictions and
    the controls.

    ``extra``: method name -> predictions, one per split seed (seeds the task does not
    have are an error; seeds beyond ``max_splits`` are left out). ``max_splits``: score
    only the task's first splits (the quick profile's budget; None = all). Returns a
    :class:`Scored`: the per-condition metrics, the calibrated summaries per method from
    the families' ``summarise`` and the methods' predictions (the positive controls'
    rows are in the metrics). ``task``: the benchmark task; ``families``: the metric
    families (``"all"``, a name or names); ``n_top``: the evaluation genes (top
    ``n_top`` by control expression).
    """
    families = family_names(families)
    truth = task.truth
    task_splits = task.splits if max_splits is None else task.splits[:max_splits]
    table, predictions = run_methods(
        truth, task_splits, task.reference_methods(), n_top=n_top, allow_missing=True
    )
    by_seed = {
        split.seed: {
            p.method: p
            for p in predictions
            if p.seed == split.seed and len(p.conditions)
        }
        for split in task_splits
    }
    splits = {split.seed: split for split in task_splits}
    every_seed = {split.seed for split in task.splits}
    for name, preds in (extra or {}).items():
        for pred in preds:
            if pred.seed in every_seed and pred.seed not in splits:
                continue  # a split left out by max_splits
            if pred.seed not in splits:
                raise InputError(
                    f"{name}: predictions for seed {pred.seed}, but task "
                    f"{task.name!r} has "
                    f"seeds {sorted(splits)}."
                )
            by_seed[pred.seed][name] = pred.renamed(name)
    genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    cells = family_cells(task, families, genes)
    tables, family_tables, planted = [], [], []
    for split in task_splits:
        runs = dict(by_seed[split.seed])
        if cells is None:  # no family needs cells: the paper's metrics on all cells
            reference, reference_cells = truth, None
        else:
            runs |= positive_controls(task, split, families, cells)
            reference, reference_cells = evaluation_truth(truth, cells, split)
        cache: dict = {}
        for pred in runs.values():
            part = evaluate(pred, reference, split, genes=genes, allow_missing=True)
            if not len(part):
                continue
            tables.append(part)
            if families:
                inp = metric_input(
                    pred, reference, split, genes, cells=reference_cells, cache=cache
                )
                family_tables.append(score_families(inp, families))
        if task.planted is not None:
            planted.append(_planted(task, runs, split.seed, genes))
    metrics = pd.concat(tables, ignore_index=True)
    if family_tables:
        metrics = metrics.merge(
            pd.concat(family_tables, ignore_index=True), on=_KEYS, how="left"
        )
    if planted:
        metrics = metrics.merge(
            pd.concat(planted, ignore_index=True), on=_KEYS, how="left"
        )
    metrics.attrs["truth"] = (
        "all cells of each held-out condition"
        if cells is None
        else "half A of each held-out condition's cells (the controls: half B)"
    )
    summaries = pd.DataFrame({"method": pd.unique(metrics["method"])})
    owner = {}
    for name in families:
        summarise = getattr(FAMILIES[name], "summarise", None)
        if summarise is not None:
            part = summarise(metrics)
            # one per-method value per metric in the verdict: the book's DRF (a ratio of
            # means) and the replicate scale; the peers' drf_* (mean of clipped
            # per-condition ratios) describes a metric through its positive control and
            # stays in the summaries table, with medians and counts
            owner |= {c: name for c in part.columns if c.startswith(DERIVED_PREFIXES)}
            summaries = summaries.merge(part, on="method", how="left")
    summaries.attrs["family"] = owner
    return Scored(metrics, summaries, by_seed)


def _planted(
    task: Task, runs: dict[str, Predictions], seed: int, genes: pd.Index
) -> pd.DataFrame:
    """Correlation of each predicted change with the simulator's planted change
    (log-rate scale: a correlation, so the scale does not matter; NaN for a constant
    prediction, as everywhere).
    """
    truth = task.planted()
    ctrl = task.truth.ctrl[genes].to_numpy(dtype=np.float64)
    rows = []
    for method, pred in runs.items():
        for condition in pred.conditions:
            effect = truth.effect(condition).reindex(genes).to_numpy(dtype=np.float64)
            value = pearson_delta(
                pred.values.loc[condition, genes].to_numpy(), ctrl + effect, ctrl
            )
            rows.append(
                {"method": method, "seed": seed, "condition": condition, PLANTED: value}
            )
    return pd.DataFrame(rows, columns=[*_KEYS, PLANTED])


def _metric_columns(metrics: pd.DataFrame) -> list[str]:
    return [c for c in DIRECTIONS if c in metrics.columns] + (
        [PLANTED] if PLANTED in metrics.columns else []
    )


def method_means(
    metrics: pd.DataFrame,
    summaries: pd.DataFrame | None = None,
    *,
    min_coverage: float = 0.5,
) -> pd.DataFrame:
    """Mean of every metric column per method, on the (seed, condition)s every kept
    method scored.

    A method that scored fewer than ``min_coverage`` x the best-covered method's pairs
    is left out (as :func:`helpers.metrics.forest` does; ``attrs["left_out"]``). Means
    keep NaN: a method whose correlation is undefined on a condition has no mean for it.
    ``summaries`` (calibrated summaries per method) are joined on. ``metrics``: the
    per-condition table (``score_all(...).metrics``).
    """
    counts = metrics.groupby("method", sort=False).size()
    kept = counts[counts >= min_coverage * counts.max()].index
    table = _common_rows(metrics, min_coverage)
    common = table[["seed", "condition"]].drop_duplicates()
    columns = _metric_columns(metrics)
    means = table.groupby("method", sort=False)[columns].agg(
        lambda v: v.mean(skipna=False)
    )
    means["n"] = table.groupby("method", sort=False).size()
    means = means.reset_index()
    owner = {}
    if summaries is not None and len(summaries.columns) > 1:
        owner = dict(summaries.attrs.get("family", {}))
        means = means.merge(summaries, on="method", how="left")
    means.attrs["summary_family"] = owner
    means.attrs["left_out"] = [m for m in counts.index if m not in kept]
    means.attrs["n_common"] = len(common)
    return means


def verdict(means: pd.DataFrame) -> pd.DataFrame:
    """Long table: family, metric, direction, method, value, rank (1 = best; controls
    and undefined values get no rank). Metrics: the per-condition columns
    (:data:`helpers.metrics.families.DIRECTIONS`) and the families' calibrated summaries
    (``attrs["summary_family"]`` of :func:`method_means`; higher is better on every
    calibrated scale).

    ``means``: :func:`method_means`' table.
    """
    owner = means.attrs.get("summary_family", {})
    rows = []
    contenders = ~means["method"].isin(list(POSITIVE_CONTROLS))
    for column in means.columns:
        if column in DIRECTIONS:
            family, direction = catalog.SPECS[column].family, DIRECTIONS[column]
        elif column == PLANTED:
            family, direction = "planted truth", "higher"
        elif column in owner:
            family, direction = owner[column], catalog.direction(column)
        else:
            continue
        values = means[column].astype(float)
        ranks = values.where(contenders).rank(
            ascending=direction == "lower", method="min"
        )
        for method, value, rank in zip(means["method"], values, ranks):
            rows.append(
                {
                    "family": family,
                    "metric": column,
                    "derived": column.startswith(DERIVED_PREFIXES),
                    "direction": direction,
                    "method": method,
                    "value": value,
                    "rank": rank,
                }
            )
    return pd.DataFrame(rows)


def verdict_wide(long: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Rows = (family, metric), columns = methods; each cell ``value (rank)``, ``value``
    for a control, ``n/a`` where the metric is undefined.

    ``long``: :func:`verdict`'s table; ``digits``: decimals shown.
    """

    def cell(row) -> str:
        if pd.isna(row["value"]):
            return "n/a"
        text = f"{row['value']:.{digits}f}"
        return text if pd.isna(row["rank"]) else f"{text} ({int(row['rank'])})"

    out = long.assign(cell=long.apply(cell, axis=1))
    order = list(dict.fromkeys(long["method"]))
    wide = out.pivot(index=["family", "metric"], columns="method", values="cell")
    wide = wide.reindex(columns=order).reindex(
        pd.MultiIndex.from_frame(long[["family", "metric"]].drop_duplicates())
    )
    wide.columns.name = None
    return wide


def verdict_ranks(long: pd.DataFrame) -> pd.DataFrame:
    """The ranks of :func:`verdict`'s table as a grid: rows = (group, metric), columns
    = the ranked methods (positive controls left out: they are shown, never ranked),
    values = rank (1 = best; NaN where the metric is undefined for the method).

    ``group`` is the metric's family, with `` (derived)`` appended for the per-method
    summaries (:data:`DERIVED_PREFIXES`); rows keep ``long``'s order, so each group's
    metrics are contiguous. The values themselves stay in ``long`` (saved by the
    chapter); :func:`helpers.plotting.rank_heatmap` draws this grid.

    ``long``: :func:`verdict`'s table.
    """
    table = long[~long["method"].isin(list(POSITIVE_CONTROLS))]
    derived = (
        table["derived"].astype(bool)
        if "derived" in table
        else table["metric"].str.startswith(DERIVED_PREFIXES)
    )
    family = table["family"].astype(str)
    table = table.assign(group=family.where(~derived, family + " (derived)"))
    rows = pd.MultiIndex.from_frame(
        table[["group", "metric"]].drop_duplicates(), names=["group", "metric"]
    )
    grid = table.pivot(index=["group", "metric"], columns="method", values="rank")
    grid = grid.reindex(index=rows, columns=list(dict.fromkeys(table["method"])))
    grid.columns.name = None
    return grid.astype(float)


def scale_check(means: pd.DataFrame) -> pd.DataFrame:
    """The top and bottom of the calibrated scales, per metric (one row each): the mean
    baseline's and the split-half replicate's means, whether the replicate scale is
    defined (the replicate better than the baseline; cell-eval2 stops otherwise), and
    the peers' DRF of the metric (the interpolated duplicate's ``drf_*``: how much of
    the range from the mean baseline to perfect a replicate covers). ``means``:
    :func:`method_means` with the summaries joined."""
    table = means.set_index("method")
    rows = []
    for metric in [c for c in DIRECTIONS if c in table.columns]:
        lower = DIRECTIONS[metric] == "lower"
        row = {"metric": metric, "direction": DIRECTIONS[metric]}
        for name in (calibrated.NEGATIVE_CONTROL, vcc.REPLICATE_METHOD):
            row[name] = table[metric].get(name, np.nan)
        b, r = row[calibrated.NEGATIVE_CONTROL], row[vcc.REPLICATE_METHOD]
        row["replicate_better"] = bool(r < b if lower else r > b)
        drf = f"drf_{metric}"
        row["metric_drf"] = (
            table[drf].get("interpolated_duplicate", np.nan)
            if drf in table.columns
            else np.nan
        )
        rows.append(row)
    return pd.DataFrame(rows)


def agreement_with_planted(long: pd.DataFrame) -> pd.DataFrame:
    """Per metric: Spearman's rho between its ranks of the methods and the planted
    truth's ranks (methods ranked by both); 1 = the metric orders the methods as the
    planted truth does.
    """
    ranks = long.pivot_table(
        index="metric", columns="method", values="rank", sort=False
    )
    if PLANTED not in ranks.index:
        raise InputError(
            "No planted truth in this table: agreement needs a simulated task."
        )
    planted = ranks.loc[PLANTED]
    rows = []
    for metric, row in ranks.drop(index=PLANTED).iterrows():
        both = row.notna() & planted.notna()
        rho = (
            row[both].rank().corr(planted[both].rank(), method="pearson")
            if both.sum() >= 3
            else np.nan
        )
        family = long.loc[long["metric"] == metric, "family"].iloc[0]
        rows.append(
            {
                "family": family,
                "metric": metric,
                "n_methods": int(both.sum()),
                "spearman_rho": rho,
            }
        )
    return pd.DataFrame(rows)


#: The graded methods of :func:`graded_agreement`: name -> (weight of the planted
#: change, weight of the mean baseline's change, noise sd in units of the planted
#: change's sd)
GRADED = {
    "mix_0.00": (0.0, 1.0, 0.0),
    "mix_0.25": (0.25, 0.75, 0.0),
    "mix_0.50": (0.5, 0.5, 0.0),
    "mix_0.75": (0.75, 0.25, 0.0),
    "planted": (1.0, 0.0, 0.0),
    "scaled_0.5": (0.5, 0.0, 0.0),
    "scaled_2": (2.0, 0.0, 0.0),
    "noisy_0.5": (1.0, 0.0, 0.5),
    "noisy_1": (1.0, 0.0, 1.0),
}
#: The small simulated screens of :func:`graded_agreement`
#: (:func:`helpers.simulate.simulate_screen`)
GRADED_SCREEN = dict(n_genes=600, n_single=40, n_double=40, cells_per_condition=60)


def planted_change(truth_sim, ctrl: pd.Series, condition: str) -> pd.Series:
    """A condition's planted change in log-normalised units: the simulator's log-rate
    change ``delta`` (:meth:`helpers.simulate.SimulationTruth.effect`) moved through the
    control's scale, ``log1p(expm1(c) * exp(delta)) - c`` per gene (``c`` = the control
    pseudobulk): about ``delta`` for well-expressed genes, less for rare ones. It has no
    sampling noise: the target the graded methods are built around."""
    delta = truth_sim.effect(condition).reindex(ctrl.index).to_numpy(dtype=np.float64)
    c = ctrl.to_numpy(dtype=np.float64)
    return pd.Series(np.log1p(np.expm1(c) * np.exp(delta)) - c, index=ctrl.index)


def graded_predictions(
    truth_sim, truth: Pseudobulk, split, genes, *, seed: int = 0
) -> tuple[dict[str, Predictions], pd.DataFrame]:
    """The :data:`GRADED` methods for the held-out conditions of ``split``, and their
    planted quality.

    Predicted change of method (a, b, s) for condition ``p``: ``a T_p + b M + s sd(T_p)
    e`` with ``T_p`` the planted change (:func:`planted_change`), ``M`` the mean
    baseline's change (the training pseudobulks' mean minus the control) and ``e``
    standard normal noise (``numpy.random.default_rng([seed, k])`` for the k-th method).
    Their quality is known by construction: ``planted_error`` = the L2 distance of the
    predicted change to ``T_p``, ``planted_correlation`` = their Pearson correlation, on
    ``genes``. Mixtures of the planted change and the mean order the methods the same
    way on both; a scaled planted change is perfectly correlated but wrong in size;
    noise hurts both. Returns (name -> Predictions on all genes, one row per method and
    condition with the planted quality).
    """
    ctrl = truth.ctrl
    train = [c for c in split.train if c in truth.conditions]
    mean_change = truth.means.loc[train].mean() - ctrl
    held = [c for c in split.held_out if c in truth.conditions]
    target = pd.DataFrame(
        [planted_change(truth_sim, ctrl, c) for c in held], index=held
    )
    gene_idx = truth.genes.get_indexer(pd.Index(genes))
    preds, rows = {}, []
    for k, (name, (a, b, s)) in enumerate(GRADED.items()):
        rng = np.random.default_rng([seed, k])
        t = target.to_numpy()
        noise = rng.standard_normal(t.shape) * t[:, gene_idx].std(axis=1, keepdims=True)
        change = a * t + b * mean_change.to_numpy()[None, :] + s * noise
        values = pd.DataFrame(
            change + ctrl.to_numpy()[None, :], index=held, columns=truth.genes
        )
        preds[name] = Predictions(values, name, truth.dataset, split.seed)
        for i, p in enumerate(held):
            d, tt = change[i, gene_idx], t[i, gene_idx]
            rows.append(
                {
                    "method": name,
                    "seed": split.seed,
                    "condition": p,
                    "planted_error": float(np.sqrt(((d - tt) ** 2).sum())),
                    "planted_correlation": float(np.corrcoef(d, tt)[0, 1]),
                }
            )
    return preds, pd.DataFrame(rows)


def graded_agreement(
    sim_seeds=(0, 1, 2, 3),
    *,
    families="all",
    n_top: int = 1000,
    screen: dict | None = None,
    n_boot: int = 2000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Which metric orders methods of known quality correctly? (chapter 9)

    For each simulator seed a small SYNTHETIC Norman-shaped screen
    (:data:`GRADED_SCREEN`, or ``screen``) is drawn, split as the paper splits doubles
    (split seed 1), and the :data:`GRADED` methods (:func:`graded_predictions`) are
    scored by every independent metric against all cells of the held-out doubles. Per
    seed and metric, Spearman's rho between the metric's means (oriented so that higher
    is better) and each planted quality: ``-planted_error`` and ``planted_correlation``.
    Returns (rho per seed, metric and planted quality; per metric and planted quality
    the mean rho over seeds with a 95% percentile interval resampling seeds, and its
    min and max).
    ``sim_seeds``: the simulator seeds; ``families``: the metric families scored;
    ``n_top``: the evaluation genes; ``n_boot``: resamples of the seeds for the
    interval.
    """
    from ..pseudobulk import pseudobulk
    from ..simulate import simulate_screen
    from ..splits import double_split

    families = family_names(families)
    params = {**GRADED_SCREEN, **(screen or {})}
    per_seed = []
    for sim_seed in sim_seeds:
        sim = simulate_screen(**params, seed=sim_seed)
        cells, truth_sim = sim.adata, sim.truth
        truth = pseudobulk(cells)
        split = double_split(truth.conditions, 1, dataset=truth.dataset)
        genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
        preds, quality = graded_predictions(
            truth_sim, truth, split, genes, seed=sim_seed
        )
        cache: dict = {}
        tables = []
        for pred in preds.values():
            table = evaluate(pred, truth, split, genes=genes)
            if families:
                inp = metric_input(pred, truth, split, genes, cells=cells, cache=cache)
                table = table.merge(score_families(inp, families), on=_KEYS)
            tables.append(table)
        table = pd.concat(tables, ignore_index=True).merge(quality, on=_KEYS)
        means = table.groupby("method", sort=False).mean(numeric_only=True)
        planted = {
            "planted_error": -means["planted_error"],
            "planted_correlation": means["planted_correlation"],
        }
        for metric in (c for c in DIRECTIONS if c in means.columns):
            score = means[metric] * (-1.0 if DIRECTIONS[metric] == "lower" else 1.0)
            for name, gold in planted.items():
                both = score.notna() & gold.notna()
                rho = (
                    score[both].rank().corr(gold[both].rank())
                    if both.sum() >= 3
                    else np.nan
                )
                per_seed.append(
                    {
                        "sim_seed": sim_seed,
                        "family": catalog.SPECS[metric].family,
                        "metric": metric,
                        "planted": name,
                        "n_methods": int(both.sum()),
                        "n_conditions": len(split.held_out),
                        "spearman_rho": rho,
                    }
                )
    per_seed = pd.DataFrame(per_seed)
    rows = []
    for (family, metric, name), part in per_seed.groupby(
        ["family", "metric", "planted"], sort=False
    ):
        ci = crossed_interval(part, "spearman_rho", ["sim_seed"], n_boot=n_boot)
        rows.append(
            {
                "family": family,
                "metric": metric,
                "planted": name,
                "mean_rho": ci["estimate"],
                "lower": ci["lower"],
                "upper": ci["upper"],
                "min_rho": part["spearman_rho"].min(),
                "max_rho": part["spearman_rho"].max(),
                "n_seeds": ci["n_rows"],
                "n_methods": int(part["n_methods"].max()),
            }
        )
    return per_seed, pd.DataFrame(rows)


def _common_rows(metrics: pd.DataFrame, min_coverage: float) -> pd.DataFrame:
    """The rows of the methods kept by :func:`method_means`, on the (seed, condition)
    pairs every kept method scored."""
    counts = metrics.groupby("method", sort=False).size()
    kept = counts[counts >= min_coverage * counts.max()].index
    table = metrics[metrics["method"].isin(kept)]
    pairs = table.groupby(["seed", "condition"])["method"].nunique()
    common = pairs[pairs == len(kept)].index
    return (
        table.set_index(["seed", "condition"])
        .loc[lambda t: t.index.isin(common)]
        .reset_index()
    )


def resampled_means(
    metrics: pd.DataFrame,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    min_coverage: float = 0.5,
) -> dict:
    """Each method's mean of every metric, on the observed rows and on ``n_boot``
    resamples of the held-out conditions and splits.

    Rows are the (seed, condition) pairs every kept method scored (as
    :func:`method_means`). Conditions and split seeds are resampled as crossed factors
    (:func:`helpers.uncertainty.crossed_weights`: a condition held out in several splits
    is drawn as one unit). A method's mean is NaN in a resample that draws a condition
    where its value is NaN (as :func:`method_means` keeps NaN). The derived metrics are
    computed from the resampled means: the book's DRF (:func:`helpers.metrics.
    calibrated.book_drf`, negative control ``"mean"``) and cell-eval2's replicate scale
    (:func:`helpers.metrics.vcc.replicate_score`, between ``"mean"`` and
    ``"split_half_replicate"``). Returns a dict: ``methods``, ``values`` (metric ->
    array, row 0 = the observed rows, rows 1.. = resamples; columns = methods),
    ``direction`` and ``derived`` (metric -> bool), ``n_conditions``, ``n_splits``,
    ``n_boot`` (resamples with a non-zero weight).
    """
    if "condition" not in metrics or "method" not in metrics or "seed" not in metrics:
        raise InputError(
            "resampled_means needs per-condition rows (columns method, seed, condition "
            "and metric columns): pass score_all(...).metrics, not method_means(...)."
        )
    table = _common_rows(metrics, min_coverage)
    seeds = table["seed"].astype("object")
    table = table.assign(seed=seeds.where(seeds.notna(), -1))
    methods = list(pd.unique(table["method"]))
    pairs = (
        table[["seed", "condition"]]
        .drop_duplicates()
        .sort_values(["seed", "condition"])
        .reset_index(drop=True)
    )
    weights = crossed_weights(pairs, ["condition", "seed"], n_boot=n_boot, seed=seed)
    weights = np.vstack([np.ones(len(pairs)), weights])
    total = weights.sum(axis=1)
    weights = weights[total > 0]
    total = total[total > 0]
    index = pd.MultiIndex.from_frame(pairs)
    values, direction, derived = {}, {}, {}
    for column in (c for c in DIRECTIONS if c in table.columns):
        wide = table.pivot_table(
            index=["seed", "condition"],
            columns="method",
            values=column,
            aggfunc="first",
            dropna=False,
        ).reindex(index=index, columns=methods)
        v = wide.to_numpy(dtype=np.float64)
        missing = ~np.isfinite(v)
        means = weights @ np.where(missing, 0.0, v) / total[:, None]
        means[(weights @ missing.astype(np.float64)) > 0] = np.nan
        values[column], direction[column], derived[column] = (
            means,
            DIRECTIONS[column],
            False,
        )
    negative = calibrated.NEGATIVE_CONTROL
    if negative in methods:
        k = methods.index(negative)
        for column, (higher, perfect) in calibrated.DRF_METRICS.items():
            if column not in values:
                continue
            x = values[column]
            neg = np.repeat(x[:, [k]], len(methods), axis=1)
            drf = calibrated.book_drf(
                x[..., None], neg[..., None], higher_is_better=higher, perfect=perfect
            )
            values[f"book_drf_{column}"] = drf
            direction[f"book_drf_{column}"] = catalog.direction(f"book_drf_{column}")
            derived[f"book_drf_{column}"] = True
    base, replicate = vcc.BASELINE_METHOD, vcc.REPLICATE_METHOD
    present = [c for c in vcc.COLUMNS if c in values]
    if base in methods and replicate in methods and present:
        kb, kr = methods.index(base), methods.index(replicate)
        score = np.vectorize(vcc.replicate_score, otypes=[float])
        scores = []
        for column in present:
            x = values[column]
            s = score(x, x[:, [kb]], x[:, [kr]], metric=column)
            values[f"replicate_score_{column}"] = s
            scores.append(s)
        if len(present) == len(vcc.COLUMNS):
            values["replicate_score_vcc"] = np.mean(scores, axis=0)
        for column in [c for c in values if c.startswith("replicate_score_")]:
            direction[column], derived[column] = catalog.direction(column), True
    return {
        "methods": methods,
        "values": values,
        "direction": direction,
        "derived": derived,
        "n_conditions": int(pairs["condition"].nunique()),
        "n_splits": int(pairs["seed"].nunique()),
        "n_boot": int(len(weights) - 1),
    }


def _best(values: np.ndarray, columns: list[int], direction: str) -> np.ndarray:
    if not columns:
        return np.full(len(values), np.nan)
    part = values[:, columns]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return (
                np.nanmin(part, axis=1)
                if direction == "lower"
                else np.nanmax(part, axis=1)
            )


def claim_support(
    metrics: pd.DataFrame,
    kind: str,
    claims=CLAIMS,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    threshold: float = SUPPORT_THRESHOLD,
    resampled: dict | None = None,
) -> pd.DataFrame:
    """Each claim of ``kind`` under each metric, with its support.

    ``metrics``: the per-condition table (``score_all(...).metrics``). A claim holds in
    a resample when the best of its ``better`` methods has a strictly better mean than
    the best of its ``worse`` methods (methods undefined on the observed rows, e.g. a
    correlation of "no change", take no part, as they get no rank). ``support`` = the
    share of resamples (:func:`resampled_means`) in which it holds; ``against`` = the
    share in which the opposite holds strictly (a tie counts for neither); ``observed``
    = holds / reversed / tied on the observed rows, or not testable (a side has no
    defined method). ``result``: "holds" where support >= ``threshold``, "fails" where
    against >= ``threshold`` (the opposite ranking is supported), "undecided" otherwise.
    ``derived`` marks the book's DRF and the replicate scale (reported, not counted as
    votes by :func:`conclusions`). ``claims``: the claims to check (default
    :data:`CLAIMS`); ``n_boot``, ``seed``: resamples and their seed
    (:func:`resampled_means`); ``resampled``: a :func:`resampled_means` result to reuse
    instead.
    """
    if not 0.5 < threshold < 1:
        raise InputError(f"threshold must lie between 0.5 and 1; got {threshold}.")
    r = resampled or resampled_means(metrics, n_boot=n_boot, seed=seed)
    methods = r["methods"]
    rows = []
    for claim in claims:
        if claim.kind not in (kind, "any"):
            continue
        for metric, values in r["values"].items():
            direction = r["direction"][metric]
            ranked = [m for i, m in enumerate(methods) if np.isfinite(values[0, i])]
            sides = [
                [methods.index(m) for m in side if m in ranked]
                for side in (claim.better, claim.worse)
            ]
            testable = all(sides)
            if testable:
                best, worst = (_best(values, side, direction) for side in sides)
                better = best < worst if direction == "lower" else best > worst
                reverse = best > worst if direction == "lower" else best < worst
                support = float(better[1:].mean()) if len(better) > 1 else np.nan
                against = float(reverse[1:].mean()) if len(better) > 1 else np.nan
                observed = (
                    "holds" if better[0] else "reversed" if reverse[0] else "tied"
                )
            else:
                support, against, observed = np.nan, np.nan, "not testable"
            result = (
                "not testable"
                if not testable
                else (
                    "holds"
                    if support >= threshold
                    else "fails"
                    if against >= threshold
                    else "undecided"
                )
            )
            family = catalog.SPECS[metric].family
            rows.append(
                {
                    "key": claim.key,
                    "claim": claim.text,
                    "metric": metric,
                    "family": family,
                    "derived": r["derived"][metric],
                    "better": ", ".join(m for m in claim.better if m in ranked),
                    "worse": ", ".join(m for m in claim.worse if m in ranked),
                    "n_conditions": r["n_conditions"],
                    "n_splits": r["n_splits"],
                    "n_resamples": r["n_boot"],
                    "observed": observed,
                    "support": support,
                    "against": against,
                    "result": result,
                }
            )
    return pd.DataFrame(rows)


def conclusions(
    metrics: pd.DataFrame,
    kind: str,
    claims=CLAIMS,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    threshold: float = SUPPORT_THRESHOLD,
) -> pd.DataFrame:
    """Each claim of ``kind`` ("double" / "single"), with the uncertainty of its
    verdict.

    ``metrics``: the per-condition table (``score_all(...).metrics``), not the means:
    the held-out conditions (and splits, where there are several) are resampled as
    crossed factors (:func:`resampled_means`) and each claim is checked in every
    resample under every metric (:func:`claim_support`). Only the **independent**
    metrics vote: the per-condition metrics of :data:`helpers.metrics.families.
    DIRECTIONS`. The derived summaries (the book's DRF, the replicate scale) rescale or
    average them; they are reported (``derived_holds``), never counted.

    Columns: claim, key, better / worse (the methods the claim is about, as present),
    n_conditions, n_splits, n_resamples, ``support`` (the share of resamples in which
    the claim holds under **every** independent metric at once), n_metrics (independent
    metrics where the claim is testable), n_holds / n_fails / n_undecided (metrics
    whose claim is supported, whose opposite is supported (both at ``threshold``; see
    :func:`claim_support`), or neither), the
    metrics of each, threshold and the ``verdict``:

    * "holds under every metric": ``support`` >= ``threshold``;
    * "fails under every metric": the opposite ranking is supported under every metric;
    * "depends on the metric": it holds (support >= ``threshold``) under some metrics
      and fails under others;
    * "holds under some metrics; undecided under the others", "fails under some
      metrics; undecided under the others", "undecided under every metric" (the
      held-out conditions cannot tell), "not testable here".

    **Threshold** (default :data:`SUPPORT_THRESHOLD` = 0.95): a claim is stated only
    when fewer than 1 resample in 20 contradicts it, the convention of a 95% interval.
    With 5 held-out conditions this needs a claim to hold on (almost) every one of them:
    a resample that leaves out the one condition deciding a claim happens with
    probability (4/5)^5 = 0.33. The support is the share of resamples, not the
    probability that the claim is true.
    ``claims``: the claims to check (default :data:`CLAIMS`); ``n_boot``, ``seed``:
    resamples and their seed (:func:`resampled_means`).
    """
    r = resampled_means(metrics, n_boot=n_boot, seed=seed)
    by_metric = claim_support(metrics, kind, claims, threshold=threshold, resampled=r)
    rows = []
    for claim in claims:
        if claim.kind not in (kind, "any"):
            continue
        part = by_metric[by_metric["key"] == claim.key]
        counted = part[~part["derived"] & (part["result"] != "not testable")]
        derived = part[part["derived"] & (part["result"] == "holds")]
        groups = {
            name: counted.loc[counted["result"] == name, "metric"].tolist()
            for name in ("holds", "fails", "undecided")
        }
        joint = _joint_support(r, claim, counted["metric"].tolist())
        n = len(counted)
        if n == 0:
            text = "not testable here"
        elif joint >= threshold:
            text = "holds under every metric"
        elif len(groups["fails"]) == n:
            text = "fails under every metric"
        elif groups["holds"] and groups["fails"]:
            text = "depends on the metric"
        elif groups["holds"]:
            text = "holds under some metrics; undecided under the others"
        elif groups["fails"]:
            text = "fails under some metrics; undecided under the others"
        else:
            text = "undecided under every metric"
        first = part.iloc[0] if len(part) else None
        rows.append(
            {
                "claim": claim.text,
                "key": claim.key,
                "better": "" if first is None else first["better"],
                "worse": "" if first is None else first["worse"],
                "n_conditions": r["n_conditions"],
                "n_splits": r["n_splits"],
                "n_resamples": r["n_boot"],
                "support": joint if n else np.nan,
                "verdict": text,
                "n_metrics": n,
                "n_holds": len(groups["holds"]),
                "n_fails": len(groups["fails"]),
                "n_undecided": len(groups["undecided"]),
                "holds": ", ".join(groups["holds"]),
                "fails": ", ".join(groups["fails"]),
                "undecided": ", ".join(groups["undecided"]),
                "derived_holds": ", ".join(derived["metric"]),
                "threshold": threshold,
            }
        )
    return pd.DataFrame(rows)


def _joint_support(r: dict, claim: Claim, metrics: list[str]) -> float:
    """Share of resamples in which ``claim`` holds under every metric of ``metrics``."""
    if not metrics:
        return np.nan
    methods = r["methods"]
    every = np.ones(r["n_boot"] + 1, dtype=bool)
    for metric in metrics:
        values, direction = r["values"][metric], r["direction"][metric]
        ranked = [m for i, m in enumerate(methods) if np.isfinite(values[0, i])]
        sides = [
            [methods.index(m) for m in side if m in ranked]
            for side in (claim.better, claim.worse)
        ]
        best, worst = (_best(values, side, direction) for side in sides)
        every &= best < worst if direction == "lower" else best > worst
    return float(every[1:].mean()) if len(every) > 1 else np.nan


def findings(claims: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """The chapter's conclusions as Markdown bullets, written from the
    :func:`conclusions` tables (column ``task`` added by the caller; ``labels``: task ->
    how to name its data).

    ``claims``: the concatenated :func:`conclusions` tables.
    """
    labels = labels or {}
    lines = []
    for row in claims.itertuples():
        where = labels.get(row.task, row.task)
        if row.verdict == "not testable here":
            lines.append(
                f"- *{row.claim}* ({where}): not testable here (a method it needs is "
                "missing or undefined)."
            )
            continue
        detail = [
            f"{row.better} vs {row.worse}; {row.n_conditions} held-out conditions x "
            f"{row.n_splits} split(s), {row.n_resamples} resamples",
            f"support {row.support:.2f} that it holds under all {row.n_metrics} "
            "independent metrics at once",
        ]
        for name, count, metrics in (
            ("holds", row.n_holds, row.holds),
            ("fails", row.n_fails, row.fails),
            ("undecided", row.n_undecided, row.undecided),
        ):
            if count:
                detail.append(f"{name} under {count}: {metrics}")
        lines.append(
            f"- *{row.claim}* ({where}): **{row.verdict}** ({'; '.join(detail)})."
        )
    return "\n".join(lines)


def method_intervals(
    metrics: pd.DataFrame,
    value: str,
    methods=None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean of ``value`` per method with a 95% interval resampling conditions and splits
    (:func:`helpers.uncertainty.crossed_interval`); one row per method.

    ``metrics``: the per-condition table; ``value``: the metric column; ``methods``: the
    methods (default all, in table order); ``n_boot``, ``seed``: resamples and their
    seed.
    """
    if value not in metrics.columns:
        raise InputError(
            f"The metrics table has no column {value!r}; "
            f"it has {list(metrics.columns)}."
        )
    names = list(pd.unique(metrics["method"])) if methods is None else list(methods)
    rows = []
    for method in names:
        part = metrics[metrics["method"] == method]
        if part.empty:
            raise InputError(
                f"No rows of method {method!r}; the table has "
                f"{sorted(set(metrics['method']))}."
            )
        out = crossed_interval(
            part, value, ["condition", "seed"], n_boot=n_boot, seed=seed
        )
        rows.append({"method": method, **out})
    return pd.DataFrame(rows)


def uninformative_conditions(metrics: pd.DataFrame, value: str) -> pd.DataFrame:
    """The (seed, condition)s on which every method, controls included, scores the same
    ``value`` (e.g. a DE overlap of 0 for all): they cannot order any two methods.

    ``metrics``: the per-condition table of all methods; ``value``: the metric column.
    """
    if value not in metrics.columns:
        raise InputError(f"The metrics table has no column {value!r}.")
    spread = metrics.groupby(["seed", "condition"])[value].agg(["min", "max", "size"])
    same = spread[(spread["max"] - spread["min"]).abs() <= 1e-12]
    return same.rename(columns={"min": value, "size": "n_methods"})[
        [value, "n_methods"]
    ].reset_index()


def reference_choice(task: Task, scored: Scored, *, n_top: int = 1000) -> pd.DataFrame:
    """Pearson delta of each method against three references, averaged over its
    predictions: the control (the paper), the equal-weight mean of the **training**
    perturbations (Systema, the book's ``pearson_delta_perturbed_mean``) and the mean of
    the **held-out** perturbations (what one peer computes: a reference built from the
    test set). ``held_out_minus_training``: how much that choice of reference moves each
    method's score. Against the task's full truth (all cells), as the peers compute it.

    ``scored``: what :func:`score_all` returned for ``task`` (its predictions).
    ``task``: the benchmark task; ``n_top``: the evaluation genes (top ``n_top`` by
    control expression).
    """
    if not isinstance(scored, Scored):
        raise TypeError(
            "Pass what score_all returned (a Scored, with its predictions)."
        )
    by_seed = scored.predictions
    truth = task.truth
    genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    rows = []
    for split in task.splits:
        if split.seed not in by_seed:
            continue
        train = [c for c in split.train if c != "ctrl" and c in truth.conditions]
        references = {
            "control": truth.ctrl[genes],
            "training_mean": truth.means.loc[train, genes].mean(),
            "held_out_mean": truth.means.loc[split.held_out, genes].mean(),
        }
        for method, pred in by_seed.get(split.seed, {}).items():
            for condition in pred.conditions:
                p = pred.values.loc[condition, genes].to_numpy()
                o = truth.means.loc[condition, genes].to_numpy()
                rows.append(
                    {
                        "method": method,
                        **{
                            name: pearson_delta(p, o, ref.to_numpy())
                            for name, ref in references.items()
                        },
                    }
                )
    table = (
        pd.DataFrame(rows)
        .groupby("method", sort=False)
        .agg(lambda v: v.mean(skipna=False))
    )
    table["held_out_minus_training"] = table["held_out_mean"] - table["training_mean"]
    return table
