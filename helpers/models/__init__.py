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
* :mod:`.device` (where a model runs) and :mod:`.log` (what a training run cost),
  shared.

Adding a model: a package ``helpers/models/<model>/`` (network, checkpoint, training,
method) whose method meets :class:`Method`; nothing else changes. Importing this package
loads no torch.
"""

from .contract import Method, TaskData, as_method, from_pseudobulk

__all__ = ["Method", "TaskData", "as_method", "from_pseudobulk"]
