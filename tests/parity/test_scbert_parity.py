"""The book's scBERT Performer against the REAL scBERT code's outputs.

``tests/data/scbert_oracle/`` holds tiny seeded weights saved by scBERT's own
``PerformerLM`` (commit 262fd4b, its ``performer_pytorch`` copy) and that code's outputs
on stored tokens; ``tests/parity/oracles/make_scbert_oracle.py`` made them (environment
and rerun in its docstring). Here the book's code loads the same files and must give the
same numbers: float32, tolerance 1e-5 absolute (observed: 0).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers.models.scbert import pool_cells  # noqa: E402
from helpers.models.scbert.checkpoint import (  # noqa: E402
    load_network,
    load_state,
    write_gene_order,
)
from helpers.models.scbert.network import orthogonal_random_features  # noqa: E402
from helpers.models.scbert.training import torch_threads  # noqa: E402

ORACLE = Path(__file__).resolve().parents[1] / "data" / "scbert_oracle"
TOL = 1e-5
N_GENES = 50


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One thread: the tiny model is fastest so on a shared 2-core machine."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def oracle():
    return np.load(ORACLE / "oracle.npz")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("scbert_oracle_folder")
    for name in ("panglao_pretrain.pth", "finetune_best.pth", "gene2vec_16906.npy"):
        shutil.copy(ORACLE / name, out / name)
    write_gene_order([f"G{i}" for i in range(N_GENES)], out)
    return out


def _tokens(oracle):
    return torch.from_numpy(oracle["tokens"]).long()


def test_real_state_dict_loads_strictly_with_the_same_names_and_shapes(folder):
    real = load_state(folder / "panglao_pretrain.pth")
    net = load_network(folder)  # strict=True inside
    own = net.state_dict()
    assert sorted(own) == sorted(real)
    assert all(own[k].shape == real[k].shape for k in real)
    assert all(torch.equal(own[k].to(real[k].dtype), real[k]) for k in real)
    # FAVOR+ features are buffers of the state dict: parity uses the same ones
    assert any(k.endswith("fast_attention.projection_matrix") for k in real)


def test_logits_match_the_real_performer_cell_by_cell(folder, oracle):
    net = load_network(folder)
    tok = _tokens(oracle)
    with torch.no_grad():
        ours = np.concatenate([net(tok[i : i + 1]).numpy() for i in range(len(tok))])
    assert np.abs(ours - oracle["logits_single"]).max() <= TOL


def test_logits_match_in_a_batch_where_the_key_maximum_spans_the_batch(folder, oracle):
    net = load_network(folder)
    with torch.no_grad():
        ours = net(_tokens(oracle)).numpy()
    assert np.abs(ours - oracle["logits_batch"]).max() <= TOL
    # the batch changes the real outputs (global key maximum): the test can tell
    assert np.abs(oracle["logits_batch"] - oracle["logits_single"]).max() > 10 * TOL


def test_embedding_reload_without_gene2vec_and_pooling_match(folder, oracle):
    embedder = load_network(
        folder, gene_positions=False, checkpoint="finetune_best.pth"
    )
    assert embedder.pos_emb is None
    tok = _tokens(oracle)[:3]
    with torch.no_grad():
        enc = np.stack(
            [
                embedder(tok[i : i + 1], return_encodings=True)[0].numpy()
                for i in range(3)
            ]
        )
    assert np.abs(enc - oracle["encodings_no_g2v"]).max() <= TOL
    pooled = pool_cells(embedder, tok, 100)
    assert pooled.dtype == np.float64
    assert np.abs(pooled - oracle["pooled"]).max() <= TOL / 100


def test_random_features_are_drawn_as_scbert_draws_them(oracle):
    torch.manual_seed(2)
    ours = orthogonal_random_features(29, 12).numpy()
    assert np.abs(ours - oracle["features_seed2"]).max() <= TOL


def test_features_are_redrawn_in_training_when_scbert_redraws(folder, oracle):
    net = load_network(folder)
    net.train()
    net.performer.redraw_interval = 2
    tok = _tokens(oracle)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        logits = np.concatenate(
            [net(tok[i : i + 1]).detach().numpy() for i in range(3)]
        )
    assert np.abs(logits - oracle["train_logits_seed3"]).max() <= TOL
    layers = net.performer.net.layers
    redrawn = np.stack(
        [layer[0].fn.fast_attention.projection_matrix for layer in layers]
    )
    assert np.abs(redrawn - oracle["redrawn_seed3"]).max() <= TOL
    assert int(net.performer.calls_since_last_redraw) == int(oracle["calls_after"])
