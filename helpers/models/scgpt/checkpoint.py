"""The released scGPT checkpoint layout: read and write it (chapters 4 and 5).

Checkpoint directory layout (released scGPT): ``vocab.json`` (symbol -> id, with
``<pad>``, ``<cls>``, ``<eoc>``), ``args.json`` (``embsize``, ``nheads``, ``d_hid``,
``nlayers``, ...), ``best_model.pt`` (a plain state dict; with flash-attention the
attention weights are named ``self_attn.Wqkv.*``, renamed here to PyTorch's
``self_attn.in_proj_*``). Two loaders:

* :func:`load_pretrained` transfers only the encoder, value encoder and transformer of a
  *foundation* checkpoint (as the benchmark did); the perturbation encoder, BatchNorm
  and decoder start fresh.
* :func:`load_model` loads a whole *fine-tuned perturbation* checkpoint, every tensor,
  strictly.

The version is read from the checkpoint's tensors where they tell it (``bn.*`` -> 0.2.1,
``decoder.coeff_decoder.*`` -> 0.2.2+); a foundation checkpoint has neither, so there it
is chosen by the caller. :class:`LoadReport` says which version was built and why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import BookError
from .network import TINY_NOTE, VERSIONS, ScGPTConfig, ScGPTPerturbationModel

__all__ = [
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
]

SPECIAL_TOKENS = ("<pad>", "<cls>", "<eoc>")
TRANSFERRED_PREFIXES = ("encoder.", "value_encoder.", "transformer_encoder.")
CHECKPOINT_FILES = ("vocab.json", "args.json", "best_model.pt")
# top-level modules of the perturbation model; a checkpoint's other tensors
# (cls_decoder, mvc_decoder, ...) belong to heads this model does not have
MODEL_MODULES = (
    "encoder",
    "value_encoder",
    "pert_encoder",
    "bn",
    "transformer_encoder",
    "decoder",
)


class CheckpointError(BookError, ValueError):
    """A checkpoint directory is missing files or does not match the architecture (the
    message says how)."""


def _check_directory(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(
            f"{path} is not a directory; a scGPT checkpoint is a folder holding "
            f"{CHECKPOINT_FILES}."
        )
    missing = [f for f in CHECKPOINT_FILES if not (path / f).is_file()]
    if missing:
        raise CheckpointError(
            f"{path} lacks {missing}. A scGPT checkpoint folder (e.g. "
            "scGPT_human from the scGPT model zoo) holds "
            f"{', '.join(CHECKPOINT_FILES)}."
        )


def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """``vocab.json`` as a dict, with any missing special tokens appended (as scGPT's
    loaders do)."""
    path = Path(path)
    try:
        vocab = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}).") from None
    if not isinstance(vocab, dict) or not all(
        isinstance(v, int) for v in vocab.values()
    ):
        raise CheckpointError(f"{path} must map gene symbols to integer ids.")
    ids = set(vocab.values())
    if len(ids) != len(vocab):
        raise CheckpointError(f"{path}: several genes share an id.")
    for token in SPECIAL_TOKENS:
        if token not in vocab:
            vocab[token] = max(ids | set(vocab.values())) + 1
    return vocab


def config_from_args(args: dict, ntoken: int, **overrides) -> ScGPTConfig:
    """The configuration an ``args.json`` describes (``args``), for ``ntoken`` tokens;
    ``overrides`` replace single values (e.g. ``dropout``, ``version``)."""
    missing = [k for k in ("embsize", "nheads", "d_hid", "nlayers") if k not in args]
    if missing:
        raise CheckpointError(
            f"args.json lacks {missing}; it must describe the model "
            "(embsize, nheads, d_hid, nlayers)."
        )
    keys = (
        "embsize",
        "nheads",
        "d_hid",
        "nlayers",
        "dropout",
        "pad_token",
        "pad_value",
        "pert_pad_id",
    )
    known = {k: args[k] for k in keys if k in args}
    extra = {k: v for k, v in args.items() if k not in known}
    return ScGPTConfig(ntoken=ntoken, extra=extra, **{**known, **overrides})


def _rename_flash_keys(state: dict) -> dict:
    """flash-attention names -> PyTorch names: ``self_attn.Wqkv.*`` ->
    ``self_attn.in_proj_*`` (same packed q;k;v)."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("self_attn.Wqkv.weight", "self_attn.in_proj_weight")
        key = key.replace("self_attn.Wqkv.bias", "self_attn.in_proj_bias")
        renamed[key] = value
    return renamed


def detect_version(state: dict) -> str | None:
    """The architecture version a state dict's tensors identify: ``bn.*`` ->
    ``"0.2.1"``, ``decoder.coeff_decoder.*`` / ``decoder.bias_decoder.*`` ->
    ``"0.2.2+"``; ``None`` when neither is present (a foundation checkpoint such as
    ``scGPT_human``)."""
    has_bn = any(k.startswith("bn.") for k in state)
    has_affine = any(
        k.startswith(("decoder.coeff_decoder.", "decoder.bias_decoder.")) for k in state
    )
    if has_bn and has_affine:
        raise CheckpointError(
            "The checkpoint has both bn.* (scGPT 0.2.1) and "
            "decoder.coeff_decoder.* (scGPT >= 0.2.2) "
            "tensors; no released version has both. Is it a mix of two models?"
        )
    return "0.2.1" if has_bn else "0.2.2+" if has_affine else None


def _choose_version(
    state: dict, version: str | None, *, required: bool
) -> tuple[str, str]:
    """(version, reason): from the tensors where they tell it, else the caller's
    choice."""
    found = detect_version(state)
    if version is not None and version not in VERSIONS:
        raise CheckpointError(
            f"Unknown scGPT architecture version {version!r}; choose one of {VERSIONS}."
        )
    evidence = {
        "0.2.1": "the checkpoint has bn.* tensors (BatchNorm on the summed embeddings)",
        "0.2.2+": "the checkpoint has decoder.coeff_decoder.* / "
        "decoder.bias_decoder.* tensors "
        "(AffineExprDecoder)",
    }
    if found is not None:
        if version is not None and version != found and required:
            raise CheckpointError(
                f"version={version!r} was asked for, but {evidence[found]}, i.e. "
                f"scGPT {found}. "
                f"Leave version=None to build {found}."
            )
        if version is not None and version != found:
            return (
                version,
                f"chosen explicitly (version={version!r}); note: "
                f"{evidence[found]}, i.e. {found}",
            )
        if version is not None:
            return found, f"version={version!r} asked for, and {evidence[found]}"
        return found, f"detected: {evidence[found]}"
    if version is None:
        if required:
            raise CheckpointError(
                "The checkpoint has neither bn.* (scGPT 0.2.1) nor "
                "decoder.coeff_decoder.* (scGPT >= "
                "0.2.2) tensors, so it is not a fine-tuned perturbation model of "
                "a known version. "
                "For a foundation checkpoint use load_pretrained; otherwise pass "
                "version=."
            )
        version = "0.2.1"
        return version, (
            "not detectable (no bn.* or decoder.coeff_decoder.* tensors: a "
            "foundation checkpoint); "
            "built the default 0.2.1, the version the paper ran"
        )
    return version, (
        "chosen explicitly (version=%r); the checkpoint's tensors do not tell "
        "the version" % version
    )


@dataclass
class LoadReport:
    """What a loader did with each tensor of the checkpoint, and which architecture
    version it built."""

    loaded: list[str]
    skipped: list[
        str
        # in the checkpoint, not loaded (other heads; for load_pretrained also the
        # decoder)
    ]
    missing: list[
        str
    ]  # in the model, started fresh (load_pretrained: pert_encoder, bn, decoder)
    renamed: int  # attention tensors renamed from flash-attention names
    version: str = "0.2.1"
    version_reason: str = ""

    def summary(self) -> str:
        return (
            f"built scGPT {self.version} architecture ({self.version_reason}); "
            f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} "
            "from the checkpoint "
            f"({sorted({k.split('.')[0] for k in self.skipped})}), started "
            f"{len(self.missing)} fresh "
            f"({sorted({k.split('.')[0] for k in self.missing})}); "
            f"{self.renamed} attention tensors renamed"
        )


def _read_folder(path: Path) -> tuple[dict[str, int], dict, dict]:
    _check_directory(path)
    vocab = load_vocab(path / "vocab.json")
    try:
        args = json.loads((path / "args.json").read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{path / 'args.json'} is not valid JSON ({err})."
        ) from None
    try:
        state = torch.load(
            path / "best_model.pt", map_location="cpu", weights_only=True
        )
    except Exception as err:  # torch raises several types for corrupt files
        raise CheckpointError(
            f"{path / 'best_model.pt'} could not be read by torch.load ({err})."
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path / 'best_model.pt'} must hold a plain state dict.")
    return vocab, args, state


def _check_shapes(state: dict, own: dict) -> None:
    bad = {
        k: (tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    }
    if bad:
        example = next(iter(bad.items()))
        raise CheckpointError(
            f"{len(bad)} tensors do not match the architecture in args.json, "
            f"e.g. {example[0]}: checkpoint "
            f"{example[1][0]} vs model {example[1][1]}. Is args.json from the "
            "same run as best_model.pt?"
        )


def load_pretrained(
    path: str | os.PathLike,
    *,
    dropout: float | None = None,
    pert_pad_id: int = 2,
    prefixes=TRANSFERRED_PREFIXES,
    version: str | None = None,
) -> tuple[ScGPTPerturbationModel, dict[str, int], LoadReport]:
    """Build the model from ``args.json`` and transfer the pretrained encoder, value
    encoder and transformer.

    ``version``: the architecture to build; ``None`` reads it from the tensors where
    they tell it, else builds ``"0.2.1"`` (the report says which and why). Only
    ``prefixes`` are transferred, so a foundation checkpoint of either version can start
    a model of either version. Returns the model, the vocabulary and a
    :class:`LoadReport`. Raises :class:`CheckpointError` for a malformed folder or
    tensors whose shapes do not match ``args.json``.

    ``path``: the checkpoint folder; ``dropout``: overrides ``args.json``'s dropout;
    ``pert_pad_id``: the padding id of the perturbation flags; ``prefixes``: the module
    prefixes transferred.
    """
    path = Path(path)
    vocab, args, state = _read_folder(path)
    overrides = {"pert_pad_id": pert_pad_id}
    if dropout is not None:
        overrides["dropout"] = dropout
    chosen, reason = _choose_version(state, version, required=False)
    config = config_from_args(
        args, ntoken=max(vocab.values()) + 1, version=chosen, **overrides
    )
    model = ScGPTPerturbationModel(config, pad_id=vocab[config.pad_token])
    renamed = sum("self_attn.Wqkv." in k for k in state)
    state = _rename_flash_keys(state)
    own = model.state_dict()
    transfer = {
        k: v for k, v in state.items() if k.startswith(tuple(prefixes)) and k in own
    }
    _check_shapes(transfer, own)
    unexpected_core = [
        k for k in state if k.startswith(tuple(prefixes)) and k not in own
    ]
    if unexpected_core:
        raise CheckpointError(
            "Checkpoint tensors with no counterpart in the model: "
            f"{unexpected_core[:5]}."
        )
    model.load_state_dict(transfer, strict=False)
    report = LoadReport(
        loaded=sorted(transfer),
        skipped=sorted(k for k in state if k not in transfer),
        missing=sorted(k for k in own if k not in transfer),
        renamed=renamed,
        version=chosen,
        version_reason=reason,
    )
    return model, vocab, report


def load_model(
    path: str | os.PathLike,
    *,
    version: str | None = None,
    dropout: float | None = None,
) -> tuple[ScGPTPerturbationModel, dict[str, int], LoadReport]:
    """Load a whole fine-tuned scGPT perturbation checkpoint (``args.json``,
    ``vocab.json``, ``best_model.pt``).

    Every tensor of the model comes from the checkpoint (strict: a model tensor the
    checkpoint lacks, or a checkpoint tensor of the model's modules the model lacks,
    raises :class:`CheckpointError`). Tensors of heads this model does not have
    (``cls_decoder.*``, ``mvc_decoder.*``, ...) are listed in ``report.skipped``. The
    version comes from the tensors (``bn.*`` or ``decoder.coeff_decoder.*``);
    ``version=`` must agree with them, and is needed only for a checkpoint that has
    neither. ``args.json`` gives the architecture and ``pert_pad_id`` (default 2);
    ``dropout`` overrides its dropout.

    Returns ``(model, vocab, report)``, the model in eval mode; call it as
    ``model(gene_ids, values, pert_flags, padding_mask)``.
    """
    path = Path(path)
    vocab, args, state = _read_folder(path)
    chosen, reason = _choose_version(state, version, required=True)
    overrides = {} if dropout is None else {"dropout": dropout}
    config = config_from_args(
        args, ntoken=max(vocab.values()) + 1, version=chosen, **overrides
    )
    model = ScGPTPerturbationModel(config, pad_id=vocab[config.pad_token])
    renamed = sum("self_attn.Wqkv." in k for k in state)
    state = _rename_flash_keys(state)
    own = model.state_dict()
    ours = {k: v for k, v in state.items() if k.split(".")[0] in MODEL_MODULES}
    unexpected = sorted(set(ours) - set(own))
    absent = sorted(set(own) - set(ours))
    if unexpected or absent:
        raise CheckpointError(
            f"{path / 'best_model.pt'} does not match a scGPT {chosen} "
            "perturbation model built from args.json: "
            f"{len(absent)} model tensors are not in the checkpoint (e.g. "
            f"{absent[:3]}), {len(unexpected)} "
            "checkpoint tensors have no place in the model (e.g. "
            f"{unexpected[:3]}). Is it a fine-tuned "
            "perturbation checkpoint (not a foundation one, for which "
            "load_pretrained is meant)?"
        )
    _check_shapes(ours, own)
    model.load_state_dict(ours, strict=True)
    model.eval()
    report = LoadReport(
        loaded=sorted(ours),
        skipped=sorted(set(state) - set(ours)),
        missing=[],
        renamed=renamed,
        version=chosen,
        version_reason=reason,
    )
    return model, vocab, report


def save_checkpoint(
    model: ScGPTPerturbationModel,
    vocab: dict[str, int],
    path: str | os.PathLike,
    *,
    flash_attention_names: bool = True,
    extra_tensors: dict | None = None,
) -> Path:
    """Write ``vocab.json``, ``args.json`` and ``best_model.pt`` in the released scGPT
    layout.

    With ``flash_attention_names`` the attention tensors are stored as
    ``self_attn.Wqkv.*``, exactly as in the released checkpoints, so the book's own
    pretrained model goes through the same loader.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if flash_attention_names:
        state = {
            k.replace("self_attn.in_proj_weight", "self_attn.Wqkv.weight").replace(
                "self_attn.in_proj_bias", "self_attn.Wqkv.bias"
            ): v
            for k, v in state.items()
        }
    state.update(extra_tensors or {})
    torch.save(state, path / "best_model.pt")
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "args.json").write_text(json.dumps(model.config.to_args(), indent=1))
    return path


def map_genes(
    genes, vocab: dict[str, int], pad_token: str = "<pad>"
) -> tuple[np.ndarray, list[str]]:
    """Vocabulary ids of ``genes`` (``<pad>`` for genes the vocabulary lacks) and the
    list of those genes."""
    pad = vocab[pad_token]
    ids = np.array([vocab.get(g, pad) for g in genes], dtype=np.int64)
    missing = [g for g in genes if g not in vocab]
    return ids, missing


def build_vocab(genes) -> dict[str, int]:
    """A vocabulary for the book's own pretraining: the genes, then ``<pad>``,
    ``<cls>``, ``<eoc>``."""
    genes = list(dict.fromkeys(genes))
    vocab = {g: i for i, g in enumerate(genes)}
    for token in ("<pad>", "<cls>", "<eoc>"):
        vocab[token] = len(vocab)
    return vocab


def is_book_checkpoint(folder) -> bool:
    """Whether a checkpoint folder holds a model the book pretrained itself (its
    args.json carries TINY_NOTE)."""
    path = Path(folder) / "args.json"
    return path.is_file() and json.loads(path.read_text()).get("note") == TINY_NOTE
