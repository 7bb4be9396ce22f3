"""CPA (compositional perturbation autoencoder), the paper's configuration, in the
book's own torch, weight-compatible with the real cpa-tools 0.8.x.

``network``: the module (encoder, perturbation embeddings with doser, NB decoder);
``checkpoint``: the folder layout ``CPA.save`` writes, :func:`load_model` and
:meth:`CPAModel.save`; ``training``: the paper's training; ``method``: CPA as a
benchmark method (:class:`CpaMethod`, ``cpa_book``) and the paper's protocol choices
(chapter 4). Checked against the real cpa-tools by
``tests/parity/test_cpa.py``.
"""

from helpers.models.cpa.checkpoint import CheckpointError, CPAModel, load_model
from helpers.models.cpa.method import CpaMethod, train_cpa
from helpers.models.cpa.network import CPANetwork

__all__ = [
    "CPAModel",
    "CPANetwork",
    "CheckpointError",
    "CpaMethod",
    "load_model",
    "train_cpa",
]
