"""The real GEARS (``cell-gears``) on the book's splits (chapter 4).

* :mod:`.runner`: data processing, training and prediction, with the shims that let
  GEARS 0.1.2 run under pandas 3 and scipy >= 1.15;
* :mod:`.method`: :class:`GearsMethod`, the :class:`helpers.models.contract.Method` that
  plugs into :func:`helpers.benchmark.run`.

Importing this package does not import GEARS itself (only a training run does).
"""

from __future__ import annotations

from . import method, runner
from .method import GearsMethod
from .runner import GearsRun, prepare_gears_data, to_gears_condition, train_gears

__all__ = [
    "method",
    "runner",
    "GearsMethod",
    "GearsRun",
    "prepare_gears_data",
    "to_gears_condition",
    "train_gears",
]
