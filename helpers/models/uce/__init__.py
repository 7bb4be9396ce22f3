"""UCE* (chapter 5): the real ``uce-model`` 0.1.4 network turned into a perturbation
encoder the way the paper's ``run_uce.py`` did it (one embedding per condition; the
ridge decoder is :mod:`helpers.models.condition_ridge`).

* :func:`pretrain_tiny` (:mod:`.pretrain`): the book's ``tiny_uce``, pretrained on the
  control cells, written in the released ``model_files/`` layout (:mod:`.files`).
* :func:`condition_embeddings` (:mod:`.embed`): per condition, 100 control cells with
  the targets' log-normalised values pasted in, UCE's cell sentences
  (:mod:`.sentences`), the real network, the mean embedding. Reads the released 4- or
  33-layer folder by path just as well (paper profile).

The package's float padding mask is *added* to the attention logits on torch >= 2, so a
cell's embedding depends on its batch-mates; ``batch_size=`` shows it and
``padding_mask="boolean"`` is the opt-in correction (not what the paper ran).
"""

from .embed import (
    PADDING_MASKS,
    QUICK_SETTINGS,
    condition_embeddings,
    embed_cells,
    paper_cells,
)
from .embed import sentence_seed, vocab_for
from .files import UceArgs, UceFiles, load_files, real_uce, write_files
from .pretrain import TINY_ARGS, pretrain_tiny
from .sentences import cell_sentence, cell_sentences, counts_from_lognorm
from .sentences import process_like_uce

__all__ = [
    "PADDING_MASKS",
    "QUICK_SETTINGS",
    "TINY_ARGS",
    "UceArgs",
    "UceFiles",
    "cell_sentence",
    "cell_sentences",
    "condition_embeddings",
    "counts_from_lognorm",
    "embed_cells",
    "load_files",
    "paper_cells",
    "pretrain_tiny",
    "process_like_uce",
    "real_uce",
    "sentence_seed",
    "vocab_for",
    "write_files",
]
