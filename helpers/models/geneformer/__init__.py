"""Geneformer* (chapter 5): the book's tiny Geneformer and the paper's embedding.

* :func:`pretrain_tiny`: masked-token pretraining of a tiny ``transformers`` BERT on
  the control cells' rank value sentences, written in Geneformer's released layout
  (``tiny_geneformer``; never the published model);
* :func:`condition_embeddings`: one embedding per condition as the paper's
  ``run_geneformer.py`` (in-silico overexpress / delete in control cells, mean
  last-layer ``<cls>``; ``ctrl`` gets zeros), from the tiny model or the released
  ``gf-12L-95M-i4096`` folder;
* :mod:`.tokenizer`: Geneformer's rank value encoding and in-silico perturbation,
  re-implemented; :mod:`.checkpoint`: the folder layout.

Importing this package loads no torch; the functions do.
"""

from __future__ import annotations

__all__ = ["pretrain_tiny", "condition_embeddings", "fine_tune", "MODEL_NAME"]

MODEL_NAME = "tiny_geneformer"


_LAZY = ("pretrain_tiny", "condition_embeddings", "fine_tune")


def __getattr__(name):
    """The functions of :mod:`.model`, imported (with torch) on first use."""
    if name in _LAZY:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
