"""scGPT's perturbation model, split as scvi-tools splits its models (chapter 4).

* :mod:`.network`: the torch modules (``ScGPTPerturbationModel``, versions 0.2.1 and
  0.2.2+, released parameter names);
* :mod:`.checkpoint`: reading and writing the released checkpoint layout;
* :mod:`.training`: pretraining, fine-tuning and prediction (the scGPT recipe);
* :mod:`.method`: :class:`ScGPTMethod`, the :class:`helpers.models.contract.Method` that
  plugs into :func:`helpers.benchmark.run`.

Every public name of the four is re-exported here: ``from helpers.models import scgpt``
then ``scgpt.load_pretrained``, ``scgpt.fine_tune``, ...
"""

from __future__ import annotations

from ..device import device_for
from ..log import TrainingLog
from . import checkpoint, method, network, training
from .checkpoint import (
    CHECKPOINT_FILES,
    SPECIAL_TOKENS,
    TRANSFERRED_PREFIXES,
    CheckpointError,
    LoadReport,
    build_vocab,
    detect_version,
    is_book_checkpoint,
    load_model,
    load_pretrained,
    load_vocab,
    map_genes,
    save_checkpoint,
)
from .method import ScGPTMethod
from .network import (
    TINY_NOTE,
    VERSIONS,
    AffineExprDecoder,
    ContinuousValueEncoder,
    ExprDecoder,
    GeneEncoder,
    ScGPTConfig,
    ScGPTPerturbationModel,
    tiny_config,
)
from .training import (
    CellData,
    fine_tune,
    predict,
    prepare_cells,
    pretrain,
    pretrain_tiny_checkpoint,
)

__all__ = [
    "checkpoint",
    "method",
    "network",
    "training",
    "CheckpointError",
    "LoadReport",
    "SPECIAL_TOKENS",
    "TRANSFERRED_PREFIXES",
    "CHECKPOINT_FILES",
    "load_vocab",
    "build_vocab",
    "load_pretrained",
    "load_model",
    "detect_version",
    "save_checkpoint",
    "map_genes",
    "is_book_checkpoint",
    "VERSIONS",
    "ScGPTConfig",
    "ScGPTPerturbationModel",
    "GeneEncoder",
    "ContinuousValueEncoder",
    "ExprDecoder",
    "AffineExprDecoder",
    "TINY_NOTE",
    "tiny_config",
    "CellData",
    "prepare_cells",
    "pretrain",
    "fine_tune",
    "predict",
    "pretrain_tiny_checkpoint",
    "ScGPTMethod",
    "TrainingLog",
    "device_for",
]
