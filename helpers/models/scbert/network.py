"""The book's Performer with the parameter names and shapes of scBERT's ``PerformerLM``.

scBERT (TencentAILabHealthcare/scBERT, ``performer_pytorch/performer_pytorch.py``) is a
Performer language model over one cell: token ``i`` is gene ``i``'s expression bin,
position ``i`` carries gene ``i``'s gene2vec vector, and one extra token (bin 0) closes
the sequence. This module re-implements its forward pass in the book's own torch code so
that ``panglao_pretrain.pth`` (``ckpt["model_state_dict"]``) loads into
:class:`PerformerNet` with ``strict=True``. Only the settings scBERT uses are built: no
local attention, no causal mode, no reversible layers, no dropout, softmax kernel.

Per layer (pre-LayerNorm residual blocks), for the input ``x`` (cells x genes x dim)::

    x = x + Attn(LN(x)),   x = x + FF(LN(x)),   FF(z) = W2 GELU(W1 z)

and FAVOR+ attention per head with the random projection ``P`` (m x d, a buffer)::

    phi(u) = m^-1/2 (exp(d^-1/4 u P^T - |u|^2 / (2 sqrt d) - max) + 1e-4)
    out_i = phi(q_i) . sum_j phi(k_j) v_j^T / (phi(q_i) . sum_j phi(k_j))

where ``max`` is the row maximum for queries and the maximum over the whole key tensor
(batch included) for keys, as in scBERT.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ...errors import InputError

__all__ = [
    "PerformerNet",
    "config_from_state_dict",
    "orthogonal_random_features",
]

_KERNEL_EPS = 1e-4


def orthogonal_random_features(rows: int, cols: int) -> torch.Tensor:
    """Gaussian orthogonal random matrix of FAVOR+ (scBERT's ``scaling=0``).

    Parameters
    ----------
    rows : number of random features ``m``.
    cols : head dimension ``d``.

    Blocks of ``d`` orthonormal rows (Q of a QR of a standard normal d x d matrix,
    transposed), the last block cut to ``m`` rows in all; row ``r`` is scaled by the
    norm of an independent standard normal vector of length ``d``. Draws from torch's
    global generator in the same order as scBERT.
    """
    blocks = []
    for _ in range(rows // cols):
        q, _ = torch.linalg.qr(torch.randn((cols, cols)), mode="reduced")
        blocks.append(q.t())
    rest = rows - (rows // cols) * cols
    if rest > 0:
        q, _ = torch.linalg.qr(torch.randn((cols, cols)), mode="reduced")
        blocks.append(q.t()[:rest])
    matrix = torch.cat(blocks)
    multiplier = torch.randn((rows, cols)).norm(dim=1)
    return torch.diag(multiplier) @ matrix


def _softmax_features(
    data: torch.Tensor, projection: torch.Tensor, is_query: bool
) -> torch.Tensor:
    """Positive random features phi(u) of the softmax kernel (formula in the module)."""
    normaliser = data.shape[-1] ** -0.25
    ratio = projection.shape[0] ** -0.5
    dash = torch.einsum("...id,jd->...ij", normaliser * data, projection.type_as(data))
    diag = (data**2).sum(dim=-1, keepdim=True) / 2.0 * normaliser**2
    if is_query:
        top = dash.max(dim=-1, keepdim=True).values
    else:
        top = dash.max()
    return (ratio * (torch.exp(dash - diag - top) + _KERNEL_EPS)).type_as(data)


def _linear_attention(q, k, v):
    k_sum = k.sum(dim=-2)
    d_inv = 1.0 / torch.einsum("...nd,...d->...n", q, k_sum.type_as(q))
    context = torch.einsum("...nd,...ne->...de", k, v)
    return torch.einsum("...de,...nd,...n->...ne", context, q, d_inv)


class _FastAttention(nn.Module):
    def __init__(self, dim_head: int, n_features: int):
        super().__init__()
        self.n_features = n_features
        self.dim_head = dim_head
        self.register_buffer(
            "projection_matrix", orthogonal_random_features(n_features, dim_head)
        )

    @torch.no_grad()
    def redraw(self) -> None:
        fresh = orthogonal_random_features(self.n_features, self.dim_head)
        self.projection_matrix.copy_(fresh)

    def forward(self, q, k, v):
        q = _softmax_features(q, self.projection_matrix, True)
        k = _softmax_features(k, self.projection_matrix, False)
        return _linear_attention(q, k, v)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, n_features: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.fast_attention = _FastAttention(dim_head, n_features)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x):
        b, n, _ = x.shape
        split = lambda t: t.view(b, n, self.heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))
        out = self.fast_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.w1 = nn.Linear(dim, dim * mult)
        self.act = nn.GELU()
        self.w2 = nn.Linear(dim * mult, dim)

    def forward(self, x):
        return self.w2(self.act(self.w1(x)))


class _Chunk(nn.Module):
    """The feed-forward under the name ``fn`` (scBERT's ``Chunk``, 1 chunk)."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class _PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class _Sequence(nn.Module):
    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        for attention, feedforward in self.layers:
            x = x + attention(x)
            x = x + feedforward(x)
        return x


class _Stack(nn.Module):
    """The layers plus the redraw counter of the random features (a state-dict
    buffer)."""

    def __init__(self, dim, depth, heads, dim_head, n_features, redraw_interval):
        super().__init__()
        layers = nn.ModuleList(
            nn.ModuleList(
                [
                    _PreNorm(dim, _Attention(dim, heads, dim_head, n_features)),
                    _PreNorm(dim, _Chunk(_FeedForward(dim))),
                ]
            )
            for _ in range(depth)
        )
        self.net = _Sequence(layers)
        self.redraw_interval = redraw_interval
        self.register_buffer("calls_since_last_redraw", torch.tensor(0))

    def check_redraw(self) -> None:
        """In training mode, redraw every layer's features after ``redraw_interval``
        calls (scBERT's ``check_redraw_projections``); never in eval mode."""
        if not self.training:
            return
        interval = self.redraw_interval
        if interval is not None and self.calls_since_last_redraw >= interval:
            for module in self.modules():
                if isinstance(module, _FastAttention):
                    module.redraw()
            self.calls_since_last_redraw.zero_()
            return
        self.calls_since_last_redraw += 1

    def forward(self, x):
        self.check_redraw()
        return self.net(x)


class _GenePositions(nn.Module):
    """Fixed gene embedding added at each position (scBERT's gene2vec embedding: the
    table's rows plus one zero row for the closing token, float64 as scBERT builds
    it)."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        full = np.concatenate([table, np.zeros((1, table.shape[1]))], axis=0)
        self.emb = nn.Embedding.from_pretrained(torch.from_numpy(full))

    def forward(self, x):
        return self.emb(torch.arange(x.shape[1], device=x.device))


class PerformerNet(nn.Module):
    """scBERT's PerformerLM (same state-dict names and shapes), the book's own code.

    Parameters
    ----------
    num_tokens : bins + 2 (scBERT: ``bin_num + 2``; the last id is the mask token).
    max_seq_len : genes + 1 (the closing token).
    dim, depth, heads, dim_head : width, layers, attention heads, head width (scBERT:
        200, 6, 10, 64).
    gene_table : the gene2vec table (genes x dim); ``None`` = no position embedding,
        scBERT's ``g2v_position_emb=False`` (zeros are added).
    n_features : random features per head (default ``int(d ln d)`` as scBERT).
    redraw_interval : training calls between redraws of the features (1000).
    """

    def __init__(
        self,
        *,
        num_tokens: int,
        max_seq_len: int,
        dim: int,
        depth: int,
        heads: int,
        dim_head: int = 64,
        gene_table: np.ndarray | None = None,
        n_features: int | None = None,
        redraw_interval: int | None = 1000,
    ):
        super().__init__()
        if n_features is None:
            n_features = int(dim_head * math.log(dim_head))
        self.max_seq_len = max_seq_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = None if gene_table is None else _GenePositions(gene_table)
        self.performer = _Stack(
            dim, depth, heads, dim_head, n_features, redraw_interval
        )
        self.norm = nn.LayerNorm(dim)
        self.to_out = nn.Linear(dim, num_tokens)

    def forward(self, tokens: torch.Tensor, return_encodings: bool = False):
        """Logits (cells x positions x tokens) or, with ``return_encodings``, the
        normalised last-layer states (cells x positions x dim).

        Parameters
        ----------
        tokens : long tensor, cells x positions (positions <= ``max_seq_len``).
        return_encodings : stop before the output head.
        """
        if tokens.shape[1] > self.max_seq_len:
            raise InputError(
                f"{tokens.shape[1]} tokens exceed the model's {self.max_seq_len}"
                " positions: pass one bin per gene of the model plus the closing token"
            )
        x = self.token_emb(tokens)
        if self.pos_emb is not None:
            x += self.pos_emb(x)
        x = self.norm(self.performer(x))
        if return_encodings:
            return x
        return self.to_out(x)


def config_from_state_dict(state: dict) -> dict:
    """The constructor settings of :class:`PerformerNet` read off a scBERT state dict.

    Parameters
    ----------
    state : ``ckpt["model_state_dict"]`` of a scBERT checkpoint.

    Returns ``num_tokens, dim, depth, heads, dim_head, n_features`` (the sequence length
    comes from the gene list). Raises :class:`InputError` when a tensor is missing.
    """
    try:
        num_tokens, dim = state["token_emb.weight"].shape
        prefix = "performer.net.layers.{}.0.fn."
        depth = 0
        while f"{prefix.format(depth)}to_q.weight" in state:
            depth += 1
        n_features, dim_head = state[
            prefix.format(0) + "fast_attention.projection_matrix"
        ].shape
        inner = state[prefix.format(0) + "to_q.weight"].shape[0]
    except KeyError as err:
        raise InputError(
            f"the checkpoint has no tensor {err}: pass a scBERT checkpoint"
            " (torch.save({'model_state_dict': PerformerLM.state_dict()}))"
        ) from None
    return {
        "num_tokens": int(num_tokens),
        "dim": int(dim),
        "depth": depth,
        "heads": int(inner // dim_head),
        "dim_head": int(dim_head),
        "n_features": int(n_features),
    }
