"""The book's UCE* package (helpers/models/uce): the released layout it writes, one
line for bad input, determinism and shapes. Parity with the real UCE code is in
tests/parity/test_uce_parity.py."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

try:  # the network is the real package's
    import uce.model  # noqa: F401
except ImportError:
    pytest.skip(
        "uce-model is not installed (pip install uce-model==0.1.4 gdown)",
        allow_module_level=True,
    )

import anndata as ad
import scipy.sparse as sp

from helpers.errors import InputError
from helpers.models import uce

LAYOUT = [
    "4layer_model.torch",
    "all_tokens.torch",
    "protein_embeddings/Homo_sapiens.GRCh38.gene_symbol_to_embedding_ESM2.pt",
    "species_chrom.csv",
    "species_offsets.pkl",
    "uce_args.json",
]
FAST = dict(steps=2, cells_per_step=4, genes_per_cell=4)


def _adata(genes, seed=0):
    rng = np.random.RandomState(seed)
    conds = ["ctrl"] * 30 + ["G01"] * 10 + ["G02+G03"] * 10 + ["G04+NOTHERE"] * 5
    mu = np.exp(rng.normal(2.0, 0.5, len(genes)))
    counts = rng.poisson(mu[None, :] * rng.uniform(0.5, 2, (len(conds), 1)))
    counts = counts.astype(np.float32)
    x = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    a = ad.AnnData(
        sp.csr_matrix(x),
        obs=pd.DataFrame({"condition": pd.Categorical(conds)}),
        var=pd.DataFrame(index=genes),
    )
    a.obs_names_make_unique()
    a.layers["counts"] = sp.csr_matrix(counts)
    return a


GENES = [f"G{i:02d}" for i in range(1, 61)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    adata = _adata(GENES)
    folder = tmp_path_factory.mktemp("uce") / "model_files"
    log = uce.pretrain_tiny(adata, folder, seed=0, **FAST)
    return adata, folder, log


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 300, msg
    return msg


def test_pretrain_writes_the_released_layout_same_seed_same_bytes(model, tmp_path):
    adata, folder, log = model
    assert log.steps == 2 and len(log.train_loss) == 2
    assert all(np.isfinite(log.train_loss))
    for name in LAYOUT:
        assert (folder / name).is_file(), name
    again = tmp_path / "again"
    uce.pretrain_tiny(adata, again, seed=0, **FAST)
    for name in LAYOUT:
        assert (folder / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    uce.pretrain_tiny(adata, other, seed=1, **FAST)
    name = LAYOUT[0]
    assert (folder / name).read_bytes() != (other / name).read_bytes()


def test_embeddings_shape_dtype_and_determinism(model):
    adata, folder, _ = model
    conds = ["ctrl", "G01", "G02+G03", "G04+NOTHERE"]
    kw = dict(n_cells=10, batch_size=10)
    a = uce.condition_embeddings(folder, adata, conds, seed=0, **kw)
    b = uce.condition_embeddings(folder, adata, conds, seed=0, **kw)
    assert list(a.index) == ["ctrl", "G01", "G02+G03"]
    assert a.shape == (3, uce.TINY_ARGS["output_dim"])
    assert (a.dtypes == np.float64).all()
    assert a.to_numpy().tobytes() == b.to_numpy().tobytes()
    assert "not measured" in a.attrs["not_embedded"]["G04+NOTHERE"]
    c = uce.condition_embeddings(folder, adata, conds, seed=1, **kw)
    assert not np.array_equal(a.to_numpy(), c.to_numpy())
    # the embedding is the mean of unit vectors
    assert (np.linalg.norm(a.to_numpy(), axis=1) <= 1 + 1e-6).all()


def test_folder_without_checkpoint_files_is_one_line(model, tmp_path):
    adata, folder, _ = model
    with pytest.raises(InputError) as err:
        uce.condition_embeddings(tmp_path / "nowhere", adata, ["ctrl"])
    assert "model_files" in _one_line(err)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError) as err:
        uce.condition_embeddings(empty, adata, ["ctrl"])
    assert "4layer_model.torch" in _one_line(err)
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    (partial / "all_tokens.torch").unlink()
    with pytest.raises(InputError) as err:
        uce.load_files(partial)
    assert "all_tokens.torch" in _one_line(err)


def test_target_without_token_raises_or_is_left_out(model):
    _, folder, _ = model
    genes = GENES[:-1] + ["NEWGENE"]
    adata = _adata(genes, seed=3)
    adata.obs["condition"] = pd.Categorical(
        adata.obs["condition"].astype(str).replace("G01", "NEWGENE")
    )
    with pytest.raises(InputError) as err:
        uce.condition_embeddings(
            folder, adata, ["ctrl", "NEWGENE"], n_cells=10, unknown_targets="raise"
        )
    assert "NEWGENE" in _one_line(err) and "token" in str(err.value)
    t = uce.condition_embeddings(folder, adata, ["ctrl", "NEWGENE"], n_cells=10)
    assert list(t.index) == ["ctrl"]
    assert "no UCE token" in t.attrs["not_embedded"]["NEWGENE"]


@pytest.mark.parametrize(
    "conds, kw, word",
    [
        (["ctrl", "NOSUCH"], {}, "no cells"),
        (["ctrl", "ctrl"], {}, "twice"),
        (["ctrl"], {"padding_mask": "none"}, "padding_mask"),
        (["ctrl"], {"unknown_targets": "maybe"}, "unknown_targets"),
    ],
)
def test_bad_arguments_are_one_line(model, conds, kw, word):
    adata, folder, _ = model
    with pytest.raises(InputError) as err:
        uce.condition_embeddings(folder, adata, conds, **kw)
    assert word in _one_line(err)


def test_adata_without_controls_is_one_line(model, tmp_path):
    adata, folder, _ = model
    no_ctrl = adata[adata.obs["condition"] != "ctrl"].copy()
    with pytest.raises(InputError) as err:
        uce.condition_embeddings(folder, no_ctrl, ["G01"])
    assert "ctrl" in _one_line(err)
    with pytest.raises(InputError) as err:
        uce.pretrain_tiny(no_ctrl, tmp_path / "m", **FAST)
    assert "ctrl" in _one_line(err)


def test_boolean_mask_is_opt_in_and_batch_independent(model):
    adata, folder, _ = model
    kw = dict(n_cells=10)
    paper = [
        uce.condition_embeddings(folder, adata, ["ctrl"], batch_size=b, **kw)
        for b in (10, 3)
    ]
    fixed = [
        uce.condition_embeddings(
            folder, adata, ["ctrl"], batch_size=b, padding_mask="boolean", **kw
        )
        for b in (10, 3)
    ]
    assert paper[0].attrs["settings"]["padding_mask"] == "additive"
    np.testing.assert_allclose(fixed[0], fixed[1], atol=1e-6)
    assert not np.allclose(paper[0], fixed[0], atol=1e-6)
