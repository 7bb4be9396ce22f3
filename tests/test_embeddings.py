"""Embedding sources: checkpoint extraction in the exact layouts, offline text and GO embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import embeddings, linear
from helpers.models import scgpt
from helpers.models.scgpt import CheckpointError

from .test_scgpt import write_released_layout


def test_scgpt_extraction_applies_the_encoder_layernorm(tmp_path):
    original, vocab = write_released_layout(tmp_path / "ckpt", n_genes=20, d=16)
    with torch.no_grad():
        original.encoder.enc_norm.weight.mul_(3.0)  # a non-trivial LayerNorm, as in a trained model
    scgpt.save_checkpoint(original, vocab, tmp_path / "ckpt2")
    table = embeddings.scgpt_gene_embedding(tmp_path / "ckpt2")
    assert table.shape == (20, 16) and "<pad>" not in table.index
    raw = original.encoder.embedding.weight[vocab["GENE3"]].detach()
    expected = original.encoder.enc_norm(raw).detach().numpy()
    np.testing.assert_allclose(table.loc["GENE3"].to_numpy(), expected, rtol=1e-6)
    assert not np.allclose(table.loc["GENE3"].to_numpy(), raw.numpy())  # not the raw weights
    assert "gene encoder" in table.attrs["provenance"]


def test_scfoundation_extraction_from_the_models_ckpt_layout(tmp_path):
    genes = [f"G{i}" for i in range(30)]
    pos_emb = torch.randn(len(genes) + 3, 8)  # genes, two count tokens, padding
    ckpt = {"gene": {"config": {"model": "mae_autobin"}, "state_dict": {"model.pos_emb.weight": pos_emb,
                                                                         "model.token_emb.emb.weight": torch.randn(5, 8)}},
            "cell": {"config": {}, "state_dict": {}}}
    torch.save(ckpt, tmp_path / "models.ckpt")
    table = embeddings.scfoundation_gene_embedding(tmp_path / "models.ckpt", genes)
    assert table.shape == (30, 8)
    np.testing.assert_allclose(table.loc["G29"].to_numpy(), pos_emb[29].numpy(), rtol=1e-6)
    with pytest.raises(CheckpointError, match="has no \\['cell'\\]"):
        embeddings.scfoundation_gene_embedding(tmp_path / "models.ckpt", genes, variant="cell")
    with pytest.raises(CheckpointError, match="rows for 40 genes"):
        embeddings.scfoundation_gene_embedding(tmp_path / "models.ckpt", [f"G{i}" for i in range(40)])
    with pytest.raises(CheckpointError, match="does not exist"):
        embeddings.scfoundation_gene_embedding(tmp_path / "absent.ckpt", genes)


def test_text_embedding_puts_related_genes_close():
    table = embeddings.text_embedding(["CEBPA", "CEBPB", "RPL3", "RPS6", "GAPDH", "NOT_A_GENE"])
    assert table.shape == (5, 384) and table.attrs["missing"] == ["NOT_A_GENE"]
    cos = lambda a, b: float(table.loc[a] @ table.loc[b])  # noqa: E731  (unit vectors)
    assert cos("CEBPA", "CEBPB") > cos("CEBPA", "RPL3") + 0.2
    assert cos("RPL3", "RPS6") > cos("RPL3", "CEBPB")
    again = embeddings.text_embedding(["CEBPA", "CEBPB", "RPL3", "RPS6", "GAPDH", "NOT_A_GENE"])  # from the cache
    np.testing.assert_allclose(again.to_numpy(), table.to_numpy(), atol=1e-6)


def test_descriptions_come_from_the_annotation_database():
    text = embeddings.gene_descriptions(["CEBPA"])["CEBPA"]
    assert text.startswith("CEBPA: CCAAT enhancer binding protein alpha.") and "Biological processes:" in text


def test_go_graph_embedding_and_alignment_counts():
    genes = ["CEBPA", "CEBPB", "CEBPE", "RPL3", "RPS6", "RPL11", "KLF1", "GATA1", "NOT_A_GENE"]
    table = embeddings.go_graph_embedding(genes, dim=3)
    assert table.shape[1] == 3 and table.attrs["missing"] == ["NOT_A_GENE"]
    near = embeddings.nearest_neighbours(table, "RPL3", 2)
    assert set(near.index) <= {"RPS6", "RPL11"}
    aligned, missing = linear.align_gene_embedding(table, ["CEBPA", "NOT_A_GENE", "RPL3"])
    assert list(aligned.index) == ["CEBPA", "RPL3"] and missing == ["NOT_A_GENE"]
