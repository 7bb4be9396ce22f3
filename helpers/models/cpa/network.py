"""CPA's network (Lotfollahi et al. 2023, cpa-tools 0.8.x) in the book's own torch.

The module computes, for a cell with raw counts ``x`` (genes) and a perturbation set
``P`` with doses ``d_p``:

- basal state ``z_basal = E(log(1 + x))``: an MLP of ``n_layers_encoder`` blocks
  (Linear, BatchNorm1d(momentum 0.01, eps 1e-3), ReLU, Dropout) to ``n_hidden_encoder``
  units, then a linear map to ``n_latent``;
- perturbation shift ``z_pert = sum_p f(d_p) e_p`` over the non-padding slots, with
  ``e_p`` a row of the perturbation embedding (row 0 is the padding row) and ``f`` the
  doser (``linear``: ``f(d) = d``);
- ``z = z_basal + z_pert`` (no covariates in the paper's protocol);
- decoder (scvi's ``DecoderSCVI``): an MLP of ``n_layers_decoder`` blocks, then
  ``scale = softmax(W h + b)`` and the NB mean ``mu = exp(library) * scale`` with
  ``library = log(sum_g x_g)``, the input cell's total count;
- likelihood: negative binomial with mean ``mu`` and inverse dispersion
  ``theta = exp(px_r)`` per gene.

Module and parameter names are those of cpa-tools' ``CPAModule`` (with scvi-tools
0.20's ``FCLayers``), so a state dict written by the real ``CPA.save`` loads strictly.
Only the paper's configuration is built: ``recon_loss="nb"``, ``variational=False``,
a ``linear``, ``sigm`` or ``logsigm`` doser, no covariates, no RDKit embeddings.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

import torch
from torch import nn

__all__ = ["CPANetwork", "FCStack", "nb_log_likelihood"]


class FCStack(nn.Module):
    """Blocks of Linear, optional BatchNorm1d / LayerNorm, ReLU, optional Dropout.

    The layout of scvi-tools' ``FCLayers`` (no categorical covariates): block ``i`` is
    ``fc_layers["Layer i"]`` with slots 0 Linear, 1 BatchNorm, 2 LayerNorm, 3 ReLU,
    4 Dropout (an unused slot is ``None``).

    Parameters
    ----------
    n_in, n_out
        Input and output widths.
    n_layers
        Number of blocks; the hidden ones have ``n_hidden`` units.
    n_hidden
        Width of the hidden blocks.
    dropout_rate
        Dropout after each block's ReLU (none when 0).
    use_batch_norm, use_layer_norm
        Normalisation of each block's linear output.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        n_layers: int,
        n_hidden: int,
        dropout_rate: float,
        use_batch_norm: bool,
        use_layer_norm: bool,
    ):
        super().__init__()
        dims = [n_in] + (n_layers - 1) * [n_hidden] + [n_out]
        blocks = OrderedDict()
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            block = nn.Sequential()
            block.add_module("0", nn.Linear(a, b))
            bn = nn.BatchNorm1d(b, momentum=0.01, eps=0.001)
            block.add_module("1", bn if use_batch_norm else None)
            ln = nn.LayerNorm(b, elementwise_affine=False)
            block.add_module("2", ln if use_layer_norm else None)
            block.add_module("3", nn.ReLU())
            drop = nn.Dropout(p=dropout_rate) if dropout_rate > 0 else None
            block.add_module("4", drop)
            blocks[f"Layer {i}"] = block
        self.fc_layers = nn.Sequential(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply every block in order, skipping the unused slots.

        Parameters
        ----------
        x
            ``(batch, n_in)`` input.
        """
        for block in self.fc_layers:
            for layer in block:
                if layer is not None:
                    x = layer(x)
        return x


class _Encoder(nn.Module):
    """cpa-tools' ``VanillaEncoder``: an ``FCStack`` then a linear map (``z``)."""

    def __init__(self, n_genes: int, n_latent: int, *, cfg: dict):
        super().__init__()
        n_hidden = cfg["n_hidden_encoder"]
        self.network = FCStack(
            n_genes,
            n_hidden,
            n_layers=cfg["n_layers_encoder"],
            n_hidden=n_hidden,
            dropout_rate=cfg["dropout_rate_encoder"],
            use_batch_norm=cfg["use_batch_norm_encoder"],
            use_layer_norm=cfg["use_layer_norm_encoder"],
        )
        self.z = nn.Linear(n_hidden, n_latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.z(self.network(x))


class _Decoder(nn.Module):
    """scvi-tools' ``DecoderSCVI`` (gene dispersion): hidden MLP, softmax scale."""

    def __init__(self, n_latent: int, n_genes: int, *, cfg: dict):
        super().__init__()
        n_hidden = cfg["n_hidden_decoder"]
        self.px_decoder = FCStack(
            n_latent,
            n_hidden,
            n_layers=cfg["n_layers_decoder"],
            n_hidden=n_hidden,
            dropout_rate=0.0,
            use_batch_norm=cfg["use_batch_norm_decoder"],
            use_layer_norm=cfg["use_layer_norm_decoder"],
        )
        self.px_scale_decoder = nn.Sequential(
            nn.Linear(n_hidden, n_genes), nn.Softmax(dim=-1)
        )
        # present in the real checkpoint; unused with gene-wise dispersion and NB
        self.px_r_decoder = nn.Linear(n_hidden, n_genes)
        self.px_dropout_decoder = nn.Linear(n_hidden, n_genes)

    def forward(self, z: torch.Tensor, library: torch.Tensor) -> torch.Tensor:
        scale = self.px_scale_decoder(self.px_decoder(z))
        return torch.exp(library) * scale


class _Doser(nn.Module):
    """cpa-tools' ``GeneralizedSigmoid``: dose response per perturbation."""

    def __init__(self, n_perts: int, kind: str):
        super().__init__()
        self.kind = kind
        self.beta = nn.Parameter(torch.ones(1, n_perts))
        self.bias = nn.Parameter(torch.zeros(1, n_perts))

    def forward(self, doses: torch.Tensor, perts: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return doses
        beta, bias = self.beta[0][perts], self.bias[0][perts]
        dose = torch.log1p(doses) if self.kind == "logsigm" else doses
        return (dose * beta + bias).sigmoid() - bias.sigmoid()


class _PerturbationNetwork(nn.Module):
    """Embedding rows scaled by the doser, summed over the non-padding slots."""

    def __init__(self, n_perts: int, n_latent: int, *, doser_type: str):
        super().__init__()
        self.pert_embedding = nn.Embedding(n_perts, n_latent, padding_idx=0)
        self.dosers = _Doser(n_perts, doser_type)

    def forward(self, perts: torch.Tensor, doses: torch.Tensor) -> torch.Tensor:
        perts = perts.long()
        scaled = self.dosers(doses, perts)  # (batch, slots)
        emb = self.pert_embedding(perts)  # (batch, slots, latent)
        keep = (perts != 0).to(emb.dtype)
        return (emb * (scaled * keep).unsqueeze(-1)).sum(dim=1)


class CPANetwork(nn.Module):
    """CPA's autoencoder with perturbation embeddings (the paper's configuration).

    Parameters
    ----------
    n_genes
        Number of genes (input and output width).
    n_perts
        Size of the perturbation vocabulary, padding row and ``ctrl`` included.
    cfg
        The model's hyper-parameters as cpa-tools names them (``n_latent``,
        ``n_hidden_encoder``, ``n_layers_encoder``, ``n_hidden_decoder``,
        ``n_layers_decoder``, ``use_batch_norm_encoder``, ``use_layer_norm_encoder``,
        ``use_batch_norm_decoder``, ``use_layer_norm_decoder``,
        ``dropout_rate_encoder``, ``doser_type``).
    """

    def __init__(self, n_genes: int, n_perts: int, cfg: dict):
        super().__init__()
        self.n_genes, self.n_perts = n_genes, n_perts
        self.n_latent = cfg["n_latent"]
        self.cfg = dict(cfg)
        self.encoder = _Encoder(n_genes, self.n_latent, cfg=cfg)
        self.px_r = nn.Parameter(torch.randn(n_genes))
        self.decoder = _Decoder(self.n_latent, n_genes, cfg=cfg)
        self.pert_network = _PerturbationNetwork(
            n_perts, self.n_latent, doser_type=cfg["doser_type"]
        )
        self.covars_embeddings = nn.ModuleDict()

    def latent(self, x, perts, doses) -> dict:
        """Basal state, perturbation shift and their sum for a batch.

        Parameters
        ----------
        x
            ``(batch, genes)`` raw counts.
        perts
            ``(batch, slots)`` perturbation indices (0 = padding).
        doses
            ``(batch, slots)`` doses.
        """
        z_basal = self.encoder(torch.log1p(x))
        z_pert = self.pert_network(perts, doses)
        library = torch.log(x.sum(1)).unsqueeze(1)
        return {
            "z_basal": z_basal,
            "z_pert": z_pert,
            "z": z_basal + z_pert,
            "library": library,
        }

    def forward(self, x, perts, doses) -> dict:
        """NB mean and inverse dispersion for a batch (``mu``, ``theta``) plus latents.

        Parameters
        ----------
        x
            ``(batch, genes)`` raw counts.
        perts
            ``(batch, slots)`` perturbation indices (0 = padding).
        doses
            ``(batch, slots)`` doses.
        """
        out = self.latent(x, perts, doses)
        out["mu"] = self.decoder(out["z"], out["library"])
        out["theta"] = torch.exp(self.px_r)
        return out

    def reconstruction_loss(self, x, perts, doses) -> torch.Tensor:
        """CPA's reconstruction loss: NB negative log-likelihood, summed over genes,
        averaged over cells.

        Parameters
        ----------
        x
            ``(batch, genes)`` raw counts (input and target).
        perts
            ``(batch, slots)`` perturbation indices (0 = padding).
        doses
            ``(batch, slots)`` doses.
        """
        out = self.forward(x, perts, doses)
        return -nb_log_likelihood(x, out["mu"], out["theta"]).sum(-1).mean()


def nb_log_likelihood(x, mu, theta, eps: float = 1e-8) -> torch.Tensor:
    """Negative-binomial log-likelihood per entry, mean ``mu``, inverse dispersion
    ``theta``: ``theta log(theta/(theta+mu)) + x log(mu/(theta+mu))
    + lgamma(x+theta) - lgamma(theta) - lgamma(x+1)`` (``eps`` inside the logs, as
    scvi-tools writes it).

    Parameters
    ----------
    x
        Counts.
    mu
        Means, same shape as ``x``.
    theta
        Inverse dispersions, broadcast against ``x``.
    eps
        Added inside the logarithms.
    """
    log_theta_mu = torch.log(theta + mu + eps)
    return (
        theta * (torch.log(theta + eps) - log_theta_mu)
        + x * (torch.log(mu + eps) - log_theta_mu)
        + torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
    )
