"""What a training run cost and how its loss went: one log for the book's models
(chapter 4)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["TrainingLog"]


@dataclass
class TrainingLog:
    """Loss per epoch, the chosen epoch, wall time, throughput and peak memory of a
    run."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    cells_seen: int = 0
    steps: int = 0  # optimiser steps (counted by pretrain)
    peak_rss_gb: float = 0.0
    device: str = "cpu"
    note: str = ""

    @property
    def cells_per_second(self) -> float:
        return self.cells_seen / self.seconds if self.seconds else float("nan")

    def to_frame(self) -> pd.DataFrame:
        n = max(len(self.train_loss), len(self.val_loss))
        pad = lambda xs: list(xs) + [np.nan] * (n - len(xs))  # noqa: E731
        return pd.DataFrame(
            {
                "epoch": range(1, n + 1),
                "train_loss": pad(self.train_loss),
                "val_loss": pad(self.val_loss),
            }
        )
