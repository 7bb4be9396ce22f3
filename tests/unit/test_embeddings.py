"""Embedding sources: checkpoint extraction in the exact layouts, offline text and GO
embeddings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import embeddings, linear
from helpers.models.scgpt import CheckpointError

from tests.parity.test_scgpt import (
    REFERENCE,
    needs_reference,
    write_foundation_checkpoint,
)


def _layer_norm(
    rows: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    """PyTorch's LayerNorm by its formula (biased variance over the last dimension)."""
    mean = rows.mean(axis=-1, keepdims=True)
    var = ((rows - mean) ** 2).mean(axis=-1, keepdims=True)
    return (rows - mean) / np.sqrt(var + eps) * weight + bias


def test_scgpt_extraction_applies_the_encoder_layernorm(tmp_path):
    written, vocab = write_foundation_checkpoint(tmp_path / "ckpt", n_genes=20, d=16)
    table = embeddings.scgpt_gene_embedding(tmp_path / "ckpt")
    assert (
        table.shape == (20, 16)
        and "<pad>" not in table.index
        and list(table.index[:2]) == ["GENE0", "GENE1"]
    )
    raw = written["encoder.embedding.weight"].numpy()
    expected = _layer_norm(
        raw[:20],
        written["encoder.enc_norm.weight"].numpy(),
        written["encoder.enc_norm.bias"].numpy(),
    )
    np.testing.assert_allclose(table.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(table.loc["GENE3"].to_numpy(), raw[3])  # not the raw weights
    assert (
        table.attrs["provenance"]
        == "scGPT checkpoint ckpt: gene encoder (embedding + LayerNorm)"
    )


@needs_reference
def test_scgpt_extraction_from_a_checkpoint_of_the_real_code():
    state = torch.load(REFERENCE / "v0.2.1" / "best_model.pt", weights_only=True)
    table = embeddings.scgpt_gene_embedding(REFERENCE / "v0.2.1")
    assert table.shape == (60, 32)
    expected = _layer_norm(
        state["encoder.embedding.weight"].numpy()[:60],
        state["encoder.enc_norm.weight"].numpy(),
        state["encoder.enc_norm.bias"].numpy(),
    )
    np.testing.assert_allclose(table.to_numpy(), expected, rtol=1e-5, atol=1e-6)


def test_the_books_own_model_is_not_labelled_scgpt(tmp_path, norman_subset):
    from helpers.models import scgpt

    small = norman_subset[
        norman_subset.obs["condition"].isin(["ctrl", "KLF1+MAP2K6"])
    ].copy()
    folder, _ = scgpt.pretrain_tiny_checkpoint(
        small, tmp_path / "tiny", epochs=1, max_seq_len=32
    )
    table = embeddings.scgpt_gene_embedding(folder)
    assert table.attrs["provenance"].startswith(
        "the book's tiny transformer (tiny, pretrained by the book; not scGPT)"
    )
    assert table.columns[0] == "tiny1"


def test_scfoundation_extraction_from_the_models_ckpt_layout(tmp_path):
    genes = [f"G{i}" for i in range(30)]
    pos_emb = torch.randn(len(genes) + 3, 8)  # genes, two count tokens, padding
    ckpt = {
        "gene": {
            "config": {"model": "mae_autobin"},
            "state_dict": {
                "model.pos_emb.weight": pos_emb,
                "model.token_emb.emb.weight": torch.randn(5, 8),
            },
        },
        "cell": {"config": {}, "state_dict": {}},
    }
    torch.save(ckpt, tmp_path / "models.ckpt")
    table = embeddings.scfoundation_gene_embedding(tmp_path / "models.ckpt", genes)
    assert table.shape == (30, 8)
    np.testing.assert_allclose(
        table.loc["G29"].to_numpy(), pos_emb[29].numpy(), rtol=1e-6
    )
    with pytest.raises(CheckpointError, match="has no \\['cell'\\]"):
        embeddings.scfoundation_gene_embedding(
            tmp_path / "models.ckpt", genes, variant="cell"
        )
    with pytest.raises(CheckpointError, match="rows for 40 genes"):
        embeddings.scfoundation_gene_embedding(
            tmp_path / "models.ckpt", [f"G{i}" for i in range(40)]
        )
    with pytest.raises(CheckpointError, match="does not exist"):
        embeddings.scfoundation_gene_embedding(tmp_path / "absent.ckpt", genes)


def test_text_embedding_puts_related_genes_close():
    table = embeddings.text_embedding(
        ["CEBPA", "CEBPB", "RPL3", "RPS6", "GAPDH", "NOT_A_GENE"]
    )
    assert table.shape == (5, 384) and table.attrs["missing"] == ["NOT_A_GENE"]
    cos = lambda a, b: float(table.loc[a] @ table.loc[b])  # noqa: E731  (unit vectors)
    assert cos("CEBPA", "CEBPB") > cos("CEBPA", "RPL3") + 0.2
    assert cos("RPL3", "RPS6") > cos("RPL3", "CEBPB")
    again = embeddings.text_embedding(
        ["CEBPA", "CEBPB", "RPL3", "RPS6", "GAPDH", "NOT_A_GENE"]
    )  # from the cache
    np.testing.assert_allclose(again.to_numpy(), table.to_numpy(), atol=1e-6)


def test_text_embedding_is_the_same_from_a_cold_and_a_warm_cache():
    genes = ["CEBPA", "GATA1", "RPL3"]
    cold = embeddings.text_embedding(genes, cache=False)  # computed, cache untouched
    embeddings.text_embedding(genes)  # computed and written, or read
    warm = embeddings.text_embedding(genes)  # read from the cache file
    pd.testing.assert_frame_equal(cold, warm, check_exact=True)


def test_descriptions_come_from_the_annotation_database():
    text = embeddings.gene_descriptions(["CEBPA"])["CEBPA"]
    assert (
        text.startswith("CEBPA: CCAAT enhancer binding protein alpha.")
        and "Biological processes:" in text
    )


def test_go_graph_embedding_and_alignment_counts():
    genes = [
        "CEBPA",
        "CEBPB",
        "CEBPE",
        "RPL3",
        "RPS6",
        "RPL11",
        "KLF1",
        "GATA1",
        "NOT_A_GENE",
    ]
    table = embeddings.go_graph_embedding(genes, dim=3)
    assert table.shape[1] == 3 and table.attrs["missing"] == ["NOT_A_GENE"]
    near = embeddings.nearest_neighbours(table, "RPL3", 2)
    assert set(near.index) <= {"RPS6", "RPL11"}
    aligned, missing = linear.align_gene_embedding(
        table, ["CEBPA", "NOT_A_GENE", "RPL3"]
    )
    assert list(aligned.index) == ["CEBPA", "RPL3"] and missing == ["NOT_A_GENE"]


def test_chapter_5_paper_profile_requires_an_explicit_checkpoint(tmp_path):
    """No silent reuse of a checkpoint left by an earlier build: the paper profile stops
    with the fix."""
    import papermill as pm
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with pytest.raises(
        pm.PapermillExecutionError, match="The paper profile needs scgpt_checkpoint"
    ):
        pm.execute_notebook(
            str(root / "notebooks" / "05_embeddings.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "paper"},
            cwd=str(root / "notebooks"),
            kernel_name="python3",
            progress_bar=False,
        )


def test_probe_genes_prefers_the_named_genes_and_says_when_it_cannot(capsys):
    a = pd.DataFrame(np.eye(4), index=["KLF1", "SYNG2", "SYNG1", "CEBPA"])
    b = pd.DataFrame(np.eye(3), index=["SYNG1", "KLF1", "SYNG2"])
    assert embeddings.probe_genes({"a": a, "b": b}, ["CEBPA", "KLF1"]) == ["KLF1"]
    assert capsys.readouterr().out == ""
    assert embeddings.probe_genes({"a": a, "b": b}, ["CEBPA", "MAPK1"], n=2) == [
        "KLF1",
        "SYNG1",
    ]
    assert "None of ['CEBPA', 'MAPK1']" in capsys.readouterr().out
    with pytest.raises(ValueError, match="share no gene"):
        embeddings.probe_genes(
            {"a": a, "c": pd.DataFrame(np.eye(1), index=["X"])}, ["KLF1"]
        )
    with pytest.raises(TypeError, match=r"\['KLF1'\], not a string"):
        embeddings.probe_genes({"a": a}, "KLF1")


def test_full_size_scgpt_human_standin_has_the_released_sizes(tmp_path):
    """The released scGPT_human: 60,697 tokens (60,694 + 3 specials), d = 512, 12
    layers, 8 heads (foundation_models.md sections 3.1 and 3.3); the book's loader and
    extraction read it."""
    from helpers import standins

    _, vocab = standins.write_scgpt_checkpoint(
        tmp_path / "scGPT_human", ["KLF1", "CEBPA"]
    )
    assert len(vocab) == 60_697 and vocab["KLF1"] == 0 and vocab["<eoc>"] == 60_696
    table = embeddings.scgpt_gene_embedding(tmp_path / "scGPT_human")
    assert table.shape[1] == 512 and {"KLF1", "CEBPA"} <= set(table.index)
    args = json.loads((tmp_path / "scGPT_human" / "args.json").read_text())
    assert (args["embsize"], args["nlayers"], args["nheads"], args["d_hid"]) == (
        512,
        12,
        8,
        512,
    )
    with pytest.raises(ValueError, match="multiple of nheads"):
        standins.write_scgpt_checkpoint(
            tmp_path / "bad", ["KLF1"], n_tokens=None, embsize=10, nheads=4
        )
    with pytest.raises(ValueError, match="do not fit a vocabulary of 4 tokens"):
        standins.write_scgpt_checkpoint(tmp_path / "bad", ["KLF1", "CEBPA"], n_tokens=4)
    assert not (tmp_path / "bad").exists()  # nothing written for bad input
