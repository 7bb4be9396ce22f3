"""The four DE members of cell-eval2 0.20.0's ``--preset vcc2026``, on integer counts.

:func:`score_de` scores predicted cells against observed cells with the four Wilcoxon
DE metrics that the 2026 Virtual Cell Challenge scores (``cell_eval2/configs/
vcc2026.yaml``, profile ``vcc2026`` in ``catalog.py``), under cell-eval2's own names:
``de_wilcoxon_lfc_nmae``, ``de_wilcoxon_direction_fidelity_yield_raw``,
``de_wilcoxon_direction_reach_raw`` and ``de_wilcoxon_sig_jaccard``. The values are the
raw per-perturbation values that ``cell-eval2 run --preset vcc2026`` writes to
``results.csv`` (before any rescaling to the baseline and the replicate).

**DE tables** (cell-eval2 ``de_compute.py::compute_de``, CPU path: ``backend="auto"``
without a GPU and without pdex resolves to scanpy; ``input_type="counts"``,
``target_sum=1e6``, ``mean_calc="arithmetic"``, ``epsilon=1e-9``,
``filter_gene_min_cpm_cell=5``, ``fdr_scope="per_pert"``). Counts ``x_cg`` of cell
``c`` and gene ``g`` become ``cpm_cg = x_cg / (sum_g' x_cg' / 1e6)`` (scanpy
``normalize_total``; ``_to_linear``). For each perturbation ``t`` against the control
``0`` (under ``control_source="real"``, the preset's, the control cells are the REAL
ones on both sides: ``run.py::_pred_de_input`` folds the real control into the
predictions; under ``"pred"``, the anchor's, each side uses its own):

* ``lfc_tg = log2((m_tg + 1e-9) / (m_0g + 1e-9))``, ``m`` the arithmetic mean of
  ``cpm`` over the group's cells (``_lfc_from_means``);
* ``p_tg``: two-sided Wilcoxon rank-sum of ``log1p(cpm)``, normal approximation with
  tie correction, as ``scanpy.tl.rank_genes_groups(method="wilcoxon",
  tie_correct=True, reference=control)`` (``_de_scanpy_pvalues``; the book's
  :func:`helpers.metrics.vcc.wilcoxon_vs_control`, which equals scanpy);
* gene gate: keep gene ``g`` iff the control's mean CPM ``m_0g > 5`` - one gene set for
  every perturbation (``_apply_cpm_filter``, #351); a gene outside it has no row in
  that side's table (the same set on both sides when they share the control);
* ``q_tg``: Benjamini-Hochberg over the kept genes of ``t`` (``_bh_per_target``,
  ``scipy.stats.false_discovery_control``). Significant: ``q_tg < 0.05``; a NaN
  ``lfc`` is never significant (``de.py::apply_nan_policy``, ``nan_lfc_policy="mask"``).

**Target exclusion** (cell-eval2 #172; ``de.py::resolve_target_genes`` and
``exclude_on_target``, ``partition.py``). A perturbation label that equals a kept gene's
name "resolves"; its own gene's row leaves every set below, on both sides. A label that
names no kept gene excludes nothing. ``targets=`` (a callable label -> genes) replaces
the label by its genes, e.g. both genes of a book double ``A+B``, which cell-eval2
cannot resolve. ``exclude_target=False`` excludes nothing for any
label (cell-eval2's ``--no-target-genes``). With ``G^real``, ``G^pred`` each side's kept
genes less the target's own, ``R_t = {g in G^real: q^real_tg < 0.05}`` (``N_t =
|R_t|``), ``P_t = {g in G^pred: q^pred_tg < 0.05}``, and ``A_t = {g in G^real ∩
G^pred: lfc^real_tg not NaN and != 0}`` (genes in both tables whose direction the
reference can adjudicate):

* ``de_wilcoxon_sig_jaccard`` (``metrics/de.py::de_sig_jaccard``)::

      J_t = |R_t ∩ P_t| / |R_t ∪ P_t|,   1 when R_t and P_t are both empty

* ``de_wilcoxon_lfc_nmae`` (``metrics/de.py::de_lfc_nmae``, ``min_gate_size=10``), over
  the gate ``S_t = {g in R_t: lfc^real_tg finite}``, a non-finite or absent predicted
  ``lfc`` read as 0::

      nmae_t = mean_{S_t} |lfc^pred_tg - lfc^real_tg| / mean_{S_t} |lfc^real_tg|

  NaN (cell-eval2 omits the perturbation) when ``|S_t| < 10`` or the denominator is 0 or
  not finite.

* ``de_wilcoxon_direction_fidelity_yield_raw`` (``metrics/direction.py::
  _fidelity_family``): ``n_t = |P_t ∩ A_t|`` and ``k_t`` = the genes of ``P_t ∩ A_t``
  whose predicted ``lfc`` is non-zero, not NaN and has the real one's sign::

      fy_t = k_t / max(n_t, N_t),   NaN when n_t = N_t = 0

* ``de_wilcoxon_direction_reach_raw`` (``metrics/direction.py::de_direction_reach`` with
  ``universe="adjudicated"``, ``corrected=False``; ``_purity_curve``, ``_k_star``). Rank
  the genes of ``R_t ∩ G^pred`` by the PREDICTION: significant first, then ``q^pred``
  ascending, ``p^pred`` ascending (NaN last), ``|lfc^pred|`` descending (NaN last), gene
  name. For each prefix, ``d`` = its genes in ``A_t`` and ``m`` = its sign matches;
  with ``REACH_PURITY_FLOOR = 0.9``::

      k*_t = max {d : d > 0 and m / d >= 0.9} (0 if none),   reach_t = k*_t / N_t

  NaN when ``N_t = 0``.

:func:`lfc_nmae_reference` is the split-half reference that cell-eval2's anchor puts in
place of ``de_wilcoxon_lfc_nmae``'s own split value (``lfc_nmae_ref.py``,
``anchor.py::_lfc_nmae_raw``): the same ratio with the two halves' log2FCs in the
numerator and the full data's gate and denominator.

**Differences from the peer.** (1) cell-eval2 refuses a panel where no label resolves to
a gene (``de.py::require_resolution``, the construct-ID guard); here such a panel is
scored without exclusion, as :mod:`helpers.metrics.vcc` does, since the book's labels
are gene names and an unmeasured target is ordinary (the caller can see it:
:func:`resolved_targets`). (2) A perturbation with fewer than 2 cells on either side, or
an absent one, is refused with :class:`~helpers.errors.InputError` (scanpy's rank test
refuses one cell; cell-eval2 refuses differing target sets). Under
``control_source="real"`` the prediction's own control cells are neither used nor
checked (cell-eval2 validates the whole file). (3) Means are summed in
another order than polars' (the BH step-up is the same scipy call), so values agree to a
few 1e-16 rather than bit for bit; ``tests/parity/test_parity_vcc2026_de.py`` runs
cell-eval2 itself and states the tolerance. (4) No GPU backend (gpudge) and no pdex:
cell-eval2's DE numbers "differ between engines", and this module is its CPU scanpy
path, the one cell-eval2 takes on a machine without a GPU and without pdex.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import false_discovery_control

from ..errors import InputError
from .vcc import sorted_control, wilcoxon_vs_sorted_control

__all__ = [
    "COLUMNS",
    "score_de",
    "de_arrays",
    "metrics_from_arrays",
    "resolved_targets",
    "lfc_nmae_reference",
    "counts_to_cpm",
    "P_ADJ_THRESHOLD",
    "MIN_CPM",
    "MIN_GATE_SIZE",
    "REACH_PURITY_FLOOR",
    "EPSILON",
    "TARGET_SUM",
]

COLUMNS: list[str] = [
    "de_wilcoxon_lfc_nmae",
    "de_wilcoxon_direction_fidelity_yield_raw",
    "de_wilcoxon_direction_reach_raw",
    "de_wilcoxon_sig_jaccard",
]
P_ADJ_THRESHOLD = 0.05  # vcc2026.yaml de.p_adj_threshold
MIN_CPM = 5.0  # vcc2026.yaml filter.filter_gene_min_cpm_cell
MIN_GATE_SIZE = 10  # metrics/de.py::de_lfc_nmae default
REACH_PURITY_FLOOR = 0.9  # metrics/direction.py::REACH_PURITY_FLOOR
EPSILON = 1e-9  # vcc2026.yaml de.epsilon
TARGET_SUM = 1e6  # vcc2026.yaml target_sum


def _counts(adata, side: str, *, fractional: bool = False):
    """The cells' counts, float64, sparse (CSR) where ``X`` is sparse, else dense;
    refused unless non-negative integers."""
    X = adata.X
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.size and not np.issubdtype(data.dtype, np.number):
        raise InputError(f"The {side} matrix is not numeric; pass integer counts.")
    data = np.asarray(data, dtype=np.float64)
    if not np.isfinite(data).all():
        raise InputError(
            f"The {side} counts contain NaN or infinite values; pass integer counts."
        )
    if (data < 0).any():
        raise InputError(
            f"The {side} counts contain negative values; the vcc2026 DE metrics need "
            "raw integer counts (not log-normalised or centred data)."
        )
    if not fractional and (data != np.round(data)).any():
        raise InputError(
            f"The {side} counts are not integers; the vcc2026 DE metrics need raw "
            "counts (rebuild them from log-normalised data first)."
        )
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float64)
    return np.asarray(X, dtype=np.float64)


def _cpm_rows(X, rows: np.ndarray) -> np.ndarray:
    """:func:`counts_to_cpm` of the cells ``rows`` (indices) of the counts ``X``, dense:
    only those rows are densified."""
    block = X[rows]
    block = block.toarray() if sp.issparse(block) else block
    return counts_to_cpm(np.asarray(block, dtype=np.float64))


def counts_to_cpm(X: np.ndarray) -> np.ndarray:
    """Counts per million per cell, as scanpy ``normalize_total(target_sum=1e6)``:
    ``x / (sum_g x / 1e6)`` (a cell with no counts stays 0).

    ``X``: cells x genes, float64 counts.
    """
    size = X.sum(axis=1) / TARGET_SUM
    size[size == 0] = 1.0
    return X / size[:, None]


def _labels(adata, pert_col: str, side: str) -> np.ndarray:
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"The {side} data are empty (no cells or no genes).")
    if pert_col not in adata.obs:
        raise InputError(
            f"The {side} data have no obs column {pert_col!r}; pass pert_col= (the "
            "column naming each cell's perturbation)."
        )
    return adata.obs[pert_col].astype(str).to_numpy()


def de_arrays(
    cells_cpm: np.ndarray,
    labels: np.ndarray,
    ctrl_cpm: np.ndarray,
    *,
    perts: list[str],
) -> dict[str, np.ndarray]:
    """cell-eval2's CPU DE of each perturbation's cells against the control cells.

    ``cells_cpm``: the perturbed cells' CPM (cells x genes); ``labels``: their
    perturbation; ``ctrl_cpm``: the control cells' CPM; ``perts``: the perturbations, in
    output order. Returns ``lfc``, ``p_value`` (perturbations x genes) and ``p_adj``
    (BH over the kept genes, NaN on the others), and ``kept`` (genes whose control mean
    CPM exceeds :data:`MIN_CPM`). Formulas: module docstring.
    """
    return _de_by_rows(lambda rows: cells_cpm[rows], labels, ctrl_cpm, perts)


def _de_by_rows(cpm_of, labels: np.ndarray, ctrl_cpm: np.ndarray, perts) -> dict:
    """:func:`de_arrays` with the perturbed cells' CPM read one perturbation at a time:
    ``cpm_of(rows)`` gives the dense CPM of the cells ``rows`` (indices into
    ``labels``), so only the control's and one perturbation's cells are dense at once
    (a row block of a sparse matrix, :func:`_cpm_rows`)."""
    ctrl = sorted_control(np.log1p(ctrl_cpm))
    ref_mean = ctrl_cpm.mean(axis=0)
    kept = ref_mean > MIN_CPM
    n_g = ctrl_cpm.shape[1]
    lfc = np.empty((len(perts), n_g))
    pval = np.empty((len(perts), n_g))
    padj = np.full((len(perts), n_g), np.nan)
    for i, p in enumerate(perts):
        cells_cpm = cpm_of(np.flatnonzero(labels == p))
        mean = cells_cpm.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lfc[i] = np.log2((mean + EPSILON) / (ref_mean + EPSILON))
        pval[i] = wilcoxon_vs_sorted_control(ctrl, np.log1p(cells_cpm))[0]
        pk = pval[i, kept]
        ok = ~np.isnan(pk)
        adj = np.full(pk.shape, np.nan)
        if ok.any():
            adj[ok] = false_discovery_control(pk[ok], method="bh")
        padj[i, kept] = adj
    return {"lfc": lfc, "p_value": pval, "p_adj": padj, "kept": kept}


def _de_counts(counts, labels: np.ndarray, ctrl_cpm: np.ndarray, perts) -> dict:
    """:func:`de_arrays` on the cells' counts (sparse or dense; cells of labels not in
    ``perts`` are ignored), each perturbation's rows made CPM and dense in turn."""
    return _de_by_rows(lambda rows: _cpm_rows(counts, rows), labels, ctrl_cpm, perts)


def resolved_targets(
    perts: list[str], genes: pd.Index, kept: np.ndarray, *, targets=None
) -> dict[str, list[int]]:
    """{perturbation: columns of its own genes} for the labels whose target genes are
    kept genes (cell-eval2 ``de.py::resolve_target_genes``: the label equals a feature
    name in the real DE table); labels that resolve to nothing are left out.

    ``perts``: perturbation labels; ``genes``: gene names; ``kept``: the real side's CPM
    gate; ``targets``: None (the label is the gene, cell-eval2's rule) or a callable
    label -> gene names (the book's doubles ``A+B`` name two genes; cell-eval2's
    ``target_gene_map`` maps a label to one).
    """
    where = {str(g): j for j, g in enumerate(genes) if kept[j]}
    out = {}
    for p in perts:
        names = [p] if targets is None else [str(g) for g in targets(p)]
        cols = sorted({where[g] for g in names if g in where})
        if cols:
            out[p] = cols
    return out


def _masked(de: dict) -> dict:
    """``p_adj = 1`` where the log2FC is NaN (cell-eval2 ``apply_nan_policy``, "mask"):
    such a gene is neither significant nor ranked among the significant ones."""
    padj = np.where(np.isnan(de["lfc"]) & ~np.isnan(de["p_adj"]), 1.0, de["p_adj"])
    return {**de, "p_adj": padj}


def _sig(padj: np.ndarray, lfc: np.ndarray) -> np.ndarray:
    # NaN p_adj (a gated gene) compares False; a NaN log2FC is never significant
    with np.errstate(invalid="ignore"):
        return (padj < P_ADJ_THRESHOLD) & ~np.isnan(lfc)


def _defined(lfc: np.ndarray) -> np.ndarray:
    """A log2FC carries a direction: not NaN and not 0 (direction.py::_defined)."""
    return ~np.isnan(lfc) & (lfc != 0)


def _reach(pool: np.ndarray, real_lfc, pred: dict, name_rank: np.ndarray) -> int:
    """k* of one perturbation: the deepest pure prefix of the genes ``pool`` (the real
    significant genes that the prediction's table holds) ranked by the prediction
    (module docstring)."""
    if pool.size == 0:
        return 0
    lfc_p = pred["lfc"][pool]
    q = pred["p_adj"][pool]
    p = pred["p_value"][pool]
    sig_p = _sig(q, lfc_p)
    q_key = np.where(np.isnan(q), np.inf, q)
    p_key = np.where(np.isnan(p), np.inf, p)
    abs_key = np.where(np.isnan(lfc_p), -np.inf, np.abs(lfc_p))
    order = np.lexsort((name_rank[pool], -abs_key, p_key, q_key, ~sig_p))
    lfc_r = real_lfc[pool][order]
    lfc_p = lfc_p[order]
    in_denom = _defined(lfc_r)
    match = in_denom & _defined(lfc_p) & (np.sign(lfc_p) == np.sign(lfc_r))
    n_denom = np.cumsum(in_denom)
    n_match = np.cumsum(match)
    ok = n_denom > 0
    purity = np.zeros(len(order))
    purity[ok] = n_match[ok] / n_denom[ok]
    hit = ok & (purity >= REACH_PURITY_FLOOR)
    return int(n_denom[hit].max()) if hit.any() else 0


def _nmae(gate: np.ndarray, real_lfc, other_lfc) -> float:
    """``mean |other - real| / mean |real|`` over ``gate`` (a non-finite ``other`` read
    as 0); NaN below :data:`MIN_GATE_SIZE` genes or at a zero or non-finite
    denominator (metrics/de.py::de_lfc_nmae)."""
    if gate.size < MIN_GATE_SIZE:
        return np.nan
    r = real_lfc[gate]
    o = other_lfc[gate]
    o = np.where(np.isfinite(o), o, 0.0)
    den = np.abs(r).mean()
    if not (np.isfinite(den) and den != 0.0):
        return np.nan
    return float(np.abs(o - r).mean() / den)


def metrics_from_arrays(
    real: dict, pred: dict, genes: pd.Index, *, perts: list[str], targets: dict
) -> pd.DataFrame:
    """The four members per perturbation from two DE results of :func:`de_arrays`.

    ``real``, ``pred``: the truth's and the prediction's DE over the same genes (each
    with its own CPM gate ``kept``: the same one when both use the real control);
    ``genes``: the gene names; ``perts``: the perturbations (rows of both);
    ``targets``: {perturbation: its own genes' columns} to exclude
    (:func:`resolved_targets`, or {} to exclude nothing). A gene outside a side's gate
    is absent from that side's table, as in cell-eval2: it is in neither set, the
    prediction's log2FC there reads as 0 (``lfc_nmae``) and it is not ranked
    (direction). Formulas: module docstring.
    """
    real, pred = _masked(real), _masked(pred)
    names = np.asarray(genes, dtype=str)
    name_rank = np.empty(len(names), dtype=np.int64)
    name_rank[np.argsort(names, kind="stable")] = np.arange(len(names))
    rows = []
    for i, p in enumerate(perts):
        use_r, use_p = real["kept"].copy(), pred["kept"].copy()
        if p in targets:
            use_r[targets[p]] = use_p[targets[p]] = False
        r_lfc = real["lfc"][i]
        p_lfc = np.where(pred["kept"], pred["lfc"][i], np.nan)
        in_r = _sig(real["p_adj"][i], r_lfc) & use_r
        in_p = _sig(pred["p_adj"][i], p_lfc) & use_p
        union = int((in_r | in_p).sum())
        jaccard = 1.0 if union == 0 else int((in_r & in_p).sum()) / union
        nmae = _nmae(np.flatnonzero(in_r & np.isfinite(r_lfc)), r_lfc, p_lfc)
        # direction: genes in both tables (the inner join), the scored set P ∩ A
        scored = in_p & use_r & _defined(r_lfc)
        n_pred = int(scored.sum())
        same = np.sign(p_lfc) == np.sign(r_lfc)
        k = int((scored & _defined(p_lfc) & same).sum())
        n_conf = int(in_r.sum())
        denom = max(n_pred, n_conf)
        fy = np.nan if denom == 0 else k / denom
        pred_i = {
            "lfc": p_lfc,
            "p_adj": pred["p_adj"][i],
            "p_value": pred["p_value"][i],
        }
        k_star = _reach(np.flatnonzero(in_r & use_p), r_lfc, pred_i, name_rank)
        reach = np.nan if n_conf == 0 else k_star / n_conf
        rows.append((nmae, fy, reach, jaccard))
    out = pd.DataFrame(
        rows, columns=COLUMNS, index=pd.Index(perts, name="perturbation")
    )
    return out.astype(np.float64)


def _check_pair(real, pred, pert_col: str, control: str) -> tuple[np.ndarray, ...]:
    """(real labels, predicted labels, genes) after the shared input checks."""
    r_labels = _labels(real, pert_col, "real")
    p_labels = _labels(pred, pert_col, "predicted")
    genes = pd.Index(real.var_names.astype(str))
    if not genes.is_unique:
        raise InputError("The real data's gene names repeat; make var_names unique.")
    if not genes.equals(pd.Index(pred.var_names.astype(str))):
        raise InputError(
            "The real and predicted data have different genes (or gene order); score "
            "predictions over the real data's var_names, in the same order."
        )
    return r_labels, p_labels, genes


def _perturbations(labels: np.ndarray, control: str, pert_col: str, side: str):
    is_ctrl = labels == control
    if not is_ctrl.any():
        raise InputError(
            f"The {side} data have no control cells ({pert_col} == {control!r}); pass "
            "control= naming the control label."
        )
    perts = sorted(set(labels[~is_ctrl].tolist()))
    if not perts:
        raise InputError(f"The {side} data have only control cells; nothing to score.")
    return is_ctrl, perts


def _enough_cells(labels: np.ndarray, perts: list[str], side: str) -> None:
    few = [p for p in perts if int((labels == p).sum()) < 2]
    if few:
        raise InputError(
            f"The {side} data have fewer than 2 cells for {few[:5]}; a rank test "
            "needs at least 2 cells per perturbation."
        )


def score_de(
    real,
    pred,
    *,
    pert_col: str = "target",
    control: str = "non-targeting",
    exclude_target: bool = True,
    control_source: str = "real",
    allow_fractional: bool = False,
    targets=None,
) -> pd.DataFrame:
    """cell-eval2 ``--preset vcc2026``'s four DE members per perturbation.

    ``real``, ``pred``: AnnData of integer-count cells (``X`` dense or sparse), the same
    genes in ``var_names``, each cell's perturbation in ``obs[pert_col]``, control label
    ``control``. ``exclude_target``: drop each perturbation's own gene where its label
    names a measured gene (cell-eval2 #172); False keeps it (``--no-target-genes``).
    ``control_source``: ``"real"`` (the preset's scored leg) tests the predicted cells
    against the REAL control cells, so the prediction's own control cells are not used;
    ``"pred"`` (cell-eval2's anchor leg, one split half scored against the other) tests
    each side against its own control cells, each side with its own CPM gate.
    ``allow_fractional``: accept fractional predicted values (a mean baseline;
    cell-eval2's ``allow_fractional_counts``); the real side must hold integers.
    ``targets``: None (a label is its own target gene) or a callable label -> gene
    names (:func:`resolved_targets`).

    Returns one row per non-control perturbation of ``real`` (index ``perturbation``,
    sorted) and the columns :data:`COLUMNS`, raw values as cell-eval2's ``results.csv``
    holds them (NaN where it omits one). Formulas and the differences from cell-eval2:
    module docstring.
    """
    if control_source not in ("real", "pred"):
        raise InputError(
            f"control_source must be 'real' or 'pred', not {control_source!r}."
        )
    r_labels, p_labels, genes = _check_pair(real, pred, pert_col, control)
    is_ctrl, perts = _perturbations(r_labels, control, pert_col, "real")
    pred_perts = set(p_labels[p_labels != control].tolist())
    missing = [p for p in perts if p not in pred_perts]
    extra = sorted(pred_perts - set(perts))
    if missing or extra:
        what = f"missing {missing[:5]}" if missing else f"not in the truth {extra[:5]}"
        raise InputError(
            f"The predictions' perturbations differ from the truth's ({what}); predict "
            "every perturbation of the real data and no other."
        )
    _enough_cells(r_labels, perts, "real")
    _enough_cells(p_labels, perts, "predicted")
    r_counts = _counts(real, "real")
    ctrl_cpm = _cpm_rows(r_counts, np.flatnonzero(is_ctrl))
    de_real = _de_counts(r_counts, r_labels, ctrl_cpm, perts)
    if control_source == "pred":
        p_ctrl, _ = _perturbations(p_labels, control, pert_col, "predicted")
        p_counts = _counts(pred, "predicted", fractional=allow_fractional)
        p_lab, p_ref = p_labels, _cpm_rows(p_counts, np.flatnonzero(p_ctrl))
    else:
        p_keep = p_labels != control
        p_counts = _counts(pred[p_keep], "predicted", fractional=allow_fractional)
        p_lab, p_ref = p_labels[p_keep], ctrl_cpm
    de_pred = _de_counts(p_counts, p_lab, p_ref, perts)
    own = {}
    if exclude_target:
        own = resolved_targets(perts, genes, de_real["kept"], targets=targets)
    return metrics_from_arrays(de_real, de_pred, genes, perts=perts, targets=own)


def lfc_nmae_reference(
    real,
    halves: tuple,
    *,
    pert_col: str = "target",
    control: str = "non-targeting",
    exclude_target: bool = True,
    targets=None,
) -> pd.Series:
    """cell-eval2's split-half reference of ``de_wilcoxon_lfc_nmae``, per perturbation
    (``lfc_nmae_ref.py::compute_lfc_nmae_reference``, column ``nmae_ref_raw``; the
    anchor's value for this member, ``anchor.py::_lfc_nmae_raw``, is its mean).

    ``real``: all real count cells; ``halves``: ``(half_a, half_b)``, a disjoint split
    of ``real`` that splits the control too (the caller makes it, as cell-eval2's
    ``ceiling.py::_disjoint_halves``); ``pert_col``, ``control``,
    ``exclude_target``, ``targets``: as in :func:`score_de`. Three DE tables, each
    against its own control cells and CPM gate: the full data's gives the gate ``S_t``
    (significant, finite log2FC, own genes excluded) and the denominator, the halves'
    the numerator::

        ref_t = mean_{S_t} |lfc^A_tg - lfc^B_tg| / mean_{S_t} |lfc^full_tg|

    a log2FC missing from a half (gene outside its gate) read as 0; NaN where
    ``|S_t| < 10`` or the denominator is 0 or not finite. Index ``perturbation``.
    """
    half_a, half_b = halves
    labels, _, genes = _check_pair(real, half_a, pert_col, control)
    _check_pair(real, half_b, pert_col, control)
    is_ctrl, perts = _perturbations(labels, control, pert_col, "real")
    counts = _counts(real, "real")
    ctrl_cpm = _cpm_rows(counts, np.flatnonzero(is_ctrl))
    full = _masked(_de_counts(counts, labels, ctrl_cpm, perts))
    sides = []
    for name, half in (("first half", half_a), ("second half", half_b)):
        lab = _labels(half, pert_col, name)
        h_ctrl, _ = _perturbations(lab, control, pert_col, name)
        _enough_cells(lab, [p for p in perts if p in set(lab.tolist())], name)
        absent = [p for p in perts if not (lab == p).any()]
        if absent:
            raise InputError(
                f"The {name} has no cells of {absent[:5]}; split every perturbation "
                "with at least 2 cells into both halves."
            )
        h_counts = _counts(half, name)
        h_ref = _cpm_rows(h_counts, np.flatnonzero(h_ctrl))
        de = _de_counts(h_counts, lab, h_ref, perts)
        sides.append(np.where(de["kept"], de["lfc"], np.nan))
    own = {}
    if exclude_target:
        own = resolved_targets(perts, genes, full["kept"], targets=targets)
    out = []
    for i, p in enumerate(perts):
        use = full["kept"].copy()
        if p in own:
            use[own[p]] = False
        r_lfc = full["lfc"][i]
        gate = np.flatnonzero(_sig(full["p_adj"][i], r_lfc) & use & np.isfinite(r_lfc))
        a = np.where(np.isfinite(sides[0][i]), sides[0][i], 0.0)
        b = np.where(np.isfinite(sides[1][i]), sides[1][i], 0.0)
        den = np.abs(r_lfc[gate]).mean() if gate.size else np.nan
        if gate.size < MIN_GATE_SIZE or not (np.isfinite(den) and den != 0.0):
            out.append(np.nan)
        else:
            out.append(float(np.abs(a[gate] - b[gate]).mean() / den))
    return pd.Series(
        out, index=pd.Index(perts, name="perturbation"), name="nmae_ref_raw"
    )
