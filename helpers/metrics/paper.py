"""The paper's metric family and the one ``evaluate`` every method goes through (chapter
2).

Notation: for a condition ``p``, ``y`` is the observed pseudobulk, ``y_hat`` the
prediction and ``c`` the control pseudobulk, all restricted to the evaluation genes
``G`` = the ``n`` genes most expressed in control (n = 1,000 in the paper; ties broken
first come).

* L2 (the headline metric):   ``l2 = sqrt( sum_{g in G} (y_hat_g - y_g)^2 )``
* Pearson delta:              ``pearson_delta = cor( y_hat - c, y - c )`` over ``G``;
  undefined (NaN) when the predicted change is constant, e.g. for "no change" -
  reported as NaN, never 0.
* Pearson r on raw values:    ``r = cor( y_hat, y )`` over ``G``.
* Ratio to a baseline (chapter 3): ``l2_method(p) / l2_baseline(p)`` per condition; the
  forest plot shows its mean over conditions with a 95% percentile-bootstrap interval
  (10,000 resamples). :func:`forest` is the whole chain: coverage rule -> common set ->
  ratio -> bootstrap.
* Error vs top-n genes:       ``l2`` over the first ``n`` genes for a grid of ``n``,
  with genes sorted by control expression (``order="control"``) or by observed |y - c|
  (``order="de"``).

**Target-gene exclusion** (``exclude_target=True`` here, in :func:`metric_input` and
in ``helpers.benchmark.run``). A perturbation changes its own target's transcript most
(CRISPRi knocks it down, CRISPRa raises it); when the target is measured, that one gene
can decide a correlation or a ranking across genes. With the option, every metric that
correlates or ranks across genes leaves out, for condition ``p``, the genes
``T(p)`` = ``p``'s targets (:func:`helpers.conditions.condition_genes`, both genes of a
double; :func:`non_target_mask`): ``pearson_delta`` and ``r`` here are computed over
the genes of ``G`` not in ``T(p)``. The per-gene averages (``l2`` here, MAE, weighted
MSE) are not correlations or rankings and keep every gene; ``n_genes`` counts the
evaluation genes ``G``. The default (False) is the paper's protocol. Which metric of
each family honours the option is said in its module's docstring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..conditions import CONTROL, condition_genes, match_conditions
from ..errors import InputError
from ..predictions import PredictionError, Predictions
from ..pseudobulk import Pseudobulk, top_control_genes
from ..splits import HELD_OUT, Split
from .spec import MetricSpec

__all__ = [
    "l2",
    "pearson_delta",
    "pearson_r",
    "evaluate",
    "error_vs_top_n",
    "top_n_grid",
    "summarise",
    "common_conditions",
    "ratio_to_baseline",
    "bootstrap_mean_ratio",
    "forest",
    "non_target_mask",
    "METRIC_COLUMNS",
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
]

METRIC_COLUMNS = [
    "dataset",
    "method",
    "seed",
    "split",
    "condition",
    "l2",
    "pearson_delta",
    "r",
    "n_genes",
]

NAME = "paper"
COLUMNS: list[str] = ["l2", "pearson_delta", "r"]
NEEDS_CELLS = False
#: The paper's per-condition columns (definitions: module docstring).
SPECS = (
    MetricSpec(
        "l2",
        NAME,
        "lower",
        False,
        None,
        None,
        "Euclidean distance of prediction and observed pseudobulk (evaluation genes)",
        perfect=0.0,
    ),
    MetricSpec(
        "pearson_delta",
        NAME,
        "higher",
        False,
        None,
        None,
        "Pearson correlation of the predicted and observed change from the control",
        perfect=1.0,
    ),
    MetricSpec(
        "r",
        NAME,
        "higher",
        False,
        None,
        None,
        "Pearson correlation of prediction and observed pseudobulk (raw values)",
        perfect=1.0,
    ),
)


def l2(prediction, observed) -> float:
    """Euclidean distance ``sqrt(sum((prediction - observed)^2))``."""
    diff = np.asarray(prediction, dtype=np.float64) - np.asarray(
        observed, dtype=np.float64
    )
    return float(np.sqrt(np.sum(diff * diff)))


def _cor(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either vector is constant (up to rounding)."""
    for v in (a, b):
        if v.std() <= 1e-12 * max(1.0, float(np.abs(v).max(initial=0.0))):
            return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def pearson_delta(prediction, observed, ctrl) -> float:
    """``cor(prediction - ctrl, observed - ctrl)``; NaN if either change is constant."""
    ctrl = np.asarray(ctrl, dtype=np.float64)
    return _cor(
        np.asarray(prediction, dtype=np.float64) - ctrl,
        np.asarray(observed, dtype=np.float64) - ctrl,
    )


def pearson_r(prediction, observed) -> float:
    """``cor(prediction, observed)`` on the raw (log-normalised) values."""
    return _cor(
        np.asarray(prediction, dtype=np.float64), np.asarray(observed, dtype=np.float64)
    )


def non_target_mask(genes, condition: str) -> np.ndarray:
    """Boolean mask over ``genes``: True for a gene that is not a target of
    ``condition`` (``T(p)``: :func:`helpers.conditions.condition_genes`, both genes of a
    double; ``ctrl`` has none).

    ``genes``: the evaluation genes (any sequence of names); ``condition``: a canonical
    condition name (``"A"``, ``"A+B"``).
    """
    targets = condition_genes(str(condition))
    return ~pd.Index(genes).isin(targets)


def _check_against_truth(
    predictions: Predictions,
    truth: Pseudobulk,
    split: Split | None,
    allow_missing: bool,
    subsets: tuple[str, ...],
) -> list[str]:
    """Validate predictions against the truth and the split; return the conditions to
    evaluate."""
    name = predictions.method
    if truth.dataset and predictions.dataset and truth.dataset != predictions.dataset:
        raise PredictionError(
            f"{name}: predictions are for dataset {predictions.dataset!r} but "
            f"the truth is {truth.dataset!r}. "
            "Evaluate predictions on the dataset (and version) they were made for."
        )
    unknown = predictions.conditions.difference(truth.conditions)
    if len(unknown):
        raise PredictionError(
            f"{name}: {len(unknown)} predicted condition(s) do not exist in "
            f"{truth.dataset or 'the data'}: "
            f"{list(unknown)[:5]}. Use the dataset's condition names ('ctrl', "
            "'A', 'A+B'; see helpers.conditions)."
        )
    foreign = predictions.genes.difference(truth.genes)
    if len(foreign):
        raise PredictionError(
            f"{name}: {len(foreign)} predicted gene(s) are not measured in "
            f"{truth.dataset or 'the data'} "
            f"(e.g. {list(foreign)[:5]}). Gene sets do not match: use the "
            "dataset's gene symbols as columns."
        )
    if split is None:
        return [c for c in predictions.conditions if c != CONTROL]
    if split.dataset and truth.dataset and split.dataset != truth.dataset:
        raise PredictionError(
            f"The split is for {split.dataset!r} but the truth is {truth.dataset!r}."
        )
    leaked = [
        c for c in predictions.conditions if split.assignment.get(c) not in subsets
    ]
    if leaked:
        where = {c: split.assignment.get(c, "not in split") for c in leaked[:5]}
        raise PredictionError(
            f"{name}: predictions include {len(leaked)} condition(s) that are "
            f"not held out ({'/'.join(subsets)}) in "
            f"split seed {split.seed}: {where}. Scoring training conditions as "
            "if held out inflates performance; "
            "predict only split.held_out."
        )
    expected = split.conditions(*subsets)
    missing = [c for c in expected if c not in predictions.conditions]
    if missing and not allow_missing:
        raise PredictionError(
            f"{name}: {len(missing)} held-out condition(s) have no prediction "
            f"(e.g. {missing[:5]}). Predict all of "
            "split.held_out, or pass allow_missing=True and compare methods on "
            "the conditions all of them predict."
        )
    return [c for c in expected if c in predictions.conditions]


def _in_truth_spelling(predictions: Predictions, truth: Pseudobulk) -> Predictions:
    """Rename doubles written in the other order (``B+A``) to the truth's spelling
    (``A+B``): the same perturbation (see :mod:`helpers.conditions`)."""
    renames = match_conditions(predictions.conditions, truth.conditions)
    if not renames:
        return predictions
    clash = [
        f"{old!r} and {new!r}"
        for old, new in renames.items()
        if new in predictions.conditions
    ]
    if clash:
        raise PredictionError(
            f"{predictions.method}: predicted both {clash[0]}, the same perturbation "
            "(the order of a double's genes carries no meaning); keep one."
        )
    values = predictions.values.rename(index=renames)
    return Predictions(
        values, predictions.method, predictions.dataset, predictions.seed
    )


def evaluate(
    predictions: Predictions,
    truth: Pseudobulk,
    split: Split | None = None,
    *,
    n_top: int = 1000,
    genes=None,
    subsets: tuple[str, ...] = HELD_OUT,
    allow_missing: bool = False,
    allow_missing_genes: bool = False,
    exclude_target: bool = False,
) -> pd.DataFrame:
    """Score predictions against observed pseudobulks: one row per condition (see
    :data:`METRIC_COLUMNS`).

    ``truth`` holds the observed pseudobulks (all conditions of the dataset, with
    ``ctrl``). Evaluation genes: ``genes`` if given, else the ``n_top`` genes most
    expressed in the truth's control (all genes if fewer are measured). With a
    ``split``, only its held-out conditions (test + val) may be predicted and all of
    them must be, unless ``allow_missing``. Predictions must cover every evaluation gene
    unless ``allow_missing_genes`` (then each metric uses the evaluation genes that are
    predicted and ``n_genes`` says how many). A double written in the other order
    (``B+A`` for the dataset's ``A+B``) is the same perturbation and scored as ``A+B``.
    ``predictions``: a :class:`helpers.predictions.Predictions`; ``subsets``: the
    split's subsets that count as held out (default test and val).
    ``exclude_target``: compute ``pearson_delta`` and ``r`` of condition ``p`` over the
    evaluation genes that are not ``p``'s targets (module docstring); ``l2`` and
    ``n_genes`` keep every evaluation gene.
    """
    if not isinstance(predictions, Predictions):
        raise PredictionError(
            f"evaluate expects a Predictions object, got {type(predictions).__name__}; "
            "wrap a conditions x genes DataFrame with helpers.predictions.Predictions."
        )
    predictions = _in_truth_spelling(predictions, truth)
    conditions = _check_against_truth(predictions, truth, split, allow_missing, subsets)
    if genes is None:
        genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    genes = pd.Index(genes)
    missing_genes = genes.difference(predictions.genes)
    if len(missing_genes):
        if not allow_missing_genes:
            raise PredictionError(
                f"{predictions.method}: {len(missing_genes)} of the {len(genes)} "
                "evaluation genes are not predicted "
                f"(e.g. {list(missing_genes)[:5]}). Predict all genes, or pass "
                "allow_missing_genes=True."
            )
        genes = genes.intersection(predictions.genes, sort=False)
    pred = predictions.values.loc[conditions, genes].to_numpy()
    obs = truth.means.loc[conditions, genes].to_numpy()
    ctrl = truth.ctrl[genes].to_numpy()
    rows = []
    for i, condition in enumerate(conditions):
        keep = (
            non_target_mask(genes, condition)
            if exclude_target
            else np.ones(len(genes), dtype=bool)
        )
        rows.append(
            {
                "dataset": truth.dataset or predictions.dataset,
                "method": predictions.method,
                "seed": predictions.seed
                if predictions.seed is not None
                else (split.seed if split else pd.NA),
                "split": split.subset_of(condition) if split else "none",
                "condition": condition,
                "l2": l2(pred[i], obs[i]),
                "pearson_delta": pearson_delta(pred[i, keep], obs[i, keep], ctrl[keep]),
                "r": pearson_r(pred[i, keep], obs[i, keep]),
                "n_genes": len(genes),
            }
        )
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    if split is not None:
        table.attrs["missing_conditions"] = [
            c for c in split.conditions(*subsets) if c not in conditions
        ]
    return table


def top_n_grid(n_genes: int, n_points: int = 60) -> np.ndarray:
    """Roughly log-spaced, distinct numbers of genes from 1 to ``n_genes`` (for
    error-vs-top-n curves)."""
    grid = np.unique(np.round(np.logspace(0, np.log10(n_genes), n_points)).astype(int))
    return grid[(grid >= 1) & (grid <= n_genes)]


def error_vs_top_n(
    predictions: Predictions,
    truth: Pseudobulk,
    conditions=None,
    *,
    order: str = "control",
    grid=None,
) -> pd.DataFrame:
    """L2 over the top-n genes for each condition and each n of ``grid``.

    ``order="control"``: genes sorted by control expression (decreasing, ties first
    come); ``order="de"``: genes sorted per condition by the observed |y - ctrl|
    (decreasing). Returns columns dataset, method, seed, condition, sorted_by, n, l2.
    ``predictions``, ``truth``: the predictions and the observed pseudobulks;
    ``conditions``: the conditions (default all predicted); ``order``: ``"control"`` or
    ``"de"`` (above); ``grid``: the numbers of genes (default :func:`top_n_grid`).
    """
    if order not in {"control", "de"}:
        raise InputError(f"order must be 'control' or 'de', got {order!r}.")
    conditions = list(predictions.conditions if conditions is None else conditions)
    conditions = [c for c in conditions if c != CONTROL]
    genes = truth.genes.intersection(predictions.genes, sort=False)
    grid = top_n_grid(len(genes)) if grid is None else np.asarray(grid)
    if grid.max() > len(genes) or grid.min() < 1:
        raise InputError(f"grid values must lie in 1..{len(genes)}.")
    ctrl = truth.ctrl[genes].to_numpy()
    control_order = np.argsort(-ctrl, kind="stable")
    rows = []
    for condition in conditions:
        obs = truth.means.loc[condition, genes].to_numpy()
        pred = predictions.values.loc[condition, genes].to_numpy()
        order_idx = (
            control_order
            if order == "control"
            else np.argsort(-np.abs(obs - ctrl), kind="stable")
        )
        cumulative = np.sqrt(np.cumsum((pred[order_idx] - obs[order_idx]) ** 2))
        for n in grid:
            rows.append((condition, int(n), float(cumulative[n - 1])))
    table = pd.DataFrame(rows, columns=["condition", "n", "l2"])
    table.insert(0, "dataset", truth.dataset)
    table.insert(1, "method", predictions.method)
    table.insert(2, "seed", predictions.seed)
    table.insert(4, "sorted_by", order)
    return table


def summarise(metrics: pd.DataFrame, by=("dataset", "method")) -> pd.DataFrame:
    """Mean and median L2, mean Pearson delta and the number of evaluated rows per group
    (the paper's red bars).

    ``metrics``: :func:`evaluate`'s rows of several methods; ``by``: the grouping
    columns.
    """
    by = list(by)
    grouped = metrics.groupby(by, observed=True, sort=False)
    summary = grouped.agg(
        mean_l2=("l2", "mean"),
        median_l2=("l2", "median"),
        mean_pearson_delta=("pearson_delta", "mean"),
        n=("l2", "size"),
    ).reset_index()
    return summary.sort_values(by[:-1] + ["mean_l2"]).reset_index(drop=True)


def common_conditions(
    metrics: pd.DataFrame, methods=None, by=("dataset", "seed")
) -> pd.DataFrame:
    """Rows of ``metrics`` for the (dataset, seed, condition)s that **every** method in
    ``methods`` scored.

    The paper compares methods on the perturbations all of them could predict; this
    makes that restriction explicit (and the number of dropped conditions visible in
    ``attrs["dropped"]``).
    """
    methods = list(metrics["method"].unique() if methods is None else methods)
    keys = list(by) + ["condition"]
    table = metrics[metrics["method"].isin(methods)]
    counts = table.groupby(keys, observed=True)["method"].nunique()
    keep = counts[counts == len(methods)].index
    out = table.set_index(keys).loc[lambda t: t.index.isin(keep)].reset_index()
    out.attrs["dropped"] = int(len(counts) - len(keep))
    return out


def ratio_to_baseline(
    metrics: pd.DataFrame,
    baseline: str = "mean",
    value: str = "l2",
    by=("dataset", "seed"),
) -> pd.DataFrame:
    """Per condition, each method's ``value`` divided by the baseline's on the same
    condition and seed.

    Returns columns dataset, seed, condition, method, ratio (the baseline itself has
    ratio 1).
    """
    keys = list(by) + ["condition"]
    base = metrics[metrics["method"] == baseline].set_index(keys)[value]
    if base.empty:
        raise InputError(f"No rows of the baseline {baseline!r} in the metrics table.")
    table = metrics.set_index(keys)
    joined = table.join(base.rename("_base"), how="inner")
    out = joined.reset_index()[keys + ["method"]].copy()
    out["ratio"] = (joined[value] / joined["_base"]).to_numpy()
    return out


def bootstrap_mean_ratio(
    ratios: pd.DataFrame,
    *,
    n_boot: int = 10_000,
    seed: int = 1,
    level: float = 0.95,
    by=("dataset", "method"),
) -> pd.DataFrame:
    """Mean ratio per group with a percentile bootstrap interval (the paper's Fig. 2c
    forest plot).

    Resamples the per-condition ratios of each group with replacement ``n_boot`` times
    (``numpy.random.default_rng(seed)``) and reports the mean and the (1-level)/2 and
    1-(1-level)/2 quantiles of the resampled means. Columns: dataset, method, n,
    mean_ratio, lower, upper.
    """
    rng = np.random.default_rng(seed)
    rows = []
    alpha = (1 - level) / 2
    for key, group in ratios.groupby(list(by), observed=True, sort=True):
        values = group["ratio"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        idx = rng.integers(0, len(values), size=(n_boot, len(values)))
        means = values[idx].mean(axis=1)
        rows.append(
            {
                **dict(zip(by, key if isinstance(key, tuple) else (key,))),
                "n": len(values),
                "mean_ratio": values.mean(),
                "lower": float(np.quantile(means, alpha)),
                "upper": float(np.quantile(means, 1 - alpha)),
            }
        )
    return pd.DataFrame(rows)


def forest(
    metrics: pd.DataFrame,
    baseline: str = "mean",
    methods=None,
    *,
    min_coverage: float = 0.5,
    n_boot: int = 10_000,
    seed: int = 1,
    level: float = 0.95,
) -> pd.DataFrame:
    """The forest-plot numbers (the paper's Fig. 2c): per dataset and method, the mean
    ratio of its L2 to the ``baseline``'s L2 on the same perturbations, with a
    percentile-bootstrap interval.

    The chain, per dataset:

    1. coverage: a method that scored fewer than ``min_coverage`` x the best-covered
       method's (seed, condition) pairs (e.g. a linear model whose embedding lacks most
       targets) is left out, so that it does not shrink everyone's comparison to a
       handful of perturbations;
    2. common set: only the (seed, condition)s that every remaining method scored
       (:func:`common_conditions`), so that no method is judged on an easier subset;
    3. ratio to the baseline per condition (:func:`ratio_to_baseline`);
    4. mean ratio and its bootstrap interval (:func:`bootstrap_mean_ratio`; ``n_boot``,
       ``seed``, ``level``).

    ``methods`` (default: all in ``metrics``) are the methods to compare; the baseline
    is always kept. Returns columns dataset, method, n, mean_ratio, lower, upper, one
    row per kept method (the baseline has ratio 1). ``attrs``: ``"common"`` (the metrics
    rows of the common set), ``"coverage"`` (a dataset x method table of scored pairs),
    ``"left_out"`` ({dataset: [methods]}) and ``"dropped"`` ({dataset: conditions
    outside the common set}).
    """
    if "dataset" not in metrics.columns:
        raise InputError(
            "The metrics table needs a 'dataset' column "
            "(as helpers.metrics.evaluate writes it)."
        )
    methods = list(pd.unique(metrics["method"]) if methods is None else methods)
    if baseline not in methods:
        methods.append(baseline)
    table = metrics[metrics["method"].isin(methods)]
    coverage = (
        table.groupby(["dataset", "method"], observed=True)
        .size()
        .unstack("method")
        .reindex(columns=methods)
        .fillna(0)
        .astype(int)
    )
    commons, left_out, dropped = [], {}, {}
    for dataset, counts in coverage.iterrows():
        if counts[baseline] == 0:
            raise InputError(
                f"No rows of the baseline {baseline!r} for dataset {dataset!r}; "
                "score it on the same splits."
            )
        kept = [
            m
            for m in methods
            if counts[m] >= min_coverage * counts.max() and counts[m] > 0
        ]
        if baseline not in kept:
            raise InputError(
                f"The baseline {baseline!r} covers only {counts[baseline]} of "
                f"{counts.max()} (seed, condition) pairs of {dataset!r}; it must "
                "cover the comparison."
            )
        left_out[dataset] = [m for m in methods if m not in kept]
        common = common_conditions(table[(table["dataset"] == dataset)], kept)
        dropped[dataset] = common.attrs["dropped"]
        commons.append(common)
    common = pd.concat(commons, ignore_index=True)
    result = bootstrap_mean_ratio(
        ratio_to_baseline(common, baseline), n_boot=n_boot, seed=seed, level=level
    )
    result.attrs.update(
        common=common, coverage=coverage, left_out=left_out, dropped=dropped
    )
    return result
