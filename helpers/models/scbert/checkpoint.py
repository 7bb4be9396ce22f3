"""scBERT's released checkpoint layout: read and written by the book's Performer.

A model folder holds, as scBERT's release and data folder do:

* ``panglao_pretrain.pth``:
  ``torch.save({"model_state_dict": PerformerLM.state_dict()})`` (token embedding,
  gene2vec position table ``pos_emb.emb.weight`` of genes + 1 rows, Performer layers
  with their FAVOR+ ``projection_matrix`` buffers, ``norm``, ``to_out``);
* ``panglao_human.h5ad``: the reference whose ``var_names`` give the gene order of the
  positions (only ``var`` is read);
* ``gene2vec_16906.npy``: the gene2vec table (genes x dim) the constructor reads.

The network's settings are read off the tensors' shapes
(:func:`.network.config_from_state_dict`); bins = ``num_tokens - 2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError

__all__ = [
    "CHECKPOINT",
    "FINETUNED",
    "GENE2VEC",
    "GENES",
    "gene_order",
    "load_network",
    "load_state",
    "save_state",
]

CHECKPOINT = "panglao_pretrain.pth"
GENES = "panglao_human.h5ad"
GENE2VEC = "gene2vec_16906.npy"
FINETUNED = "finetune_best.pth"  # what the paper's fine-tuning writes


def _need(folder: Path, name: str) -> Path:
    path = Path(folder) / name
    if not path.is_file():
        raise InputError(
            f"{path} is missing: pass a scBERT model folder ({CHECKPOINT}, {GENES},"
            f" {GENE2VEC}), e.g. one written by scbert.pretrain_tiny"
        )
    return path


def load_state(path) -> dict:
    """``model_state_dict`` of a scBERT ``.pth`` file.

    Parameters
    ----------
    path : the ``.pth`` file (``{"model_state_dict": ...}``).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path} is missing: pass the path of a scBERT .pth checkpoint"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise InputError(
            f"{path} has no 'model_state_dict': save it as"
            " torch.save({'model_state_dict': model.state_dict()}, path)"
        )
    return ckpt["model_state_dict"]


def save_state(state: dict, path) -> None:
    """Write ``{"model_state_dict": state}`` as scBERT does.

    Parameters
    ----------
    state : a state dict of :class:`.network.PerformerNet`.
    path : the ``.pth`` file to write.
    """
    import torch

    cpu = {k: v.detach().cpu().clone() for k, v in state.items()}
    torch.save({"model_state_dict": cpu}, Path(path))


def gene_order(folder) -> list[str]:
    """Gene symbols in the model's position order (``var_names`` of ``panglao_human``).

    Parameters
    ----------
    folder : the model folder.
    """
    import anndata as ad

    path = _need(Path(folder), GENES)
    reference = ad.read_h5ad(path, backed="r")
    try:
        return [str(g) for g in reference.var_names]
    finally:
        reference.file.close()


def write_gene_order(genes, folder) -> None:
    """Write ``panglao_human.h5ad`` with no cells and ``genes`` as ``var_names``.

    Parameters
    ----------
    genes : gene symbols in position order.
    folder : the model folder.
    """
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    var = pd.DataFrame(index=pd.Index([str(g) for g in genes], name=None))
    reference = ad.AnnData(X=sp.csr_matrix((0, len(var)), dtype=np.float32), var=var)
    reference.write_h5ad(Path(folder) / GENES)


def load_network(folder, *, gene_positions: bool = True, checkpoint: str | None = None):
    """The book's :class:`.network.PerformerNet` with a folder's weights, in eval mode.

    Parameters
    ----------
    folder : the model folder (released layout, see the module).
    gene_positions : ``True`` loads as scBERT's fine-tuning does
        (``g2v_position_emb=True``, every tensor, ``strict=True``); ``False`` as the
        paper's embedding step (``g2v_position_emb=False``, ``strict=False``: the
        gene2vec table and the output head are not used).
    checkpoint : file inside ``folder`` to read (default ``panglao_pretrain.pth``).
    """
    from .network import PerformerNet, config_from_state_dict

    folder = Path(folder)
    state = load_state(_need(folder, checkpoint or CHECKPOINT))
    genes = gene_order(folder)
    config = config_from_state_dict(state)
    table = None
    if gene_positions:
        table = np.load(_need(folder, GENE2VEC))
        if table.shape != (len(genes), config["dim"]):
            raise InputError(
                f"{GENE2VEC} is {table.shape}, the model needs ({len(genes)},"
                f" {config['dim']}): pass the table that belongs to this checkpoint"
            )
    net = PerformerNet(**config, max_seq_len=len(genes) + 1, gene_table=table)
    if gene_positions:
        net.load_state_dict(state, strict=True)
    else:
        own = net.state_dict()
        usable = {
            k: v for k, v in state.items() if k in own and own[k].shape == v.shape
        }
        missing = sorted(set(own) - set(usable) - {"to_out.weight", "to_out.bias"})
        if missing:
            raise InputError(
                f"the checkpoint lacks {missing[0]} (and {len(missing) - 1} more):"
                " pass a scBERT PerformerLM checkpoint"
            )
        net.load_state_dict(usable, strict=False)
    return net.eval()
