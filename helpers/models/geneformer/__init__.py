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

__all__ = [
    "pretrain_tiny",
    "condition_embeddings",
    "fine_tune",
    "MODEL_NAME",
    "SETTINGS",
]

MODEL_NAME = "tiny_geneformer"

# condition_embeddings' settings per profile: the paper's (150 control cells, the
# model fine-tuned as a condition classifier first: pass train_conditions= too) and
# the quick profile's (150 cells, the pretrained tiny model as it is: the paper's
# fine-tuning, 10 epochs over <= 300 cells per condition, took 214 s for ONE epoch on
# the simulated task on this 2-core machine)
SETTINGS = {
    "quick": {"max_ncells": 150, "fine_tune": False},
    "paper": {"max_ncells": 150, "fine_tune": True},
}


_LAZY = ("pretrain_tiny", "condition_embeddings", "fine_tune")


def __getattr__(name):
    """The functions of :mod:`.model`, imported (with torch) on first use."""
    if name in _LAZY:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
