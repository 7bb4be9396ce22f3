"""scGPT's perturbation network (``TransformerGenerator``) with the released parameter
names (chapter 4).

The torch modules only; :mod:`.checkpoint` reads and writes the released checkpoint
layout, :mod:`.training` pretrains, fine-tunes and predicts, :mod:`.method` plugs the
model into :func:`helpers.benchmark.run`.


Two architecture versions, as released by scGPT (``ScGPTConfig.version``):

* ``"0.2.1"`` (default; the version the paper's benchmark ran, tag v0.2.1): the summed
  gene + value + perturbation embeddings go through ``bn = BatchNorm1d(d, eps=6.1e-5)``
  (over the feature dimension: the tensor is permuted to ``(batch, d, tokens)`` and
  back; statistics are taken over every token of the batch, padded tokens included)
  right before the transformer (no dropout in between; the only dropout before the
  transformer is the value encoder's, applied before the sum); the decoder is
  ``ExprDecoder`` (``decoder.fc.*``: Linear-LeakyReLU-Linear-LeakyReLU-Linear per
  token).
* ``"0.2.2+"`` (master since commit 40f3a32, 2024-01-15): no BatchNorm; the decoder is
  ``AffineExprDecoder``: two ``ExprDecoder`` heads (``decoder.coeff_decoder.fc.*``,
  ``decoder.bias_decoder.fc.*``) and ``prediction = coeff(h) * input value + bias(h)``
  (master's defaults: no activation, no adaptive bias, no explicit zero probabilities).

Shared by both:

* ``encoder``: gene-token embedding ``encoder.embedding`` followed by
  ``encoder.enc_norm`` (LayerNorm);
* ``value_encoder``: continuous value encoder, ``x ->
  Dropout(LayerNorm(Linear(ReLU(Linear(clamp(x, max=512))))))``;
* ``pert_encoder``: ``nn.Embedding(3, d, padding_idx=pert_pad_id)``, flag 1 marks a
  perturbed gene;
* ``transformer_encoder``: ``nn.TransformerEncoder`` of post-norm
  ``nn.TransformerEncoderLayer`` (ReLU).

A cell is a set of gene tokens (no positions).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ...errors import InputError

__all__ = [
    "VERSIONS",
    "ScGPTConfig",
    "ScGPTPerturbationModel",
    "GeneEncoder",
    "ContinuousValueEncoder",
    "ExprDecoder",
    "AffineExprDecoder",
    "TINY_NOTE",
    "tiny_config",
]

VERSIONS = ("0.2.1", "0.2.2+")


@dataclass
class ScGPTConfig:
    """Architecture hyper-parameters, read from a checkpoint's ``args.json`` (same key
    names)."""

    ntoken: int
    embsize: int = 512
    nheads: int = 8
    d_hid: int = 512
    nlayers: int = 12
    dropout: float = 0.2
    pad_token: str = "<pad>"
    pad_value: float = -2.0
    pert_pad_id: int = 2
    version: str = "0.2.1"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.version not in VERSIONS:
            raise InputError(
                f"Unknown scGPT architecture version {self.version!r}; choose "
                f"one of {VERSIONS} "
                "(0.2.1: the paper's, with BatchNorm and ExprDecoder; 0.2.2+: "
                "master's AffineExprDecoder)."
            )

    def to_args(self) -> dict:
        """The ``args.json`` of this configuration (the released keys, ``extra``
        included)."""
        args = asdict(self)
        extra = args.pop("extra")
        args.pop("ntoken")
        # the released args.json has no version; the tensors tell it (detect_version)
        args.pop("version")
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
    """scGPT's ``ExprDecoder``: one value per token from the transformer output."""

    def __init__(self, d: int):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(d, d),
            nn.LeakyReLU(),
            nn.Linear(d, d),
            nn.LeakyReLU(),
            nn.Linear(d, 1),
        )

    def forward(
        self, x: torch.Tensor, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.fc(x).squeeze(-1)


class AffineExprDecoder(nn.Module):
    """scGPT >= 0.2.2's ``AffineExprDecoder`` (master's defaults): ``coeff(h) * input
    value + bias(h)``."""

    def __init__(self, d: int):
        super().__init__()
        self.coeff_decoder = ExprDecoder(d)
        self.bias_decoder = ExprDecoder(d)

    def forward(
        self, x: torch.Tensor, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.coeff_decoder(x) * values + self.bias_decoder(x)


class ScGPTPerturbationModel(nn.Module):
    """scGPT's perturbation ``TransformerGenerator`` of ``config.version``, with the
    released parameter names.

    ``forward(gene_ids, values, pert_flags, padding_mask)`` returns the predicted
    expression of every token (scGPT's ``mlm_output``), ``[batch, tokens]``. ``config``:
    the architecture (:class:`ScGPTConfig`); ``pad_id``: the vocabulary id of ``<pad>``.
    """

    def __init__(self, config: ScGPTConfig, pad_id: int):
        super().__init__()
        d = config.embsize
        self.config = config
        self.pad_id = pad_id
        self.encoder = GeneEncoder(config.ntoken, d, pad_id)
        self.value_encoder = ContinuousValueEncoder(d, config.dropout)
        self.pert_encoder = nn.Embedding(3, d, padding_idx=config.pert_pad_id)
        if config.version == "0.2.1":
            self.bn = nn.BatchNorm1d(d, eps=6.1e-5)
        layer = nn.TransformerEncoderLayer(
            d, config.nheads, config.d_hid, config.dropout, batch_first=True
        )
        self.transformer_encoder = nn.TransformerEncoder(
            layer, config.nlayers, enable_nested_tensor=False
        )
        self.decoder = (
            ExprDecoder(d) if config.version == "0.2.1" else AffineExprDecoder(d)
        )

    @property
    def version(self) -> str:
        return self.config.version

    def forward(
        self,
        gene_ids: torch.Tensor,
        values: torch.Tensor,
        pert_flags: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        *,
        always_mask: bool = False,
    ) -> torch.Tensor:
        """Predicted expression of every token: ``[batch, tokens]`` from ids, input
        values and 0/1 flags.

        ``padding_mask`` (True = ignore this token as a key) defaults to the ``<pad>``
        tokens. When no token of the batch is padded, the transformer runs without a
        mask (same output, faster inference); ``always_mask=True`` passes the all-False
        mask anyway, as scGPT does (for comparisons).
        """
        x = (
            self.encoder(gene_ids)
            + self.value_encoder(values)
            + self.pert_encoder(pert_flags)
        )
        if self.config.version == "0.2.1":
            # BatchNorm1d normalises dim 1: (batch, tokens, d) -> (batch, d, tokens) and
            # back. In training mode the statistics cover every token of the batch,
            # padded ones included, as in scGPT 0.2.1.
            x = self.bn(x.permute(0, 2, 1)).permute(0, 2, 1)
        if padding_mask is None:
            padding_mask = gene_ids.eq(self.pad_id)
        if not always_mask and not bool(padding_mask.any()):
            padding_mask = None
        h = self.transformer_encoder(x, src_key_padding_mask=padding_mask)
        return self.decoder(h, values)


# --------------------------------------------------------------------------------------


TINY_NOTE = "tiny configuration trained by the book (not scGPT_human)"


def tiny_config(
    ntoken: int,
    *,
    embsize: int = 32,
    nheads: int = 2,
    d_hid: int = 64,
    nlayers: int = 2,
    dropout: float = 0.1,
    version: str = "0.2.1",
) -> ScGPTConfig:
    """A small configuration that trains in minutes on a CPU (the real scGPT_human: 512
    / 8 / 512 / 12).

    ``args.json`` of a checkpoint saved from it carries ``"note": TINY_NOTE`` (see
    :func:`is_book_checkpoint`).
    """
    return ScGPTConfig(
        ntoken=ntoken,
        embsize=embsize,
        nheads=nheads,
        d_hid=d_hid,
        nlayers=nlayers,
        dropout=dropout,
        version=version,
        extra={"note": TINY_NOTE},
    )
