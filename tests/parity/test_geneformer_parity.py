"""The book's Geneformer* against the REAL Geneformer code (stored oracle).

``tests/data/geneformer_oracle/`` holds tiny inputs (40 control cells x 150 genes, a
tiny BERT and its four dictionaries in Geneformer's formats) and what the real
Geneformer (commit 01d3ea8, transformers 4.47.0) made of them, run by
``tests/parity/oracles/make_geneformer_oracle.py`` the way the paper's
``run_geneformer.py`` runs it. Here the book's code (transformers of the book's venv)
must give the same token ids, integer for integer, and the same ``<cls>`` embeddings to
1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parents[1] / "data" / "geneformer_oracle"
MODEL = DATA / "model"
ATOL = 1e-5

pytest.importorskip("transformers")


def _rows(arr: np.ndarray) -> list[list[int]]:
    return [[int(t) for t in row if t >= 0] for row in arr]


@pytest.fixture(scope="module")
def oracle():
    npz = np.load(DATA / "oracle.npz")
    meta = json.loads((DATA / "oracle.json").read_text())
    return {k: npz[k] for k in npz.files}, meta


@pytest.fixture(scope="module")
def adata():
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    inp = np.load(DATA / "inputs.npz")
    counts = inp["counts"].astype(np.float64)
    lognorm = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    a = ad.AnnData(
        sp.csr_matrix(lognorm),
        obs=pd.DataFrame({"condition": "ctrl"}, index=inp["cells"].astype(str)),
        var=pd.DataFrame(index=inp["symbols"].astype(str)),
    )
    a.layers["counts"] = sp.csr_matrix(counts)
    return a


@pytest.fixture(scope="module")
def folder():
    from helpers.models.geneformer.checkpoint import read_folder

    return read_folder(MODEL)


@pytest.fixture(scope="module")
def book_tokens(adata, folder, oracle):
    from helpers.models.geneformer.model import tokenize_adata

    size = oracle[1]["model_input_size"]
    return [t.tolist() for t in tokenize_adata(adata, folder, model_input_size=size)]


def test_rank_value_tokens_integer_for_integer(book_tokens, oracle):
    real = _rows(oracle[0]["tokens"])
    assert len(book_tokens) == len(real)
    for i, (mine, theirs) in enumerate(zip(book_tokens, real)):
        assert mine == theirs, f"cell {i}: first difference at " + str(
            next(j for j, (a, b) in enumerate(zip(mine, theirs)) if a != b)
            if len(mine) == len(theirs)
            else f"length {len(mine)} vs {len(theirs)}"
        )
    # the inputs exercise truncation to model_input_size
    assert max(len(t) for t in real) == oracle[1]["model_input_size"]


def test_cells_chosen_as_in_silico_perturber(book_tokens, oracle):
    from helpers.models.geneformer.tokenizer import select_cells

    mine = select_cells([len(t) for t in book_tokens], oracle[1]["max_ncells"])
    assert mine.tolist() == oracle[0]["chosen"].tolist()


def _conditions(oracle, perturb_type):
    return [k.split("|")[2] for k in oracle[0] if k.startswith(f"ids|{perturb_type}|")]


@pytest.mark.parametrize("perturb_type", ["overexpress", "delete"])
def test_in_silico_perturbation_integer_for_integer(
    perturb_type, book_tokens, folder, oracle
):
    from helpers.models.geneformer import tokenizer as tk
    from helpers.models.geneformer.model import _gene_ids

    arrays, meta = oracle
    cells = [book_tokens[i] for i in arrays["chosen"]]
    conditions = _conditions(oracle, perturb_type)
    assert len(conditions) >= 5
    for c in conditions:
        ids = _gene_ids(c.split("+"), folder)
        tokens = [folder.token_dict[i] for i in ids if i is not None]
        if perturb_type == "overexpress":
            mine = [tk.overexpress(s, tokens, meta["model_input_size"]) for s in cells]
        else:
            mine = [tk.delete(s, tokens) for s in cells]
        assert mine == _rows(arrays[f"ids|{perturb_type}|{c}"]), c


def _outside_vocabulary(conditions, folder):
    from helpers.models.geneformer.model import _gene_ids

    return [
        c for c in conditions if c != "ctrl" and None in _gene_ids(c.split("+"), folder)
    ]


def test_what_the_real_code_cannot_embed_is_left_out(adata, folder, oracle):
    """The real code fails on these conditions (a target outside the vocabulary when
    overexpressing; delete of absent targets in a cell shorter than 100 tokens); the
    book leaves them out, and also every condition with a target outside the
    vocabulary (the real delete then silently perturbs only the other targets)."""
    from helpers.models.geneformer import condition_embeddings

    arrays, meta = oracle
    fails = meta["real_code_fails"]
    outside = _outside_vocabulary(meta["conditions"], folder)
    assert outside == ["G145", "G005+G145"]
    for perturb_type in ("overexpress", "delete"):
        failed = [k.split("|")[1] for k in fails if k.startswith(perturb_type)]
        assert failed
        left_out = sorted(set(failed) | set(outside))
        table = condition_embeddings(
            MODEL,
            adata,
            left_out + ["ctrl"],
            perturb_type=perturb_type,
            max_ncells=meta["max_ncells"],
            batch_size=meta["forward_batch_size"],
        )
        assert sorted(table.attrs["not_embedded"]) == left_out
        assert list(table.index) == ["ctrl"]


@pytest.fixture(scope="module")
def encoder():
    import torch

    from helpers.models.geneformer.model import _load_encoder

    return _load_encoder(MODEL, torch.device("cpu"))


@pytest.mark.parametrize("perturb_type", ["overexpress", "delete"])
def test_cls_embeddings_match_to_1e5(perturb_type, encoder, oracle):
    from helpers.models.geneformer.model import cls_embeddings

    arrays, meta = oracle
    worst = 0.0
    for c in _conditions(oracle, perturb_type):
        ids = _rows(arrays[f"ids|{perturb_type}|{c}"])
        mine = cls_embeddings(encoder, ids, batch_size=meta["forward_batch_size"])
        real = arrays[f"cls|{perturb_type}|{c}"]
        assert mine.shape == real.shape
        worst = max(worst, float(np.abs(mine - real).max()))
    print(f"worst |CLS book - CLS Geneformer| ({perturb_type}): {worst:.2e}")
    assert worst <= ATOL


@pytest.mark.parametrize("perturb_type", ["overexpress", "delete"])
def test_condition_embeddings_end_to_end(perturb_type, adata, folder, oracle):
    from helpers.models.geneformer import condition_embeddings

    arrays, meta = oracle
    conditions = meta["conditions"]
    table = condition_embeddings(
        MODEL,
        adata,
        conditions,
        perturb_type=perturb_type,
        max_ncells=meta["max_ncells"],
        batch_size=meta["forward_batch_size"],
    )
    outside = _outside_vocabulary(conditions, folder)
    embedded = [c for c in _conditions(oracle, perturb_type) if c not in outside]
    assert len(embedded) >= 5
    assert sorted(table.index) == sorted(embedded + ["ctrl"])
    assert (table.loc["ctrl"] == 0).all()
    assert table.dtypes.unique().tolist() == [np.float64]
    worst = 0.0
    for c in embedded:
        real = arrays[f"cls|{perturb_type}|{c}"].astype(np.float64).mean(axis=0)
        worst = max(worst, float(np.abs(table.loc[c].to_numpy() - real).max()))
    print(f"worst |mean CLS book - Geneformer| ({perturb_type}): {worst:.2e}")
    assert worst <= ATOL
