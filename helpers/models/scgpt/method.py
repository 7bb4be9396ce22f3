"""scGPT's perturbation model as a :class:`helpers.models.contract.Method` (chapter 4).

For each split :func:`helpers.benchmark.run` hands over, :class:`ScGPTMethod` loads the
checkpoint (:func:`.checkpoint.load_pretrained`: encoder, value encoder and transformer
transferred, the rest fresh), fine-tunes it on the **training** cells of the split
(:func:`.training.fine_tune`) and predicts the held-out conditions as the mean output
over a pool of control cells (:func:`.training.predict`). The held-out conditions' cells
are never read; their unmeasured target genes become flag-only tokens so they can be
flagged.

The benchmark holds out val and test together, so fine-tuning sees no validation
conditions and runs all ``epochs`` (no early stopping); the logs say so
(``method.logs``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ...predictions import Predictions
from ..contract import TaskData
from ..log import TrainingLog
from .checkpoint import load_pretrained
from .training import fine_tune, predict, prepare_cells

__all__ = ["ScGPTMethod"]


@dataclass
class ScGPTMethod:
    """Fine-tune a scGPT-layout checkpoint on each split's training cells, then predict.

    ``checkpoint``: a folder in the released layout (``vocab.json``, ``args.json``,
    ``best_model.pt``), e.g. from :func:`.training.pretrain_tiny_checkpoint`; ``name``:
    the method's name on the leaderboard (a model the book pretrained is a tiny
    transformer, not scGPT: ``book_transformer``); ``version``: the architecture
    (``None``: from the checkpoint); ``dropout``, ``epochs``, ``lr``, ``batch_size``,
    ``max_seq_len``, ``max_cells_per_condition``: fine-tuning settings
    (:func:`.training.fine_tune`); ``pool_size``: control cells per prediction;
    ``seed``: seeds the fresh weights, the subsampling, fine-tuning and the control
    pool; ``device``: ``None`` picks one. ``logs``
    collects one :class:`helpers.models.log.TrainingLog` per split run.
    """

    checkpoint: str | os.PathLike
    name: str = "book_transformer"
    version: str | None = None
    dropout: float = 0.2
    epochs: int = 15
    lr: float = 1e-4
    batch_size: int = 64
    max_seq_len: int | None = 1536
    max_cells_per_condition: int | None = None
    pool_size: int = 100
    seed: int = 0
    device: str | None = None
    logs: list[TrainingLog] = field(default_factory=list, repr=False)

    def predict(self, train: TaskData, conditions: Sequence[str]) -> Predictions:
        """Fine-tune on ``train``'s cells and predict ``conditions`` (the contract's
        call).

        ``train``: the training data of one split (with cells: :meth:`TaskData.cells`);
        ``conditions``: the held-out conditions to predict.
        """
        conditions = list(conditions)
        torch.manual_seed(self.seed)
        model, vocab, _ = load_pretrained(
            self.checkpoint, dropout=self.dropout, pert_pad_id=2, version=self.version
        )
        cells = prepare_cells(
            train.cells(),
            vocab,
            max_cells_per_condition=self.max_cells_per_condition,
            seed=self.seed,
            flag_conditions=conditions,
        )
        log = fine_tune(
            model,
            cells,
            train.split,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            max_seq_len=self.max_seq_len,
            seed=self.seed,
            device=self.device,
            progress=False,
        )
        self.logs.append(log)
        return predict(
            model,
            cells,
            conditions,
            pool_size=self.pool_size,
            seed=self.seed,
            method=self.name,
            dataset=train.dataset,
            split_seed=train.seed,
            device=self.device,
        )
