"""The checkpoint layout of the real cpa-tools (0.8.x, scvi-tools 0.20): read, written.

``CPA.save(folder)`` writes:

- ``model.pt``: a ``torch.save`` of ``{"model_state_dict", "var_names", "attr_dict"}``
  (scvi-tools' base-model layout). ``attr_dict["init_params_"]["kwargs"]
  ["hyper_params"]`` holds the hyper-parameters CPA was built with; ``var_names`` the
  genes in column order;
- ``CPA_info.json``: ``pert_encoder`` (perturbation name -> embedding row,
  ``<PAD>`` = 0, then the control label, then the targets sorted), ``covars_encoder``
  and ``pert_smiles_map``;
- ``history.csv`` when the model was trained.

``load_model`` reads such a folder into :class:`CPAModel`; :meth:`CPAModel.save` writes
the same layout back (the other entries of ``attr_dict`` are kept as read).
``model.pt`` holds pandas and numpy objects, so it is read with
``torch.load(weights_only=False)``: load only folders you trust.
"""

from __future__ import annotations

import json
import pickle
import types
from pathlib import Path

import numpy as np
import torch

from helpers.errors import BookError
from helpers.models.cpa.network import CPANetwork

__all__ = ["CPAModel", "CheckpointError", "load_model"]

# cpa-tools' CPAModule defaults, for hyper-parameters a folder does not name
DEFAULTS = {
    "n_latent": 128,
    "recon_loss": "nb",
    "doser_type": "logsigm",
    "n_hidden_encoder": 256,
    "n_layers_encoder": 3,
    "n_hidden_decoder": 256,
    "n_layers_decoder": 3,
    "use_batch_norm_encoder": True,
    "use_layer_norm_encoder": False,
    "use_batch_norm_decoder": True,
    "use_layer_norm_decoder": False,
    "dropout_rate_encoder": 0.0,
    "dropout_rate_decoder": 0.0,
    "variational": False,
}
CONTROL = "ctrl"
PAD = "<PAD>"


class _PortablePickler(pickle.Pickler):
    """Pickles numpy arrays and scalars by public names only (``numpy.array``,
    ``numpy.reshape``, ``numpy.int64``, ...), so that the numpy 1.23 of cpa-tools'
    environment can read what the book's numpy 2 wrote (numpy 2 refers to
    ``numpy._core``, which numpy 1.x lacks)."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            return np.reshape, (_Flat(obj), obj.shape)
        if isinstance(obj, np.generic):
            return type(obj), (obj.item(),)
        return NotImplemented


class _Flat:
    """An array's entries as a list; unpickles as ``numpy.array(entries, dtype)``."""

    def __init__(self, array: np.ndarray):
        self.entries, self.dtype = array.ravel().tolist(), array.dtype.str

    def __reduce__(self):
        return np.array, (self.entries, self.dtype)


# torch.save takes a module with a Pickler
_PORTABLE = types.ModuleType("cpa_portable_pickle")
_PORTABLE.Pickler = _PortablePickler


class CheckpointError(BookError, ValueError):
    """A folder is not a checkpoint of the real cpa-tools the book can read."""


class CPAModel:
    """A CPA network with its vocabulary: what a ``CPA.save`` folder holds.

    Parameters
    ----------
    network
        The :class:`CPANetwork` with its weights.
    pert_encoder
        Perturbation name -> embedding row (``<PAD>`` = 0).
    var_names
        Gene names in column order.
    max_comb_len
        Most perturbations in one condition (cpa-tools' ``max_comb_len``; the paper: 2).
    extra
        What :func:`load_model` read besides the weights (``attr_dict``,
        ``covars_encoder``, ``pert_smiles_map``), written back by :meth:`save`.
    """

    def __init__(
        self,
        network: CPANetwork,
        pert_encoder: dict,
        var_names,
        *,
        max_comb_len: int = 2,
        extra: dict | None = None,
    ):
        self.network = network
        self.pert_encoder = dict(pert_encoder)
        self.var_names = np.asarray(var_names)
        self.max_comb_len = max_comb_len
        self._extra = extra or {}

    def encode(self, conditions) -> tuple[torch.Tensor, torch.Tensor]:
        """Perturbation rows and doses for condition labels, as cpa-tools builds them.

        A label is ``"ctrl"``, ``"A"`` or ``"A+B"`` (``"+ctrl"`` is dropped). Its
        members' rows are listed in vocabulary order, padded with row 0; each member
        has dose 1.0 (the paper's ``dose_val``), padding 0.0. ``ctrl`` is a row of its
        own, not padding.

        Parameters
        ----------
        conditions
            One label per cell.
        """
        names = list(self.pert_encoder)
        rows, doses = [], []
        for label in conditions:
            label = str(label).replace("+ctrl", "").replace("ctrl+", "")
            members = label.split("+")
            unknown = [m for m in members if m not in self.pert_encoder or m == PAD]
            if unknown:
                raise CheckpointError(
                    f"condition {label!r}: {unknown} not in the model's perturbations "
                    f"({len(names) - 1} known); predict only conditions it was built on"
                )
            if len(members) > self.max_comb_len:
                raise CheckpointError(
                    f"condition {label!r} has {len(members)} members; the model "
                    f"takes at most {self.max_comb_len}"
                )
            idx = sorted(self.pert_encoder[m] for m in set(members))
            pad = self.max_comb_len - len(idx)
            rows.append(idx + [0] * pad)
            doses.append([1.0] * len(idx) + [0.0] * pad)
        return torch.tensor(rows, dtype=torch.long), torch.tensor(doses)

    @torch.no_grad()
    def predict_counts(
        self, counts, conditions, *, batch_size: int = 2048
    ) -> np.ndarray:
        """CPA's predicted NB mean per cell, in eval mode: ``obsm["CPA_pred"]``.

        Parameters
        ----------
        counts
            ``(cells, genes)`` raw counts in the model's gene order (dense or scipy
            sparse); each cell needs a positive total.
        conditions
            One condition label per row (``"A+B"``, ``"A"``, ``"ctrl"``).
        batch_size
            Rows per forward pass (eval mode: the result does not depend on it).
        """
        if hasattr(counts, "toarray"):
            counts = counts.toarray()
        x = torch.as_tensor(np.asarray(counts, dtype=np.float32))
        conditions = list(conditions)
        if x.ndim != 2 or x.shape[1] != len(self.var_names):
            raise CheckpointError(
                f"counts have shape {tuple(x.shape)}; the model needs (cells, "
                f"{len(self.var_names)}) in its gene order (model.var_names)"
            )
        if len(conditions) != x.shape[0]:
            raise CheckpointError(
                f"{len(conditions)} conditions for {x.shape[0]} rows of counts; "
                "give one condition per row"
            )
        if bool((x.sum(1) <= 0).any()):
            raise CheckpointError(
                "a row of counts sums to 0; CPA's library size log(total) needs a "
                "positive total per cell"
            )
        perts, doses = self.encode(conditions)
        self.network.eval()
        out = []
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            out.append(self.network(x[sl], perts[sl], doses[sl])["mu"].numpy())
        return np.concatenate(out, axis=0)

    def save(self, folder) -> Path:
        """Write ``model.pt`` and ``CPA_info.json`` in the real cpa-tools layout.

        A model read by :func:`load_model` keeps the folder's ``attr_dict`` (cpa-tools'
        AnnData registry and init parameters), so the real ``CPA.load(folder, adata)``
        reads what this writes (tested, through cpa-tools' own environment). A model
        from ``training.new_model`` has no registry: it writes only the
        hyper-parameters, which :func:`load_model` reads and cpa-tools does not.
        numpy objects are pickled by public names, readable by numpy 1.x and 2.x.

        Parameters
        ----------
        folder
            Target folder (created if missing; existing files are overwritten).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().clone() for k, v in self.network.state_dict().items()}
        attr = dict(self._extra.get("attr_dict", {}))
        if not attr:
            hyper = {k: self.network.cfg[k] for k in DEFAULTS if k in self.network.cfg}
            attr = {
                "init_params_": {"non_kwargs": {}, "kwargs": {"hyper_params": hyper}}
            }
        blob = {
            "model_state_dict": state,
            "var_names": self.var_names,
            "attr_dict": attr,
        }
        torch.save(blob, folder / "model.pt", pickle_module=_PORTABLE)
        info = {
            "pert_encoder": self.pert_encoder,
            "covars_encoder": self._extra.get("covars_encoder", {}),
            "pert_smiles_map": self._extra.get("pert_smiles_map", {}),
        }
        (folder / "CPA_info.json").write_text(json.dumps(info))
        return folder


def _hyper_params(attr: dict, folder: Path) -> dict:
    try:
        init = attr["init_params_"]
        kwargs = init.get("kwargs", {})
        hyper = dict(kwargs.get("hyper_params", {}))
    except (KeyError, AttributeError, TypeError):
        raise CheckpointError(
            f"{folder}/model.pt has no attr_dict['init_params_']; write the "
            "folder with cpa-tools' CPA.save"
        ) from None
    cfg = dict(DEFAULTS, **hyper)
    if cfg["recon_loss"].lower() != "nb" or cfg["variational"]:
        raise CheckpointError(
            f"{folder}: recon_loss={cfg['recon_loss']!r}, variational="
            f"{cfg['variational']}; the book's CPA is the paper's (nb, non-variational)"
        )
    if cfg["doser_type"] not in ("linear", "sigm", "logsigm"):
        raise CheckpointError(
            f"{folder}: doser_type={cfg['doser_type']!r}; the book's CPA reads linear, "
            "sigm and logsigm dosers"
        )
    return cfg


def load_model(folder) -> CPAModel:
    """Read a folder written by the real ``CPA.save`` (or by :meth:`CPAModel.save`).

    Parameters
    ----------
    folder
        Folder with ``model.pt`` and ``CPA_info.json``.
    """
    folder = Path(folder)
    missing = [n for n in ("model.pt", "CPA_info.json") if not (folder / n).is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} lacks {', '.join(missing)}; give a folder written by "
            "cpa-tools' CPA.save(folder)"
        )
    try:
        info = json.loads((folder / "CPA_info.json").read_text())
        pert_encoder = info["pert_encoder"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"{folder}/CPA_info.json has no pert_encoder; write the folder with "
            "cpa-tools' CPA.save"
        ) from None
    if info.get("covars_encoder"):
        raise CheckpointError(
            f"{folder}: covariates {list(info['covars_encoder'])}; the book's CPA has "
            "none (the paper's protocol)"
        )
    try:
        blob = torch.load(folder / "model.pt", map_location="cpu", weights_only=False)
        state, var_names = blob["model_state_dict"], blob["var_names"]
        attr = blob.get("attr_dict", {})
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one line
        raise CheckpointError(
            f"{folder}/model.pt cannot be read as a cpa-tools checkpoint "
            f"({type(err).__name__}); write it with CPA.save"
        ) from None
    cfg = _hyper_params(attr, folder)
    order = sorted(pert_encoder.values())
    if order != list(range(len(pert_encoder))) or pert_encoder.get(PAD, 0) != 0:
        raise CheckpointError(
            f"{folder}/CPA_info.json: pert_encoder rows are not 0..n-1 with <PAD> = 0; "
            "write the folder with CPA.save"
        )
    network = CPANetwork(len(var_names), len(pert_encoder), cfg)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(
            f"{folder}/model.pt does not fit CPA's layout ({first[:160]}); write it "
            "with cpa-tools' CPA.save"
        ) from None
    network.eval()
    extra = {"attr_dict": attr, "covars_encoder": info.get("covars_encoder", {})}
    extra["pert_smiles_map"] = info.get("pert_smiles_map", {})
    return CPAModel(network, pert_encoder, var_names, extra=extra)
