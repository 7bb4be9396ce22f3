"""Benchmark a perturbation model on the paper's tasks (introduced in chapter 2; the API of chapter 7).

Data flow: task -> its truth pseudobulk and splits -> for each split, the **training** data handed to
a method and the held-out conditions it must predict -> predictions (the contract of
:mod:`helpers.predictions`) -> :func:`helpers.metrics.evaluate` -> a leaderboard beside the baselines,
the linear model and the paper's published results (always labelled "published").

Python::

    from helpers import benchmark
    benchmark.list_tasks()
    result = benchmark.run(my_predict, task="simulated_doubles")   # my_predict(train, conditions)
    result.leaderboard

Command line (same code)::

    python -m helpers.benchmark --list
    python -m helpers.benchmark --task simulated_doubles --predictions my_predictions.csv --out results/

``run_methods`` / ``run_baselines`` are the plain loops the chapters use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from .baselines import BASELINES
from .metrics import common_conditions, evaluate, ratio_to_baseline, summarise
from .predictions import PredictionError, Predictions
from .pseudobulk import Pseudobulk, top_control_genes
from .splits import Split

__all__ = [
    "run_methods",
    "run_baselines",
    "Task",
    "TaskData",
    "TASKS",
    "list_tasks",
    "get_task",
    "check_units",
    "BenchmarkResult",
    "run",
    "main",
]

Method = Callable[..., Predictions]


# --------------------------------------------------------------------------------------------
# the loops the chapters use


def run_methods(truth: Pseudobulk, splits: Iterable[Split], methods: dict[str, Method], *, n_top: int = 1000,
                **evaluate_kwargs) -> tuple[pd.DataFrame, list[Predictions]]:
    """Run ``methods`` (name -> ``f(train_pb, conditions, seed=...) -> Predictions``) on every split.

    Each method only sees ``truth.subset(split.train)``. Returns the per-perturbation metrics of all
    methods and splits, and the predictions.
    """
    tables, predictions = [], []
    for split in splits:
        train_pb = truth.subset(split.train)
        for name, method in methods.items():
            pred = method(train_pb, split.held_out, seed=split.seed)
            if pred.method != name:
                pred = Predictions(pred.values, name, pred.dataset, pred.seed)
            predictions.append(pred)
            table = evaluate(pred, truth, split, n_top=n_top, **evaluate_kwargs)
            if len(table):  # a method that could not predict any held-out condition adds no rows
                tables.append(table)
    return pd.concat(tables, ignore_index=True), predictions


def run_baselines(truth: Pseudobulk, splits: Iterable[Split], names=("no_change", "additive", "mean"),
                  **kwargs) -> tuple[pd.DataFrame, list[Predictions]]:
    """:func:`run_methods` with the paper's baselines (see :mod:`helpers.baselines`)."""
    unknown = set(names) - set(BASELINES)
    if unknown:
        raise ValueError(f"Unknown baseline(s) {sorted(unknown)}; available: {sorted(BASELINES)}.")
    return run_methods(truth, splits, {n: BASELINES[n] for n in names}, **kwargs)


# --------------------------------------------------------------------------------------------
# tasks


@dataclass
class TaskData:
    """What a model gets for one split: training pseudobulks, the split, and (on request) training cells."""

    pseudobulk: Pseudobulk
    split: Split
    task: "Task" = field(repr=False)

    @property
    def seed(self) -> int:
        return self.split.seed

    @property
    def dataset(self) -> str:
        return self.pseudobulk.dataset

    @property
    def genes(self) -> pd.Index:
        return self.pseudobulk.genes

    def cells(self):
        """The single cells of the training conditions (canonical AnnData; read into memory)."""
        adata = self.task.adata()
        mask = adata.obs["condition"].isin(self.split.train).to_numpy()
        return adata[mask].to_memory() if adata.isbacked else adata[mask].copy()


@dataclass
class Task:
    """A benchmark task: a dataset, its splits, the reference methods and the published results."""

    name: str
    profile: str
    kind: str  # "double" or "single"
    description: str
    loader: Callable[[], tuple]  # -> (AnnData or None, Pseudobulk, other Pseudobulk or None)
    make_splits: Callable[[Pseudobulk], list[Split]]
    published: Callable[[], pd.DataFrame] | None = None
    published_comparable: bool = False  # True if the published results used the very same splits

    @cached_property
    def _loaded(self):
        return self.loader()

    def adata(self):
        adata = self._loaded[0]
        if adata is None:
            raise ValueError(f"Task {self.name!r} provides pseudobulks only.")
        return adata

    @property
    def other_screen(self) -> Pseudobulk | None:
        """Pseudobulk of the screen that provides the transfer embedding (single-perturbation tasks), else None."""
        return self._loaded[2]

    @cached_property
    def truth(self) -> Pseudobulk:
        """Observed pseudobulks of every condition (the answer key; never handed to a model)."""
        return self._loaded[1]

    @cached_property
    def splits(self) -> list[Split]:
        return self.make_splits(self.truth)

    @property
    def dataset(self) -> str:
        return self.truth.dataset

    def training_data(self, split: Split) -> TaskData:
        return TaskData(self.truth.subset(split.train), split, self)

    def reference_methods(self) -> dict[str, Method]:
        """The baselines and linear models this task's leaderboard always shows."""
        from . import linear

        if self.kind == "double":
            return {name: BASELINES[name] for name in ("no_change", "additive", "mean")} | {"linear": linear.linear_model}
        return {"mean": BASELINES["mean"], **linear.paper_variants(self.other_screen)}

    @property
    def reference_baseline(self) -> str:
        return "additive" if self.kind == "double" else "mean"


def _load_registered(name: str, backed=None):
    from .loaders import load_dataset
    from .pseudobulk import pseudobulk

    adata = load_dataset(name, backed=backed)
    return adata, pseudobulk(adata)


def _norman_subset():
    adata, pb = _load_registered("norman2019_subset")
    return adata, pb, None


def _subset_splits(pb: Pseudobulk) -> list[Split]:
    from .splits import complete_doubles, holdout_split

    return [holdout_split(pb.conditions, complete_doubles(pb.conditions), dataset=pb.dataset, seed=1)]


def _simulated_doubles():
    from .pseudobulk import pseudobulk
    from .simulate import simulate_screen

    screen = simulate_screen(seed=0)
    return screen.adata, pseudobulk(screen.adata), None


def _simulated_singles():
    from .pseudobulk import pseudobulk
    from .simulate import simulate_screen

    screen = simulate_screen(n_genes=2000, n_single=300, n_double=0, cells_per_condition=50, modality="CRISPRi",
                             cell_lines=("simK562", "simRPE1"), second_line_overlap=0.8, seed=0)
    return screen.adatas["simK562"], pseudobulk(screen.adatas["simK562"]), pseudobulk(screen.adatas["simRPE1"])


def _double_splits(pb: Pseudobulk) -> list[Split]:
    from .splits import double_split

    return [double_split(pb.conditions, seed, dataset=pb.dataset) for seed in range(1, 6)]


def _single_splits(pb: Pseudobulk) -> list[Split]:
    from .splits import single_split

    return [single_split(pb.conditions, seed, dataset=pb.dataset) for seed in (1, 2)]


def _paper_single_splits(pb: Pseudobulk) -> list[Split]:
    from .published import PAPER_SINGLE_SEEDS, paper_single_split

    return [paper_single_split(pb.dataset, seed, pb.conditions) for seed in PAPER_SINGLE_SEEDS]


def _norman_full():
    adata, pb = _load_registered("norman2019", backed="r")
    return adata, pb, None


def _paper_double_splits(pb: Pseudobulk) -> list[Split]:
    from .published import paper_double_split

    return [paper_double_split(seed, pb.conditions) for seed in range(1, 6)]


def _single_loader(name: str):
    def load():
        from .published import TRANSFER_SOURCE

        adata, pb = _load_registered(name, backed="r")
        _, other = _load_registered(TRANSFER_SOURCE[name], backed="r")
        return adata, pb, other

    return load


def _published_doubles():
    from .published import double_metrics

    return double_metrics()


def _published_singles(dataset: str):
    def load():
        from .published import single_metrics

        table = single_metrics()
        return table[table["dataset"] == dataset]

    return load


TASKS: dict[str, Task] = {}


def _register(task: Task) -> None:
    TASKS[task.name] = task


_register(Task("norman_subset_doubles", "quick", "double",
               "Real Norman 2019 subset: predict the 5 doubles whose singles are measured (1 split, 500 genes).",
               _norman_subset, _subset_splits))
_register(Task("simulated_doubles", "quick", "double",
               "SYNTHETIC Norman-shaped screen (100 singles, 124 doubles): the paper's double split, seeds 1-5.",
               _simulated_doubles, _double_splits))
_register(Task("simulated_singles", "quick", "single",
               "SYNTHETIC screen of 300 CRISPRi singles: unseen-perturbation split (GEARS style), seeds 1-2; "
               "a second synthetic cell line provides the transfer embedding.",
               _simulated_singles, _single_splits))
_register(Task("norman_doubles", "paper", "double",
               "Norman 2019 (full, 19,264 genes): the paper's five published splits, 62 held-out doubles each.",
               _norman_full, _paper_double_splits, _published_doubles, published_comparable=True))
for _name, _label in [("adamson", "Adamson 2016"), ("replogle_k562_essential", "Replogle 2022 K562"),
                      ("replogle_rpe1_essential", "Replogle 2022 RPE1")]:
    _register(Task(f"{_name}_singles", "paper", "single",
                   f"{_label}: unseen single perturbations, the paper's GEARS simulation split, seeds 1-2 "
                   "(checked against every published split label).",
                   _single_loader(_name), _paper_single_splits, _published_singles(_name), published_comparable=True))


def list_tasks() -> pd.DataFrame:
    """The available tasks: name, profile (quick = offline), kind, description."""
    return pd.DataFrame([{"task": t.name, "profile": t.profile, "kind": t.kind, "description": t.description}
                         for t in TASKS.values()])


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}. Tasks: {', '.join(TASKS)} (see list_tasks()).")
    return TASKS[name]


# --------------------------------------------------------------------------------------------
# guard rails


def check_units(predictions: Predictions, truth: Pseudobulk) -> None:
    """Raise if the predictions are obviously not mean log-normalised expression like the truth.

    Catches the common mistakes: raw or normalised **counts** (large, integer-like values), and
    **changes** relative to control instead of expression levels (many negative values).
    """
    values = predictions.values.to_numpy()
    truth_max = float(truth.means.to_numpy().max())
    name = predictions.method
    if values.max() > 3 * truth_max + 5:
        integer_like = np.mean(np.isclose(values, np.round(values))) > 0.9
        raise PredictionError(
            f"{name}: predicted values reach {values.max():.1f}, but the data's log-normalised pseudobulks never exceed "
            f"{truth_max:.1f}. These look like {'counts' if integer_like else 'values on another scale'}; submit the mean "
            "of log1p(normalised counts) per condition, as helpers.pseudobulk computes it."
        )
    negative = float(np.mean(values < -0.05))
    top = top_control_genes(truth.ctrl, min(100, len(truth.genes))).intersection(predictions.genes)
    level = float(np.median(predictions.values[top].to_numpy())) if len(top) else np.nan
    looks_like_changes = len(top) and level < 0.25 * float(np.median(truth.ctrl[top]))
    if (negative > 0.1 or looks_like_changes) and float((truth.means.to_numpy() < -0.05).mean()) < 0.01:
        raise PredictionError(
            f"{name}: {negative:.0%} of the predicted values are negative and the most expressed genes are predicted at "
            f"{level:.2f} (control: {float(np.median(truth.ctrl[top])):.2f}). These look like changes relative to control; "
            "add the control pseudobulk (train.pseudobulk.ctrl)."
        )


def _spread(values: pd.DataFrame, genes) -> float:
    """Mean over genes of the standard deviation across conditions."""
    return float(values[genes].std(axis=0, ddof=0).mean())


# --------------------------------------------------------------------------------------------
# running a model and the leaderboard


@dataclass
class BenchmarkResult:
    """Per-perturbation metrics of every method, the leaderboard, and the warnings raised."""

    task: str
    metrics: pd.DataFrame
    leaderboard: pd.DataFrame
    warnings: list[str]


def _as_predictions(output, method: str, dataset: str, seed: int) -> Predictions:
    if isinstance(output, Predictions):
        return output
    if isinstance(output, pd.DataFrame):
        return Predictions(output, method, dataset, seed)
    raise PredictionError(
        f"{method}: predict() must return a Predictions object or a conditions x genes DataFrame, "
        f"got {type(output).__name__}."
    )


def _leaderboard(task: Task, metrics: pd.DataFrame, spreads: pd.DataFrame, model_names: set[str],
                 warnings: list[str], all_methods: list[str]) -> pd.DataFrame:
    board = summarise(metrics, by=("method",))
    absent = [m for m in all_methods if m not in set(board["method"])]
    if absent:
        board = pd.concat([board, pd.DataFrame({"method": absent, "n": 0})], ignore_index=True)
    # ratios are compared on the conditions every method predicted; a method that predicts fewer than
    # half of the held-out conditions (e.g. the linear model when targets are not measured) is left out
    # of that common set and gets no ratio, with a warning
    counts = metrics.groupby("method").size().reindex(all_methods, fill_value=0)
    covered = counts[counts >= 0.5 * counts.max()].index
    for method in counts.index.difference(covered):
        warnings.append(f"{method}: predicted only {counts[method]} of {counts.max()} held-out (seed, condition) pairs; "
                        "no ratios reported for it")
    common = common_conditions(metrics, covered)
    for baseline in ("mean", "additive"):
        if baseline in set(metrics["method"]):
            ratios = ratio_to_baseline(common, baseline).groupby("method")["ratio"].mean()
            board[f"ratio_to_{baseline}"] = board["method"].map(ratios)
    board = board.merge(spreads.groupby("method")["spread_ratio"].mean().reset_index(), on="method", how="left")
    board.insert(1, "source", board["method"].map(lambda m: "your model" if m in model_names else "this book"))
    board["dataset"] = task.dataset
    if task.published is not None:
        published = task.published()
        pub = summarise(published, by=("method",))
        for baseline in ("mean", "additive"):
            if baseline in set(published["method"]):
                ratios = ratio_to_baseline(common_conditions(published), baseline).groupby("method")["ratio"].mean()
                pub[f"ratio_to_{baseline}"] = pub["method"].map(ratios)
        pub.insert(1, "source", "published" if task.published_comparable else "published (other split)")
        pub["dataset"] = task.dataset
        board = pd.concat([board, pub], ignore_index=True)
    return board.sort_values("mean_l2").reset_index(drop=True)


def run(
    model: Callable[[TaskData, list[str]], Predictions | pd.DataFrame] | None = None,
    *,
    task: str,
    name: str = "your_model",
    predictions: Iterable[Predictions] | None = None,
    n_top: int = 1000,
    allow_missing: bool = False,
    progress: bool = True,
) -> BenchmarkResult:
    """Score a model on a task beside the reference methods; return metrics and a leaderboard.

    Give either ``model`` (called as ``model(train, conditions)`` once per split, where ``train`` is a
    :class:`TaskData` with the training pseudobulks and ``conditions`` the held-out conditions to
    predict) or ``predictions`` (one :class:`Predictions` per split seed, e.g. loaded from files).
    Every guard rail of :func:`helpers.metrics.evaluate` applies, plus :func:`check_units`.
    Leaderboard columns: mean/median L2, mean Pearson delta, n, ratio_to_mean / ratio_to_additive
    (mean per-perturbation ratio on the conditions every method predicted), spread_ratio (spread of the
    predictions across perturbations / spread of the truth; near 0 = the same profile for everything).
    """
    from tqdm.auto import tqdm

    if (model is None) == (predictions is None):
        raise ValueError("Give exactly one of model= (a predict function) or predictions= (precomputed).")
    job = get_task(task)
    truth = job.truth
    by_seed: dict[int, Predictions] = {}
    if predictions is not None:
        for pred in predictions:
            if pred.seed is None:
                raise PredictionError(f"{pred.method}: predictions need the split seed they were made for.")
            if pred.seed in by_seed:
                raise PredictionError(f"{pred.method}: two sets of predictions for seed {pred.seed}.")
            by_seed[pred.seed] = pred
        unknown = set(by_seed) - {s.seed for s in job.splits}
        if unknown:
            raise PredictionError(f"Task {task!r} has seeds {[s.seed for s in job.splits]}; got predictions for {sorted(unknown)}.")
        missing = [s.seed for s in job.splits if s.seed not in by_seed]
        if missing:
            raise PredictionError(f"No predictions for seed(s) {missing} of task {task!r}; predict every split.")
        name = next(iter(by_seed.values())).method
    references = job.reference_methods()
    if name in references:
        raise ValueError(f"Name your model something other than a reference method ({sorted(references)}).")

    tables, spreads, warnings = [], [], []
    genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    for split in tqdm(job.splits, desc=f"{task}", disable=not progress):
        train = job.training_data(split)
        if model is not None:
            pred = _as_predictions(model(train, list(split.held_out)), name, truth.dataset, split.seed)
        else:
            pred = by_seed[split.seed]
        check_units(pred, truth)
        table = evaluate(pred, truth, split, n_top=n_top, allow_missing=allow_missing)
        if table.attrs.get("missing_conditions"):
            warnings.append(f"{name}, seed {split.seed}: {len(table.attrs['missing_conditions'])} held-out "
                            "conditions not predicted; compared on the common set")
        tables.append(table)
        runs = {name: pred}
        for ref_name, method in references.items():
            runs[ref_name] = method(train.pseudobulk, split.held_out, seed=split.seed)
            if runs[ref_name].method != ref_name:
                runs[ref_name] = Predictions(runs[ref_name].values, ref_name, truth.dataset, split.seed)
            ref_table = evaluate(runs[ref_name], truth, split, n_top=n_top, allow_missing=True)
            if len(ref_table):
                tables.append(ref_table)
        observed = truth.means.loc[split.held_out]
        truth_spread = _spread(observed, genes)
        for method, p in runs.items():
            usable = genes.intersection(p.genes)
            if len(p.conditions) < 2:
                continue
            spreads.append({"method": method, "seed": split.seed,
                            "spread_ratio": _spread(p.values, usable) / truth_spread if truth_spread > 0 else np.nan})
    metrics = pd.concat(tables, ignore_index=True)
    spread_table = pd.DataFrame(spreads)
    board = _leaderboard(job, metrics, spread_table, {name}, warnings, [name, *references])
    mine = board[board["source"] == "your model"].iloc[0]
    if mine["spread_ratio"] < 0.2:
        warnings.append(f"{name}: predictions barely vary across perturbations (spread ratio {mine['spread_ratio']:.2f}); "
                        "the model predicts nearly the same profile for everything")
    reference = job.reference_baseline
    if f"ratio_to_{reference}" in board and mine[f"ratio_to_{reference}"] >= 1:
        warnings.append(f"{name}: not better than the {reference} baseline (ratio {mine[f'ratio_to_{reference}']:.2f})")
    board.attrs["warnings"] = warnings
    return BenchmarkResult(task, metrics, board, warnings)


# --------------------------------------------------------------------------------------------
# command line


def load_predictions_file(path) -> list[Predictions]:
    """Read a predictions CSV in the contract's format; one :class:`Predictions` per seed in it."""
    from pathlib import Path

    from .predictions import LONG_COLUMNS

    path = Path(path)
    if not path.exists():
        raise PredictionError(f"No predictions file at {path}.")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise PredictionError(f"{path} is not a readable CSV predictions file ({err}).") from None
    missing = [c for c in LONG_COLUMNS if c not in table.columns]
    if missing:
        raise PredictionError(f"{path}: a predictions file needs the columns {LONG_COLUMNS}; missing {missing}.")
    if table["seed"].isna().any():
        raise PredictionError(f"{path}: every row needs the split seed it was predicted for.")
    return [Predictions.from_long(rows) for _, rows in table.groupby("seed", sort=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.benchmark",
                                     description="Score a predictions file on a benchmark task, beside the baselines.")
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument("--task", help="task name (see --list)")
    parser.add_argument("--predictions", help="CSV with columns dataset, method, seed, condition, gene, prediction")
    parser.add_argument("--out", help="folder for metrics.csv and leaderboard.csv")
    parser.add_argument("--n-top", type=int, default=1000, help="evaluation genes: top n by control expression")
    parser.add_argument("--allow-missing", action="store_true", help="allow held-out conditions without prediction")
    args = parser.parse_args(argv)
    if args.list:
        print(list_tasks().to_string(index=False))
        return 0
    if not args.task or not args.predictions:
        parser.error("--task and --predictions are required (or --list)")
    try:
        result = run(task=args.task, predictions=load_predictions_file(args.predictions), n_top=args.n_top,
                     allow_missing=args.allow_missing)
    except (PredictionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    shown = result.leaderboard.drop(columns=["dataset"]).round(3)
    print(f"task {args.task} ({get_task(args.task).description})")
    print(shown.to_string(index=False))
    for warning in result.warnings:
        print(f"WARNING: {warning}")
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result.metrics.to_csv(out / "metrics.csv", index=False)
        result.leaderboard.to_csv(out / "leaderboard.csv", index=False)
        print(f"wrote {out / 'metrics.csv'} and {out / 'leaderboard.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
