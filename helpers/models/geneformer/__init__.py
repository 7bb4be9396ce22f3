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


def pretrain_tiny(adata, folder, seed=0, **kwargs):
    """See :func:`helpers.models.geneformer.model.pretrain_tiny` (``adata``,
    ``folder``, ``seed`` and its keyword settings)."""
    from .model import pretrain_tiny as _f

    return _f(adata, folder, seed, **kwargs)


def condition_embeddings(folder, adata, conditions, seed=0, **kwargs):
    """See :func:`helpers.models.geneformer.model.condition_embeddings` (``folder``,
    ``adata``, ``conditions``, ``seed`` and its keyword settings)."""
    from .model import condition_embeddings as _f

    return _f(folder, adata, conditions, seed, **kwargs)


def fine_tune(folder, adata, train_conditions, **kwargs):
    """See :func:`helpers.models.geneformer.model.fine_tune` (``folder``, ``adata``,
    ``train_conditions`` and its keyword settings, ``out_folder`` included)."""
    from .model import fine_tune as _f

    return _f(folder, adata, train_conditions, **kwargs)
