"""Make the stored outputs of the REAL UCE code that tests/parity/test_uce_parity.py
compares the book's UCE* with (helpers/models/uce).

Real code: PyPI ``uce-model==0.1.4`` (snap-stanford/UCE's ``uce`` package: ``model``,
``eval_data``, ``evaluate``, ``data_proc.data_utils``), installed without its
dependencies next to ``gdown`` (imported by ``uce.utils`` at import time)::

    pip install --no-deps --target /tmp/uce_pkgs uce-model==0.1.4 gdown
    PYTHONPATH=/tmp/uce_pkgs python tests/parity/oracles/make_uce_oracle.py

run with the book's venv (Python 3.11, torch 2.13 CPU, scanpy 1.11, pandas 2.3), which
has every other module the real code imports. What runs here, step by step:

1. A tiny model folder in the released ``model_files/`` layout, written by this script
   (not by the book): token table with 4 special tokens, 10 frog genes, 80 human genes
   and the chromosome tokens; ``species_chrom.csv`` with frog rows first (so the human
   chromosome codes do not start at 0) and human chromosomes ``1``, ``2``, ``3``,
   ``21``, ``X``, ``Y``, ``MT`` (the last four with one or two genes, so sentence
   lengths vary); all eight species' protein-embedding files the real
   ``get_species_to_pe`` opens; a random ``uce.model.TransformerModel`` (2 layers,
   width 8; ``binary_decoder`` zeroed so the stored weights compress) saved as
   ``4layer_model.torch``.
2. A tiny data set (24 control cells, 83 genes: 80 with tokens, one in mixed case, 3
   without a token) and the paper's ``run_uce.py`` steps written out as the script
   has them (``np.random.seed``, counts rebuilt from ``X``, 12 control cells drawn
   with replacement, targets' log values pasted in), then per condition the real
   ``AnndataProcessor.preprocess_anndata`` / ``generate_idxs`` (filters, gene
   indices, chromosome codes), the real ``MultiDatasetSentences`` +
   ``MultiDatasetSentenceCollator`` + ``DataLoader``, the real ``get_ESM2_embeddings``
   and ``TransformerModel.forward`` with ``run_eval``'s loop (``run_eval`` itself
   hard-codes width 1,280 and a 145,469 x 5,120 table, so its lines are followed with
   the tiny sizes). The sentence draws are seeded with ``np.random.seed(crc32(
   "<seed>:<condition>"))``, the book's convention (the paper's child process was not
   seeded).
3. The padding effect: the control condition again with batch size 2.

Outputs in tests/data/uce_oracle/: the model folder's small files, ``weights.npz``
(the state dict), ``inputs.npz`` (the data set), ``outputs.npz`` (per condition the
real sentences, masks' lengths, per-cell ``X_uce`` and their mean) and
``outputs.json`` (conditions, which were embedded, settings).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import zlib
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

OUT = Path(__file__).resolve().parents[3] / "tests" / "data" / "uce_oracle"
SEED = 1
N_CELLS = 12
BATCH = 12
ARGS = dict(
    token_dim=8,
    d_model=8,
    nhead=2,
    d_hid=16,
    nlayers=2,
    output_dim=8,
    pad_length=256,
    sample_size=64,
    pad_token_idx=0,
    chrom_token_left_idx=1,
    chrom_token_right_idx=2,
    cls_token_idx=3,
    dropout=0.05,
)
SPECIES_FILES = [
    "Homo_sapiens.GRCh38",
    "Mus_musculus.GRCm39",
    "Xenopus_tropicalis.Xenopus_tropicalis_v9.1",
    "Danio_rerio.GRCz11",
    "Microcebus_murinus.Mmur_3.0",
    "Sus_scrofa.Sscrofa11.1",
    "Macaca_fascicularis.Macaca_fascicularis_6.0",
    "Macaca_mulatta.Mmul_10",
]


def sentence_seed(seed, condition):
    return zlib.crc32(f"{int(seed)}:{condition}".encode()) & 0xFFFFFFFF


def write_model_folder(folder: Path, rng: np.random.RandomState):
    from uce.model import TransformerModel

    frog = [f"FROG{i:02d}" for i in range(10)]
    human = [f"GENE{i:02d}" for i in range(1, 81)]
    # MT, X and Y hold one gene each, 21 two: sentences that miss them are shorter
    chroms = np.array(["1", "2", "3"])[rng.randint(0, 3, len(human))]
    chroms[[9, 20, 30, 40, 50]] = ["MT", "X", "Y", "21", "21"]
    starts = rng.permutation(len(human)) * 500 + 7
    table = pd.DataFrame(
        {
            "species": ["frog"] * 10 + ["human"] * 80,
            "gene_symbol": frog + human,
            "chromosome": ["1"] * 5 + ["2"] * 5 + list(chroms),
            "start": np.r_[np.arange(10) * 100, starts],
        }
    )
    n_cat = pd.Categorical(table["species"] + "_" + table["chromosome"]).categories
    offset = 4 + 10 + 80
    tokens = torch.from_numpy(rng.normal(size=(offset + len(n_cat), 8))).float()
    folder.mkdir(parents=True)
    (folder / "protein_embeddings").mkdir()
    table.to_csv(folder / "species_chrom.csv", index=False)
    with open(folder / "species_offsets.pkl", "wb") as fh:
        pickle.dump({"frog": 4, "human": 14}, fh, protocol=4)
    torch.save(tokens, folder / "all_tokens.torch")
    for name in SPECIES_FILES:
        pe = {}
        if name.startswith("Homo"):
            pe = {g: tokens[14 + i].clone() for i, g in enumerate(human)}
        elif name.startswith("Xenopus"):
            pe = {g: tokens[4 + i].clone() for i, g in enumerate(frog)}
        torch.save(
            pe,
            folder / "protein_embeddings" / f"{name}.gene_symbol_to_embedding_ESM2.pt",
        )
    args = dict(ARGS, CHROM_TOKEN_OFFSET=offset)
    (folder / "uce_args.json").write_text(json.dumps(args, indent=1, sort_keys=True))
    torch.manual_seed(SEED)
    model = TransformerModel(
        token_dim=8,
        d_model=8,
        nhead=2,
        d_hid=16,
        nlayers=2,
        output_dim=8,
        dropout=0.05,
    )
    model.pe_embedding = torch.nn.Embedding.from_pretrained(tokens.clone())
    with torch.no_grad():
        for p in model.binary_decoder.parameters():
            p.zero_()
    state = model.state_dict()
    torch.save(state, folder / "4layer_model.torch")
    return args, {k: v.numpy() for k, v in state.items()}


def make_data(rng: np.random.RandomState):
    genes = [f"GENE{i:02d}" for i in range(1, 81)] + ["NOPE1", "NOPE2", "NOPE3"]
    genes[4] = "Gene05"  # mixed case: UCE matches symbols case-insensitively
    mu = np.exp(rng.normal(1.0, 1.0, len(genes)))
    mu[-6:-3] = 0.02  # rare genes: UCE's filter (>= 10 cells) drops them
    conds = ["ctrl"] * 24 + ["GENE01"] * 8 + ["GENE02+GENE03"] * 8
    conds += ["GENE06+NOTMEASURED"] * 4 + ["NOPE1"] * 6 + ["GENE07+Gene05"] * 8
    size = rng.uniform(0.5, 2.0, len(conds))
    lam = size[:, None] * mu[None, :]
    obs = np.array(conds)
    lam[obs == "GENE01", 0] *= 8
    lam[obs == "GENE02+GENE03", 1:3] *= 0.1
    counts = rng.poisson(lam).astype(np.float32)
    counts[counts.sum(1) == 0, 0] = 1
    x = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    return x, genes, obs


def real_pipeline(x, genes, obs, folder: Path, args: dict, conditions, batch):
    """run_uce.py's steps and UCE's eval_single_anndata pipeline (real code)."""
    from uce.eval_data import MultiDatasetSentenceCollator, MultiDatasetSentences
    from uce.eval_single_anndata import parser
    from uce.evaluate import AnndataProcessor, get_ESM2_embeddings
    from uce.model import TransformerModel

    adata = ad.AnnData(
        sp.csr_matrix(x),
        obs=pd.DataFrame({"condition": obs}),
        var=pd.DataFrame(index=genes),
    )
    np.random.seed(SEED)
    counts = np.expm1(adata.X) / 1e4
    one_equiv = np.array([np.min(counts[i, :].data) for i in range(counts.shape[0])])
    counts = (counts / one_equiv[:, np.newaxis]).tocsr()
    new_adata = ad.AnnData(counts, obs=adata.obs, var=adata.var)
    sub = new_adata[new_adata.obs["condition"] == "ctrl", :]
    sub = sub[np.random.choice(range(sub.shape[0]), N_CELLS), :]
    out = {}
    for cond in conditions:
        gene_list = list(set(cond.split("+")) - {"ctrl"})
        matches = np.isin(new_adata.var_names, gene_list)
        if cond == "ctrl":
            mod = sub.copy()
        elif np.sum(matches) == len(gene_list):
            mod = sub.copy()
            expr = adata[adata.obs["condition"] == cond, matches].X.toarray()
            mod.X[:, matches] = expr[
                np.random.choice(range(expr.shape[0]), mod.shape[0]), :
            ]
        else:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            mod.write_h5ad(tmp + "/adata.h5ad")
            a = parser.parse_args([])
            for k, v in args.items():
                if k != "d_model" and k != "nhead" and k != "dropout":
                    setattr(a, k, v)
            a.adata_path = tmp + "/adata.h5ad"
            a.dir = tmp + "/"
            a.model_loc = str(folder / "4layer_model.torch")
            a.batch_size = batch
            a.spec_chrom_csv_path = str(folder / "species_chrom.csv")
            a.token_file = str(folder / "all_tokens.torch")
            a.protein_embeddings_dir = str(folder / "protein_embeddings") + "/"
            a.offset_pkl_path = str(folder / "species_offsets.pkl")
            proc = AnndataProcessor(a, None)
            proc.preprocess_anndata()
            proc.generate_idxs()
            with open(proc.shapes_dict_path, "rb") as fh:
                shapes = pickle.load(fh)
            # run_eval's model set-up with the tiny sizes
            model = TransformerModel(
                token_dim=a.token_dim,
                d_model=args["d_model"],
                nhead=args["nhead"],
                d_hid=a.d_hid,
                nlayers=a.nlayers,
                dropout=0.05,
                output_dim=a.output_dim,
            )
            state = torch.load(a.model_loc, map_location="cpu")
            empty = torch.zeros(state["pe_embedding.weight"].shape[0], a.token_dim)
            model.pe_embedding = torch.nn.Embedding.from_pretrained(empty)
            model.load_state_dict(state, strict=True)
            all_pe = get_ESM2_embeddings(a)
            if all_pe.shape[0] != 145469:
                all_pe.requires_grad = False
                model.pe_embedding = torch.nn.Embedding.from_pretrained(all_pe)
            model = model.eval()
            dataset = MultiDatasetSentences(
                sorted_dataset_names=[proc.name],
                shapes_dict=shapes,
                args=a,
                npzs_dir=a.dir,
                dataset_to_protein_embeddings_path=proc.pe_idx_path,
                datasets_to_chroms_path=proc.chroms_path,
                datasets_to_starts_path=proc.starts_path,
            )
            loader = torch.utils.data.DataLoader(
                dataset,
                batch_size=a.batch_size,
                shuffle=False,
                collate_fn=MultiDatasetSentenceCollator(a),
                num_workers=0,
            )
            state_np = np.random.get_state()
            np.random.seed(sentence_seed(SEED, cond))
            embs, toks, lens = [], [], []
            with torch.no_grad():
                for b in loader:
                    sent, mask = b[0], b[1]
                    toks.extend(list(sent.long().numpy()))
                    lens.extend(mask.sum(1).long().tolist())
                    s = model.pe_embedding(sent.permute(1, 0).long())
                    s = torch.nn.functional.normalize(s, dim=2)
                    _, e = model.forward(s, mask=mask)
                    embs.append(e.detach().cpu().numpy())
            np.random.set_state(state_np)
            embs = np.vstack(embs)
            width = max(len(t) for t in toks)
            tok = np.zeros((len(toks), width), dtype=np.int64)
            for i, t in enumerate(toks):
                tok[i, : len(t)] = t
            out[cond] = dict(
                emb=embs, mean=embs.mean(axis=0), tokens=tok, lengths=np.array(lens)
            )
    return out


def main():
    rng = np.random.RandomState(20251208)
    work = Path(tempfile.mkdtemp())
    folder = work / "model_files"
    cwd = os.getcwd()
    try:
        args, state = write_model_folder(folder, rng)
        x, genes, obs = make_data(rng)
        conditions = list(pd.Categorical(obs).categories)
        os.chdir(work)  # uce.data_proc.gene_embeddings reads model_files/ relatively
        res = real_pipeline(x, genes, obs, folder, args, conditions, BATCH)
        res2 = real_pipeline(x, genes, obs, folder, args, ["ctrl"], 2)
    finally:
        os.chdir(cwd)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for name in (
        "species_chrom.csv",
        "species_offsets.pkl",
        "all_tokens.torch",
        "uce_args.json",
    ):
        shutil.copy(folder / name, OUT / name)
    (OUT / "protein_embeddings").mkdir()
    hs = "Homo_sapiens.GRCh38.gene_symbol_to_embedding_ESM2.pt"
    shutil.copy(folder / "protein_embeddings" / hs, OUT / "protein_embeddings" / hs)
    np.savez_compressed(OUT / "weights.npz", **state)
    np.savez_compressed(OUT / "inputs.npz", x=x, genes=np.array(genes), obs=obs)
    arrays = {}
    embedded = list(res)
    for k, cond in enumerate(embedded):
        for key, val in res[cond].items():
            arrays[f"{key}_{k}"] = val
    for key, val in res2["ctrl"].items():
        arrays[f"{key}_ctrl_batch2"] = val
    np.savez_compressed(OUT / "outputs.npz", **arrays)
    meta = dict(
        conditions=conditions,
        embedded=embedded,
        seed=SEED,
        n_cells=N_CELLS,
        batch_size=BATCH,
        real_code="uce-model==0.1.4 (PyPI), torch " + torch.__version__,
    )
    (OUT / "outputs.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(work)
    print("wrote", OUT, sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
