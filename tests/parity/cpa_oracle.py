"""Oracle for the CPA parity tests: runs the REAL cpa-tools and stores what it computes.

Run inside the side environment made by ``scripts/make_cpa_venv.sh`` (Python 3.10,
cpa-tools 0.8.1 with the paper's pins), never in the book's venv::

    .venv-cpa/bin/python tests/parity/cpa_oracle.py OUT_DIR

It builds a tiny synthetic screen with a fixed seed (raw counts: 300 cells, 30 genes;
``ctrl``, four singles, two doubles), sets it up exactly as the paper's
``benchmark/src/run_cpa.py`` does (``condition_harm``, ``dose_val`` "1.0" / "1.0+1.0",
``setup_anndata(..., is_count_data=True, max_comb_len=2)``; cpa-tools 0.8.1 also needs
``categorical_covariate_keys=[]`` and a SMILES column, which 0.8.8 defaults), and writes
to OUT_DIR (described in ``tests/data/cpa/README.md``):

- ``screen.h5ad``: the input counts with ``condition``, ``condition_harm``,
  ``dose_val``, ``split``;
- ``small_untrained/``: ``CPA.save`` of an untrained CPA with the paper's settings but
  64 hidden units (so that the folder stays small and the reader must take the widths
  from the folder);
- ``paper_trained/``: ``CPA.save`` of a CPA with the paper's model settings, trained
  a few epochs with the paper's trainer settings (batch 2048, seed 8206);
- ``predictions.npz``: for each saved model, ``CPA.predict``'s ``obsm["CPA_pred"]`` on
  the screen whose X was replaced by random control cells (the paper's protocol), with
  those control counts, the conditions and the perturbation rows and doses
  ``setup_anndata`` encoded for them (``obsm["perts"]``, ``obsm["perts_doses"]``);
- ``train_batch.npz``: the trained model in train mode, one full batch without mixup,
  ``torch.manual_seed(0)`` right before ``inference``: the NB means, the reconstruction
  loss (NB negative log-likelihood, CPA's ``loss``), the gradients of a few parameters,
  and the encoder's dropout masks (packed bits; torch versions draw different masks
  from one seed, so the book replays these).
- ``training.npz``: six trainings of the paper's CPA (seed 8206, ``TRAIN_EPOCHS``
  epochs, the paper's trainer settings; the first with cpa-tools' own random stream,
  the others with torch and numpy reseeded to 1..5 after the model was built):
  their ``CPA_pred`` on the control counts ``x`` paired with the screen's conditions,
  the training reconstruction loss per epoch and the validation ``cpa_metric``; the
  same with batch size 64 under keys starting ``b64_`` (several batches per epoch,
  so the adversary's own steps run too).
"""

import json
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

N_CELLS, N_GENES, SEED = 300, 30, 20260
# (condition as GEARS writes it, split in the paper's naming)
CONDITIONS = [
    ("ctrl", "train"),
    ("G01+ctrl", "train"),
    ("G02+ctrl", "train"),
    ("G03+ctrl", "train"),
    ("G04+ctrl", "ood"),
    ("G01+G02", "train"),
    ("G03+G04", "test"),
]

MODEL_PARAMS = {
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

TRAINER_PARAMS = {
    "n_epochs_kl_warmup": None,
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
    "use_layer_norm_adv": False,
    "dropout_rate_adv": 0.3,
    "step_size_lr": 25,
    "do_clip_grad": False,
    "adv_loss": "cce",
    "gradient_clip_value": 5.0,
}

GRAD_PARAMS = [
    "px_r",
    "pert_network.pert_embedding.weight",
    "encoder.network.fc_layers.Layer 0.0.weight",
    "decoder.px_scale_decoder.0.weight",
]


def make_screen():
    """The tiny screen: negative-binomial counts whose means move with each target."""
    rng = np.random.default_rng(SEED)
    base = rng.gamma(2.0, 2.0, size=N_GENES)
    effects = {f"G0{i}": rng.normal(0.0, 0.8, size=N_GENES) for i in range(1, 5)}
    per = N_CELLS // len(CONDITIONS)
    rows, obs = [], []
    for condition, split in CONDITIONS:
        shift = sum(
            (effects[g] for g in condition.split("+") if g != "ctrl"),
            np.zeros(N_GENES),
        )
        mu = base * np.exp(shift)
        size = rng.uniform(0.5, 1.5, size=(per, 1))
        lam = rng.gamma(4.0, mu * size / 4.0)
        rows.append(rng.poisson(lam))
        obs += [(condition, split)] * per
    counts = np.vstack(rows).astype(np.float32)
    counts[counts.sum(1) == 0, 0] = 1.0
    obs = pd.DataFrame(obs, columns=["condition", "split"])
    obs.index = [f"cell{i:03d}" for i in range(len(obs))]
    obs["condition"] = pd.Categorical(obs["condition"])
    # run_cpa.py's two columns
    obs["dose_val"] = ["1.0" if "ctrl" in c else "1.0+1.0" for c in obs["condition"]]
    obs["condition_harm"] = [
        c.replace("+ctrl", "").replace("ctrl+", "") for c in obs["condition"]
    ]
    obs["smiles"] = ""
    var = pd.DataFrame(index=[f"gene{j:02d}" for j in range(N_GENES)])
    return ad.AnnData(counts, obs=obs, var=var)


def predict_on_controls(model, adata, rng):
    """run_cpa.py's prediction: X replaced by random control cells, then predict."""
    x_true = adata.X.copy()
    ctrl = np.asarray(x_true[np.asarray(adata.obs["condition"] == "ctrl")])
    pick = rng.choice(ctrl.shape[0], size=adata.n_obs, replace=True)
    adata.X = ctrl[pick, :].copy()
    model.predict(adata, batch_size=2048)
    x, pred = np.asarray(adata.X).copy(), np.asarray(adata.obsm["CPA_pred"]).copy()
    adata.X = x_true
    return x, pred


def train_batch(model, adata):
    """One full batch in train mode: the NB loss and a few gradients."""
    from cpa._utils import CPA_REGISTRY_KEYS as KEYS

    module = model.module
    module.train()
    module.zero_grad()
    x = torch.tensor(np.asarray(adata.X), dtype=torch.float32)
    perts = torch.tensor(adata.obsm[KEYS.PERTURBATIONS], dtype=torch.float32)
    doses = torch.tensor(adata.obsm[KEYS.PERTURBATIONS_DOSAGES], dtype=torch.float32)
    tensors = {KEYS.X_KEY: x, KEYS.PERTURBATIONS: perts}
    tensors[KEYS.PERTURBATIONS_DOSAGES] = doses
    tensors[KEYS.PERTURBATIONS + "_mixup"] = perts
    tensors[KEYS.PERTURBATIONS_DOSAGES + "_mixup"] = doses
    inputs = module._get_inference_input(tensors)
    # torch 2.0 and later versions draw different dropout masks from the same seed,
    # so the masks are recorded (1 where a unit was kept) for the book to replay
    masks, hooks = [], []

    def record(layer, args, output):
        (inp,) = args
        kept = (output != 0) | (inp == 0)
        masks.append(kept.detach().numpy())

    for layer in module.encoder.modules():
        if isinstance(layer, torch.nn.Dropout):
            hooks.append(layer.register_forward_hook(record))
    torch.manual_seed(0)
    inference = module.inference(**inputs)
    for hook in hooks:
        hook.remove()
    generative = module.generative(inference["z"], inference["library"])
    recon, _ = module.loss(tensors, inference, generative)
    recon.backward()
    named = dict(module.named_parameters())
    out = {"recon_loss": recon.detach().numpy().astype(np.float64)}
    out["mu"] = generative["px"].mu.detach().numpy()
    for i, name in enumerate(GRAD_PARAMS):
        out[f"grad_{i}"] = named[name].grad.detach().numpy()
    out["grad_names"] = np.array(GRAD_PARAMS)
    out["dropout_masks"] = np.packbits(np.stack(masks), axis=-1)
    out["dropout_shape"] = np.array(np.stack(masks).shape)
    module.eval()
    return out


TRAIN_EPOCHS = 40
STREAMS = [None, 1, 2, 3, 4, 5]


def train_real(adata, split, stream, x_ctrl, batch_size=2048):
    """The paper's CPA (seed 8206) trained TRAIN_EPOCHS epochs with the paper's trainer
    settings; ``stream`` reseeds torch and numpy after the model is built, so the runs
    share their initial weights and differ only in the random stream of the training
    (batch order, dropout masks, the adversary's initial weights)."""
    import cpa
    import scvi

    scvi.settings.seed = MODEL_PARAMS["seed"]
    model = cpa.CPA(adata=adata, **split, **MODEL_PARAMS)
    if stream is not None:
        torch.manual_seed(stream)
        np.random.seed(stream)
    model.train(
        max_epochs=TRAIN_EPOCHS,
        use_gpu=False,
        batch_size=batch_size,
        plan_kwargs=TRAINER_PARAMS,
        early_stopping_patience=5,
        check_val_every_n_epoch=5,
        save_path=False,
        enable_progress_bar=False,
    )
    hist = model.epoch_history
    train = hist[hist["mode"] == "train"]["recon_loss"].to_numpy()
    valid = hist[hist["mode"] == "valid"]
    metric = valid["r2_mean"] + 0.5 * valid["r2_var"]
    metric = metric + np.exp(valid["disnt_after"] - valid["disnt_basal"])
    x_true = adata.X.copy()
    adata.X = x_ctrl.copy()
    model.predict(adata, batch_size=2048)
    pred = np.asarray(adata.obsm["CPA_pred"]).copy()
    adata.X = x_true
    return pred, train, metric.to_numpy()


def main(out_dir):
    import cpa
    import scvi

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    adata = make_screen()
    adata.write_h5ad(out / "screen.h5ad")
    cpa.CPA.setup_anndata(
        adata,
        perturbation_key="condition_harm",
        control_group="ctrl",
        dosage_key="dose_val",
        smiles_key="smiles",
        is_count_data=True,
        categorical_covariate_keys=[],
        max_comb_len=2,
    )
    split = {"split_key": "split", "train_split": "train"}
    split.update(valid_split="test", test_split="ood")
    rng = np.random.default_rng(SEED + 1)
    preds = {}

    small_params = dict(MODEL_PARAMS, n_hidden_encoder=64, n_hidden_decoder=64)
    small = cpa.CPA(adata=adata, **split, **small_params)
    small.save(str(out / "small_untrained"), overwrite=True)
    preds["small_x"], preds["small_pred"] = predict_on_controls(small, adata, rng)

    scvi.settings.seed = MODEL_PARAMS["seed"]
    model = cpa.CPA(adata=adata, **split, **MODEL_PARAMS)
    model.train(
        max_epochs=12,
        use_gpu=False,
        batch_size=2048,
        plan_kwargs=TRAINER_PARAMS,
        early_stopping_patience=5,
        check_val_every_n_epoch=5,
        save_path=False,
        enable_progress_bar=False,
    )
    model.save(str(out / "paper_trained"), overwrite=True)
    preds["trained_x"], preds["trained_pred"] = predict_on_controls(model, adata, rng)
    preds["conditions"] = np.array(adata.obs["condition_harm"].tolist(), dtype=str)
    from cpa._utils import CPA_REGISTRY_KEYS as KEYS

    preds["perts"] = np.asarray(adata.obsm[KEYS.PERTURBATIONS])
    preds["doses"] = np.asarray(adata.obsm[KEYS.PERTURBATIONS_DOSAGES])
    np.savez_compressed(out / "predictions.npz", **preds)
    np.savez_compressed(out / "train_batch.npz", **train_batch(model, adata))

    ctrl = np.asarray(adata.X[np.asarray(adata.obs["condition"] == "ctrl")])
    x_ctrl = ctrl[rng.choice(ctrl.shape[0], size=adata.n_obs, replace=True), :]
    runs = {"x": x_ctrl, "streams": np.array([-1 if s is None else s for s in STREAMS])}
    # batch 2048 (the paper's; one batch per epoch here) and batch 64 (four batches per
    # epoch, so that after the pre-training two of every three are adversary steps)
    for prefix, batch_size in (("", 2048), ("b64_", 64)):
        for i, stream in enumerate(STREAMS):
            pred, curve, metric = train_real(adata, split, stream, x_ctrl, batch_size)
            runs[f"{prefix}pred_{i}"] = pred
            runs[f"{prefix}recon_{i}"], runs[f"{prefix}metric_{i}"] = curve, metric
    np.savez_compressed(out / "training.npz", **runs)
    versions = {"cpa-tools": cpa.__version__, "torch": torch.__version__}
    versions["scvi-tools"] = scvi.__version__
    (out / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
