"""Benchmark a perturbation model on the paper's tasks (introduced in chapter 2; the API
of chapter 7).

Data flow: task -> its truth pseudobulk and splits -> for each split, the **training**
data handed to a method and the held-out conditions it must predict -> predictions (the
contract of :mod:`helpers.predictions`) -> :func:`helpers.metrics.evaluate` -> a
leaderboard beside the baselines, the linear model and the paper's published results
(always labelled "published").

Python::

    from helpers import benchmark
    benchmark.list_tasks()
    # my_predict(train, conditions) -> predictions
    result = benchmark.run(my_predict, task="simulated_doubles")
    result.leaderboard

A model is a :class:`Method` (:mod:`helpers.models.contract`): a ``name`` and
``predict(train, conditions)``; a plain function ``my_predict(train, conditions)`` is
accepted and made one, and :func:`from_pseudobulk` makes one of a function
``f(train_pseudobulk, conditions, *, seed)`` (the baselines' signature).

Command line (same code)::

    python -m helpers.benchmark --list
    python -m helpers.benchmark --task simulated_doubles \\
        --predictions my_predictions.csv --out results/
    # two .h5ad files of cells (Virtual Cell Challenge layout), no task:
    python -m helpers.benchmark score --real real.h5ad --pred pred.h5ad \\
        --metrics paper,vcc2026 --out results/

``run_methods`` / ``run_baselines`` are the plain loops the chapters use.

One job per module: :mod:`.tasks` (the task registry), :mod:`.runner` (the run loop),
:mod:`.guards` (unit checks on submitted predictions), :mod:`.leaderboard` (the table),
:mod:`.cli` (the command line), :mod:`.filepair` (two files of cells scored without a
task), :mod:`.beyond` (chapter 8: split audit and predicted cells, e.g. ``--predictions
cells.h5ad`` in the cell-eval layout; its metrics are families of
:mod:`helpers.metrics`),
:mod:`.verdict` (chapter 9: every metric family on one set of predictions),
:mod:`.exclusion` (chapter 9: the targeted gene left out), :mod:`.protocols` (chapter 9:
the paper's and CellSimBench's protocols, one choice at a time), :mod:`.figure1`
(chapter 5: the paper's Figure 1 recomputed beside the published values). Imports point
one way: cli -> filepair / runner -> beyond / guards / leaderboard -> tasks; verdict ->
runner; exclusion, protocols -> verdict, runner; figure1 -> metrics.
"""

from __future__ import annotations

from ..baselines import BASELINES
from ..models.contract import Method, from_pseudobulk
from .cli import main
from .guards import check_units
from .runner import BenchmarkResult, run, run_baselines, run_methods, score_methods
from .tasks import TASKS, Task, TaskData, get_task, list_tasks

__all__ = [
    "BASELINES",
    "Method",
    "from_pseudobulk",
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
    "score_methods",
    "main",
]
