"""CPA's training with the paper's settings, as cpa-tools 0.8.x trains it.

The paper (``benchmark/src/run_cpa.py``) trains with ``max_epochs=2000``,
``batch_size=2048``, validation every 5 epochs, early stopping after 5 validations
without a better ``cpa_metric`` and the trainer settings in :data:`PAPER_TRAINER`.
One epoch, as cpa-tools' ``CPATrainingPlan`` runs it (epochs counted from 0):

- the training cells in a random order, in batches of ``batch_size``;
- mixup with ``alpha_mixup`` - which is 0 in every epoch when an AE pre-training is set
  (cpa-tools subtracts the epoch from itself before the warm-up), so the paper's run
  never mixes cells (a permutation is still drawn, as cpa-tools draws it);
- while ``epoch <= n_epochs_pretrain_ae``: one Adam step of the autoencoder on the NB
  reconstruction loss, then one step of the adversary (a classifier of the condition
  from the basal state, detached) on its weighted cross-entropy plus ``pen_adv`` times
  the squared gradient of its summed logits;
- afterwards: on batches ``0, adv_steps, 2 adv_steps, ...`` one autoencoder step on
  ``recon - adv_lambda * adversary loss`` (``adv_lambda`` rises linearly from 0 to
  ``reg_adv`` over ``n_epochs_adv_warmup`` epochs after the pre-training), on the
  other batches one adversary step;
- after an epoch ``e > 1`` with ``e % step_size_lr == 0`` every learning rate is
  multiplied by 0.9;
- after every ``check_val_every_n_epoch``-th epoch, in eval mode on the validation
  cells: ``cpa_metric = r2_mean + 0.5 r2_var + exp(purity_after - purity_basal)``
  (R2 of the per-condition means and variances of ``log1p`` counts, kNN purity of the
  conditions in ``z`` and ``z_basal``); a better value (strictly) keeps a copy of the
  weights (from epoch 1 on), ``early_stopping_patience`` checks without one stop the
  training; at the end the best copy is restored.

The weights are initialised exactly as cpa-tools initialises them for the same seed
(checked by ``tests/parity/test_cpa.py``); the adversary's initialisation and the
dropout masks come from a different random stream (torch versions differ), so a trained
model matches the real one statistically, not bit for bit.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers.errors import InputError
from helpers.models.cpa.checkpoint import CONTROL, DEFAULTS, PAD, CPAModel
from helpers.models.cpa.network import CPANetwork, FCStack, nb_log_likelihood

__all__ = ["PAPER_MODEL", "PAPER_TRAINER", "new_model", "train"]

# run_cpa.py's model_params
PAPER_MODEL = {
    "n_latent": 32,
    "recon_loss": "nb",
    "doser_type": "linear",
    "n_hidden_encoder": 256,
    "n_layers_encoder": 4,
    "n_hidden_decoder": 256,
    "n_layers_decoder": 2,
    "use_batch_norm_encoder": True,
    "use_layer_norm_encoder": False,
    "use_batch_norm_decoder": False,
    "use_layer_norm_decoder": False,
    "dropout_rate_encoder": 0.2,
    "dropout_rate_decoder": 0.0,
    "variational": False,
    "seed": 8206,
}

# run_cpa.py's trainer_params, plus cpa-tools' defaults for the doser's optimiser
PAPER_TRAINER = {
    "n_epochs_adv_warmup": 50,
    "n_epochs_mixup_warmup": 10,
    "n_epochs_pretrain_ae": 10,
    "mixup_alpha": 0.1,
    "lr": 0.0001,
    "wd": 3.2170178270865573e-06,
    "adv_steps": 3,
    "reg_adv": 10.0,
    "pen_adv": 20.0,
    "adv_lr": 0.0001,
    "adv_wd": 7.051355554517135e-06,
    "n_layers_adv": 2,
    "n_hidden_adv": 128,
    "use_batch_norm_adv": True,
    "dropout_rate_adv": 0.3,
    "step_size_lr": 25,
    "doser_lr": 3e-4,
    "doser_wd": 4e-7,
}


class Adversary(nn.Module):
    """scvi-tools' ``Classifier`` with logits: an MLP, then a linear map to labels.

    Parameters
    ----------
    n_input
        Width of the basal state.
    n_labels
        Number of conditions.
    settings
        ``n_hidden_adv``, ``n_layers_adv``, ``use_batch_norm_adv``,
        ``dropout_rate_adv``.
    """

    def __init__(self, n_input: int, n_labels: int, settings: dict):
        super().__init__()
        hidden = settings["n_hidden_adv"]
        self.body = FCStack(
            n_input,
            hidden,
            n_layers=settings["n_layers_adv"],
            n_hidden=hidden,
            dropout_rate=settings["dropout_rate_adv"],
            use_batch_norm=settings["use_batch_norm_adv"],
            use_layer_norm=False,
        )
        self.head = nn.Linear(hidden, n_labels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z))


def new_model(var_names, conditions, *, control: str = CONTROL, **model) -> CPAModel:
    """An untrained CPA for the given genes and conditions, as cpa-tools builds it.

    The vocabulary is ``<PAD>``, the control label, then every target in ``conditions``
    sorted; the weights are drawn after ``torch.manual_seed(seed)`` in cpa-tools'
    order, so the same seed gives the same initial weights as the real ``CPA``.

    Parameters
    ----------
    var_names
        Gene names in column order.
    conditions
        Condition labels of the screen (``"A+B"``, ``"A"``, ``"ctrl"``).
    control
        The control label.
    **model
        Hyper-parameters overriding :data:`PAPER_MODEL` (``seed`` included).
    """
    if control != CONTROL:
        raise InputError(
            f"control label {control!r}: the book's CPA reads the paper's 'ctrl'; "
            "rename the control condition to 'ctrl'"
        )
    cfg = dict(DEFAULTS, **PAPER_MODEL)
    unknown = sorted(set(model) - set(cfg))
    if unknown:
        raise InputError(
            f"unknown CPA settings {unknown}; use the names of PAPER_MODEL"
        )
    cfg.update(model)
    targets = set()
    for label in conditions:
        label = str(label).replace("+ctrl", "").replace("ctrl+", "")
        targets.update(m for m in label.split("+") if m != CONTROL)
    vocab = [PAD, CONTROL, *sorted(targets)]
    seed = int(cfg.pop("seed"))
    torch.manual_seed(seed)
    np.random.seed(seed)
    network = CPANetwork(len(var_names), len(vocab), cfg)
    cfg["seed"] = seed
    network.cfg = cfg
    return CPAModel(network, {p: i for i, p in enumerate(vocab)}, var_names)


def _r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    # torchmetrics' r2_score(preds, target), NaN read as 0 as cpa-tools does
    ss_res = ((target - pred) ** 2).sum()
    ss_tot = ((target - target.mean()) ** 2).sum()
    return float(torch.nan_to_num(1 - ss_res / ss_tot, nan=0.0))


def _knn_purity(data: np.ndarray, labels: np.ndarray, n_neighbors: int) -> float:
    from sklearn.neighbors import NearestNeighbors

    _, codes = np.unique(labels, return_inverse=True)
    nbrs = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(data)
    idx = nbrs.kneighbors(data, return_distance=False)[:, 1:]
    per_cell = (codes[idx] == codes[:, None]).mean(axis=1)
    return float(np.mean([per_cell[codes == c].mean() for c in np.unique(codes)]))


@torch.no_grad()
def _cpa_metric(net, x, perts, doses, labels) -> float:
    out = net(x, perts, doses)
    x_log = torch.log1p(x)
    pred = torch.nan_to_num(torch.log1p(out["mu"]), nan=0, posinf=1e3, neginf=-1e3)
    r2_mean = r2_var = 0.0
    groups = np.unique(labels)
    for g in groups:
        rows = torch.as_tensor(labels == g)
        r2_mean += _r2(pred[rows].mean(0), x_log[rows].mean(0))
        r2_var += _r2(pred[rows].var(0), x_log[rows].var(0))
    n = min(len(labels) - 1, 30)
    basal = _knn_purity(out["z_basal"].numpy(), labels, n)
    after = _knn_purity(out["z"].numpy(), labels, n)
    return (
        r2_mean / len(groups) + 0.5 * r2_var / len(groups) + math.e ** (after - basal)
    )


class _Checks:
    """cpa-tools' two validation callbacks on ``cpa_metric``: scvi-tools'
    ``SaveBestState`` (keep the weights at a strictly better value, from epoch 1 on)
    and Lightning's ``EarlyStopping`` (mode max, min_delta 0: stop at a non-finite
    value or after ``patience`` checks without a strictly better one)."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best_kept = self.best_seen = -math.inf
        self.wait = 0

    def keep(self, epoch: int, metric: float) -> bool:
        if epoch > 0 and metric > self.best_kept:
            self.best_kept = metric
            return True
        return False

    def stop(self, metric: float) -> bool:
        if not math.isfinite(metric):
            return True
        if metric > self.best_seen:
            self.best_seen, self.wait = metric, 0
            return False
        self.wait += 1
        return self.wait >= self.patience


def _schedule(trainer: dict, epoch: int) -> tuple[float, float, bool]:
    pre = trainer["n_epochs_pretrain_ae"]
    # cpa-tools' alpha_mixup: with a pre-training the epoch is reset to 0 first
    alpha = trainer["mixup_alpha"]
    warm = trainer["n_epochs_mixup_warmup"]
    if warm:
        e = 0 if pre else epoch
        alpha = alpha * e / warm if e <= warm else alpha
    adv_lambda = trainer["reg_adv"]
    adv_warm = trainer["n_epochs_adv_warmup"]
    if adv_warm is not None:
        e = epoch - pre if pre else epoch
        if e <= adv_warm:
            adv_lambda = adv_lambda * e / adv_warm
    start_adv = epoch > pre if pre else True
    return max(0.0, alpha), adv_lambda, start_adv


def train(model: CPAModel, counts, conditions, *, split, **settings) -> pd.DataFrame:
    """Train ``model`` in place as the paper's ``CPA.train`` does; returns the history.

    Parameters
    ----------
    model
        A :class:`CPAModel` (from :func:`new_model` or ``load_model``).
    counts
        ``(cells, genes)`` raw counts in the model's gene order.
    conditions
        One condition label per cell.
    split
        One of ``"train"``, ``"valid"`` or anything else (unused) per cell: the cells
        trained on and the cells the early stopping watches (the paper passes its
        *test* conditions here).
    **settings
        ``max_epochs`` (2000), ``batch_size`` (2048), ``early_stopping_patience`` (5),
        ``check_val_every_n_epoch`` (5) and any key of :data:`PAPER_TRAINER`.
    """
    run = {"max_epochs": 2000, "batch_size": 2048, "early_stopping_patience": 5}
    run["check_val_every_n_epoch"] = 5
    unknown = sorted(set(settings) - set(run) - set(PAPER_TRAINER))
    if unknown:
        raise InputError(
            f"unknown CPA training settings {unknown}; use the names of PAPER_TRAINER "
            "or max_epochs, batch_size, early_stopping_patience, "
            "check_val_every_n_epoch"
        )
    trainer = {k: settings.get(k, v) for k, v in PAPER_TRAINER.items()}
    run.update({k: settings[k] for k in run if k in settings})
    if hasattr(counts, "toarray"):
        counts = counts.toarray()
    x_all = torch.as_tensor(np.asarray(counts, dtype=np.float32))
    labels = np.array(
        [str(c).replace("+ctrl", "").replace("ctrl+", "") for c in conditions]
    )
    split = np.asarray(split).astype(str)
    if not (len(labels) == len(split) == x_all.shape[0]):
        raise InputError(
            f"{x_all.shape[0]} rows of counts, {len(labels)} conditions and "
            f"{len(split)} split labels; give one condition and one split per row"
        )
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "valid")
    if len(tr) < 2 or len(va) < 2:
        raise InputError(
            f"{len(tr)} training and {len(va)} validation cells; CPA needs at least 2 "
            "of each (split labels 'train' and 'valid')"
        )
    perts, doses = model.encode(labels)
    # the adversary's classes: every condition of the screen, sorted (scvi's mapping)
    classes, y_all = np.unique(labels, return_inverse=True)
    y_all = torch.as_tensor(y_all)
    n_pos = np.bincount(y_all.numpy(), minlength=len(classes))
    weights = torch.tensor(len(labels) / n_pos - 1.0, dtype=torch.float32)

    net = model.network
    adversary = Adversary(net.n_latent, len(classes), trainer)
    ae_params = [
        *net.encoder.parameters(),
        *net.decoder.parameters(),
        *net.pert_network.pert_embedding.parameters(),
        net.px_r,
    ]
    opt = torch.optim.Adam(ae_params, lr=trainer["lr"], weight_decay=trainer["wd"])
    opt_doser = torch.optim.Adam(
        net.pert_network.dosers.parameters(),
        lr=trainer["doser_lr"],
        weight_decay=trainer["doser_wd"],
    )
    opt_adv = torch.optim.Adam(
        adversary.parameters(), lr=trainer["adv_lr"], weight_decay=trainer["adv_wd"]
    )
    schedulers = [
        torch.optim.lr_scheduler.StepLR(o, step_size=trainer["step_size_lr"], gamma=0.9)
        for o in (opt, opt_doser, opt_adv)
    ]
    cross_entropy = nn.CrossEntropyLoss(weight=weights)

    def adversary_loss(z_basal, y, y_mix, lam, penalty):
        if penalty:
            z_basal = z_basal.requires_grad_(True)
        logits = adversary(z_basal)
        loss = lam * cross_entropy(logits, y) + (1.0 - lam) * cross_entropy(
            logits, y_mix
        )
        if not penalty:
            return loss, None
        (grad,) = torch.autograd.grad(
            logits.sum(), z_basal, create_graph=True, retain_graph=True
        )
        return loss, grad.pow(2).mean()

    best_state = copy.deepcopy(net.state_dict())
    checks = _Checks(run["early_stopping_patience"])
    history = []
    for epoch in range(run["max_epochs"]):
        alpha, adv_lambda, start_adv = _schedule(trainer, epoch)
        net.train()
        adversary.train()
        order = tr[torch.randperm(len(tr)).numpy()]
        recon_sum, adv_sum, n_batches = 0.0, 0.0, 0
        for b, start in enumerate(range(0, len(order), run["batch_size"])):
            rows = order[start : start + run["batch_size"]]
            x, p, d, y = x_all[rows], perts[rows], doses[rows], y_all[rows]
            lam = 1.0 if alpha == 0.0 else float(np.random.beta(alpha, alpha))
            mix = torch.randperm(len(rows))
            x = lam * x + (1.0 - lam) * x[mix]
            z_basal = net.encoder(torch.log1p(x))
            z_pert = net.pert_network(p, d)
            if lam < 1.0:
                z_pert = lam * z_pert + (1.0 - lam) * net.pert_network(p[mix], d[mix])
            library = torch.log(x.sum(1)).unsqueeze(1)
            mu = net.decoder(z_basal + z_pert, library)
            recon = -nb_log_likelihood(x, mu, torch.exp(net.px_r)).sum(-1).mean()
            if start_adv and b % trainer["adv_steps"] != 0:
                opt_adv.zero_grad()
                adv, pen = adversary_loss(z_basal.detach(), y, y[mix], lam, True)
                (adv + trainer["pen_adv"] * pen).backward()
                opt_adv.step()
            elif start_adv:
                opt.zero_grad()
                opt_doser.zero_grad()
                adv, _ = adversary_loss(z_basal, y, y[mix], lam, False)
                (recon - adv_lambda * adv).backward()
                opt.step()
                opt_doser.step()
            else:
                opt.zero_grad()
                opt_doser.zero_grad()
                recon.backward()
                opt.step()
                opt_doser.step()
                opt_adv.zero_grad()
                adv, pen = adversary_loss(z_basal.detach(), y, y[mix], lam, True)
                (adv + trainer["pen_adv"] * pen).backward()
                opt_adv.step()
            recon_sum += float(recon.detach())
            adv_sum += float(adv.detach())
            n_batches += 1
        history.append(
            {
                "epoch": epoch,
                "mode": "train",
                "recon_loss": recon_sum / n_batches,
                "adv_loss": adv_sum / n_batches,
                "cpa_metric": np.nan,
            }
        )
        if epoch > 1 and epoch % trainer["step_size_lr"] == 0:
            for s in schedulers:
                s.step()
        if (epoch + 1) % run["check_val_every_n_epoch"] != 0:
            continue
        net.eval()
        order = va[torch.randperm(len(va)).numpy()]
        metrics = []
        for start in range(0, len(order), run["batch_size"]):
            rows = order[start : start + run["batch_size"]]
            torch.randperm(len(rows))  # cpa-tools draws a mixup permutation here too
            metrics.append(
                _cpa_metric(net, x_all[rows], perts[rows], doses[rows], labels[rows])
            )
        metric = float(np.float32(np.mean(metrics)))
        history.append(
            {
                "epoch": epoch,
                "mode": "valid",
                "recon_loss": np.nan,
                "adv_loss": np.nan,
                "cpa_metric": metric,
            }
        )
        if checks.keep(epoch, metric):
            best_state = copy.deepcopy(net.state_dict())
        if checks.stop(metric):
            break
    net.load_state_dict(best_state)
    net.eval()
    return pd.DataFrame(history)
