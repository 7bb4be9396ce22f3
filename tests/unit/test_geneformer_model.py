"""Geneformer* (helpers.models.geneformer): hand-worked tokens and perturbations, bad
input in one line, determinism, shapes, the fine-tuning option."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.errors import InputError
from helpers.models.geneformer import tokenizer as tk

pytest.importorskip("transformers")

TINY = dict(model_input_size=64, hidden=8, layers=2, heads=2, epochs=1)


# ----------------------------------------------------------------- hand-worked cases
def test_rank_value_tokens_hand_worked():
    # one cell, n = 10 counts: v = c / 10 * 1e4 / m
    counts = np.array([[0, 2, 5, 1, 2]])
    genes = ["a", "b", "c", "d", "x"]  # x is outside the vocabulary
    token_dict = {"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3}
    token_dict.update({"a": 7, "b": 5, "c": 4, "d": 6})
    medians = {"a": 1.0, "b": 100.0, "c": 2000.0, "d": 250.0}
    # v_b = 2000/100 = 20, v_c = 5000/2000 = 2.5, v_d = 1000/250 = 4; a is 0
    out = tk.rank_value_tokens(
        counts, genes, token_dict, median_dict=medians, model_input_size=10
    )
    assert out[0].tolist() == [2, 5, 6, 4, 3]
    cut = tk.rank_value_tokens(
        counts, genes, token_dict, median_dict=medians, model_input_size=4
    )
    assert cut[0].tolist() == [2, 5, 6, 3]


def test_gene_medians_hand_worked():
    counts = np.array([[1, 0, 3], [3, 2, 0], [1, 1, 0]])
    # normalised: row totals 4, 5, 2 -> gene 0: 2500, 6000, 5000 -> median 5000
    out = tk.gene_medians(counts, ["g0", "g1", "g2"])
    assert out == pytest.approx({"g0": 5000.0, "g1": 4500.0, "g2": 7500.0})


def test_overexpress_and_delete_hand_worked():
    assert tk.overexpress([2, 10, 11, 12, 3], [12, 20], 5) == [2, 12, 20, 10, 3]
    assert tk.overexpress([2, 10, 3], [30], 8) == [2, 30, 10, 3]
    assert tk.delete([2, 10, 11, 3], [11]) == [2, 10, 3]
    long = [2] + list(range(10, 150)) + [3]
    # no target in the cell: Geneformer deletes its marker index -100
    assert tk.delete(long, [999]) == long[:-100] + long[-99:]
    with pytest.raises(InputError):
        tk.delete([2, 10, 3], [999])


def test_select_cells_is_a_stable_sort_after_geneformers_shuffle():
    lengths = [5, 9, 9, 3, 9]
    assert tk.select_cells(lengths, None).tolist() == [1, 2, 4, 0, 3]
    perm = np.random.default_rng(42).permutation(5)[:3]
    chosen = tk.select_cells(lengths, 3)
    assert sorted(chosen.tolist()) == sorted(perm.tolist())


# ----------------------------------------------------------------- model
def _adata(seed=0):
    import anndata as ad

    rng = np.random.default_rng(seed)
    n_genes = 60
    genes = [f"SIM{i:04d}" for i in range(1, n_genes + 1)]
    labels = ["ctrl"] * 30 + ["SIM0001"] * 6 + ["SIM0002+SIM0003"] * 6
    counts = rng.poisson(rng.gamma(2.0, 3.0, n_genes), size=(len(labels), n_genes))
    counts[:, -1] = 0  # never detected: not in the vocabulary
    a = ad.AnnData(
        sp.csr_matrix(np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)),
        obs=pd.DataFrame({"condition": labels}, index=[f"c{i}" for i in range(42)]),
        var=pd.DataFrame(index=genes),
    )
    a.layers["counts"] = sp.csr_matrix(counts.astype(float))
    return a


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from helpers.models import geneformer

    folder = tmp_path_factory.mktemp("gf") / "tiny"
    adata = _adata()
    log = geneformer.pretrain_tiny(adata, folder, seed=0, **TINY)
    return folder, adata, log


def test_pretrain_writes_the_released_layout(tiny):
    folder, adata, log = tiny
    names = {p.name for p in folder.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "token_dictionary_gc95M.pkl",
        "gene_median_dictionary_gc95M.pkl",
        "gene_name_id_dict_gc95M.pkl",
        "ensembl_mapping_dict_gc95M.pkl",
    } <= names
    tokens = pickle.loads((folder / "token_dictionary_gc95M.pkl").read_bytes())
    assert [tokens[t] for t in ("<pad>", "<mask>", "<cls>", "<eos>")] == [0, 1, 2, 3]
    assert "SIM0060" not in tokens  # never detected in a control cell
    assert len(log.train_loss) == 1 and len(log.val_loss) == 1 and log.steps > 0


def test_pretrain_is_deterministic(tiny, tmp_path):
    from helpers.models import geneformer

    folder, adata, _ = tiny
    geneformer.pretrain_tiny(adata, tmp_path / "again", seed=0, **TINY)
    for name in ("model.safetensors", "token_dictionary_gc95M.pkl"):
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes()


def test_condition_embeddings_shapes_and_determinism(tiny):
    from helpers.models import geneformer

    folder, adata, _ = tiny
    conds = ["SIM0002+SIM0003", "ctrl", "SIM0001", "SIM0060"]
    one = geneformer.condition_embeddings(folder, adata, conds, max_ncells=10)
    two = geneformer.condition_embeddings(folder, adata, conds, max_ncells=10)
    assert list(one.index) == ["SIM0002+SIM0003", "ctrl", "SIM0001"]
    assert one.shape == (3, 8) and (one.dtypes == np.float64).all()
    assert (one.loc["ctrl"] == 0).all() and (one.loc["SIM0001"] != 0).any()
    assert one.attrs["not_embedded"] == {
        "SIM0060": "SIM0060 not in the model's vocabulary"
    }
    assert one.attrs["perturb_type"] == "overexpress"  # the data has doubles
    assert one.to_numpy().tobytes() == two.to_numpy().tobytes()


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg and len(msg) > 20
    return msg


def test_bad_input_gets_one_line(tiny, tmp_path):
    from helpers.models import geneformer

    folder, adata, _ = tiny
    with pytest.raises(InputError) as e:
        geneformer.condition_embeddings(tmp_path, adata, ["ctrl"])
    assert "config.json" in _one_line(e)
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(InputError) as e:
        geneformer.condition_embeddings(tmp_path, adata, ["ctrl"])
    assert "model.safetensors" in _one_line(e)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(InputError) as e:
        geneformer.condition_embeddings(tmp_path, adata, ["ctrl"])
    assert "token_dictionary_gc95M.pkl" in _one_line(e)
    with pytest.raises(InputError) as e:
        geneformer.condition_embeddings(folder, adata, ["SIM0060"], on_missing="raise")
    assert "SIM0060" in _one_line(e)
    with pytest.raises(InputError) as e:
        geneformer.condition_embeddings(folder, adata, ["ctrl"], perturb_type="up")
    _one_line(e)
    no_counts = adata.copy()
    del no_counts.layers["counts"]
    with pytest.raises(InputError) as e:
        geneformer.condition_embeddings(folder, no_counts, ["ctrl"])
    assert "counts" in _one_line(e)
    with pytest.raises(InputError) as e:
        geneformer.condition_embeddings(folder, adata, ["ctrl"], fine_tune=True)
    assert "train_conditions" in _one_line(e)


def test_fine_tune_freezes_the_first_layers(tiny, tmp_path):
    import torch
    from transformers import BertForMaskedLM, BertForSequenceClassification

    from helpers.models import geneformer

    folder, adata, _ = tiny
    out = tmp_path / "ft"
    log = geneformer.fine_tune(
        folder,
        adata,
        ["ctrl", "SIM0001", "SIM0002+SIM0003"],
        out_folder=out,
        epochs=2,
        freeze_layers=1,
    )
    assert len(log.val_loss) == 2 and 1 <= log.best_epoch <= 2
    before = BertForMaskedLM.from_pretrained(folder).bert.encoder.layer
    after = BertForSequenceClassification.from_pretrained(out).bert.encoder.layer
    assert after[0].state_dict().keys() == before[0].state_dict().keys()
    for k, v in before[0].state_dict().items():
        assert torch.equal(v, after[0].state_dict()[k]), k
    moved = [
        not torch.equal(v, after[1].state_dict()[k])
        for k, v in before[1].state_dict().items()
    ]
    assert any(moved)


def test_masked_loss_equals_transformers_loss():
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from helpers.models.geneformer.model import _mask_tokens, _mlm_loss

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model = BertForMaskedLM(config).eval()
    ids = torch.randint(4, 50, (3, 20))
    mask = torch.ones_like(ids)
    mask[0, 15:] = 0
    inputs, labels = _mask_tokens(ids, mask, torch.Generator().manual_seed(1), 50)
    assert (labels[mask == 0] == -100).all() and (labels != -100).any()
    with torch.no_grad():
        hf = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
        mine = _mlm_loss(model, inputs, mask, labels)
    assert float(mine) == pytest.approx(float(hf), rel=1e-6)
