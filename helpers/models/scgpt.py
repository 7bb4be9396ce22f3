"""A compact scGPT-style perturbation model, weight-compatible with the released checkpoints (chapter 4).

The architecture follows scGPT's ``TransformerGenerator`` as used for perturbation prediction
(scgpt 0.2.1, the version the paper ran), with the **same parameter names** as the released
``best_model.pt``, so that the real ``scGPT_human`` checkpoint loads into it:

* ``encoder``: gene-token embedding ``encoder.embedding`` followed by ``encoder.enc_norm`` (LayerNorm);
* ``value_encoder``: continuous value encoder, ``x -> LayerNorm(Linear(ReLU(Linear(clamp(x, max=512)))))``;
* ``pert_encoder``: ``nn.Embedding(3, d, padding_idx=pert_pad_id)``, flag 1 marks a perturbed gene;
* ``transformer_encoder``: ``nn.TransformerEncoder`` of post-norm ``nn.TransformerEncoderLayer`` (ReLU);
* ``decoder``: scgpt 0.2.1's ``ExprDecoder``, ``fc = Linear-LeakyReLU-Linear-LeakyReLU-Linear`` per token.

A cell is a set of gene tokens (no positions). Token embedding = gene + value + perturbation flag.

Checkpoint directory layout (released scGPT): ``vocab.json`` (symbol -> id, with ``<pad>``, ``<cls>``,
``<eoc>``), ``args.json`` (``embsize``, ``nheads``, ``d_hid``, ``nlayers``, ...), ``best_model.pt`` (a plain
state dict; attention weights named ``self_attn.Wqkv.*`` by flash-attention). :func:`load_pretrained`
renames those to PyTorch's ``self_attn.in_proj_*`` and transfers only the encoder, value encoder and
transformer (as the benchmark did); the perturbation encoder and decoder start fresh.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "ScGPTConfig",
    "ScGPTPerturbationModel",
    "LoadReport",
    "SPECIAL_TOKENS",
    "load_vocab",
    "load_pretrained",
    "save_checkpoint",
    "map_genes",
    "TRANSFERRED_PREFIXES",
]

SPECIAL_TOKENS = ("<pad>", "<cls>", "<eoc>")
TRANSFERRED_PREFIXES = ("encoder.", "value_encoder.", "transformer_encoder.")
CHECKPOINT_FILES = ("vocab.json", "args.json", "best_model.pt")


class CheckpointError(ValueError):
    """A checkpoint directory is missing files or does not match the architecture (the message says how)."""


@dataclass
class ScGPTConfig:
    """Architecture hyper-parameters, read from a checkpoint's ``args.json`` (same key names)."""

    ntoken: int
    embsize: int = 512
    nheads: int = 8
    d_hid: int = 512
    nlayers: int = 12
    dropout: float = 0.2
    pad_token: str = "<pad>"
    pad_value: float = -2.0
    pert_pad_id: int = 2
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: dict, ntoken: int, **overrides) -> "ScGPTConfig":
        missing = [k for k in ("embsize", "nheads", "d_hid", "nlayers") if k not in args]
        if missing:
            raise CheckpointError(f"args.json lacks {missing}; it must describe the model (embsize, nheads, d_hid, nlayers).")
        known = {k: args[k] for k in ("embsize", "nheads", "d_hid", "nlayers", "dropout", "pad_token", "pad_value")
                 if k in args}
        extra = {k: v for k, v in args.items() if k not in known}
        return cls(ntoken=ntoken, extra=extra, **{**known, **overrides})

    def to_args(self) -> dict:
        args = asdict(self)
        extra = args.pop("extra")
        args.pop("ntoken")
        return {**extra, **args}


class GeneEncoder(nn.Module):
    def __init__(self, ntoken: int, d: int, padding_idx: int):
        super().__init__()
        self.embedding = nn.Embedding(ntoken, d, padding_idx=padding_idx)
        self.enc_norm = nn.LayerNorm(d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.enc_norm(self.embedding(ids))


class ContinuousValueEncoder(nn.Module):
    def __init__(self, d: int, dropout: float, max_value: float = 512.0):
        super().__init__()
        self.linear1 = nn.Linear(1, d)
        self.activation = nn.ReLU()
        self.linear2 = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        self.max_value = max_value

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(values.unsqueeze(-1), max=self.max_value)
        return self.dropout(self.norm(self.linear2(self.activation(self.linear1(x)))))


class ExprDecoder(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).squeeze(-1)


class ScGPTPerturbationModel(nn.Module):
    """scGPT's perturbation ``TransformerGenerator`` (0.2.1 decoder) with the released parameter names."""

    def __init__(self, config: ScGPTConfig, pad_id: int):
        super().__init__()
        d = config.embsize
        self.config = config
        self.pad_id = pad_id
        self.encoder = GeneEncoder(config.ntoken, d, pad_id)
        self.value_encoder = ContinuousValueEncoder(d, config.dropout)
        self.pert_encoder = nn.Embedding(3, d, padding_idx=config.pert_pad_id)
        layer = nn.TransformerEncoderLayer(d, config.nheads, config.d_hid, config.dropout, batch_first=True)
        self.transformer_encoder = nn.TransformerEncoder(layer, config.nlayers, enable_nested_tensor=False)
        self.decoder = ExprDecoder(d)

    def forward(self, gene_ids: torch.Tensor, values: torch.Tensor, pert_flags: torch.Tensor,
                padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted expression of every token: ``[batch, tokens]`` from ids, input values and 0/1 flags."""
        x = self.encoder(gene_ids) + self.value_encoder(values) + self.pert_encoder(pert_flags)
        if padding_mask is None:
            padding_mask = gene_ids.eq(self.pad_id)
        h = self.transformer_encoder(x, src_key_padding_mask=padding_mask)
        return self.decoder(h)


# --------------------------------------------------------------------------------------------
# checkpoints


def _check_directory(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; a scGPT checkpoint is a folder holding {CHECKPOINT_FILES}.")
    missing = [f for f in CHECKPOINT_FILES if not (path / f).is_file()]
    if missing:
        raise CheckpointError(
            f"{path} lacks {missing}. A scGPT checkpoint folder (e.g. scGPT_human from the scGPT model zoo) holds "
            f"{', '.join(CHECKPOINT_FILES)}."
        )


def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """``vocab.json`` as a dict, with any missing special tokens appended (as scGPT's loaders do)."""
    path = Path(path)
    try:
        vocab = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}).") from None
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise CheckpointError(f"{path} must map gene symbols to integer ids.")
    ids = set(vocab.values())
    if len(ids) != len(vocab):
        raise CheckpointError(f"{path}: several genes share an id.")
    for token in SPECIAL_TOKENS:
        if token not in vocab:
            vocab[token] = max(ids | set(vocab.values())) + 1
    return vocab


def _rename_flash_keys(state: dict) -> dict:
    """flash-attention names -> PyTorch names: ``self_attn.Wqkv.*`` -> ``self_attn.in_proj_*`` (same packed q;k;v)."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("self_attn.Wqkv.weight", "self_attn.in_proj_weight")
        key = key.replace("self_attn.Wqkv.bias", "self_attn.in_proj_bias")
        renamed[key] = value
    return renamed


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did with each tensor of the checkpoint."""

    loaded: list[str]
    skipped: list[str]  # in the checkpoint, not transferred (other heads, decoder)
    missing: list[str]  # in the model, started fresh (pert_encoder, decoder)
    renamed: int  # attention tensors renamed from flash-attention names

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} from the checkpoint "
                f"({sorted({k.split('.')[0] for k in self.skipped})}), started {len(self.missing)} fresh "
                f"({sorted({k.split('.')[0] for k in self.missing})}); {self.renamed} attention tensors renamed")


def load_pretrained(path: str | os.PathLike, *, dropout: float | None = None, pert_pad_id: int = 2,
                    prefixes=TRANSFERRED_PREFIXES) -> tuple[ScGPTPerturbationModel, dict[str, int], LoadReport]:
    """Build the model from ``args.json`` and transfer the pretrained encoder, value encoder and transformer.

    Returns the model, the vocabulary and a :class:`LoadReport`. Raises :class:`CheckpointError` for a
    malformed folder or tensors whose shapes do not match ``args.json``.
    """
    path = Path(path)
    _check_directory(path)
    vocab = load_vocab(path / "vocab.json")
    try:
        args = json.loads((path / "args.json").read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path / 'args.json'} is not valid JSON ({err}).") from None
    overrides = {"pert_pad_id": pert_pad_id}
    if dropout is not None:
        overrides["dropout"] = dropout
    config = ScGPTConfig.from_args(args, ntoken=max(vocab.values()) + 1, **overrides)
    model = ScGPTPerturbationModel(config, pad_id=vocab[config.pad_token])
    try:
        state = torch.load(path / "best_model.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise CheckpointError(f"{path / 'best_model.pt'} could not be read by torch.load ({err}).") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path / 'best_model.pt'} must hold a plain state dict.")
    renamed = sum("self_attn.Wqkv." in k for k in state)
    state = _rename_flash_keys(state)
    own = model.state_dict()
    transfer = {k: v for k, v in state.items() if k.startswith(tuple(prefixes)) and k in own}
    bad = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in transfer.items() if v.shape != own[k].shape}
    if bad:
        example = next(iter(bad.items()))
        raise CheckpointError(
            f"{len(bad)} tensors do not match the architecture in args.json, e.g. {example[0]}: checkpoint "
            f"{example[1][0]} vs model {example[1][1]}. Is args.json from the same run as best_model.pt?"
        )
    unexpected_core = [k for k in state if k.startswith(tuple(prefixes)) and k not in own]
    if unexpected_core:
        raise CheckpointError(f"Checkpoint tensors with no counterpart in the model: {unexpected_core[:5]}.")
    model.load_state_dict(transfer, strict=False)
    report = LoadReport(
        loaded=sorted(transfer),
        skipped=sorted(k for k in state if k not in transfer),
        missing=sorted(k for k in own if k not in transfer),
        renamed=renamed,
    )
    return model, vocab, report


def save_checkpoint(model: ScGPTPerturbationModel, vocab: dict[str, int], path: str | os.PathLike, *,
                    flash_attention_names: bool = True, extra_tensors: dict | None = None) -> Path:
    """Write ``vocab.json``, ``args.json`` and ``best_model.pt`` in the released scGPT layout.

    With ``flash_attention_names`` the attention tensors are stored as ``self_attn.Wqkv.*``, exactly as in
    the released checkpoints, so the book's own pretrained model goes through the same loader.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if flash_attention_names:
        state = {k.replace("self_attn.in_proj_weight", "self_attn.Wqkv.weight")
                  .replace("self_attn.in_proj_bias", "self_attn.Wqkv.bias"): v for k, v in state.items()}
    state.update(extra_tensors or {})
    torch.save(state, path / "best_model.pt")
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "args.json").write_text(json.dumps(model.config.to_args(), indent=1))
    return path


def map_genes(genes, vocab: dict[str, int], pad_token: str = "<pad>") -> tuple[np.ndarray, list[str]]:
    """Vocabulary ids of ``genes`` (``<pad>`` for genes the vocabulary lacks) and the list of those genes."""
    pad = vocab[pad_token]
    ids = np.array([vocab.get(g, pad) for g in genes], dtype=np.int64)
    missing = [g for g in genes if g not in vocab]
    return ids, missing
