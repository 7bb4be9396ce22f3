"""Score a pair of cell files without a task: ``python -m helpers.benchmark score``.

A model developer with their own screen has two ``.h5ad`` files in the Virtual Cell
Challenge layout: the observed cells (``REAL``) and the predicted cells (``PRED``),
the perturbation in ``obs["target"]`` (``pert_col``), the control cells labelled
``non-targeting`` (``control``), the genes in ``var_names`` and the values in ``X``.
:func:`score_files` scores every perturbation of ``REAL`` with the requested metric
families and returns one row per perturbation.

Nothing is computed a second way: both files are pseudobulked by
:func:`helpers.pseudobulk.pseudobulk` (the mean of each perturbation's log-normalised
cells), the families receive a :class:`helpers.metrics.MetricInput` built by
:func:`helpers.metrics.metric_input` and are scored by
:func:`helpers.metrics.score_families`; the paper's family is
:func:`helpers.metrics.evaluate` itself; ``vcc2026`` is
``helpers.metrics.vcc2026.score_anndata`` on the two files' cells.

**Representation.** A file whose ``X`` holds only non-negative integers is read as
counts; any other non-negative values as log-normalised. Counts are log-normalised for
the book's families with :func:`helpers.simulate.log_normalise`, the transform of the
book's data, ``log1p(counts / total_counts * 1e4)`` per cell (natural log), the same
as the simulator's and the stand-ins' files. ``vcc2026`` scores the integer counts
themselves (cell-eval2's input) and refuses any other file. Negative values are neither
and are refused. What each family gets: :data:`RULES`.

**Which families run.** Decided once, in :data:`RULES` (one :class:`FilePairRule` per
family, read from the family modules): a family that needs what only a task has (the
training perturbations of a split) is refused with its reason. ``all`` means every
family that can run on the two files; the others are listed with their reasons.

**Target genes.** ``exclude_target=None`` keeps each family's own definition (the
book's families keep the target gene; ``vcc2026`` drops it, as cell-eval2's preset
does); True or False sets :attr:`helpers.metrics.MetricInput.exclude_target` (and
``vcc2026``'s ``exclude_target``) for every family.

The predicted control cells are not scored by the book's families (the changes are
taken against the observed control, as :func:`helpers.cells.predictions_from_cells`
does); ``vcc2026`` reads them as cell-eval2 does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..conditions import CONTROL
from ..errors import InputError
from ..loaders import LoaderError, normalize_condition
from ..metrics import (
    FAMILIES,
    evaluate,
    metric_input,
    score_families,
)
from ..metrics.inputs import check_same_perturbations
from ..predictions import Predictions
from ..pseudobulk import pseudobulk
from ..simulate import log_normalise
from ..splits import Split

__all__ = [
    "FilePairRule",
    "RULES",
    "FilePairResult",
    "PERT_COL",
    "CONTROL_LABEL",
    "family_choices",
    "read_cells",
    "score_files",
    "save",
]

PERT_COL = "target"
CONTROL_LABEL = "non-targeting"
_LOGNORM = "log-normalised pseudobulks (counts: log1p(counts / total * 1e4))"


@dataclass(frozen=True)
class FilePairRule:
    """Whether a metric family can score a file pair, and on what.

    * ``family``: the family's name (``--metrics``);
    * ``how``: ``"evaluate"`` (:func:`helpers.metrics.evaluate`), ``"families"``
      (:func:`helpers.metrics.score_families`), ``"anndata"`` (the family module's
      ``score_anndata(real, pred, ...)`` on the files' cells) or ``"refused"``;
    * ``gets``: the representation the family scores (``--help`` prints it);
    * ``needs_counts``: True if both files must hold integer counts;
    * ``pred_cells``: True if the family scores the predicted cells themselves
      (``MetricInput.pred_cells``);
    * ``reason``: why a refused family cannot run without a task (one line).
    """

    family: str
    how: str
    gets: str = ""
    needs_counts: bool = False
    pred_cells: bool = False
    reason: str = ""

    @property
    def runs(self) -> bool:
        return self.how != "refused"


#: One rule per family (module docstring); a family missing here is refused.
RULES: dict[str, FilePairRule] = {
    rule.family: rule
    for rule in (
        FilePairRule("paper", "evaluate", _LOGNORM + ": l2, pearson_delta, r"),
        FilePairRule(
            "systema",
            "refused",
            reason="its reference is the mean of the training perturbations, which a "
            "file pair does not have (the other scored perturbations would leak the "
            "truth); score it on a task with --task",
        ),
        FilePairRule(
            "calibrated",
            "families",
            _LOGNORM + "; DE weights from the real cells (each perturbation vs all "
            "other perturbed cells; needs at least two perturbations)",
        ),
        FilePairRule(
            "vcc",
            "families",
            _LOGNORM + "; the DE overlap compares the real cells with the real control "
            "cells rescaled to the predicted pseudobulk (the family's rule, "
            "helpers.metrics.vcc), not with the predicted cells",
        ),
        FilePairRule(
            "vcc2026",
            "anndata",
            "the integer counts of both files' cells, as cell-eval2's --preset "
            "vcc2026 (columns under cell-eval2's names)",
            needs_counts=True,
        ),
        FilePairRule(
            "retrieval",
            "refused",
            reason="rank_vs_mean takes the changes against the mean of the training "
            "perturbations, which a file pair does not have; score it on a task",
        ),
        FilePairRule(
            "ceiling",
            "refused",
            reason="its normalised scores run from the mean baseline, fitted on the "
            "training perturbations, which a file pair does not have; score it on a "
            "task",
        ),
        FilePairRule(
            "de_agreement",
            "families",
            _LOGNORM + "; top DE genes of the real cells vs the real control",
        ),
        FilePairRule(
            "distribution",
            "families",
            "the energy distance of the predicted cells to the real cells of each "
            "perturbation (log-normalised cells)",
            pred_cells=True,
        ),
    )
}


def family_choices() -> list[str]:
    """The names ``--metrics`` accepts: every family of :data:`RULES` and ``all``."""
    return [*RULES, "all"]


def _module(family: str):
    """The family's module (:data:`helpers.metrics.FAMILIES`)."""
    return FAMILIES[family]


def _unavailable(rule: FilePairRule, counts: dict[str, bool]) -> str | None:
    """Why ``rule``'s family cannot score these files (None: it can)."""
    if not rule.runs:
        return rule.reason
    not_counts = [name for name, is_counts in counts.items() if not is_counts]
    if rule.needs_counts and not_counts:
        return (
            f"it needs integer counts and the {not_counts[0]} file holds non-integer "
            "values (log-normalised?); pass the raw counts or leave it out of --metrics"
        )
    return None


def _requested(metrics) -> list[str]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    names = [n.strip() for name in names for n in str(name).split(",") if n.strip()]
    unknown = [n for n in names if n not in RULES and n != "all"]
    if unknown or not names:
        raise InputError(
            f"Unknown metric family {(unknown or [''])[0]!r}; choose from "
            f"{', '.join(family_choices())} (comma-separated)."
        )
    return list(dict.fromkeys(names))


def _read(path) -> ad.AnnData:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an .h5ad file: pass the file.")
    if not path.exists():
        raise InputError(f"No file at {path}; check the path.")
    try:
        return ad.read_h5ad(path)
    except Exception as err:  # h5py / anndata raise many types on a foreign file
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"{path} is not a readable .h5ad file ({detail}); write the cells with "
            "anndata's write_h5ad."
        ) from None


def read_cells(source, *, role: str, pert_col: str, control: str) -> ad.AnnData:
    """Read and check one file of the pair: an AnnData with at least one cell and gene,
    unique gene names, the column ``pert_col`` and finite values.

    ``source``: an ``.h5ad`` path or an AnnData (not modified); ``role``: ``"real"``
    or ``"pred"`` (named in the messages); ``pert_col``: the obs column of the
    perturbation; ``control``: its control label (only named in messages here).
    """
    adata = source if isinstance(source, ad.AnnData) else _read(source)
    name = f"{role} file" if isinstance(source, ad.AnnData) else f"{role} {source}"
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(
            f"The {name} is empty ({adata.n_obs} cells x {adata.n_vars} genes); "
            "write the cells into it."
        )
    if pert_col not in adata.obs:
        raise InputError(
            f"The {name} has no obs column {pert_col!r} (columns: "
            f"{list(adata.obs.columns)[:8]}); pass --pert-col naming the "
            f"perturbation column (control label {control!r})."
        )
    if adata.X is None:
        raise InputError(
            f"The {name} has no X (its values are only in layers?); write the cells' "
            "counts or log-normalised values into X."
        )
    missing = int(pd.isna(adata.obs[pert_col]).sum())
    if missing:
        raise InputError(
            f"The {name} has {missing} cells without a label in obs[{pert_col!r}]; "
            "label them or drop them."
        )
    if adata.var_names.has_duplicates:
        dup = adata.var_names[adata.var_names.duplicated()].unique().tolist()[:3]
        raise InputError(
            f"The {name} has duplicated gene names {dup}; make var_names unique."
        )
    values = _values(adata.X)
    if not np.isfinite(values).all():
        raise InputError(f"The {name} holds NaN or infinite values; remove them.")
    if (values < 0).any():
        raise InputError(
            f"The {name} holds negative values (min {values.min():g}); the scores "
            "need counts or log-normalised values, both >= 0 (not scaled data)."
        )
    if values.size and values.max() > LOG_CP10K_MAX and not _is_counts(adata.X):
        raise InputError(
            f"The {name} holds non-integer values up to {values.max():.4g}: neither "
            f"counts nor log1p(counts / total * 1e4) (at most {LOG_CP10K_MAX:.2f}); "
            "write integer counts, or log-normalise to 1e4 per cell."
        )
    return adata


#: The largest value of log1p(counts / total * 1e4): one gene holding all of a cell's
#: counts. Non-integer values above it are neither counts nor the book's
#: log-normalised scale (fractional counts, CPM, another target sum).
LOG_CP10K_MAX = float(np.log1p(1e4))


def _values(X) -> np.ndarray:
    return np.asarray(X.data if sp.issparse(X) else X)


def _is_counts(X) -> bool:
    values = _values(X)
    return bool(values.size == 0 or np.all(values == np.round(values)))


def _conditions(adata, *, name: str, pert_col: str, control: str) -> dict[str, str]:
    """File label -> the book's condition (the control label -> ``ctrl``)."""
    out = {}
    for label in pd.unique(adata.obs[pert_col].astype(str)):
        if label == control:
            out[label] = CONTROL
            continue
        try:
            condition = normalize_condition(label)
        except LoaderError as err:
            raise InputError(f"The {name}: {err}") from None
        if condition == CONTROL:
            raise InputError(
                f"The {name} labels cells {label!r}, which reads as a control, but the "
                f"control label is {control!r}; pass --control {label!r} or rename."
            )
        out[label] = condition
    taken: dict[str, str] = {}
    for label, condition in out.items():
        if condition in taken and condition != CONTROL:
            raise InputError(
                f"The {name} labels {taken[condition]!r} and {label!r} are the same "
                "perturbation; use one label."
            )
        taken[condition] = label
    return out


def _canonical(adata, labels: dict[str, str], pert_col: str, genes) -> ad.AnnData:
    """The cells with ``obs["condition"]``, log-normalised ``X``, over ``genes``."""
    X = adata.X  # the pred file is already in the real file's gene order
    if _is_counts(X):
        X = log_normalise(sp.csr_matrix(X, dtype=np.float32))
    condition = adata.obs[pert_col].astype(str).map(labels).to_numpy()
    categories = [CONTROL, *sorted(set(condition) - {CONTROL})]
    obs = pd.DataFrame(
        {"condition": pd.Categorical(condition, categories=categories)},
        index=adata.obs_names.astype(str),
    )
    return ad.AnnData(X, obs=obs, var=pd.DataFrame(index=pd.Index(genes, name="gene")))


@dataclass
class FilePairResult:
    """What :func:`score_files` returns.

    * ``metrics``: one row per perturbation of the real file: ``perturbation`` (its
      label in the files), then one column per metric, families in the order asked;
    * ``families``: the families scored; ``gets``: family -> what it scored (the
      representation, :data:`RULES`); ``not_scored``: family -> why not (``all`` only);
    * ``counts``: file role -> True if the file held integer counts;
    * ``n_cells``: file role -> number of cells; ``n_genes``: genes scored.
    """

    metrics: pd.DataFrame
    families: list[str]
    gets: dict[str, str]
    not_scored: dict[str, str] = field(default_factory=dict)
    counts: dict[str, bool] = field(default_factory=dict)
    n_cells: dict[str, int] = field(default_factory=dict)
    n_genes: int = 0


def score_files(
    real,
    pred,
    *,
    metrics="paper",
    pert_col: str = PERT_COL,
    control: str = CONTROL_LABEL,
    exclude_target: bool | None = None,
    name: str = "prediction",
) -> FilePairResult:
    """Score the predicted cells ``pred`` against the observed cells ``real``, one row
    per perturbation of ``real`` (module docstring).

    ``real``, ``pred``: ``.h5ad`` paths or AnnData, the Virtual Cell Challenge layout;
    ``metrics``: family names (a list, or one string, comma-separated), ``all`` for
    every family that can run (:data:`RULES`); ``pert_col``: the obs column of the
    perturbation; ``control``: its control label; ``exclude_target``: None keeps each
    family's definition, True/False drops/keeps each perturbation's target gene in
    every metric that ranks or correlates across genes; ``name``: the method name
    the families record. Bad input raises :class:`helpers.errors.InputError` with one
    line.
    """
    requested = _requested(metrics)
    cells = {
        "real": read_cells(real, role="real", pert_col=pert_col, control=control),
        "pred": read_cells(pred, role="pred", pert_col=pert_col, control=control),
    }
    shown = {
        role: f"{role} file" if isinstance(src, ad.AnnData) else f"{role} {src}"
        for role, src in (("real", real), ("pred", pred))
    }
    genes = pd.Index(cells["real"].var_names.astype(str), name="gene")
    other = pd.Index(cells["pred"].var_names.astype(str))
    if not genes.sort_values().equals(other.sort_values()):
        only_real = genes.difference(other)
        only_pred = other.difference(genes)
        raise InputError(
            f"The two files measure different genes ({len(only_real)} only in real, "
            f"e.g. {list(only_real)[:3]}; {len(only_pred)} only in pred, e.g. "
            f"{list(only_pred)[:3]}); predict the real file's genes."
        )
    if not genes.equals(other):  # the real file's gene order for every family
        cells["pred"] = cells["pred"][:, genes].copy()
    labels = {
        role: _conditions(
            cells[role], name=shown[role], pert_col=pert_col, control=control
        )
        for role in cells
    }
    if CONTROL not in labels["real"].values():
        raise InputError(
            f"The {shown['real']} has no control cells labelled {control!r} in "
            f"obs[{pert_col!r}]; the changes are taken against them: pass --control."
        )
    real_perts = {c: lab for lab, c in labels["real"].items() if c != CONTROL}
    pred_perts = {c: lab for lab, c in labels["pred"].items() if c != CONTROL}
    if not real_perts:
        raise InputError(
            f"The {shown['real']} has only control cells; it needs perturbed cells."
        )
    check_same_perturbations(
        real_perts,
        pred_perts,
        lacking="{n} perturbation(s) of the real file have no predicted cells "
        "(e.g. {examples}); predict every one.",
        surplus="{n} predicted perturbation(s) are not in the real file (e.g. "
        "{examples}); they cannot be scored: drop them.",
    )
    counts = {role: _is_counts(cells[role].X) for role in cells}
    families, not_scored = [], {}
    for family in requested:
        names = [f for f, r in RULES.items() if r.runs] if family == "all" else [family]
        for each in names:
            why = _unavailable(RULES[each], counts)
            if why is None:
                families.append(each)
            elif family == "all":
                not_scored[each] = why
            else:
                raise InputError(
                    f"The {each!r} family cannot score a file pair: {why}."
                )
    families = list(dict.fromkeys(families))
    conditions = sorted(real_perts)
    table = pd.DataFrame(index=pd.Index(conditions, name="condition"))
    book = [f for f in families if RULES[f].how != "anndata"]
    if book:
        table = table.join(
            _score_book(cells, labels, book, genes, pert_col, exclude_target, name)
        )
    for family in families:
        if RULES[family].how == "anndata":
            module = _module(family)
            part = module.score_anndata(
                cells["real"],
                cells["pred"],
                pert_col=pert_col,
                control=control,
                exclude_target=True if exclude_target is None else exclude_target,
            )
            # the family's metric columns, by name (not its components)
            part = part.reindex([real_perts[c] for c in conditions])[module.COLUMNS]
            part.index = pd.Index(conditions, name="condition")
            table = table.join(part)
    table.insert(0, "perturbation", [real_perts[c] for c in conditions])
    return FilePairResult(
        metrics=table.reset_index(drop=True),
        families=families,
        gets={f: RULES[f].gets for f in families},
        not_scored=not_scored,
        counts=counts,
        n_cells={role: int(cells[role].n_obs) for role in cells},
        n_genes=len(genes),
    )


def _score_book(cells, labels, families, genes, pert_col, exclude_target, name):
    """The book's families on the two files' pseudobulks (module docstring)."""
    real = _canonical(cells["real"], labels["real"], pert_col, genes)
    pred = _canonical(cells["pred"], labels["pred"], pert_col, genes)
    truth = pseudobulk(real)
    if not (pred.obs["condition"] == CONTROL).any():
        # the pred file's control cells are never scored (the real control is the
        # reference); a pseudobulk needs a control row, so lend it the real one
        lent = ad.concat([real[real.obs["condition"] == CONTROL], pred])
        lent.obs["condition"] = pd.Categorical(
            lent.obs["condition"].astype(str),
            categories=[
                CONTROL,
                *sorted(set(lent.obs["condition"].astype(str)) - {CONTROL}),
            ],
        )
        means = pseudobulk(lent).means
    else:
        means = pseudobulk(pred).means
    means = means.drop(index=CONTROL) if CONTROL in means.index else means
    predictions = Predictions(means, name, truth.dataset, None)
    conditions = [c for c in truth.conditions if c != CONTROL]
    split = Split(
        dataset=truth.dataset,
        seed=0,
        kind="file_pair",
        assignment={CONTROL: "train", **{c: "test" for c in conditions}},
    )
    flag = {} if exclude_target is None else {"exclude_target": bool(exclude_target)}
    # evaluate's own default is False: the keyword only when it changes something
    paper_flag = {"exclude_target": True} if exclude_target else {}
    table = pd.DataFrame(index=pd.Index(conditions, name="condition"))
    for family in families:
        if RULES[family].how == "evaluate":
            part = evaluate(predictions, truth, split, genes=genes, **paper_flag)
            part = part.set_index("condition")[["l2", "pearson_delta", "r"]]
        else:
            extra = {"pred_cells": pred} if RULES[family].pred_cells else {}
            inp = metric_input(
                predictions,
                truth,
                split,
                genes,
                conditions=conditions,
                cells=real,
                **flag,
                **extra,
            )
            part = score_families(inp, [family]).set_index("condition")
            part = part[FAMILIES[family].COLUMNS]
        table = table.join(part)
    return table


def save(result: FilePairResult, out: str | os.PathLike) -> Path:
    """Write ``result.metrics`` to ``out/metrics.csv`` (folder made if needed); returns
    the file's path. ``result``: from :func:`score_files`; ``out``: a folder."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder} is a file; name a folder for metrics.csv.")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.csv"
    result.metrics.to_csv(path, index=False)
    return path
