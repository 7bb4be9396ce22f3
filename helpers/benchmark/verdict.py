"""Which of the paper's conclusions survive which metric? (chapter 9)

One set of predictions, every metric family of :mod:`helpers.metrics`, one table:

* :func:`score_all` - the task's reference methods (and any predictions you add, e.g. chapter 4's
  models) on every split, scored by :func:`helpers.metrics.evaluate` plus the families' columns and
  positive controls (the same :func:`helpers.benchmark.runner.family_rows` that
  :func:`helpers.benchmark.run` uses), and the calibrated summaries per method. On a simulated
  task it adds ``planted_pearson``: the correlation of the predicted change with the **planted**
  change of the simulator (:class:`helpers.simulate.SimulationTruth`), the one score that knows
  the answer.
* :func:`method_means` - one value per (method, metric) on the common set of perturbations.
* :func:`verdict` - rows = metrics, one value and rank per method (1 = best). Positive controls
  are shown, not ranked: they are made from the held-out cells themselves. A metric that is
  undefined for a method (NaN, e.g. a correlation of "no change") gives that method no rank.
* :func:`agreement_with_planted` - per metric, Spearman's rho between its ranking of the methods
  and the planted truth's ranking (simulated tasks).
* :func:`conclusions` - each of the paper's claims (:data:`CLAIMS`), checked under every metric:
  holds, fails, or not testable (a method it needs is missing or unranked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..metrics import evaluate, family_names
from ..metrics.families import COLUMN_FAMILY, DIRECTIONS, FAMILIES
from ..metrics.paper import pearson_delta
from ..predictions import Predictions
from ..pseudobulk import top_control_genes
from .runner import POSITIVE_CONTROLS, family_cells, family_rows, run_methods
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
    "agreement_with_planted",
    "conclusions",
    "findings",
    "reference_leak",
    "PLANTED",
]

#: The deep models a chapter may add (chapter 4's outputs): GEARS and the book's model with scGPT's
#: architecture (a tiny one trained from scratch on the quick profile, the released scGPT_human
#: weights fine-tuned by the book on the paper profile).
DEEP_MODELS = ("gears", "tiny_transformer", "scgpt_human_book")
PLANTED = "planted_pearson"
_KEYS = ["method", "seed", "condition"]
_NOT_VERDICT = {"drf_r2_delta_weighted"}


@dataclass(frozen=True)
class Claim:
    """A conclusion of the paper as a ranking statement: the best of ``better`` ranks above the best
    of ``worse``. ``kind``: the tasks it is about ("double", "single" or "any")."""

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
    # the objection's side (CellSimBench): on calibrated metrics deep models beat the mean baseline
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
    """Chapter 4's saved predictions (``<name>_predictions.csv`` in ``folder``) that fit ``task``:
    same dataset, only its split seeds. Returns (name -> predictions per seed, notes on what was
    left out and why)."""
    from pathlib import Path

    found, notes = {}, []
    seeds = {split.seed for split in task.splits}
    for name in DEEP_MODELS:
        path = Path(folder) / f"{name}_predictions.csv"
        if not path.exists():
            notes.append(
                f"{name}: no {path.name} (run chapter 4 on this profile first); left out"
            )
            continue
        preds = Predictions.load_all(path)
        usable = [p for p in preds if p.dataset == task.dataset and p.seed in seeds]
        if not usable:
            notes.append(
                f"{name}: {path.name} holds predictions for "
                f"{sorted({p.dataset for p in preds})}, not for {task.dataset!r}; left out"
            )
            continue
        found[name] = usable
    return found, notes


@dataclass
class Scored:
    """What :func:`score_all` returns: per-condition ``metrics``, calibrated ``summaries`` per
    method, and the methods' ``predictions`` (split seed -> method -> Predictions). Unpacks as
    ``metrics, summaries = score_all(...)``."""

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
    """Every metric family on the task's reference methods, ``extra`` predictions and the controls.

    ``extra``: method name -> predictions, one per split seed (seeds the task does not have are
    an error; seeds beyond ``max_splits`` are left out). ``max_splits``: score only the task's
    first splits (the quick profile's budget; None = all). Returns a :class:`Scored`: the
    per-condition metrics, the calibrated summaries per method from the families' ``summarise``
    and the methods' predictions (the positive controls' rows are in the metrics).
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
    tables = [table]
    splits = {split.seed: split for split in task_splits}
    every_seed = {split.seed for split in task.splits}
    for name, preds in (extra or {}).items():
        for pred in preds:
            if pred.seed in every_seed and pred.seed not in splits:
                continue  # a split left out by max_splits
            if pred.seed not in splits:
                raise ValueError(
                    f"{name}: predictions for seed {pred.seed}, but task {task.name!r} has "
                    f"seeds {sorted(splits)}."
                )
            pred = pred.renamed(name)
            tables.append(
                evaluate(
                    pred, truth, splits[pred.seed], n_top=n_top, allow_missing=True
                )
            )
            by_seed[pred.seed][name] = pred
    genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    cells = family_cells(task, families, genes)
    cache: dict = {}
    family_tables, planted = [], []
    for split in task_splits:
        controls, control_tables, rows = family_rows(
            task, split, by_seed[split.seed], families, genes, cells, cache, n_top
        )
        tables += control_tables
        family_tables += rows
        if task.planted is not None:
            planted.append(
                _planted(task, {**by_seed[split.seed], **controls}, split.seed, genes)
            )
    metrics = pd.concat(tables, ignore_index=True)
    if family_tables:
        metrics = metrics.merge(
            pd.concat(family_tables, ignore_index=True), on=_KEYS, how="left"
        )
    if planted:
        metrics = metrics.merge(
            pd.concat(planted, ignore_index=True), on=_KEYS, how="left"
        )
    summaries = pd.DataFrame({"method": pd.unique(metrics["method"])})
    owner = {}
    for name in families:
        summarise = getattr(FAMILIES[name], "summarise", None)
        if summarise is not None:
            part = summarise(metrics)
            # one calibrated value per metric in the verdict: medians and counts stay in the
            # table; drf_r2_delta_weighted equals drf_weighted_mse per condition (R2 = 1 - wMSE / V
            # with V fixed by the truth), so it would count one result twice
            owner |= {
                c: name
                for c in part.columns
                if c != "method"
                and c not in _NOT_VERDICT
                and not c.startswith(("n_", "drf_median_"))
            }
            summaries = summaries.merge(part, on="method", how="left")
    summaries.attrs["family"] = owner
    return Scored(metrics, summaries, by_seed)


def _planted(
    task: Task, runs: dict[str, Predictions], seed: int, genes: pd.Index
) -> pd.DataFrame:
    """Correlation of each predicted change with the simulator's planted change (log-rate scale:
    a correlation, so the scale does not matter; NaN for a constant prediction, as everywhere).
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
    """Mean of every metric column per method, on the (seed, condition)s every kept method scored.

    A method that scored fewer than ``min_coverage`` x the best-covered method's pairs is left out
    (as :func:`helpers.metrics.forest` does; ``attrs["left_out"]``). Means keep NaN: a method whose
    correlation is undefined on a condition has no mean for it. ``summaries`` (calibrated
    summaries per method) are joined on.
    """
    counts = metrics.groupby("method", sort=False).size()
    kept = counts[counts >= min_coverage * counts.max()].index
    table = metrics[metrics["method"].isin(kept)]
    pairs = table.groupby(["seed", "condition"])["method"].nunique()
    common = pairs[pairs == len(kept)].index
    table = (
        table.set_index(["seed", "condition"])
        .loc[lambda t: t.index.isin(common)]
        .reset_index()
    )
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
    """Long table: family, metric, direction, method, value, rank (1 = best; controls and undefined
    values get no rank). Metrics: the per-condition columns (:data:`helpers.metrics.families.DIRECTIONS`)
    and the families' calibrated summaries (``attrs["summary_family"]`` of :func:`method_means`;
    higher is better on every calibrated scale)."""
    owner = means.attrs.get("summary_family", {})
    rows = []
    contenders = ~means["method"].isin(list(POSITIVE_CONTROLS))
    for column in means.columns:
        if column in DIRECTIONS:
            family, direction = COLUMN_FAMILY[column], DIRECTIONS[column]
        elif column == PLANTED:
            family, direction = "planted truth", "higher"
        elif column in owner:
            family, direction = owner[column], "higher"
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
                    "direction": direction,
                    "method": method,
                    "value": value,
                    "rank": rank,
                }
            )
    return pd.DataFrame(rows)


def verdict_wide(long: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Rows = (family, metric), columns = methods; each cell ``value (rank)``, ``value`` for a
    control, ``n/a`` where the metric is undefined."""

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


def agreement_with_planted(long: pd.DataFrame) -> pd.DataFrame:
    """Per metric: Spearman's rho between its ranks of the methods and the planted truth's ranks
    (methods ranked by both); 1 = the metric orders the methods as the planted truth does.
    """
    ranks = long.pivot_table(
        index="metric", columns="method", values="rank", sort=False
    )
    if PLANTED not in ranks.index:
        raise ValueError(
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


def conclusions(long: pd.DataFrame, kind: str, claims=CLAIMS) -> pd.DataFrame:
    """Each claim of ``kind`` ("double" / "single") under every metric of ``long``.

    Per claim: ``holds`` / ``fails`` (metrics where the best-ranked method of ``better`` ranks
    above / not above the best of ``worse``), ``not_testable`` (a side has no ranked method) and
    the ``verdict``: "holds under every metric", "depends on the metric", "fails under every
    metric" or "not testable here". Ranks come from :func:`verdict`; the planted truth is left out.
    """
    ranks = long[long["metric"] != PLANTED].pivot_table(
        index="metric", columns="method", values="rank", sort=False
    )
    rows = []
    for claim in claims:
        if claim.kind not in (kind, "any"):
            continue
        holds, fails, untestable = [], [], []
        for metric, row in ranks.iterrows():
            best = [
                row.reindex(list(side)).min() for side in (claim.better, claim.worse)
            ]
            if any(pd.isna(b) for b in best):
                untestable.append(metric)
            elif best[0] < best[1]:
                holds.append(metric)
            else:
                fails.append(metric)
        if not holds and not fails:
            text = "not testable here"
        elif not fails:
            text = "holds under every metric"
        elif not holds:
            text = "fails under every metric"
        else:
            text = "depends on the metric"
        rows.append(
            {
                "claim": claim.text,
                "verdict": text,
                "holds": ", ".join(holds),
                "fails": ", ".join(fails),
                "not_testable": ", ".join(untestable),
                "n_holds": len(holds),
                "n_tested": len(holds) + len(fails),
            }
        )
    return pd.DataFrame(rows)


def findings(claims: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """The chapter's conclusions as Markdown bullets, written from the :func:`conclusions` tables
    (column ``task`` added by the caller; ``labels``: task -> how to name its data)."""
    labels = labels or {}
    lines = []
    for row in claims.itertuples():
        where = labels.get(row.task, row.task)
        if row.verdict == "not testable here":
            lines.append(
                f"- *{row.claim}* ({where}): not testable here (a method it needs is "
                "missing or has no rank)."
            )
            continue
        text = f"- *{row.claim}* ({where}): **{row.verdict}** ({row.n_holds} of {row.n_tested} metrics"
        text += f"; fails under {row.fails})." if row.fails and row.holds else ")."
        lines.append(text)
    return "\n".join(lines)


def reference_leak(task: Task, scored: Scored, *, n_top: int = 1000) -> pd.DataFrame:
    """Pearson delta of each method against three references, averaged over its predictions:
    the control (the paper), the equal-weight mean of the **training** perturbations (Systema, the
    book's ``pearson_delta_perturbed_mean``) and the mean of the **held-out** perturbations (what
    one peer computes: a reference built from the test set).

    ``scored``: what :func:`score_all` returned for ``task`` (its predictions).
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
    table["inflation_by_leak"] = table["held_out_mean"] - table["training_mean"]
    return table
