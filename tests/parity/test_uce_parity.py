"""UCE* (helpers/models/uce) against the REAL UCE code (``uce-model`` 0.1.4).

Two oracles: the real package live (its ``uce.eval_data.sample_cell_sentences`` on the
same counts and seed) and the stored outputs of the real pipeline
(tests/data/uce_oracle, made by tests/parity/oracles/make_uce_oracle.py: the paper's
``run_uce.py`` steps, the real ``AnndataProcessor`` preprocessing, the real data loader
and collator, the real ``TransformerModel``). The book's code reads the same tiny
model folder (released layout) and must give the same sentences and embeddings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

try:  # the book's UCE* runs the real package's network
    import uce.eval_data as real_eval_data
    import uce.model  # noqa: F401
except ImportError:
    pytest.skip(
        "uce-model is not installed (pip install uce-model==0.1.4 gdown)",
        allow_module_level=True,
    )

import anndata as ad
import scipy.sparse as sp
import torch

from helpers.models import uce

DATA = Path(__file__).resolve().parents[1] / "data" / "uce_oracle"
TOL = 1e-5


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uce") / "model_files"
    folder.mkdir()
    for f in DATA.rglob("*"):
        if f.is_file() and f.suffix not in (".npz",) and f.name != "outputs.json":
            dest = folder / f.relative_to(DATA)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
    w = np.load(DATA / "weights.npz")
    state = {k: torch.from_numpy(w[k]) for k in w.files}
    torch.save(state, folder / "4layer_model.torch")
    inp = np.load(DATA / "inputs.npz")
    adata = ad.AnnData(
        sp.csr_matrix(inp["x"]),
        obs=pd.DataFrame({"condition": pd.Categorical(inp["obs"])}),
        var=pd.DataFrame(index=[str(g) for g in inp["genes"]]),
    )
    adata.obs_names_make_unique()
    meta = json.loads((DATA / "outputs.json").read_text())
    out = np.load(DATA / "outputs.npz")
    return SimpleNamespace(folder=folder, adata=adata, meta=meta, out=out)


@pytest.fixture(scope="module")
def book_table(oracle):
    m = oracle.meta
    return uce.condition_embeddings(
        oracle.folder,
        oracle.adata,
        m["conditions"],
        seed=m["seed"],
        n_cells=m["n_cells"],
        batch_size=m["batch_size"],
        unknown_targets="paper",
    )


def test_condition_embeddings_equal_real_pipeline(oracle, book_table):
    m = oracle.meta
    assert list(book_table.index) == m["embedded"]
    assert list(book_table.attrs["not_embedded"]) == ["GENE06+NOTMEASURED"]
    real = np.stack([oracle.out[f"mean_{k}"] for k in range(len(m["embedded"]))])
    diff = np.abs(book_table.to_numpy() - real).max()
    print(f"worst |book - real| condition embedding: {diff:.2e}")
    assert diff <= TOL


def _book_sentences(oracle, cond, batch):
    m = oracle.meta
    files = uce.load_files(oracle.folder)
    cells = dict(
        (c, x)
        for c, x, _ in uce.paper_cells(
            oracle.adata,
            m["conditions"],
            m["seed"],
            n_cells=m["n_cells"],
            gene_rows=files.gene_rows,
            unknown_targets="paper",
        )
    )[cond]
    var = list(oracle.adata.var_names)
    counts, kept, _ = uce.process_like_uce(cells, var, files.gene_rows)
    rng = np.random.RandomState(uce.sentence_seed(m["seed"], cond))
    tokens, lengths = uce.cell_sentences(counts, rng, uce.vocab_for(files, kept))
    rng = np.random.RandomState(uce.sentence_seed(m["seed"], cond))
    emb = uce.embed_cells(files, counts, kept, rng=rng, batch_size=batch)
    return tokens, lengths, emb, (files, counts, kept)


def test_sentences_equal_real_loader(oracle):
    for k, cond in enumerate(oracle.meta["embedded"]):
        tokens, lengths, _, _ = _book_sentences(oracle, cond, 12)
        real = oracle.out[f"tokens_{k}"]
        assert np.array_equal(lengths, oracle.out[f"lengths_{k}"]), cond
        assert np.array_equal(tokens[:, : real.shape[1]], real), cond


def test_padding_shift_pinned_at_two_batch_sizes(oracle):
    """The package's float mask is added to the logits: a cell's embedding depends on
    its batch-mates. Same cells, batch 12 vs batch 2: the real code's shift is
    reproduced, and it is not small."""
    k = oracle.meta["embedded"].index("ctrl")
    real12 = oracle.out[f"emb_{k}"]
    real2 = oracle.out["emb_ctrl_batch2"]
    _, lengths, book12, pieces = _book_sentences(oracle, "ctrl", 12)
    _, _, book2, _ = _book_sentences(oracle, "ctrl", 2)
    assert len(set(lengths.tolist())) > 1  # cells of different lengths
    worst = max(np.abs(book12 - real12).max(), np.abs(book2 - real2).max())
    real_shift = np.abs(real12 - real2).max()
    book_shift = np.abs(book12 - book2).max()
    print(f"worst |book - real| per cell: {worst:.2e}; shift {real_shift:.4f}")
    assert worst <= TOL
    assert abs(book_shift - real_shift) <= TOL
    # pinned (real code: 0.0176); 0 would mean the pads are masked out
    assert 0.005 < real_shift < 0.5
    files, counts, kept = pieces
    fixed = [
        uce.embed_cells(
            files,
            counts,
            kept,
            rng=np.random.RandomState(uce.sentence_seed(1, "ctrl")),
            batch_size=b,
            padding_mask="boolean",
        )
        for b in (12, 2)
    ]
    assert np.abs(fixed[0] - fixed[1]).max() <= TOL


def test_live_sampler_equals_real_sample_cell_sentences(oracle):
    """The real ``uce.eval_data.sample_cell_sentences`` (global numpy generator) and
    the book's ``cell_sentence`` (a RandomState) on the same counts and seed."""
    files = uce.load_files(oracle.folder)
    _, _, _, (files, counts, kept) = _book_sentences(oracle, "GENE01", 12)
    vocab = uce.vocab_for(files, kept)
    a = files.args
    args = SimpleNamespace(
        pad_length=a.pad_length,
        sample_size=a.sample_size,
        cls_token_idx=a.cls_token_idx,
        CHROM_TOKEN_OFFSET=a.CHROM_TOKEN_OFFSET,
        chrom_token_right_idx=a.chrom_token_right_idx,
        pad_token_idx=a.pad_token_idx,
    )
    up = [g.upper() for g in kept]
    pe = {"d": torch.tensor(vocab["tokens"])}
    chroms = {"d": files.chrom_codes.loc[up]}
    starts = {"d": files.starts.loc[up].to_numpy()}
    for seed in (0, 7):
        rng = np.random.RandomState(seed)
        np.random.seed(seed)
        for c in range(counts.shape[0]):
            ct = torch.tensor(counts[c]).unsqueeze(0)
            w = torch.log1p(ct)
            w = w / torch.sum(w)
            real, mask, n, _ = real_eval_data.sample_cell_sentences(
                ct, w, "d", args, pe, chroms, starts
            )
            mine, m = uce.cell_sentence(counts[c], rng, vocab)
            assert m == n == int(mask.sum())
            assert np.array_equal(real[0].numpy(), mine)
