"""Geneformer's released folder layout: a Hugging Face BERT plus its dictionaries.

A released Geneformer model (e.g. ``gf-12L-95M-i4096``) is a folder with
``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``); its dictionaries
ship with the ``geneformer`` package as pickles:

* ``token_dictionary_gc95M.pkl``: Ensembl id -> token id, with ``<pad>`` 0,
  ``<mask>`` 1, ``<cls>`` 2, ``<eos>`` 3;
* ``gene_median_dictionary_gc95M.pkl``: Ensembl id -> non-zero median of
  ``counts / n_counts * 10^4``;
* ``gene_name_id_dict_gc95M.pkl``: gene symbol -> Ensembl id;
* ``ensembl_mapping_dict_gc95M.pkl``: Ensembl id -> the id it is collapsed to.

:func:`read_folder` reads a model folder whose dictionaries sit in the folder itself
(copy the four pickles next to the released weights) or in ``dictionaries=``. The
book's tiny model is written in the same layout, with the SIM gene symbols standing in
for Ensembl ids (the symbol -> id dictionary maps each symbol to itself).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError

__all__ = ["DICTIONARY_FILES", "GeneformerFolder", "read_folder", "write_dictionaries"]

DICTIONARY_FILES = {
    "token": "token_dictionary_gc95M.pkl",
    "median": "gene_median_dictionary_gc95M.pkl",
    "name_id": "gene_name_id_dict_gc95M.pkl",
    "mapping": "ensembl_mapping_dict_gc95M.pkl",
}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class GeneformerFolder:
    """A model folder with its four dictionaries loaded."""

    path: Path
    token_dict: dict
    median_dict: dict
    name_id_dict: dict
    mapping_dict: dict


def write_dictionaries(folder, *, token_dict, median_dict, name_id_dict, mapping_dict):
    """Write the four dictionaries as Geneformer's pickles into ``folder``.

    ``folder``: the model folder; ``token_dict``, ``median_dict``, ``name_id_dict``,
    ``mapping_dict``: the dictionaries described in the module docstring.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, obj in (
        ("token", token_dict),
        ("median", median_dict),
        ("name_id", name_id_dict),
        ("mapping", mapping_dict),
    ):
        with open(folder / DICTIONARY_FILES[key], "wb") as f:
            pickle.dump(obj, f, protocol=4)


def read_folder(
    folder: str | os.PathLike, *, dictionaries: str | os.PathLike | None = None
) -> GeneformerFolder:
    """Check a Geneformer model folder and load its dictionaries.

    ``folder``: the folder with ``config.json`` and the weights; ``dictionaries``: the
    folder with the four pickles (default: ``folder``).
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{folder} has no config.json; pass a Geneformer model folder "
            "(config.json + model.safetensors) or make one with pretrain_tiny"
        )
    if not any((folder / w).is_file() for w in WEIGHT_FILES):
        raise InputError(
            f"{folder} has no model.safetensors or pytorch_model.bin; copy the "
            "released weights into it or make one with pretrain_tiny"
        )
    dict_dir = Path(dictionaries) if dictionaries is not None else folder
    loaded = {}
    for key, name in DICTIONARY_FILES.items():
        path = dict_dir / name
        if not path.is_file():
            raise InputError(
                f"{path} is missing; copy Geneformer's {name} there or pass "
                "dictionaries= the folder that holds it"
            )
        with open(path, "rb") as f:
            loaded[key] = pickle.load(f)
    return GeneformerFolder(
        folder,
        loaded["token"],
        loaded["median"],
        loaded["name_id"],
        loaded["mapping"],
    )
