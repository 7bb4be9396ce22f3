"""TrainingLog.steps: the optimiser steps of the tiny transformer's pretraining (chapter
4 prints them). Oracle: ceil(cells / batch_size) steps per epoch, counted by hand."""

import math

import pytest

torch = pytest.importorskip("torch")

from helpers.models import scgpt  # noqa: E402
from helpers.models.scgpt import ScGPTPerturbationModel  # noqa: E402


def test_pretrain_counts_optimiser_steps(norman_subset):
    genes = list(map(str, norman_subset.var_names))
    vocab = scgpt.build_vocab(genes)
    controls = scgpt.prepare_cells(norman_subset, vocab, conditions=["ctrl"])
    n_cells = len(controls.X)
    torch.manual_seed(0)
    model = ScGPTPerturbationModel(
        scgpt.tiny_config(max(vocab.values()) + 1), pad_id=vocab["<pad>"]
    )
    log = scgpt.pretrain(
        model, controls, epochs=2, batch_size=32, max_seq_len=32, progress=False
    )
    assert n_cells == 100  # the Norman subset's control cells
    assert log.steps == 2 * math.ceil(n_cells / 32) == 8
    assert log.cells_seen == 2 * n_cells
