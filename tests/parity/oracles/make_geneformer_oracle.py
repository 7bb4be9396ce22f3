"""Make the Geneformer parity oracle: the REAL Geneformer code on tiny inputs.

What runs: Geneformer's own ``tokenizer.py`` (``TranscriptomeTokenizer`` on an .h5ad),
``perturber_utils.py`` (``load_and_filter``, ``delete_indices``,
``overexpress_tokens``, ``load_model``), ``in_silico_perturber.py``
(``InSilicoPerturber.apply_additional_filters``: which control cells, in which order)
and ``emb_extractor.py`` (``get_embs``, the ``<cls>`` output of the last layer), driven
the way the paper's ``benchmark/src/run_geneformer.py`` (const-ae/
linear_perturbation_prediction-Paper) drives them: ``genes_to_perturb`` = the
condition's genes, ``emb_mode="cls"``, ``emb_layer=0``, the targets' indices found with
``list.index`` and ``[-100]`` when none is in the cell.

Real code: ctheodoris/Geneformer (Hugging Face; read from a GitHub mirror that
carries its history, e.g. haroonshakeel/Geneformer) at commit 01d3ea8 of 2025-01-10
("Upload gene_name_id_dict_gc95M.pkl (#470)"), the version current when the paper's
environment pinned transformers 4.47.0. Only the package's ``__init__`` is replaced
(it imports every module, e.g. the classifier with ray/optuna, and names the
dictionary files): a stand-in module gives the four dictionary paths of the tiny model;
nothing that computes is replaced. ``get_embs`` hard-codes ``device="cuda"``; on a
CPU-only machine the script maps that device name to "cpu" (device only).

Environment (throwaway): Python 3.11 venv with torch 2.13.0 (CPU), transformers 4.47.0
(the paper's pin), datasets 3.2.0, numpy 2.2.6, scipy, anndata, scanpy, loompy, peft,
tdigest, seaborn::

    /work/main/.venv/bin/python -m venv /tmp/gfenv
    /tmp/gfenv/bin/pip install torch==2.13.0 transformers==4.47.0 datasets==3.2.0 \\
        numpy==2.2.6 scipy anndata scanpy loompy peft tdigest seaborn multiprocess
    git --git-dir=<mirror> archive 01d3ea8 geneformer | tar -x -C /tmp/gf_src
    /tmp/gfenv/bin/python tests/parity/oracles/make_geneformer_oracle.py \\
        --geneformer-src /tmp/gf_src --out tests/data/geneformer_oracle

Inputs written (seeded, so a rerun gives the same values): ``inputs.npz`` (40 cells x
150 genes of raw counts, gene symbols, the cells' ids), ``model/`` (a tiny
``BertForMaskedLM`` saved by transformers 4.47.0 with weights drawn from seed 0 at a
scale that makes the ``<cls>`` output depend strongly on the tokens, plus the four
dictionaries in Geneformer's pickle formats and file names). Outputs: ``oracle.npz``
(token ids per cell, the chosen cells, perturbed token ids and ``<cls>`` embeddings per
cell, condition and perturbation type) and ``oracle.json`` (settings, versions, the
conditions the real code cannot embed and its error).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

N_CELLS, N_GENES, N_VOCAB_GENES, N_EXTRA = 40, 150, 140, 5
MODEL_INPUT_SIZE, MAX_NCELLS, BATCH = 128, 25, 10
SYMBOLS = [f"G{i:03d}" for i in range(1, N_GENES + 1)]
IDS = [f"ENSGTINY{i:05d}" for i in range(1, N_GENES + N_EXTRA + 1)]
# gA: detected in every cell; gB: in about half; gC: in the vocabulary, never
# detected; gD: not in the vocabulary
GA, GB, GC, GD = "G005", "G017", "G033", "G145"
CONDITIONS = ["ctrl", GA, GB, GC, GD, f"{GA}+{GB}", f"{GB}+{GC}", f"{GC}+{GA}",
              f"{GA}+{GD}"]  # fmt: skip


def make_inputs(rng):
    counts = np.zeros((N_CELLS, N_GENES), dtype=np.int64)
    for i in range(N_CELLS):
        k = int(rng.integers(104, 146))
        cols = rng.choice(N_GENES, size=k, replace=False)
        counts[i, cols] = rng.negative_binomial(2, 0.08, size=k) + 1
    ga, gb, gc = (SYMBOLS.index(g) for g in (GA, GB, GC))
    counts[:, ga] = rng.integers(60, 120, size=N_CELLS)
    counts[:, gb] = np.where(rng.random(N_CELLS) < 0.5, rng.integers(1, 9, N_CELLS), 0)
    counts[:, gc] = 0
    # vocabulary: the first 140 genes (so G141..G150 are outside it) + 5 extra ids
    vocab = IDS[:N_VOCAB_GENES] + IDS[N_GENES:]
    token_ids = rng.permutation(len(vocab)) + 4
    token_dict = {"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3}
    token_dict.update({g: int(t) for g, t in zip(vocab, token_ids)})
    median_dict = {g: float(m) for g, m in zip(vocab, rng.lognormal(0, 1, len(vocab)))}
    name_id = dict(zip(SYMBOLS, IDS[:N_GENES]))
    mapping = {g: g for g in IDS}
    return counts, token_dict, median_dict, name_id, mapping


def save_tiny_model(folder: Path, vocab_size: int):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_act="relu",
        max_position_embeddings=MODEL_INPUT_SIZE,
        pad_token_id=0,
        layer_norm_eps=1e-12,
    )
    model = BertForMaskedLM(config)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.3 * noise)
    model.save_pretrained(folder)


def shim_cuda():
    """get_embs asks for device 'cuda'; on a CPU machine that name means 'cpu'."""
    import torch

    if torch.cuda.is_available():
        return
    tensor, to = torch.tensor, torch.Tensor.to

    def _tensor(*args, **kwargs):
        if kwargs.get("device") == "cuda":
            kwargs["device"] = "cpu"
        return tensor(*args, **kwargs)

    def _to(self, *args, **kwargs):
        args = tuple("cpu" if a == "cuda" else a for a in args)
        return to(self, *args, **kwargs)

    torch.tensor, torch.Tensor.to = _tensor, _to


def import_geneformer(src: Path, model_dir: Path):
    pkg = types.ModuleType("geneformer")
    pkg.__path__ = [str(src / "geneformer")]
    pkg.TOKEN_DICTIONARY_FILE = model_dir / "token_dictionary_gc95M.pkl"
    pkg.GENE_MEDIAN_FILE = model_dir / "gene_median_dictionary_gc95M.pkl"
    pkg.ENSEMBL_DICTIONARY_FILE = model_dir / "gene_name_id_dict_gc95M.pkl"
    pkg.ENSEMBL_MAPPING_FILE = model_dir / "ensembl_mapping_dict_gc95M.pkl"
    sys.modules["geneformer"] = pkg
    import geneformer.emb_extractor as emb
    import geneformer.in_silico_perturber as isp
    import geneformer.perturber_utils as pu
    import geneformer.tokenizer as tok

    return tok, pu, isp, emb


def perturbed_cls(isp_mod, pu, emb, model, data, genes, perturb_type, model_dir):
    """The paper's recipe: one InSilicoPerturber per condition, perturb every chosen
    control cell (the real delete/overexpress functions), embed with get_embs."""
    isp = isp_mod.InSilicoPerturber(
        perturb_type=perturb_type,
        genes_to_perturb=genes,
        model_type="Pretrained",
        emb_mode="cls",
        max_ncells=MAX_NCELLS,
        emb_layer=0,
        forward_batch_size=BATCH,
        nproc=1,
    )
    isp.max_len = pu.get_model_input_size(model)
    layer = pu.quant_layers(model) + isp.emb_layer

    def perturb(example):
        ids = example["input_ids"]
        example["tokens_to_perturb"] = isp.tokens_to_perturb
        found = [ids.index(t) for t in isp.tokens_to_perturb if t in ids]
        example["perturb_index"] = found if found else [-100]
        if isp.perturb_type == "delete":
            return pu.delete_indices(example)
        return pu.overexpress_tokens(example, isp.max_len, isp.special_token)

    perturbed = data.map(perturb, num_proc=1)
    cls = emb.get_embs(
        model,
        perturbed,
        "cls",
        layer,
        isp.pad_token_id,
        isp.forward_batch_size,
        token_gene_dict=isp.token_gene_dict,
        summary_stat=None,
        silent=True,
    )
    return [list(map(int, s)) for s in perturbed["input_ids"]], cls.numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geneformer-src", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import anndata as ad
    import datasets
    import scipy.sparse as sp
    import torch
    import transformers

    rng = np.random.default_rng(20250110)
    counts, token_dict, median_dict, name_id, mapping = make_inputs(rng)
    out = args.out
    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, obj in (
        ("token_dictionary_gc95M.pkl", token_dict),
        ("gene_median_dictionary_gc95M.pkl", median_dict),
        ("gene_name_id_dict_gc95M.pkl", name_id),
        ("ensembl_mapping_dict_gc95M.pkl", mapping),
    ):
        with open(model_dir / name, "wb") as f:
            pickle.dump(obj, f, protocol=4)
    save_tiny_model(model_dir, max(token_dict.values()) + 1)
    cell_ids = [f"cell{i:02d}" for i in range(N_CELLS)]
    np.savez_compressed(
        out / "inputs.npz",
        counts=counts.astype(np.int32),
        symbols=np.array(SYMBOLS),
        cells=np.array(cell_ids),
    )

    shim_cuda()
    tok, pu, isp_mod, emb = import_geneformer(args.geneformer_src, model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(tmp) / "h5"
        h5.mkdir()
        adata = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)))
        adata.var_names = IDS[:N_GENES]
        adata.var["ensembl_id"] = IDS[:N_GENES]
        adata.obs_names = cell_ids
        adata.obs["n_counts"] = counts.sum(axis=1).astype(np.float64)
        adata.obs["cell"] = np.arange(N_CELLS)
        adata.write_h5ad(h5 / "ctrl.h5ad")
        tk = tok.TranscriptomeTokenizer(
            {"cell": "cell"},
            model_input_size=MODEL_INPUT_SIZE,
            special_token=True,
            gene_median_file=model_dir / "gene_median_dictionary_gc95M.pkl",
            gene_mapping_file=model_dir / "ensembl_mapping_dict_gc95M.pkl",
        )
        tk.tokenize_data(h5, tmp, "tokenized", file_format="h5ad")
        data = pu.load_and_filter(None, 1, f"{tmp}/tokenized.dataset")
        tokens = [list(map(int, s)) for s in data["input_ids"]]
        start = isp_mod.InSilicoPerturber(
            perturb_type="overexpress",
            model_type="Pretrained",
            emb_mode="cls",
            max_ncells=MAX_NCELLS,
            emb_layer=0,
            forward_batch_size=BATCH,
            nproc=1,
        )
        chosen = start.apply_additional_filters(data)
        chosen_cells = [int(c) for c in chosen["cell"]]
        model = pu.load_model("Pretrained", 0, str(model_dir), mode="eval")
        arrays, failures = {}, {}
        for perturb_type in ("overexpress", "delete"):
            for c in CONDITIONS:
                if c == "ctrl":
                    continue
                genes = [name_id[g] for g in c.split("+")]
                try:
                    ids, cls = perturbed_cls(
                        isp_mod, pu, emb, model, chosen, genes, perturb_type, model_dir
                    )
                except Exception as e:  # the real code cannot embed it
                    failures[f"{perturb_type}|{c}"] = type(e).__name__
                    continue
                width = max(len(s) for s in ids)
                padded = np.full((len(ids), width), -1, dtype=np.int32)
                for i, s in enumerate(ids):
                    padded[i, : len(s)] = s
                arrays[f"ids|{perturb_type}|{c}"] = padded
                arrays[f"cls|{perturb_type}|{c}"] = cls.astype(np.float32)
    width = max(len(s) for s in tokens)
    tok_arr = np.full((len(tokens), width), -1, dtype=np.int32)
    for i, s in enumerate(tokens):
        tok_arr[i, : len(s)] = s
    np.savez_compressed(
        out / "oracle.npz",
        tokens=tok_arr,
        chosen=np.array(chosen_cells, dtype=np.int32),
        **arrays,
    )
    meta = {
        "geneformer_commit": "01d3ea8 (ctheodoris/Geneformer, 2025-01-10)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "datasets": datasets.__version__,
        "numpy": np.__version__,
        "model_input_size": MODEL_INPUT_SIZE,
        "max_ncells": MAX_NCELLS,
        "forward_batch_size": BATCH,
        "conditions": CONDITIONS,
        "real_code_fails": failures,
    }
    (out / "oracle.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
