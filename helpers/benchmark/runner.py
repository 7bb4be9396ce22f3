"""The run loop: hand each split's training data to a method, score its predictions with
the one ``evaluate``.

Every model is called through the one contract of :mod:`helpers.models.contract`:
``method.predict(train, conditions)`` with ``train`` a :class:`TaskData`. Plain
functions are made methods at the door (:func:`helpers.models.contract.as_method`).

:func:`run_methods` / :func:`run_baselines` are the plain loops the chapters use;
:func:`run` scores a model of your own on a registered task beside the reference methods
and returns a :class:`BenchmarkResult` with the leaderboard.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import ceilings
from ..baselines import BASELINES
from ..compare import paired_test
from ..errors import InputError
from ..linear import EmbeddingError
from ..metrics import (
    evaluate,
    family_names,
    summarise,
    metric_input,
    score_families,
    summarise_families,
)
from ..metrics.families import needs_cells
from ..models.contract import Method, TaskData, as_method
from ..predictions import PredictionError, Predictions
from ..pseudobulk import Pseudobulk, top_control_genes
from ..published import METHOD_LABELS
from ..conditions import CONTROL
from ..splits import Split
from . import beyond
from .guards import check_units, truth_echo
from .leaderboard import leaderboard, spread
from .tasks import get_task

__all__ = [
    "run_methods",
    "run_baselines",
    "BenchmarkResult",
    "run",
    "family_rows",
    "positive_controls",
    "POSITIVE_CONTROLS",
    "score_methods",
]


def run_methods(
    truth: Pseudobulk,
    splits: Iterable[Split],
    methods: dict[str, Method],
    *,
    n_top: int = 1000,
    **evaluate_kwargs,
) -> tuple[pd.DataFrame, list[Predictions]]:
    """Run ``methods`` on every split and score them with
    :func:`helpers.metrics.evaluate`.

    ``truth``: the observed pseudobulks of every condition; ``splits``: the splits to
    run; ``methods``: name -> a :class:`helpers.models.contract.Method`, or a pseudobulk
    function ``f(train_pb, conditions, *, seed) -> Predictions`` (made a method by
    :func:`helpers.models.contract.from_pseudobulk`); ``n_top`` and ``evaluate_kwargs``
    go to :func:`helpers.metrics.evaluate`.

    Each method only sees ``truth.subset(split.train)`` (a :class:`TaskData` without
    cells). Returns the per-perturbation metrics of all methods and splits, and the
    predictions. With ``allow_missing=True`` a linear model that cannot be fitted on a
    split (too few training perturbations with an embedding: :class:`EmbeddingError`)
    adds no rows for that split, and the reason is printed and listed in
    ``table.attrs["not_fitted"]``; otherwise the error is raised.
    """
    methods = {
        name: as_method(method, name=name, plain="pseudobulk")
        for name, method in methods.items()
    }
    tables, predictions, not_fitted = [], [], []
    for split in splits:
        train = TaskData(truth.subset(split.train), split)
        for name, method in methods.items():
            try:
                pred = _as_predictions(
                    method.predict(train, split.held_out),
                    name,
                    truth.dataset,
                    split.seed,
                )
            except EmbeddingError as err:
                if not evaluate_kwargs.get("allow_missing"):
                    raise
                not_fitted.append(
                    {"method": name, "seed": split.seed, "reason": str(err)}
                )
                print(f"{name} (split seed {split.seed}) not fitted: {err}")
                continue
            if pred.method != name:
                pred = Predictions(pred.values, name, pred.dataset, pred.seed)
            predictions.append(pred)
            table = evaluate(pred, truth, split, n_top=n_top, **evaluate_kwargs)
            if len(
                table
            ):  # a method that could not predict any held-out condition adds no rows
                tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    table.attrs["not_fitted"] = not_fitted
    return table, predictions


def run_baselines(
    truth: Pseudobulk,
    splits: Iterable[Split],
    names=("no_change", "additive", "mean"),
    **kwargs,
) -> tuple[pd.DataFrame, list[Predictions]]:
    """:func:`run_methods` with the paper's baselines (see :mod:`helpers.baselines`).

    ``truth``, ``splits`` and ``kwargs``: as for :func:`run_methods`; ``names``: the
    baselines to run (keys of :data:`helpers.baselines.BASELINES`).
    """
    unknown = set(names) - set(BASELINES)
    if unknown:
        raise InputError(
            f"Unknown baseline(s) {sorted(unknown)}; available: {sorted(BASELINES)}."
        )
    return run_methods(truth, splits, {n: BASELINES[n] for n in names}, **kwargs)


@dataclass
class BenchmarkResult:
    """Per-perturbation metrics of every method, the leaderboard, and the warnings
    raised.

    ``audit``: the split audit run before scoring (:mod:`helpers.audit`);
    ``comparison``: the paired test of your model against the task's reference baseline
    on L2 and Pearson delta (:mod:`helpers.compare`); ``energy``: energy distances of
    submitted predicted cells (else None).
    """

    task: str
    metrics: pd.DataFrame
    leaderboard: pd.DataFrame
    warnings: list[str]
    audit: pd.DataFrame | None = None
    comparison: pd.DataFrame | None = None
    energy: pd.DataFrame | None = None
    families: tuple[str, ...] = ()
    not_applicable: dict[str, str] | None = (
        None  # reference method -> why it has no row
    )


def _as_predictions(output, method: str, dataset: str, seed: int) -> Predictions:
    """A method's output as Predictions: a DataFrame is labelled with ``method``,
    ``dataset`` and ``seed``."""
    if isinstance(output, Predictions):
        return output
    if isinstance(output, pd.DataFrame):
        return Predictions(output, method, dataset, seed)
    raise PredictionError(
        f"{method}: a Method's predict(train, conditions) must return a "
        "Predictions object or a conditions x genes DataFrame, "
        f"got {type(output).__name__}."
    )


def _by_seed(
    predictions: list[Predictions], task: str, splits: list[Split], warnings: list[str]
) -> dict[int, Predictions]:
    """The submitted predictions keyed by split seed. Predictions without a seed are
    accepted for a task with a single split (they can only be for it; a warning says
    so); otherwise each needs its seed."""
    seeds = [s.seed for s in splits]
    unlabelled = [p for p in predictions if p.seed is None]
    if unlabelled:
        if len(seeds) > 1 or len(predictions) > 1:
            raise PredictionError(
                f"{unlabelled[0].method}: predictions without a split seed, but "
                f"task {task!r} has splits with seeds "
                f"{seeds}: predict each split's held-out conditions from its own "
                "training data and label them "
                "(Predictions(values, method, dataset, seed=split.seed); in a "
                "file, the seed column)."
            )
        warnings.append(
            f"{unlabelled[0].method}: the predictions name no split seed; task "
            f"{task!r} has one split "
            f"(seed {seeds[0]}), scored as predictions for it"
        )
        predictions = [
            Predictions(
                unlabelled[0].values,
                unlabelled[0].method,
                unlabelled[0].dataset,
                seeds[0],
            )
        ]
    by_seed: dict[int, Predictions] = {}
    for pred in predictions:
        if pred.seed in by_seed:
            raise PredictionError(
                f"{pred.method}: two sets of predictions for seed {pred.seed}."
            )
        by_seed[pred.seed] = pred
    unknown = set(by_seed) - set(seeds)
    if unknown:
        raise PredictionError(
            f"Task {task!r} has seeds {seeds}; got predictions for {sorted(unknown)}."
        )
    missing = [seed for seed in seeds if seed not in by_seed]
    if missing:
        raise PredictionError(
            f"No predictions for seed(s) {missing} of task {task!r}; predict "
            "every split."
        )
    return by_seed


def run(
    model: Method
    | Callable[[TaskData, list[str]], Predictions | pd.DataFrame]
    | None = None,
    *,
    task: str,
    name: str = "your_model",
    predictions: Iterable[Predictions] | ad.AnnData | str | os.PathLike | None = None,
    n_top: int = 1000,
    allow_missing: bool = False,
    progress: bool = True,
    extras: bool = True,
    perturbation_key: str = "target_gene",
    control_label: str = "non-targeting",
    metrics: str | list[str] = "paper",
    exclude_target: bool = False,
) -> BenchmarkResult:
    """Score a model on a task beside the reference methods; return metrics and a
    leaderboard.

    Give either ``model`` (a :class:`helpers.models.contract.Method`, called as
    ``model.predict(train, conditions)`` once per split, or a plain function called as
    ``model(train, conditions)``, where ``train`` is a :class:`TaskData` with the
    training pseudobulks and ``conditions`` the held-out conditions to predict) or
    ``predictions`` (one :class:`Predictions` per split seed, e.g. loaded from files).
    ``task``: the registered task; ``name``: your model's name on the leaderboard
    (default: a method's own ``name``); ``n_top``, ``allow_missing``: as for
    :func:`helpers.metrics.evaluate`; ``progress``: show a progress bar;
    ``perturbation_key``, ``control_label``: the layout of predicted cells. Every guard
    rail of :func:`helpers.metrics.evaluate` applies, plus :func:`check_units`.
    Leaderboard columns: mean/median L2, mean Pearson delta, n, ratio_to_mean /
    ratio_to_additive (mean per-perturbation ratio on the conditions every method
    predicted), spread_ratio (spread of the predictions across perturbations / spread of
    the truth; near 0 = the same profile for everything).

    ``predictions`` may also be predicted **cells** (an AnnData or a ``.h5ad`` path in
    the cell-eval / Virtual Cell Challenge layout: ``obs[perturbation_key]``,
    ``control_label`` for the control, the dataset's genes); they are pseudobulked by
    :func:`helpers.pseudobulk.pseudobulk` and also scored by the energy distance
    (``result.energy``). Every split is audited before scoring (``result.audit``; leaks
    raise :class:`helpers.audit.SplitLeakError`). With ``extras`` and a task whose cells
    are in memory, the metrics and leaderboard gain chapter 8's columns (see
    :mod:`helpers.benchmark.beyond`: retrieval ranks, DE overlap, noise ceiling,
    normalised scores), and ``result.comparison`` holds the paired test of your model
    against the reference baseline.

    ``metrics`` adds metric families to the per-perturbation table (chapter 9; see
    :mod:`helpers.metrics.families`): ``"paper"`` (default: the paper's L2, Pearson
    delta and r only), ``"systema"``, ``"calibrated"``, ``"vcc"`` or ``"all"`` (or a
    list). The calibrated families also score their positive controls
    (:data:`POSITIVE_CONTROLS`, built from the observed cells) and add calibrated
    summaries per method to the leaderboard.

    ``exclude_target``: every metric that correlates or ranks across genes leaves out
    each perturbation's own target gene(s) (:mod:`helpers.metrics.paper`, "Target-gene
    exclusion"; the per-gene averages keep every gene). Default False: the paper's
    protocol.
    """
    if (model is None) == (predictions is None):
        raise InputError(
            "Give exactly one of model= (a Method or a predict function) or "
            "predictions= "
            "(precomputed)."
        )
    if model is not None:
        model = as_method(model, name=name)
        if name == "your_model" and model.name:
            name = model.name
    families = family_names(metrics)
    job = get_task(task)
    truth = job.truth
    references = {
        ref: as_method(method, name=ref, plain="pseudobulk")
        for ref, method in job.reference_methods().items()
    }
    # names a reader compares: the task's reference methods, the positive controls and
    # every method the paper published
    reserved = set(references) | set(METHOD_LABELS) | set(POSITIVE_CONTROLS)
    cells_for_families = family_cells(
        job, families, top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    )
    warnings: list[str] = []
    by_seed: dict[int, Predictions] = {}
    pred_cells = None
    if predictions is not None and beyond.is_cells_input(predictions):
        pred_cells, cell_pred = beyond.load_cells(
            predictions,
            name=None if name == "your_model" else name,
            dataset=truth.dataset,
            genes=truth.genes,
            perturbation_key=perturbation_key,
            control_label=control_label,
        )
        predictions = [cell_pred]
    if predictions is not None:
        by_seed = _by_seed(list(predictions), task, job.splits, warnings)
        name = next(iter(by_seed.values())).method
        if name in reserved:
            mine = f"{name} (submitted)"
            warnings.append(
                f"your predictions are named {name!r} like a reference or "
                "published method; "
                f"shown as {mine!r}"
            )
            by_seed = {seed: pred.renamed(mine) for seed, pred in by_seed.items()}
            name = mine
    if name in reserved:
        raise InputError(
            f"Name your model something other than a reference or published method "
            f"({sorted(reserved)}): readers compare rows by name."
        )

    audit_table = beyond.audit(job, job.splits, warnings)
    with_cells = extras and beyond.has_cells(job)
    if extras and not with_cells:
        warnings.append(
            f"task {task!r}: cells not in memory, so no noise ceiling, DE "
            "overlap or retrieval columns"
        )
    tables, spreads, extra_tables, energy_tables, family_tables = [], [], [], [], []
    family_cache: dict = {}
    predicted: set[str] = (
        set()
    )  # reference methods that predicted at least one held-out condition
    genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    for split in tqdm(job.splits, desc=f"{task}", disable=not progress):
        train = job.training_data(split)
        if model is not None:
            pred = _as_predictions(
                model.predict(train, list(split.held_out)),
                name,
                truth.dataset,
                split.seed,
            )
        else:
            pred = by_seed[split.seed]
        check_units(pred, truth)
        echo = truth_echo(pred, truth, split.held_out)
        if echo:
            warnings.append(echo)
        # one truth for methods and positive controls (issue 36): where a calibrated
        # family scores controls made from half B of each held-out condition's cells,
        # every row of this split is scored against half A
        # (helpers.ceilings.evaluation_truth)
        reference = truth
        if cells_for_families is not None and _needs_controls(families):
            reference, _ = ceilings.evaluation_truth(truth, cells_for_families, split)
        table = evaluate(
            pred,
            reference,
            split,
            n_top=n_top,
            allow_missing=allow_missing,
            exclude_target=exclude_target,
        )
        if table.attrs.get("missing_conditions"):
            warnings.append(
                f"{name}, seed {split.seed}: "
                f"{len(table.attrs['missing_conditions'])} held-out "
                "conditions not predicted; compared on the common set"
            )
        tables.append(table)
        runs = {name: pred}
        for ref_name, method in references.items():
            runs[ref_name] = _as_predictions(
                method.predict(train, split.held_out),
                ref_name,
                truth.dataset,
                split.seed,
            )
            if runs[ref_name].method != ref_name:
                runs[ref_name] = Predictions(
                    runs[ref_name].values, ref_name, truth.dataset, split.seed
                )
            ref_table = evaluate(
                runs[ref_name],
                reference,
                split,
                n_top=n_top,
                allow_missing=True,
                exclude_target=exclude_target,
            )
            if len(ref_table):
                tables.append(ref_table)
                predicted.add(ref_name)
        if families:
            _, control_tables, rows = family_rows(
                job,
                split,
                runs,
                families,
                genes,
                cells_for_families,
                family_cache,
                n_top,
                exclude_target=exclude_target,
            )
            tables += control_tables
            family_tables += rows
        if with_cells:
            extra_tables.append(
                beyond.extra_columns(job, split, runs, n_top=n_top, skip=families)
            )
        if pred_cells is not None:
            energy_tables.append(
                beyond.energy_table(job, pred_cells, split, name, n_top)
            )
        observed = truth.means.loc[split.held_out]
        truth_spread = spread(observed, genes)
        for method, p in runs.items():
            usable = genes.intersection(p.genes)
            if len(p.conditions) < 2:
                continue
            spreads.append(
                {
                    "method": method,
                    "seed": split.seed,
                    "spread_ratio": spread(p.values, usable) / truth_spread
                    if truth_spread > 0
                    else np.nan,
                }
            )
    metrics = pd.concat(tables, ignore_index=True)
    if extra_tables:
        extra = pd.concat(extra_tables, ignore_index=True)
        metrics = metrics.merge(extra, on=["method", "seed", "condition"], how="left")
    if family_tables:
        metrics = metrics.merge(
            pd.concat(family_tables, ignore_index=True),
            on=["method", "seed", "condition"],
            how="left",
        )
    # a split with one held-out condition has no spread: the table keeps its columns
    spread_table = pd.DataFrame(spreads, columns=["method", "seed", "spread_ratio"])
    controls_run = [m for m in POSITIVE_CONTROLS if m in set(metrics["method"])]
    # a reference method that cannot run on this task (e.g. the linear model when no
    # target is a measured gene) is listed once as not applicable, not as a row of NaNs
    # with a warning
    not_applicable = {
        ref: "predicted none of the held-out conditions of this task"
        for ref in references
        if ref not in predicted
    }
    applicable = [ref for ref in references if ref in predicted]
    board = leaderboard(
        job, metrics, spread_table, {name}, warnings, [name, *applicable, *controls_run]
    )
    if extra_tables:
        board = board.merge(beyond.board_columns(metrics), on="method", how="left")
    if families:
        board = board.merge(
            summarise_families(metrics, families), on="method", how="left"
        )
        board.loc[board["method"].isin(controls_run), "source"] = "positive control"
        # the peers' DRF describes a metric with the positive control in the numerator:
        # shown for the controls only; a method's own is the book's ratio of means
        # (book_drf_*)
        peer_drf = [c for c in board.columns if c.startswith(("drf_", "drf_median_"))]
        board.loc[~board["method"].isin(controls_run), peer_drf] = np.nan
    comparison = None
    if job.reference_baseline in set(metrics["method"]):
        comparison = pd.concat(
            [
                paired_test(
                    metrics,
                    name,
                    job.reference_baseline,
                    value=value,
                    n_boot=2000,
                    n_perm=2000,
                )
                for value in ("l2", "pearson_delta")
            ],
            ignore_index=True,
        )
    mine = board[board["source"] == "your model"].iloc[0]
    if mine["spread_ratio"] < 0.2:
        warnings.append(
            f"{name}: predictions barely vary across perturbations (spread ratio "
            f"{mine['spread_ratio']:.2f}); "
            "the model predicts nearly the same profile for everything"
        )
    reference = job.reference_baseline
    if f"ratio_to_{reference}" in board and mine[f"ratio_to_{reference}"] >= 1:
        warnings.append(
            f"{name}: not better than the {reference} baseline (ratio "
            f"{mine[f'ratio_to_{reference}']:.2f})"
        )
    board.attrs["warnings"] = warnings
    energy = pd.concat(energy_tables, ignore_index=True) if energy_tables else None
    return BenchmarkResult(
        task,
        metrics,
        board,
        warnings,
        audit_table,
        comparison,
        energy,
        tuple(families),
        not_applicable,
    )


#: Positive controls of the calibrated families: "predictions" made from the held-out
#: conditions' own observed cells (see :mod:`helpers.ceilings`), the top of the
#: calibrated scales.
POSITIVE_CONTROLS = {
    "interpolated_duplicate": ("calibrated", "interpolated_duplicate"),
    "split_half_replicate": ("vcc", "split_half_replicate"),
}


def family_cells(
    job, families, genes=None, *, chunk_rows: int = 10_000
) -> ad.AnnData | None:
    """The truth's cells for the families that need them (None if none does).

    In-memory tasks give their AnnData. For a task read backed (the paper's large files)
    the cells are read in row chunks restricted to the evaluation ``genes`` (e.g. 85k
    cells x 1,000 genes, dense float32: 0.3 GB), which is all the families and positive
    controls use.
    """
    names = family_names(families)
    if not names or not (
        needs_cells(names)
        or any(family in names for family, _ in POSITIVE_CONTROLS.values())
    ):
        return None
    try:
        adata = job.adata()
    except ValueError:
        raise InputError(
            f"--metrics {','.join(names)} needs the observed cells of task "
            f"{job.name!r} "
            "(DE statistics, positive controls), and it has pseudobulks only; use "
            "--metrics paper or systema."
        ) from None
    if not adata.isbacked:
        return adata
    if genes is None:
        raise InputError(
            "A backed task's cells are read on the evaluation genes: pass genes."
        )
    cols = adata.var_names.get_indexer(pd.Index(genes))
    blocks = []
    for start in range(0, adata.n_obs, chunk_rows):
        block = adata.X[start : start + chunk_rows]
        block = block[:, cols]
        blocks.append(
            block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        )
    X = np.vstack(blocks).astype(np.float32)
    out = ad.AnnData(
        X,
        obs=adata.obs[["condition"]].copy(),
        var=pd.DataFrame(index=pd.Index(genes, name=adata.var_names.name)),
    )
    out.uns["perturbbook"] = dict(adata.uns.get("perturbbook", {}))
    return out


def _needs_controls(families) -> bool:
    """Whether any of ``families`` scores positive controls
    (:data:`POSITIVE_CONTROLS`)."""
    names = set(family_names(families)) if families else set()
    return any(family in names for family, _ in POSITIVE_CONTROLS.values())


def family_rows(
    job,
    split: Split,
    runs: dict[str, Predictions],
    families,
    genes,
    cells,
    cache: dict,
    n_top: int,
    *,
    exclude_target: bool = False,
) -> tuple[dict[str, Predictions], list[pd.DataFrame], list[pd.DataFrame]]:
    """One split's metric-family columns for ``runs`` and the positive controls the
    families need.

    The positive controls are made from half B of each held-out condition's cells. Where
    there are controls, the methods and the controls are scored against the **same**
    truth: half A of each held-out condition, all cells of the control and the training
    conditions (:func:`helpers.ceilings.evaluation_truth`, as chapter 9's
    :func:`helpers.benchmark.verdict.score_all`), so that no control is compared with
    data that contain its own cells and no method with deeper data than the controls.
    Without controls the methods are scored against the task's truth. Returns (the
    controls' predictions, their rows of :func:`helpers.metrics.evaluate`, the family
    columns of every run and control from :func:`helpers.metrics.score_families`). Used
    by :func:`run`; ``exclude_target``: as there.
    """
    controls = (
        positive_controls(job, split, families, cells) if cells is not None else {}
    )
    reference, reference_cells = job.truth, cells
    if controls:
        reference, reference_cells = ceilings.evaluation_truth(job.truth, cells, split)
        cache = cache.setdefault(("half_a", split.seed), {})
    rows, control_tables = [], []
    for p in runs.values():
        inp = metric_input(
            p,
            reference,
            split,
            genes,
            cells=reference_cells,
            cache=cache,
            exclude_target=exclude_target,
        )
        if len(inp.conditions):
            rows.append(score_families(inp, families))
    for control in controls.values():
        control_tables.append(
            evaluate(
                control,
                reference,
                split,
                genes=genes,
                allow_missing=True,
                exclude_target=exclude_target,
            )
        )
        inp = metric_input(
            control,
            reference,
            split,
            genes,
            cells=reference_cells,
            cache=cache,
            exclude_target=exclude_target,
        )
        if len(inp.conditions):
            rows.append(score_families(inp, families))
    return controls, control_tables, rows


def positive_controls(
    job, split: Split, families, cells: ad.AnnData
) -> dict[str, Predictions]:
    """The positive controls the ``families`` need, for the held-out conditions of
    ``split``, made from half B of their ``cells`` (:func:`family_cells`) with the
    split's seed: the split-half replicate (cell-eval2's) and the interpolated duplicate
    (CellSimBench / scPertEval's, towards the mean of the **training** perturbations,
    never of held-out ones)."""
    names = family_names(families)
    truth = job.truth
    out = {}
    if POSITIVE_CONTROLS["split_half_replicate"][0] in names:
        out["split_half_replicate"] = ceilings.split_half_replicate(
            cells, truth, split.held_out, seed=split.seed
        )
    if POSITIVE_CONTROLS["interpolated_duplicate"][0] in names:
        train = [c for c in split.train if c != CONTROL and c in truth.conditions]
        out["interpolated_duplicate"] = ceilings.interpolated_duplicate(
            cells,
            truth,
            split.held_out,
            seed=split.seed,
            reference=truth.means.loc[train].mean(),
        )
    return {
        name: Predictions(p.values, name, truth.dataset, split.seed)
        for name, p in out.items()
    }


def score_methods(
    task, methods: dict | None = None, *, n_top: int = 1000
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``methods`` (default: the task's reference methods) on every split with
    chapter 8's columns.

    Returns (per-perturbation metrics with :data:`EXTRA_COLUMNS`, one row per method
    with the means of :func:`helpers.metrics.summarise` and :func:`board_columns`).
    Needs the task's cells in memory (the quick tasks).

    ``task``: a registered task (:func:`helpers.benchmark.get_task`); ``methods``: name
    -> method (see :func:`run_methods`); ``n_top``: the evaluation genes (top expressed
    in control).
    """
    if not beyond.has_cells(task):
        raise InputError(
            f"Task {task.name!r} has no cells in memory; chapter 8's columns need them."
        )
    methods = task.reference_methods() if methods is None else methods
    metrics, predictions = run_methods(
        task.truth, task.splits, methods, n_top=n_top, allow_missing=True
    )
    extra = []
    for split in task.splits:
        runs = {p.method: p for p in predictions if p.seed == split.seed}
        extra.append(beyond.extra_columns(task, split, runs, n_top=n_top))
    metrics = metrics.merge(
        pd.concat(extra, ignore_index=True),
        on=["method", "seed", "condition"],
        how="left",
    )
    board = summarise(metrics, by=("method",)).merge(
        beyond.board_columns(metrics), on="method", how="left"
    )
    return metrics, board
