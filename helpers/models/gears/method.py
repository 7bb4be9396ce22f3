"""GEARS as a :class:`helpers.models.contract.Method` (chapter 4's real GEARS,
benchmarked).

For each split :func:`helpers.benchmark.run` hands over, :class:`GearsMethod` trains
GEARS (:func:`.runner.train_gears`) on the **training** cells only. GEARS picks its best
epoch on validation conditions, and the benchmark holds out val and test together, so a
seeded ``val_fraction`` of the training perturbations is set aside for that; the
held-out conditions are GEARS' test set, without cells. Conditions GEARS cannot predict
(targets without GO annotation) are missing from the predictions: run with
``allow_missing=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ...predictions import Predictions
from ..contract import TaskData, validation_split
from .runner import GearsRun, train_gears

__all__ = ["GearsMethod"]


@dataclass
class GearsMethod:
    """Train GEARS on each split's training cells, then predict the held-out conditions.

    ``gene2go``: gene -> GO terms (:func:`helpers.annotations.gene2go`); ``name``: the
    method's name (not ``gears``, the published GEARS results' name); ``epochs``,
    ``hidden_size``: GEARS' settings; ``val_fraction``: the share of training
    perturbations GEARS validates on (at least one); ``seed``: seeds the validation
    choice, training and the control cells of the prediction; ``device``: ``None`` picks
    one. ``runs`` collects the :class:`.runner.GearsRun` of every split.
    """

    gene2go: dict
    name: str = "gears_book"
    epochs: int = 20
    hidden_size: int = 64
    val_fraction: float = 0.1
    seed: int = 0
    device: str | None = None
    runs: list[GearsRun] = field(default_factory=list, repr=False)

    def predict(self, train: TaskData, conditions: Sequence[str]) -> Predictions:
        """Train on ``train``'s cells and predict ``conditions`` (the contract's call).

        ``train``: the training data of one split (with cells); ``conditions``: the
        held-out conditions to predict.
        """
        conditions = list(conditions)
        split = validation_split(
            train.split,
            conditions,
            fraction=self.val_fraction,
            seed=self.seed,
            note="GEARS validates on {n} training perturbations",
        )
        run = train_gears(
            train.cells(),
            split,
            self.gene2go,
            epochs=self.epochs,
            hidden_size=self.hidden_size,
            seed=self.seed,
            device=self.device,
        )
        self.runs.append(run)
        pred, _ = run.predict(conditions, seed=self.seed, split_seed=train.seed)
        return Predictions(pred.values, self.name, train.dataset, train.seed)
