"""scBERT* (helpers/models/scbert): bad input, determinism, shapes, and the paper's
protocol recomputed by hand (binning, control draws, pasted targets, pooling)."""

from __future__ import annotations

import json
import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from helpers.errors import InputError  # noqa: E402
from helpers.models import scbert  # noqa: E402
from helpers.models.scbert.checkpoint import load_network  # noqa: E402
from helpers.models.scbert.training import (  # noqa: E402
    _WarmupCosine,
    cell_values,
    finetune_classifier,
    mask_bins,
    torch_threads,
)

N_GENES = 230
SMALL = dict(dim=8, depth=2, heads=2, dim_head=4, steps=3, batch_size=2)


def _adata(seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    groups = {"ctrl": 12, "G0001": 6, "G0001+G0002": 6, "G0003": 6}
    labels = np.concatenate([[k] * n for k, n in groups.items()])
    counts = rng.poisson(2.0, size=(len(labels), N_GENES)).astype(np.float32) + 1
    counts[labels == "G0001", 1] = 40  # the target's own value differs from ctrl
    counts[-1, 100:] = 0  # one cell with 100 detected genes: dropped (< 200)
    obs = pd.DataFrame({"condition": pd.Categorical(labels)})
    obs.index = obs.index.astype(str)
    var = pd.DataFrame(index=[f"G{i:04d}" for i in range(N_GENES)])
    out = ad.AnnData(X=sp.csr_matrix(np.log1p(counts)), obs=obs, var=var)
    out.layers["counts"] = sp.csr_matrix(counts)
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One thread: the tiny model is fastest so on a shared 2-core machine."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def adata():
    return _adata()


@pytest.fixture(scope="module")
def folder(adata, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_scbert")
    log = scbert.pretrain_tiny(adata, out, seed=0, **SMALL)
    assert log.steps == SMALL["steps"] and len(log.train_loss) == SMALL["steps"]
    return out


@pytest.fixture(scope="module")
def table(folder, adata):
    conditions = ["ctrl", "G0001", "G0001+G0002", "NOTAGENE", "G0004"]
    return scbert.condition_embeddings(
        folder, adata, conditions, seed=0, **scbert.QUICK
    )


def test_folder_has_the_released_layout_and_loads_strictly(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"panglao_pretrain.pth", "panglao_human.h5ad", "gene2vec_16906.npy"} <= names
    ckpt = torch.load(folder / "panglao_pretrain.pth", weights_only=True)
    assert set(ckpt) == {"model_state_dict"}
    state = ckpt["model_state_dict"]
    assert state["pos_emb.emb.weight"].shape == (N_GENES + 1, SMALL["dim"])
    assert state["token_emb.weight"].shape == (7, SMALL["dim"])  # 5 bins + 2
    net = load_network(folder)
    assert net.max_seq_len == N_GENES + 1


def test_same_seed_same_bytes_other_seed_other_weights(adata, folder, tmp_path):
    scbert.pretrain_tiny(adata, tmp_path / "a", seed=0, **SMALL)
    scbert.pretrain_tiny(adata, tmp_path / "b", seed=1, **SMALL)
    same = (tmp_path / "a" / "panglao_pretrain.pth").read_bytes()
    assert same == (folder / "panglao_pretrain.pth").read_bytes()
    assert same != (tmp_path / "b" / "panglao_pretrain.pth").read_bytes()


def test_embedding_is_deterministic(table, folder, adata):
    # no settings: a folder pretrain_tiny wrote gets the quick setting (no fine-tuning)
    again = scbert.condition_embeddings(folder, adata, list(table.index), seed=0)
    assert again.to_numpy().tobytes() == table.to_numpy().tobytes()
    assert again.attrs["finetune"]["note"] == "no fine-tuning"
    json.dumps(again.attrs)  # attrs travel into parquet/JSON metadata
    other = scbert.condition_embeddings(folder, adata, ["ctrl"], seed=1)
    assert not np.array_equal(other.loc["ctrl"], table.loc["ctrl"])


def test_shapes_and_the_conditions_left_out(table):
    assert list(table.index) == ["ctrl", "G0001", "G0001+G0002"]
    assert table.shape == (3, SMALL["dim"])
    assert (table.dtypes == np.float64).all()
    reasons = table.attrs["not_embedded"]
    assert set(reasons) == {"NOTAGENE", "G0004"}
    assert "not among the model's genes" in reasons["NOTAGENE"]
    assert "no cell" in reasons["G0004"]


def _log2_values(counts):
    """run_scbert.py by hand: 1e4 scaling, log2(1 + x) (cells with >= 200 genes)."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.log2(1 + 1e4 * counts / counts.sum(axis=1, keepdims=True))


def test_embedding_follows_the_paper_protocol_by_hand(table, folder, adata):
    counts = adata.layers["counts"].toarray()
    labels = np.asarray(adata.obs["condition"].astype(str))
    kept = (counts > 0).sum(axis=1) >= 200
    assert kept.sum() == len(labels) - 1  # the one poor cell is dropped
    counts, labels = counts[kept], labels[kept]
    values = _log2_values(counts)
    embedder = load_network(folder, gene_positions=False)
    rng = np.random.RandomState(0)
    ctrl = np.flatnonzero(labels == "ctrl")
    base = values[ctrl[rng.choice(len(ctrl), size=100)]][:3]

    def embed(block):
        bins = np.floor(np.minimum(block, 5)).astype(np.int64)
        ids = np.concatenate([bins, np.zeros((len(bins), 1), np.int64)], axis=1)
        with torch.no_grad():
            rows = [
                embedder(torch.from_numpy(ids[i : i + 1]), return_encodings=True)
                for i in range(3)
            ]
        return np.sum([r[0].mean(dim=0).numpy() for r in rows], axis=0) / 100

    expected = {"ctrl": embed(base)}
    for condition, cols in [("G0001", [1]), ("G0001+G0002", [1, 2])]:
        cells = np.flatnonzero(labels == condition)
        draw = rng.choice(len(cells), size=100)
        block = base.copy()
        block[:, cols] = values[cells][draw][:3][:, cols]
        expected[condition] = embed(block)
    for condition, vector in expected.items():
        np.testing.assert_allclose(table.loc[condition], vector, atol=1e-6)
    # the pasted target moves the embedding away from ctrl
    assert np.abs(expected["G0001"] - expected["ctrl"]).max() > 1e-7


def test_cell_values_hand_worked():
    genes = [f"G{i:04d}" for i in range(N_GENES)]
    one = _adata(1)[:2]
    values, kept = cell_values(one, list(reversed(genes)) + ["EXTRA"])
    assert kept.all() and values.shape == (2, N_GENES + 1)
    counts = one.layers["counts"].toarray()
    expect = _log2_values(counts)[:, ::-1]
    np.testing.assert_allclose(values.toarray()[:, :N_GENES], expect, rtol=1e-5)
    assert values.toarray()[:, N_GENES].max() == 0  # a gene the data lacks stays 0


def test_masking_touches_only_nonzero_bins():
    batch = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 2, 2, 0, 1, 3, 0]])
    gen = torch.Generator().manual_seed(0)
    masked, labels = mask_bins(batch, mask_token=6, generator=gen)
    chosen = labels != 6
    assert int(chosen.sum()) == math.ceil(0.15 * 9)  # 9 non-zero bins
    assert (batch[chosen] != 0).all()
    assert torch.equal(labels[chosen], batch[chosen])
    assert torch.equal(masked[~chosen], batch[~chosen])


def test_learning_rate_schedule_hand_worked():
    sched = _WarmupCosine(1e-4)
    lrs = [sched.lr] + [sched.step() for _ in range(16)]
    assert lrs[0] == pytest.approx(1e-6)  # epoch 1 runs at the floor
    assert lrs[1] == pytest.approx(1e-6 + (1e-4 - 1e-6) / 5)
    assert lrs[5] == pytest.approx(1e-4)  # end of warm-up
    assert lrs[10] == pytest.approx(1e-6 + (1e-4 - 1e-6) / 2)
    assert lrs[15] == pytest.approx(1e-6)  # restart: second cycle starts at its floor
    assert lrs[16] == pytest.approx(1e-6 + (0.9e-4 - 1e-6) / 5)


def test_finetuning_trains_only_norm_second_to_last_block_and_head(folder, adata):
    net = load_network(folder)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    values, kept = cell_values(adata, list(adata.var_names))
    labels = np.asarray(adata.obs["condition"].astype(str))[kept]
    best, log = finetune_classifier(
        net, values, labels, bins=5, epochs=2, max_cells=100, grad_acc=1
    )
    assert log.steps > 0 and len(log.train_loss) == len(log.val_loss) <= 2
    after = net.state_dict()
    counter = "performer.calls_since_last_redraw"  # counts training calls, as scBERT
    assert after[counter] > before[counter]
    shared = [k for k in before if not k.startswith("to_out.") and k != counter]
    changed = {k for k in shared if not torch.equal(before[k], after[k])}
    assert changed and all(
        k.startswith(("norm.", "performer.net.layers.0.")) for k in changed
    )
    assert any(k.startswith("to_out.conv1") for k in after)  # the classifier head
    assert best is None or "to_out.fc3.weight" in best


def test_bad_input_gets_one_line(adata, folder, tmp_path):
    with pytest.raises(InputError, match="panglao_pretrain.pth is missing"):
        scbert.condition_embeddings(tmp_path, adata, ["ctrl"])
    no_counts = adata.copy()
    del no_counts.layers["counts"]
    with pytest.raises(InputError, match="layers\\['counts'\\]"):
        scbert.condition_embeddings(folder, no_counts, ["ctrl"])
    with pytest.raises(InputError, match="no 'ctrl' cells"):
        scbert.pretrain_tiny(adata[adata.obs["condition"] != "ctrl"], tmp_path)
    with pytest.raises(InputError, match="unknown setting 'width'"):
        scbert.pretrain_tiny(adata, tmp_path, width=3)
    with pytest.raises(InputError, match="n_pooled"):
        scbert.condition_embeddings(folder, adata, ["ctrl"], n_pooled=200)
    for error in (InputError,):
        try:
            scbert.condition_embeddings(tmp_path, adata, ["ctrl"])
        except error as err:
            assert "\n" not in str(err)
