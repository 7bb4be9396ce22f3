"""scBERT* (chapter 5): scBERT's Performer in the book's own torch, weight-compatible
with the released ``panglao_pretrain.pth``, and the paper's condition embeddings.

* :mod:`.network`: :class:`~.network.PerformerNet`, scBERT's ``PerformerLM`` with the
  same state-dict names and shapes (FAVOR+ attention, gene2vec positions).
* :mod:`.checkpoint`: the released folder layout (``panglao_pretrain.pth``,
  ``panglao_human.h5ad``, ``gene2vec_16906.npy``), read and written.
* :mod:`.training`: bins, masked-bin pretraining, the paper's fine-tuning.
* :mod:`.embed`: :func:`pretrain_tiny` (``tiny_scbert``) and
  :func:`condition_embeddings` (one vector per condition, ridge-ready).

``tests/parity/test_scbert_parity.py`` checks the network against the real scBERT
code's outputs on the same tiny weights. Importing this package loads no torch.
"""

from .embed import QUICK, TINY, condition_embeddings, pool_cells, pretrain_tiny

__all__ = ["QUICK", "TINY", "condition_embeddings", "pool_cells", "pretrain_tiny"]
