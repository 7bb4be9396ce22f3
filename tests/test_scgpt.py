"""The scGPT-compatible model: released checkpoint layout, loading, training, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.models import scgpt, training
from helpers.models.scgpt import CheckpointError, ScGPTConfig, ScGPTPerturbationModel
from helpers.splits import holdout_split


def write_released_layout(path, n_genes=50, d=16, nlayers=2, seed=0):
    """A tiny checkpoint exactly like scGPT_human/: flash-attention key names, extra cls/mvc heads,
    special tokens in the vocabulary, args.json with the released keys."""
    torch.manual_seed(seed)
    vocab = {f"GENE{i}": i for i in range(n_genes)} | {"<pad>": n_genes, "<cls>": n_genes + 1, "<eoc>": n_genes + 2}
    config = ScGPTConfig(ntoken=n_genes + 3, embsize=d, nheads=2, d_hid=32, nlayers=nlayers, dropout=0.2)
    model = ScGPTPerturbationModel(config, pad_id=vocab["<pad>"])
    extra = {"cls_decoder._decoder.0.weight": torch.randn(d, d), "cls_decoder.out_layer.weight": torch.randn(3, d),
             "mvc_decoder.gene2query.weight": torch.randn(d, d), "mvc_decoder.W.weight": torch.randn(d, d)}
    path.mkdir(parents=True)
    scgpt.save_checkpoint(model, vocab, path, extra_tensors=extra)
    args = json.loads((path / "args.json").read_text())
    args.update({"n_layers_cls": 3, "max_seq_len": 1200, "mask_ratio": [0.25, 0.5, 0.75], "fast_transformer": True})
    (path / "args.json").write_text(json.dumps(args))
    return model, vocab


def test_released_layout_has_flash_attention_names(tmp_path):
    write_released_layout(tmp_path / "ckpt")
    state = torch.load(tmp_path / "ckpt" / "best_model.pt", weights_only=True)
    assert "transformer_encoder.layers.0.self_attn.Wqkv.weight" in state
    assert not any("in_proj" in k for k in state)
    assert "cls_decoder.out_layer.weight" in state


def test_loader_transfers_tensors_bit_identical(tmp_path):
    original, vocab = write_released_layout(tmp_path / "ckpt")
    model, loaded_vocab, report = scgpt.load_pretrained(tmp_path / "ckpt")
    assert loaded_vocab == vocab
    ours = model.state_dict()
    theirs = original.state_dict()
    transferred = [k for k in theirs if k.startswith(scgpt.TRANSFERRED_PREFIXES)]
    assert sorted(report.loaded) == sorted(transferred)
    for key in transferred:
        assert torch.equal(ours[key], theirs[key]), key
    assert report.renamed == 2 * 2  # weight and bias of 2 layers
    assert {k.split(".")[0] for k in report.missing} == {"pert_encoder", "decoder"}
    assert {k.split(".")[0] for k in report.skipped} == {"cls_decoder", "mvc_decoder", "pert_encoder", "decoder"}
    assert "loaded" in report.summary()


def test_vocab_without_specials_gets_them_appended(tmp_path):
    write_released_layout(tmp_path / "ckpt")
    vocab = json.loads((tmp_path / "ckpt" / "vocab.json").read_text())
    for token in ("<cls>", "<eoc>"):
        vocab.pop(token)
    (tmp_path / "ckpt" / "vocab.json").write_text(json.dumps(vocab))
    loaded = scgpt.load_vocab(tmp_path / "ckpt" / "vocab.json")
    assert {"<pad>", "<cls>", "<eoc>"} <= set(loaded) and len(set(loaded.values())) == len(loaded)


def test_malformed_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        scgpt.load_pretrained(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"lacks \['vocab.json', 'args.json', 'best_model.pt'\]"):
        scgpt.load_pretrained(tmp_path / "empty")
    write_released_layout(tmp_path / "ckpt")
    args = json.loads((tmp_path / "ckpt" / "args.json").read_text())
    args["embsize"] = 32  # does not match the tensors
    (tmp_path / "ckpt" / "args.json").write_text(json.dumps(args))
    with pytest.raises(CheckpointError, match="do not match the architecture"):
        scgpt.load_pretrained(tmp_path / "ckpt")
    del args["nlayers"]
    (tmp_path / "ckpt" / "args.json").write_text(json.dumps(args))
    with pytest.raises(CheckpointError, match="args.json lacks"):
        scgpt.load_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "best_model.pt").write_bytes(b"not a torch file")
    args["nlayers"] = 2
    args["embsize"] = 16
    (tmp_path / "ckpt" / "args.json").write_text(json.dumps(args))
    with pytest.raises(CheckpointError, match="could not be read"):
        scgpt.load_pretrained(tmp_path / "ckpt")


def test_gene_mapping_reports_missing_genes():
    ids, missing = scgpt.map_genes(["GENE1", "NOT_A_GENE"], {"GENE1": 0, "<pad>": 5})
    assert list(ids) == [0, 5] and missing == ["NOT_A_GENE"]


@pytest.fixture(scope="module")
def tiny_data(norman_subset):
    vocab = training.build_vocab([*norman_subset.var_names, "KLF1", "MAP2K6"])
    data = training.prepare_cells(norman_subset, vocab)
    return vocab, data


def test_cell_data_flags_unmeasured_targets(tiny_data):
    _, data = tiny_data
    assert "KLF1" in data.flag_genes and "KLF1" not in data.genes
    flags = data.flags("KLF1+MAP2K6")
    assert flags.sum() == 2 and flags[data.tokens.index("KLF1")] == 1
    assert data.X.shape[1] == 500 and data.genes_missing_from_vocab  # the other targets are not in this vocab


def test_training_step_lowers_the_loss_on_a_fixed_batch(tiny_data):
    vocab, data = tiny_data
    torch.manual_seed(0)
    model = ScGPTPerturbationModel(training.tiny_config(max(vocab.values()) + 1, dropout=0.0), pad_id=vocab["<pad>"])
    idx = np.arange(16)
    ids, values, flags = training._batch_tensors(data, data.X[idx], np.zeros((16, len(data.tokens)), np.int64), "cpu")
    target = torch.as_tensor(data.X[idx])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.mse_loss(model(ids, values, flags)[:, :500], target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_pretrain_save_load_finetune_predict_is_deterministic(tiny_data, norman_subset, tmp_path):
    vocab, data = tiny_data
    conditions = sorted(set(norman_subset.obs["condition"]))
    split = holdout_split(conditions, ["KLF1+MAP2K6"], val=["CBL+CNN1"], dataset="norman2019_subset", seed=1)

    def run(folder):
        torch.manual_seed(0)
        model = ScGPTPerturbationModel(training.tiny_config(max(vocab.values()) + 1), pad_id=vocab["<pad>"])
        controls = training.prepare_cells(norman_subset, vocab, conditions=["ctrl"])
        training.pretrain(model, controls, epochs=1, max_seq_len=64, progress=False)
        scgpt.save_checkpoint(model, vocab, folder)
        loaded, _, report = scgpt.load_pretrained(folder, dropout=0.1)
        log = training.fine_tune(loaded, data, split, epochs=2, batch_size=32, max_seq_len=64,
                                 max_cells_per_condition=10, progress=False)
        pred = training.predict(loaded, data, split.conditions("test"), pool_size=20, dataset="norman2019_subset",
                                split_seed=1)
        return pred, log, report

    first, log, report = run(tmp_path / "a")
    second, _, _ = run(tmp_path / "b")
    assert np.array_equal(first.values.to_numpy(), second.values.to_numpy())
    assert list(first.conditions) == ["KLF1+MAP2K6"] and first.values.shape[1] == 500
    assert len(log.val_loss) == 2 and log.best_epoch in (1, 2) and log.cells_per_second > 0
    assert len(report.loaded) > 0


def test_predict_refuses_conditions_it_cannot_flag(tiny_data):
    vocab, data = tiny_data
    model = ScGPTPerturbationModel(training.tiny_config(max(vocab.values()) + 1), pad_id=vocab["<pad>"])
    with pytest.raises(ValueError, match="could not be flagged"):
        training.predict(model, data, ["NOT_A_TARGET+KLF1"], pool_size=5)
    with pytest.raises(ValueError, match="pool_size"):
        training.predict(model, data, ["KLF1"], pool_size=0)
