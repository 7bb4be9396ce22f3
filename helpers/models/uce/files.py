"""UCE's released ``model_files/`` layout: read it, and write it for the book's tiny
model (chapter 5, UCE*).

The folder the loader reads is what snap-stanford/UCE's ``model_files/`` holds:

* ``4layer_model.torch`` (or ``33l_8ep_1024t_1280.torch``): the state dict of
  ``uce.model.TransformerModel``, ``pe_embedding.weight`` (the token table) included;
* ``all_tokens.torch``: the token table (special tokens 0 pad, 1 chromosome-left,
  2 chromosome-right, 3 CLS, then every species' genes); the released file has 143,574
  rows and ``uce.evaluate.get_ESM2_embeddings`` appends the 1,895 chromosome tokens;
* ``species_chrom.csv`` (``species``, ``gene_symbol``, ``chromosome``, ``start``);
* ``species_offsets.pkl`` (species -> row of its first gene in the token table);
* ``protein_embeddings/Homo_sapiens.GRCh38.gene_symbol_to_embedding_ESM2.pt``
  (gene symbol -> protein embedding; its key order gives each gene's row).

The released model is run with ``eval_single_anndata.py``'s defaults (token dimension
5,120, model width 1,280, 20 heads, ``--pad_length 1536``, ``--sample_size 1024``,
``--CHROM_TOKEN_OFFSET 143574``); the number of layers is read from the state dict. The
book's tiny model stores the flags that differ from those defaults in one extra file,
``uce_args.json`` (the command-line flags the real script would need for it).
"""

from __future__ import annotations

import json
import pickle
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ...errors import EnvironmentProblem, InputError

__all__ = [
    "UceArgs",
    "UceFiles",
    "MODEL_FILES",
    "HUMAN_PE_FILE",
    "real_uce",
    "build_network",
    "load_files",
    "write_files",
    "torch_threads",
]

MODEL_FILES = ("4layer_model.torch", "33l_8ep_1024t_1280.torch")
HUMAN_PE_FILE = (
    "protein_embeddings/Homo_sapiens.GRCh38.gene_symbol_to_embedding_ESM2.pt"
)
TOKEN_FILE = "all_tokens.torch"
CHROM_FILE = "species_chrom.csv"
OFFSET_FILE = "species_offsets.pkl"
ARGS_FILE = "uce_args.json"
N_RELEASED_TOKENS = 143574  # rows of the released all_tokens.torch
N_RELEASED_FULL = 145469  # the same plus the 1,895 chromosome tokens


@dataclass(frozen=True)
class UceArgs:
    """The settings ``eval_single_anndata.py`` takes as flags (its defaults here).

    ``token_dim``, ``d_model``, ``nhead``, ``d_hid``, ``nlayers``, ``output_dim``: the
    network; ``pad_length``: sentence length; ``sample_size``: genes sampled per cell;
    ``pad_token_idx``, ``chrom_token_left_idx``, ``chrom_token_right_idx``,
    ``cls_token_idx``: special tokens; ``CHROM_TOKEN_OFFSET``: the row of the first
    chromosome token.
    """

    token_dim: int = 5120
    d_model: int = 1280
    nhead: int = 20
    d_hid: int = 5120
    nlayers: int = 4
    output_dim: int = 1280
    pad_length: int = 1536
    sample_size: int = 1024
    pad_token_idx: int = 0
    chrom_token_left_idx: int = 1
    chrom_token_right_idx: int = 2
    cls_token_idx: int = 3
    CHROM_TOKEN_OFFSET: int = 143574
    dropout: float = 0.05


@dataclass
class UceFiles:
    """A loaded model folder.

    ``model``: ``uce.model.TransformerModel`` in eval mode with its token table;
    ``args``: :class:`UceArgs`; ``gene_rows``: gene symbol (upper case) -> token row;
    ``chrom_codes``: gene symbol -> chromosome code (``species_chrom.csv``'s
    species-chromosome category, as the real code numbers it); ``starts``: gene
    symbol -> genomic start; ``model_file``: the state-dict file read.
    """

    model: torch.nn.Module
    args: UceArgs
    gene_rows: dict
    chrom_codes: pd.Series
    starts: pd.Series
    model_file: str


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (``None``: leave torch's setting).

    ``n``: thread count. The tiny model's matrices are small: on a shared 2-core
    machine one thread is several times faster than two (measured: 8x)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def real_uce():
    """Import the real ``uce-model`` package's network and data modules.

    Returns the modules ``(uce.model, uce.evaluate)``; one line when it is missing.
    """
    try:
        import uce.evaluate as evaluate
        import uce.model as model
    except ImportError as err:
        raise EnvironmentProblem(
            f"the real UCE package is not importable ({err}); install it with "
            "`pip install uce-model==0.1.4 gdown`"
        ) from None
    return model, evaluate


def build_network(args: UceArgs) -> torch.nn.Module:
    """The real ``uce.model.TransformerModel`` with the sizes in ``args``
    (:class:`UceArgs`), as ``uce.evaluate.run_eval`` builds it."""
    model_mod, _ = real_uce()
    return model_mod.TransformerModel(
        token_dim=args.token_dim,
        d_model=args.d_model,
        nhead=args.nhead,
        d_hid=args.d_hid,
        nlayers=args.nlayers,
        dropout=args.dropout,
        output_dim=args.output_dim,
    )


def _find_model_file(folder: Path, model_file: str | None) -> Path:
    if model_file is not None:
        path = folder / model_file
        if not path.is_file():
            raise InputError(
                f"no UCE model file {path}; pass model_file= the name of the "
                "state-dict file in that folder (e.g. 4layer_model.torch)"
            )
        return path
    for name in MODEL_FILES:
        if (folder / name).is_file():
            return folder / name
    raise InputError(
        f"{folder} holds no UCE model file ({' or '.join(MODEL_FILES)}); pass the "
        "released model_files/ folder or one written by uce.pretrain_tiny"
    )


def _args_from_state(state: dict, folder: Path) -> UceArgs:
    given = {}
    if (folder / ARGS_FILE).is_file():
        given = json.loads((folder / ARGS_FILE).read_text())
    layers = {
        int(k.split(".")[2])
        for k in state
        if k.startswith("transformer_encoder.layers.")
    }
    enc = state["encoder.0.weight"]
    inferred = dict(
        token_dim=int(enc.shape[1]),
        d_model=int(enc.shape[0]),
        d_hid=int(state["transformer_encoder.layers.0.linear1.weight"].shape[0]),
        nlayers=len(layers),
        output_dim=int(state["decoder.3.weight"].shape[0]),
    )
    return UceArgs(**{**given, **inferred})


def load_files(folder, *, model_file: str | None = None) -> UceFiles:
    """Load a UCE ``model_files/`` folder (released or the book's tiny one).

    ``folder``: the folder; ``model_file``: the state-dict file's name (default: the
    first of ``4layer_model.torch``, ``33l_8ep_1024t_1280.torch`` present). Follows
    ``uce.evaluate.run_eval``: an empty token table is loaded with the state dict
    (strictly), then ``get_ESM2_embeddings`` reads ``all_tokens.torch`` and replaces it
    unless it has the released model's 145,469 rows.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no folder {folder}; pass the UCE model_files/ folder")
    path = _find_model_file(folder, model_file)
    for name in (TOKEN_FILE, CHROM_FILE, OFFSET_FILE, HUMAN_PE_FILE):
        if not (folder / name).is_file():
            raise InputError(
                f"{folder} lacks {name}; copy UCE's complete model_files/ folder "
                "(or write one with uce.pretrain_tiny)"
            )
    _, evaluate = real_uce()
    state = torch.load(path, map_location="cpu", weights_only=True)
    args = _args_from_state(state, folder)
    model = build_network(args)
    n_rows = int(state["pe_embedding.weight"].shape[0])
    empty = torch.zeros(n_rows, args.token_dim)
    model.pe_embedding = torch.nn.Embedding.from_pretrained(empty)
    model.load_state_dict(state, strict=True)
    ns = SimpleNamespace(token_file=str(folder / TOKEN_FILE), token_dim=args.token_dim)
    all_pe = evaluate.get_ESM2_embeddings(ns)
    if all_pe.shape[0] != N_RELEASED_FULL:
        all_pe.requires_grad = False
        model.pe_embedding = torch.nn.Embedding.from_pretrained(all_pe)
    model.eval()
    # the gene vocabulary as uce.data_proc.data_utils reads it
    pe = torch.load(folder / HUMAN_PE_FILE, map_location="cpu", weights_only=True)
    with open(folder / OFFSET_FILE, "rb") as fh:
        offset = int(pickle.load(fh)["human"])
    table = pd.read_csv(folder / CHROM_FILE, dtype={"chromosome": str})
    table["spec_chrom"] = pd.Categorical(table["species"] + "_" + table["chromosome"])
    human = table[table["species"] == "human"].set_index("gene_symbol")
    human = human[~human.index.duplicated()]
    # a gene is in the vocabulary when it has a token and a chromosome position
    placed = set(human.index)
    # get_species_to_pe upper-cases the keys (a dict: case duplicates collapse) and
    # adata_path_to_prot_chrom_starts takes a gene's position in that key list
    genes = list(dict.fromkeys(str(k).upper() for k in pe))
    gene_rows = {g: i + offset for i, g in enumerate(genes) if g in placed}
    return UceFiles(
        model=model,
        args=args,
        gene_rows=gene_rows,
        chrom_codes=human["spec_chrom"].cat.codes,
        starts=human["start"],
        model_file=path.name,
    )


def write_files(
    folder,
    state: dict,
    tokens: torch.Tensor,
    *,
    genes: list,
    chromosomes: list,
    starts: np.ndarray,
    args: UceArgs,
    gene_offset: int = 4,
) -> Path:
    """Write a model folder in the released layout (see the module docstring).

    ``folder``: where; ``state``: the network's state dict (``pe_embedding.weight``
    included); ``tokens``: the token table (special tokens, genes from row
    ``gene_offset``, chromosome tokens from ``args.CHROM_TOKEN_OFFSET``); ``genes``,
    ``chromosomes``, ``starts``: each gene's symbol, chromosome name and start;
    ``args``: the settings stored in ``uce_args.json``. Returns the model file's path.
    """
    folder = Path(folder)
    (folder / "protein_embeddings").mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILES[0]
    torch.save(state, path)
    torch.save(tokens.clone(), folder / TOKEN_FILE)
    pe = {g: tokens[gene_offset + i].clone() for i, g in enumerate(genes)}
    torch.save(pe, folder / HUMAN_PE_FILE)
    with open(folder / OFFSET_FILE, "wb") as fh:
        pickle.dump({"human": gene_offset}, fh, protocol=4)
    pd.DataFrame(
        {
            "species": "human",
            "gene_symbol": list(genes),
            "chromosome": list(chromosomes),
            "start": np.asarray(starts, dtype=np.int64),
        }
    ).to_csv(folder / CHROM_FILE, index=False)
    (folder / ARGS_FILE).write_text(json.dumps(asdict(args), indent=1, sort_keys=True))
    return path
