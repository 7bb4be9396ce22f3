"""The one contract every model meets to be benchmarked (chapters 2, 4 and 7).

A **method** is any object with a ``name`` and a ``predict(train, conditions)`` that
returns the predicted pseudobulk of each condition
(:class:`helpers.predictions.Predictions`, or a conditions x genes ``DataFrame``).
``train`` is a :class:`TaskData`: the training pseudobulks of one split (the held-out
conditions removed), the split itself and, where the task has them, the training cells.
The baselines, the linear model, chapter 4's networks (:mod:`helpers.models.scgpt`,
:mod:`helpers.models.gears`) and a reader's own model all meet it, and
:func:`helpers.benchmark.run` and :func:`helpers.benchmark.run_methods` call models
through it and nothing else.

Two ways in for plain functions:

* :func:`from_pseudobulk` (the one adapter): ``f(train_pseudobulk, conditions, *,
  seed)`` (the signature of :mod:`helpers.baselines` and
  :func:`helpers.linear.linear_model`) becomes a method; the result is still callable as
  ``f`` was.
* :func:`as_method` takes a method as it is, and wraps a plain function ``f(train,
  conditions)`` (chapter 7's reader model) or, with ``plain="pseudobulk"``, a pseudobulk
  function.

Anything else is refused with one line naming :class:`Method`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..conditions import CONTROL
from ..errors import InputError
from ..predictions import Predictions
from ..pseudobulk import Pseudobulk
from ..splits import Split

__all__ = [
    "Method",
    "TaskData",
    "PseudobulkMethod",
    "FunctionMethod",
    "from_pseudobulk",
    "as_method",
    "validation_split",
]

_HOW = (
    "give an object with a name and predict(train, conditions) "
    "(helpers.models.contract.Method), a function f(train, conditions), or "
    "from_pseudobulk(f) for f(train_pseudobulk, conditions, *, seed)"
)


@dataclass
class TaskData:
    """What a model gets for one split: training pseudobulks, the split and (on request)
    cells.

    ``pseudobulk``: the observed pseudobulks of the training conditions only (``ctrl``
    included); ``split``: the split whose held-out conditions are to be predicted;
    ``task``: the benchmark task the data come from (for :meth:`cells`), or ``None``
    where only pseudobulks are handed over (:func:`helpers.benchmark.run_methods`).
    """

    pseudobulk: Pseudobulk
    split: Split
    task: Any = field(default=None, repr=False)

    @property
    def seed(self) -> int:
        """The split's seed (label the predictions with it)."""
        return self.split.seed

    @property
    def dataset(self) -> str:
        """The dataset's registry name."""
        return self.pseudobulk.dataset

    @property
    def genes(self) -> pd.Index:
        """The measured genes (the columns to predict)."""
        return self.pseudobulk.genes

    def cells(self):
        """The single cells of the training conditions (canonical AnnData; read into
        memory)."""
        if self.task is None:
            raise InputError(
                "These training data carry pseudobulks only (run_methods); run the "
                "model with helpers.benchmark.run on a task whose cells are available."
            )
        adata = self.task.adata()
        mask = adata.obs["condition"].isin(self.split.train).to_numpy()
        return adata[mask].to_memory() if adata.isbacked else adata[mask].copy()


@runtime_checkable
class Method(Protocol):
    """A model the benchmark can score: a ``name`` and ``predict(train, conditions)``.

    ``train``: a :class:`TaskData` (training data of one split); ``conditions``: the
    held-out conditions to predict. Returns a :class:`~helpers.predictions.Predictions`
    (or a conditions x genes ``DataFrame``, labelled with ``name`` by the benchmark). A
    method must not look at anything but ``train``: the held-out conditions' data are
    never in it.
    """

    name: str

    def predict(
        self, train: TaskData, conditions: Sequence[str]
    ) -> Predictions | pd.DataFrame:
        """Predicted pseudobulk of each of ``conditions`` from the training data
        ``train``."""
        ...


@dataclass(frozen=True)
class PseudobulkMethod:
    """A pseudobulk-only function as a :class:`Method` (made by :func:`from_pseudobulk`)

    ``function``: ``f(train_pseudobulk, conditions, *, seed)``; ``name``: the method's
    name. :meth:`predict` hands it ``train.pseudobulk`` and ``seed=train.seed``; calling
    the object calls ``function`` unchanged.
    """

    function: Callable[..., Predictions]
    name: str

    def predict(self, train: TaskData, conditions: Sequence[str]) -> Predictions:
        """``function(train.pseudobulk, conditions, seed=train.seed)``.

        ``train``: the training data of one split; ``conditions``: the conditions to
        predict.
        """
        return self.function(train.pseudobulk, conditions, seed=train.seed)

    def __call__(self, *args, **kwargs) -> Predictions:
        """The wrapped function itself, with its own arguments ``args`` and
        ``kwargs``."""
        return self.function(*args, **kwargs)


@dataclass(frozen=True)
class FunctionMethod:
    """A plain function ``f(train, conditions)`` (chapter 7's reader model) as
    a :class:`Method`.

    ``function``: the function; ``name``: the method's name. Made by :func:`as_method`.
    """

    function: Callable[..., Predictions | pd.DataFrame]
    name: str

    def predict(
        self, train: TaskData, conditions: Sequence[str]
    ) -> Predictions | pd.DataFrame:
        """``function(train, conditions)``.

        ``train``: the training data of one split; ``conditions``: the conditions to
        predict.
        """
        return self.function(train, conditions)

    def __call__(self, *args, **kwargs):
        """The wrapped function itself, with its own arguments ``args`` and
        ``kwargs``."""
        return self.function(*args, **kwargs)


def _function_name(f) -> str | None:
    while isinstance(f, functools.partial):
        f = f.func
    name = getattr(f, "__name__", None)
    return None if name in (None, "<lambda>") else name


def from_pseudobulk(
    f: Callable[..., Predictions], *, name: str | None = None
) -> Method:
    """Make a pseudobulk-only function a :class:`Method` (the one adapter).

    ``f``: ``f(train_pseudobulk, conditions, *, seed) -> Predictions`` (the signature of
    the baselines and :func:`helpers.linear.linear_model`); ``name``: the method's name
    (default: the function's own). A method given here is returned as it is.
    """
    if isinstance(f, Method):
        return f
    if not callable(f):
        raise InputError(f"{type(f).__name__} object is not a Method: {_HOW}.")
    name = name or _function_name(f)
    if not name:
        raise InputError(
            "from_pseudobulk: name the method (name=...); it has no name of its own."
        )
    return PseudobulkMethod(f, name)


def as_method(obj, *, name: str | None = None, plain: str = "task") -> Method:
    """``obj`` as a :class:`Method`, or one line saying why it is not one.

    ``obj``: a :class:`Method` (returned as it is) or a plain function; ``name``: the
    name a plain function gets (default: its own); ``plain``: what a plain function
    takes, ``"task"`` (``f(train, conditions)``, chapter 7) or ``"pseudobulk"``
    (``f(train_pseudobulk, conditions, *, seed)``: :func:`from_pseudobulk`).
    """
    if isinstance(obj, Method):
        return obj
    if plain not in ("task", "pseudobulk"):
        raise InputError(f"as_method: plain={plain!r}; choose 'task' or 'pseudobulk'.")
    if not callable(obj):
        raise InputError(f"{type(obj).__name__} object is not a Method: {_HOW}.")
    if plain == "pseudobulk":
        return from_pseudobulk(obj, name=name)
    name = name or _function_name(obj)
    if not name:
        raise InputError(
            "as_method: name the method (name=...); it has no name of its own."
        )
    return FunctionMethod(obj, name)


def validation_split(
    split: Split,
    conditions: Sequence[str],
    *,
    fraction: float,
    seed: int,
    note: str = "{n} training perturbations held back for validation",
) -> Split:
    """``split`` with a seeded share of its training perturbations moved to ``val``.

    For models that stop early on validation conditions (CPA, GEARS): the benchmark
    holds val and test out together, so the validation set is drawn from the training
    perturbations, ``n = max(1, round(fraction * P))`` of the ``P`` perturbed training
    conditions (the control stays in training), chosen without replacement by
    ``numpy.random.default_rng(seed)``.

    ``split``: the split of the training data (its training conditions are drawn
    from); ``conditions``: the held-out conditions to predict, assigned ``test``;
    ``fraction``: the share of perturbed training conditions held back; ``seed``: seeds
    the draw; ``note``: the new split's note, ``{n}`` replaced by the number held back.
    Returns a :class:`helpers.splits.Split` with the same dataset, seed and kind.
    """
    perturbed = [c for c in split.train if c != CONTROL]
    rng = np.random.default_rng(seed)
    n_val = max(1, round(fraction * len(perturbed)))
    val = set(rng.choice(perturbed, size=n_val, replace=False).tolist())
    assignment = {c: "val" if c in val else "train" for c in split.train}
    assignment |= {c: "test" for c in conditions}
    return Split(
        split.dataset,
        split.seed,
        split.kind,
        assignment,
        note=note.format(n=n_val),
    )
