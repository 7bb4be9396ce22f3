"""scGPT's perturbation architecture: the real scGPT code's outputs, the released
checkpoint layout, training.

Oracles, none written by the code under test:

* ``../shared/reference/scgpt/<version>/``: tiny ``TransformerGenerator`` models built
  and run by the real scGPT code (tag v0.2.1 and master cebd6fa): state dict,
  vocab.json, args.json and the real model's outputs in eval and train mode
  (``case.npz``).
* :func:`write_foundation_checkpoint`: a foundation checkpoint written key by key as the
  released ``scGPT_human`` folder holds it (flash-attention ``self_attn.Wqkv.*`` names,
  pretraining heads ``decoder.fc``, ``cls_decoder``, ``mvc_decoder``, the released
  args.json keys) by ``helpers.standins``, not by the book's ``scgpt.save_checkpoint``.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from helpers import standins
from helpers.models import scgpt
from helpers.models.scgpt import CheckpointError, ScGPTConfig, ScGPTPerturbationModel
from helpers.splits import holdout_split

from tests.conftest import SHARED

REFERENCE = SHARED / "reference" / "scgpt"
VERSIONS = {"v0.2.1": "0.2.1", "master-cebd6fa": "0.2.2+"}
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(),
    reason=f"{REFERENCE} (outputs of the real scGPT code) is not beside this checkout",
)


def write_foundation_checkpoint(path, n_genes=20, d=16, d_hid=32, nlayers=2, seed=0):
    """A foundation checkpoint in the released layout (tensor by tensor,
    ``helpers.standins``, from the layout in foundation_models.md section 3.3), tiny;
    returns the state dict and vocabulary written."""
    return standins.write_scgpt_checkpoint(
        path,
        [f"GENE{i}" for i in range(n_genes)],
        n_tokens=None,
        embsize=d,
        nheads=2,
        d_hid=d_hid,
        nlayers=nlayers,
        seed=seed,
    )


def _case(version):
    return dict(np.load(REFERENCE / version / "case.npz"))


def _inputs(case, rows=slice(None)):
    return [
        torch.as_tensor(case[k][rows])
        for k in ("gene_ids", "values", "pert_flags", "padding_mask")
    ]


def _undo_one_batchnorm_update(model, case):
    """The reference's ``output_eval`` was taken before its train-mode call, but
    ``best_model.pt`` was saved after it (``bn.num_batches_tracked == 1``), so the
    stored running statistics include that call's update ``running = 0.9 * before +
    0.1 * batch`` (unbiased variance over all tokens). Undo it."""
    assert int(model.bn.num_batches_tracked) == 1
    ids, values, flags, _ = _inputs(case)
    with torch.no_grad():
        x = (
            model.encoder(ids) + model.value_encoder(values) + model.pert_encoder(flags)
        ).reshape(-1, model.config.embsize)
        model.bn.running_mean.copy_((model.bn.running_mean - 0.1 * x.mean(0)) / 0.9)
        model.bn.running_var.copy_(
            (model.bn.running_var - 0.1 * x.var(0, unbiased=True)) / 0.9
        )


@needs_reference
@pytest.mark.parametrize("folder", VERSIONS)
def test_whole_fine_tuned_checkpoint_reproduces_the_real_scgpt_outputs(folder):
    model, vocab, report = scgpt.load_model(REFERENCE / folder)
    case = _case(folder)
    assert (
        report.version == model.version == VERSIONS[folder]
        and "detected" in report.version_reason
    )
    state = torch.load(REFERENCE / folder / "best_model.pt", weights_only=True)
    assert (
        sorted(report.loaded)
        == sorted(model.state_dict())
        == sorted(k for k in state if not k.startswith("cls_"))
    )
    assert (
        report.skipped == sorted(k for k in state if k.startswith("cls_decoder."))
        and len(report.skipped) == 10
    )
    assert len(vocab) == 63 and model.config.pert_pad_id == 2
    with torch.no_grad():
        if folder == "v0.2.1":
            _undo_one_batchnorm_update(model, case)
        np.testing.assert_allclose(
            model(*_inputs(case)).numpy(), case["output_eval"], atol=1e-5, rtol=0
        )
        # dropout is 0: in 0.2.1 BatchNorm uses the batch's statistics (padded tokens
        # included)
        model.train()
        np.testing.assert_allclose(
            model(*_inputs(case)).numpy(), case["output_train"], atol=1e-5, rtol=0
        )
    if (
        folder == "v0.2.1"
    ):  # the train-mode call moved the running statistics exactly as the real one did
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(
                getattr(model.bn, name).numpy(), state[f"bn.{name}"].numpy(), atol=1e-6
            )


@needs_reference
def test_v021_train_and_eval_differ_by_batchnorm_only():
    """The real 0.2.1 outputs differ between modes (BatchNorm); master's do not (no
    BatchNorm, dropout 0)."""
    old, new = _case("v0.2.1"), _case("master-cebd6fa")
    assert np.abs(old["output_train"] - old["output_eval"]).max() > 1e-2
    assert np.abs(new["output_train"] - new["output_eval"]).max() < 1e-6
    model, _, _ = scgpt.load_model(REFERENCE / "v0.2.1")
    assert isinstance(model.bn, torch.nn.BatchNorm1d) and model.bn.eps == pytest.approx(
        6.1e-5
    )
    master, _, _ = scgpt.load_model(REFERENCE / "master-cebd6fa")
    assert not hasattr(master, "bn") and isinstance(
        master.decoder, scgpt.AffineExprDecoder
    )


@needs_reference
@pytest.mark.parametrize("folder", VERSIONS)
def test_flash_attention_names_load_into_the_whole_model(folder, tmp_path):
    """The same checkpoint with the attention tensors under flash-attention's names
    gives the same outputs."""
    shutil.copytree(REFERENCE / folder, tmp_path / "ckpt")
    state = torch.load(tmp_path / "ckpt" / "best_model.pt", weights_only=True)
    flash = {
        k.replace("self_attn.in_proj_weight", "self_attn.Wqkv.weight").replace(
            "self_attn.in_proj_bias", "self_attn.Wqkv.bias"
        ): v
        for k, v in state.items()
    }
    assert sum(".Wqkv." in k for k in flash) == 4
    torch.save(flash, tmp_path / "ckpt" / "best_model.pt")
    model, _, report = scgpt.load_model(tmp_path / "ckpt")
    assert report.renamed == 4
    case = _case(folder)
    with torch.no_grad():
        model.train()
        np.testing.assert_allclose(
            model(*_inputs(case)).numpy(), case["output_train"], atol=1e-5, rtol=0
        )


@needs_reference
def test_unpadded_batch_runs_without_a_mask_and_gives_the_same_output():
    """Cells 0-2 of the reference batch are not padded: the real model's outputs for
    them are the oracle."""
    case = _case("master-cebd6fa")
    model, _, _ = scgpt.load_model(REFERENCE / "master-cebd6fa")
    ids, values, flags, mask = _inputs(case, slice(0, 3))
    assert not mask.any()
    calls = []
    hook = model.transformer_encoder.register_forward_pre_hook(
        lambda m, a, kw: calls.append(kw.get("src_key_padding_mask")), with_kwargs=True
    )
    with torch.no_grad():
        for given in (None, mask):
            np.testing.assert_allclose(
                model(ids, values, flags, given).numpy(),
                case["output_eval"][:3],
                atol=1e-5,
                rtol=0,
            )
        model(*_inputs(case))
    hook.remove()
    assert (
        calls[0] is None and calls[1] is None and calls[2] is not None
    )  # the padded batch keeps its mask


@needs_reference
def test_load_model_refuses_what_it_cannot_load_whole(tmp_path):
    with pytest.raises(CheckpointError, match=r"bn\.\* tensors"):
        scgpt.load_model(REFERENCE / "v0.2.1", version="0.2.2+")
    write_foundation_checkpoint(tmp_path / "foundation")
    with pytest.raises(CheckpointError, match="neither bn"):
        scgpt.load_model(tmp_path / "foundation")
    shutil.copytree(REFERENCE / "v0.2.1", tmp_path / "zero")
    state = torch.load(tmp_path / "zero" / "best_model.pt", weights_only=True)
    torch.save(
        state | {"decoder.zero_logit.0.weight": torch.zeros(32, 32)},
        tmp_path / "zero" / "best_model.pt",
    )
    with pytest.raises(CheckpointError, match="1 checkpoint tensors have no place"):
        scgpt.load_model(tmp_path / "zero")
    torch.save(
        {k: v for k, v in state.items() if k != "bn.running_var"},
        tmp_path / "zero" / "best_model.pt",
    )
    with pytest.raises(
        CheckpointError,
        match=r"1 model tensors are not in the checkpoint \(e.g. \['bn.running_var'\]",
    ):
        scgpt.load_model(tmp_path / "zero")
    with pytest.raises(CheckpointError, match="both bn"):
        scgpt.detect_version({"bn.weight": 0, "decoder.coeff_decoder.fc.0.weight": 0})
    with pytest.raises(ValueError, match="Unknown scGPT architecture version"):
        ScGPTConfig(ntoken=5, version="0.3")


def test_foundation_checkpoint_transfers_the_released_tensors(tmp_path):
    written, vocab = write_foundation_checkpoint(tmp_path / "ckpt")
    model, loaded_vocab, report = scgpt.load_pretrained(tmp_path / "ckpt")
    assert loaded_vocab == vocab
    assert report.version == "0.2.1" and "not detectable" in report.version_reason
    ours = model.state_dict()
    for key, tensor in written.items():
        target = key.replace("self_attn.Wqkv.", "self_attn.in_proj_")
        if key.startswith(("encoder.", "value_encoder.", "transformer_encoder.")):
            assert torch.equal(
                ours[
                    target.replace(".weight", "_weight").replace(".bias", "_bias")
                    if ".Wqkv." in key
                    else target
                ],
                tensor,
            ), key
    assert len(report.loaded) == 9 + 2 * 12 and report.renamed == 4
    assert sorted(report.skipped) == sorted(
        k for k in written if k.startswith(("decoder.", "cls_", "mvc_"))
    )
    assert {k.split(".")[0] for k in report.missing} == {
        "pert_encoder",
        "bn",
        "decoder",
    }
    assert (
        model.config.embsize == 16
        and model.config.nlayers == 2
        and model.config.pad_value == -2
    )
    assert report.summary().startswith("built scGPT 0.2.1 architecture")
    newer, _, report = scgpt.load_pretrained(tmp_path / "ckpt", version="0.2.2+")
    assert "chosen explicitly" in report.version_reason and not hasattr(newer, "bn")
    assert {k.split(".")[1] for k in report.missing if k.startswith("decoder.")} == {
        "coeff_decoder",
        "bias_decoder",
    }


def test_vocab_without_specials_gets_them_appended(tmp_path):
    write_foundation_checkpoint(tmp_path / "ckpt")
    vocab = json.loads((tmp_path / "ckpt" / "vocab.json").read_text())
    for token in ("<cls>", "<eoc>"):
        vocab.pop(token)
    (tmp_path / "ckpt" / "vocab.json").write_text(json.dumps(vocab))
    loaded = scgpt.load_vocab(tmp_path / "ckpt" / "vocab.json")
    assert loaded["<cls>"] == 21 and loaded["<eoc>"] == 22 and loaded["<pad>"] == 20


def test_malformed_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        scgpt.load_pretrained(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        CheckpointError, match=r"lacks \['vocab.json', 'args.json', 'best_model.pt'\]"
    ):
        scgpt.load_pretrained(tmp_path / "empty")
    write_foundation_checkpoint(tmp_path / "ckpt")
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
    vocab = scgpt.build_vocab([*norman_subset.var_names, "KLF1", "MAP2K6"])
    data = scgpt.prepare_cells(norman_subset, vocab)
    return vocab, data


def test_cell_data_flags_unmeasured_targets(tiny_data):
    _, data = tiny_data
    assert "KLF1" in data.flag_genes and "KLF1" not in data.genes
    flags = data.flags("KLF1+MAP2K6")
    assert flags.sum() == 2 and flags[data.tokens.index("KLF1")] == 1
    assert (
        data.X.shape[1] == 500 and data.genes_missing_from_vocab
    )  # the other targets are not in this vocab


def test_training_step_lowers_the_loss_on_a_fixed_batch(tiny_data):
    vocab, data = tiny_data
    torch.manual_seed(0)
    model = ScGPTPerturbationModel(
        scgpt.tiny_config(max(vocab.values()) + 1, dropout=0.0), pad_id=vocab["<pad>"]
    )
    idx = np.arange(16)
    ids, values, flags = scgpt.training._batch_tensors(
        data, data.X[idx], np.zeros((16, len(data.tokens)), np.int64), "cpu"
    )
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


def test_pretrain_save_load_finetune_predict_is_deterministic(
    tiny_data, norman_subset, tmp_path
):
    vocab, data = tiny_data
    conditions = sorted(set(norman_subset.obs["condition"]))
    split = holdout_split(
        conditions,
        ["KLF1+MAP2K6"],
        val=["CBL+CNN1"],
        dataset="norman2019_subset",
        seed=1,
    )

    def run(folder):
        torch.manual_seed(0)
        model = ScGPTPerturbationModel(
            scgpt.tiny_config(max(vocab.values()) + 1), pad_id=vocab["<pad>"]
        )
        controls = scgpt.prepare_cells(norman_subset, vocab, conditions=["ctrl"])
        scgpt.pretrain(model, controls, epochs=1, max_seq_len=64, progress=False)
        scgpt.save_checkpoint(model, vocab, folder)
        loaded, _, report = scgpt.load_pretrained(folder, dropout=0.1)
        log = scgpt.fine_tune(
            loaded,
            data,
            split,
            epochs=2,
            batch_size=32,
            max_seq_len=64,
            max_cells_per_condition=10,
            progress=False,
        )
        pred = scgpt.predict(
            loaded,
            data,
            split.conditions("test"),
            pool_size=20,
            dataset="norman2019_subset",
            split_seed=1,
        )
        return pred, log, report

    first, log, report = run(tmp_path / "a")
    second, _, _ = run(tmp_path / "b")
    assert np.array_equal(first.values.to_numpy(), second.values.to_numpy())
    assert list(first.conditions) == ["KLF1+MAP2K6"] and first.values.shape[1] == 500
    assert (
        len(log.val_loss) == 2 and log.best_epoch in (1, 2) and log.cells_per_second > 0
    )
    assert len(report.loaded) > 0


def test_predict_refuses_conditions_it_cannot_flag(tiny_data):
    vocab, data = tiny_data
    model = ScGPTPerturbationModel(
        scgpt.tiny_config(max(vocab.values()) + 1), pad_id=vocab["<pad>"]
    )
    with pytest.raises(ValueError, match="could not be flagged"):
        scgpt.predict(model, data, ["NOT_A_TARGET+KLF1"], pool_size=5)
    with pytest.raises(ValueError, match="pool_size"):
        scgpt.predict(model, data, ["KLF1"], pool_size=0)
