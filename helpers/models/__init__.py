"""The book's models (chapter 4) and the one contract every model meets.

* :mod:`.contract`: the :class:`Method` protocol (a ``name`` and ``predict(train,
  conditions)``), the training data a method gets (:class:`TaskData`) and the adapter
  for pseudobulk-only functions (:func:`from_pseudobulk`); :func:`helpers.benchmark.run`
  calls models through it.
* :mod:`.scgpt`: scGPT's perturbation architecture (versions 0.2.1 and 0.2.2+, released
  parameter names): ``network``, ``checkpoint``, ``training``, ``method``.
* :mod:`.gears`: the real GEARS (``cell-gears``) on the book's splits: ``runner``,
  ``method``.
* :mod:`.cpa`: CPA (cpa-tools 0.8.1's network, checkpoint layout and training plan
  with the paper's settings), in the book's own torch: ``network``, ``checkpoint``,
  ``training``; ``tests/parity/test_cpa.py`` checks it against the real cpa-tools.
* :mod:`.uce`, :mod:`.geneformer`, :mod:`.scbert`: the encoders of the paper's "*"
  models (chapter 5): UCE* on the real uce-model network, Geneformer* on transformers'
  BERT with the book's rank-value tokenizer and in-silico perturbation, scBERT* on the
  book's Performer (weight-compatible with ``panglao_pretrain.pth``); each has
  ``pretrain_tiny`` and ``condition_embeddings``; ``tests/parity/test_uce_parity.py``,
  ``test_geneformer_parity.py`` and ``test_scbert_parity.py`` check them against the
  real code's stored outputs.
* :mod:`.condition_ridge`: the paper's ridge decoder of a condition embedding, and the
  spread / shrinkage diagnostics.
* :mod:`.device` (where a model runs) and :mod:`.log` (what a training run cost),
  shared.

Adding a model: a package ``helpers/models/<model>/`` (network, checkpoint, training,
method) whose method meets :class:`Method`; nothing else changes. Importing this package
loads no torch.
"""

from .contract import Method, TaskData, as_method, from_pseudobulk

__all__ = ["Method", "TaskData", "as_method", "from_pseudobulk"]
