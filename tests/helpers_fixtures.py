"""The hand-made tiny task several unit modules share (not a test module).

Three genes A, B, C (also the targets), control at 10 in every gene; every number
below is written by hand. Training: ctrl, A, B, C, B+C; held out: A+B and A+C. The
modules that use it work their expected values out by hand in their own docstrings.
"""

from __future__ import annotations

import pandas as pd

from helpers import benchmark
from helpers.pseudobulk import Pseudobulk
from helpers.splits import holdout_split

GENES = ["A", "B", "C"]
#: condition -> the pseudobulk of A, B, C
TINY = {
    "ctrl": [10, 10, 10],
    "A": [11, 10, 10],
    "B": [10, 9, 10],
    "C": [10, 10, 12],
    "B+C": [10, 9, 12],
    "A+B": [12, 9, 11],
    "A+C": [11, 10, 13],
}
TRAIN = ["ctrl", "A", "B", "C", "B+C"]
HELD_OUT = ["A+B", "A+C"]


def tiny_means() -> pd.DataFrame:
    """:data:`TINY` as a conditions x genes float frame."""
    return pd.DataFrame(TINY, index=GENES, dtype=float).T


def register_task(
    monkeypatch, name: str, means: pd.DataFrame, cells=None, *, n=50, held_out=HELD_OUT
):
    """A quick double-perturbation task ``name`` registered in
    :data:`helpers.benchmark.TASKS` for the test (``monkeypatch`` removes it again):
    truth ``means`` (``n`` cells per condition), optional ``cells``, one split of seed
    3 holding out ``held_out`` (default :data:`HELD_OUT`)."""
    truth = Pseudobulk(means, pd.Series(n, index=means.index), "tiny")
    task = benchmark.Task(
        name,
        "quick",
        "double",
        "hand-made",
        lambda: (cells, truth, None),
        lambda pb: [holdout_split(pb.conditions, held_out, dataset="tiny", seed=3)],
    )
    monkeypatch.setitem(benchmark.TASKS, task.name, task)
    return task
