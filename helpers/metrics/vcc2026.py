"""Metric family ``vcc2026``: the Virtual Cell Challenge 2026 score, as cell-eval2
0.20.0 computes it with ``--preset vcc2026`` (chapter 9).

The preset (``cell_eval2/configs/vcc2026.yaml``) scores **integer counts** (obs
``target``, control ``non-targeting``) with six metrics per perturbation, then rescales
each between a mean-response *baseline* (``cell-eval2 baseline``, 0) and a split-half
*replicate* of the experiment (``cell-eval2 run --anchor``, 1) and averages the six
(``cell-eval2 score``, column ``from_replicate``, row ``avg_score``). This module
computes the two expression members, the rescaling and the overall score; the four DE
members (``de_wilcoxon_*``) come from :func:`helpers.metrics.vcc2026_de.score_de`.

**Expression space** (cell-eval2 ``prep.bulk_lognorm_means``, the ``bulk_lognorm``
comparator of a counts run): the pseudobulk of a group ``p`` of count cells is

    mu_pg = log1p(T * S_pg / sum_h S_ph),   S_pg = sum over the cells of p of counts,

with ``T = 5e4`` (:data:`BULK_TARGET_SUM`, the preset's ``bulk_target_sum``): the
group's counts are summed, normalised once and logged once. Labels are sorted
(``np.unique``).

**Sampling correction** (``moments.jackknife_correction``): for a group of ``n >= 2``
cells with library sizes ``l_i`` and ``r_i = sum_g S_pg - l_i``, the leave-one-out bulk
is ``v_ig = log1p(T * (S_pg - y_ig) / r_i)`` (0 where ``r_i = 0``) and

    C_p = max(0, (n - 1) / n * sum_g sum_i (v_ig - mean_i v_ig)^2),    C_p = 0 if n < 2.

**Target genes.** ``t(p)`` is the gene a perturbation targets: its label, when the label
is a measured gene (cell-eval2 ``distances.resolve_exclusion_columns``); the book's
:func:`score` also resolves both genes of a double ``A+B``. With ``exclude_target=True``
(the preset's rule) each metric leaves the target genes out as cell-eval2 does; with
``False`` nothing is excluded (cell-eval2's ``--no-target-genes``).

* ``pds_cosine`` (``metrics/discrimination.py::discrimination_score``, ``distance=
  "cosine"``, ``rank_denominator="n-1"``, ``tie_policy="midrank"``, ``exclusion_scope=
  "panel"``, ``control_source="real"``). Effects against the REAL control on both sides,
  ``e_hat_p = mu_hat_p - mu_ctrl`` and ``e_q = mu_q - mu_ctrl``, over the genes left
  after removing every panel target ``{t(q) : q}`` (one gene set for all pairs). With
  ``d(p, q) = 1 - cos(e_hat_p, e_q)`` (1 where a norm is 0; clipped to [0, 2]) and ``n``
  the real perturbations:

      rank(p) = #{q : d(p, q) < d(p, p)} + (#{q : d(p, q) = d(p, p)} - 1) / 2
      pds_cosine(p) = 1 - rank(p) / (n - 1)            (1.0 when n = 1, as cell-eval2)

* ``expr_mse_unbiased_capped_norm`` (catalog: ``agg="ratio_of_sums"`` of
  ``expr_mse_unbiased_capped`` over ``expr_distance_unbiased``; ``metrics/delta.py``).
  With ``G_p`` the genes minus ``t(p)`` (``|G_p| = G - 1`` where ``t(p)`` is measured):

      den_p = (||mu_p - mu_ctrl||^2_{G_p} - C_p - C_ctrl) / |G_p|
      num_p = (||mu_hat_p - mu_p||^2_{G_p} - c_p - C_p) / |G_p|
      c_p = rho * min(C_hat_p, C_p)                           (#247's cap, k = 1)

  where ``C_hat_p`` is the prediction's jackknife and ``rho = min(1, B / sum_p w_p
  min(C_hat_p, C_p))`` (#348) with ``w_p = 1 / |G_p|`` and ``B = sum_g max(0, sum_p w_p
  (x_pg - xbar_g)^2 - (sum_p w_p (x_pg - xbar_g))^2 / sum_p w_p)``, ``x = mu_hat``
  (``xbar``: the unweighted mean over the scored rows), each row's own target cell left
  out. (As in cell-eval2, the target gene leaves the squared distances but the
  corrections stay whole.) The member's value is ``sum_p num_p / sum_p den_p`` over the
  perturbations where both are finite (:func:`aggregate`); 1.0 = "predicted the
  control", 0 = perfect. cell-eval2 writes no per-perturbation value for it; this
  module's per-perturbation column is ``num_p / mean_q den_q``, whose mean over the
  perturbations is that ratio of sums, and the two components travel as
  :data:`COMPONENTS`.

**Counts from log-normalised data** (:func:`counts_from_lognorm`): the book's tasks hold
``log1p(counts / total * s)``; as the paper's scripts do, each cell's ``expm1(x)`` is
divided by its smallest non-zero value and rounded, which recovers the integer counts
whenever the cell has a gene with a single count.

**Rescaling** (``score.py::_replicate_entries`` + ``scoring.py::score_one``): with ``u``
the submission's aggregate, ``b`` the baseline's and ``r`` the replicate anchor's:

* higher-is-better members (``pds_cosine`` and three DE members): ``s = (u - b) / (r -
  b)``, no clip; a missing ``u`` scores as ``u = 0``;
* ``expr_mse_unbiased_capped_norm``: ``q = (u - r) / (b - r)``, ``s = 1 - q``, Box-Cox
  tail ``max(-6, -(q^2 - 1) / 2)`` below 0, then clipped to [0, 1];
* ``de_wilcoxon_lfc_nmae``: ``s = 1 - (u - r) / (b - r)``, clipped below at -6.

A member whose scale has no headroom (``r`` not better than ``b``) is refused, as
cell-eval2 refuses it. :func:`overall_score` is the mean of the six.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import replace

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..conditions import CONTROL, condition_genes
from ..errors import InputError
from ..simulate import counts_from_log_normalised
from .inputs import MetricInput, check_same_perturbations
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "EXPR_COLUMNS",
    "DE_COLUMNS",
    "COMPONENTS",
    "NEEDS_CELLS",
    "SPECS",
    "PEER",
    "BULK_TARGET_SUM",
    "PERT_COL",
    "CONTROL_LABEL",
    "counts_from_lognorm",
    "bulk_means",
    "jackknife",
    "pds_cosine",
    "expr_components",
    "score_expression",
    "score_anndata",
    "aggregate",
    "baseline_predictions",
    "split_halves",
    "anchor",
    "rescale",
    "overall_score",
    "score",
    "summarise",
    "BASELINE_METHOD",
    "REPLICATE_METHOD",
    "SUMMARY_COLUMNS",
]

NAME = "vcc2026"
PEER = "cell-eval2 0.20.0 --preset vcc2026"
PERT_COL = "target"
CONTROL_LABEL = "non-targeting"
BULK_TARGET_SUM = 5e4
EXPR_COLUMNS = ["pds_cosine", "expr_mse_unbiased_capped_norm"]
DE_COLUMNS = [
    "de_wilcoxon_lfc_nmae",
    "de_wilcoxon_direction_fidelity_yield_raw",
    "de_wilcoxon_direction_reach_raw",
    "de_wilcoxon_sig_jaccard",
]
COLUMNS: list[str] = [*EXPR_COLUMNS, *DE_COLUMNS]
#: The two per-perturbation components whose sums make ``expr_mse_unbiased_capped_norm``
COMPONENTS = ["expr_mse_unbiased_capped", "expr_distance_unbiased"]
NEEDS_CELLS = True

_DESCRIPTIONS = {
    "pds_cosine": "1 - midrank of the own effect among the real effects by cosine "
    "distance (targets excluded)",
    "expr_mse_unbiased_capped_norm": "sampling-corrected squared error over the mean "
    "sampling-corrected real effect; per perturbation num_p / mean(den), so its mean "
    "is cell-eval2's ratio of sums (1 = control, 0 = perfect, for that mean)",
    "de_wilcoxon_lfc_nmae": "normalised mean absolute error of log2 fold changes on "
    "the real DE genes",
    "de_wilcoxon_direction_fidelity_yield_raw": "share of real DE genes called in the "
    "right direction among the prediction's calls",
    "de_wilcoxon_direction_reach_raw": "share of real DE genes reached with the right "
    "direction",
    "de_wilcoxon_sig_jaccard": "Jaccard index of the real and predicted significant "
    "gene sets",
}
_DIRECTION = {
    "pds_cosine": "higher",
    "expr_mse_unbiased_capped_norm": "lower",
    "de_wilcoxon_lfc_nmae": "lower",
    "de_wilcoxon_direction_fidelity_yield_raw": "higher",
    "de_wilcoxon_direction_reach_raw": "higher",
    "de_wilcoxon_sig_jaccard": "higher",
}
_PERFECT = {
    "pds_cosine": 1.0,
    "expr_mse_unbiased_capped_norm": 0.0,
    "de_wilcoxon_lfc_nmae": 0.0,
    "de_wilcoxon_direction_fidelity_yield_raw": 1.0,
    "de_wilcoxon_direction_reach_raw": 1.0,
    "de_wilcoxon_sig_jaccard": 1.0,
}
BASELINE_METHOD = "mean"
REPLICATE_METHOD = "split_half_replicate"
SUMMARY_COLUMNS = ["method", *(f"vcc2026_score_{m}" for m in COLUMNS), "vcc2026_score"]
_PER_PERTURBATION = tuple(
    MetricSpec(
        column,
        NAME,
        _DIRECTION[column],
        True,
        f"{PEER} ({'metrics/discrimination.py' if column == 'pds_cosine' else 'run'})",
        column,
        _DESCRIPTIONS[column],
        perfect=_PERFECT[column],
    )
    for column in COLUMNS
)
#: The family's columns: per perturbation, then :func:`summarise`'s.
SPECS = (
    *_PER_PERTURBATION,
    *(
        MetricSpec(
            f"vcc2026_score_{column}",
            NAME,
            "higher",
            True,
            f"{PEER} (score.py::_replicate_entries)",
            None,
            f"{column} on the replicate scale (0 = mean baseline, 1 = replicate)",
            role="summary",
        )
        for column in COLUMNS
    ),
    MetricSpec(
        "vcc2026_score",
        NAME,
        "higher",
        True,
        f"{PEER} (score.py, from_replicate)",
        "avg_score",
        "mean of the six vcc2026 members' replicate-scale scores",
        role="summary",
    ),
)

#: cell-eval2's scoring policy per member (``catalog.py``): (direction, Box-Cox tail,
#: clamp_low, clamp_high, metric_min)
_POLICY = {
    "pds_cosine": ("higher", False, None, None, 0.0),
    "expr_mse_unbiased_capped_norm": ("lower", True, 0.0, 1.0, None),
    "de_wilcoxon_lfc_nmae": ("lower", False, -6.0, None, None),
    "de_wilcoxon_direction_fidelity_yield_raw": ("higher", False, None, None, 0.0),
    "de_wilcoxon_direction_reach_raw": ("higher", False, None, None, 0.0),
    "de_wilcoxon_sig_jaccard": ("higher", False, None, None, 0.0),
}
_PENALTY_EXPONENT = 2.0
_PENALTY_CAP = 6.0


# --------------------------------------------------------------------------- counts


def _csr64(X) -> sp.csr_matrix:
    X = X.tocsr() if sp.issparse(X) else sp.csr_matrix(np.asarray(X))
    return sp.csr_matrix(X, dtype=np.float64)


def _rows(X, idx) -> np.ndarray:
    """Rows ``idx`` of a sparse or dense matrix, dense float64."""
    part = X[idx]
    if sp.issparse(part):
        return part.toarray().astype(np.float64)
    return np.asarray(part, dtype=np.float64)


def counts_from_lognorm(adata: ad.AnnData) -> ad.AnnData:
    """Integer counts rebuilt from log-normalised cells, as the paper's scripts do
    (:func:`helpers.simulate.counts_from_log_normalised`, the one recipe).

    ``adata.X`` holds ``x = log1p(counts / total * s)`` per cell. Per cell ``c``:
    ``u_c = min {expm1(x_cg) : x_cg > 0}`` (the value of one count) and
    ``counts_cg = round(expm1(x_cg) / u_c)``; a cell with no expressed gene stays 0.
    Exact whenever the cell holds a gene with a single count (the usual case in
    Perturb-seq); otherwise every count is divided by the smallest one. Returns a new
    AnnData (float32 CSR of whole numbers) with ``adata``'s obs and var.
    """
    X = adata.X
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.size and np.min(data) < 0:
        raise InputError(
            "counts_from_lognorm got negative values; pass log1p-normalised cells "
            "(log1p(counts / total * s)), not scaled or centred data."
        )
    counts, _ = counts_from_log_normalised(X)
    return ad.AnnData(
        sp.csr_matrix(counts, dtype=np.float32),
        obs=adata.obs.copy(),
        var=adata.var.copy(),
    )


# --------------------------------------------------------------------- bulk, jackknife


def _groups(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    uniq, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    codes = np.ravel(codes)
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=uniq.size))))
    return uniq, [order[bounds[k] : bounds[k + 1]] for k in range(uniq.size)]


def bulk_means(
    X, labels, *, target_sum: float = BULK_TARGET_SUM
) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted labels, mu)``: the ``bulk_lognorm`` pseudobulk of each group of count
    cells (module docstring; an all-zero group gives zeros).

    ``X``: cells x genes (counts); ``labels``: each cell's group; ``target_sum``: ``T``.
    """
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)
    perts, rows = _groups(labels)
    sums = np.vstack([_rows(X, r).sum(axis=0) for r in rows])
    totals = sums.sum(axis=1)
    scale = np.zeros_like(totals)
    scale[totals > 0] = target_sum / totals[totals > 0]
    return perts, np.log1p(sums * scale[:, None])


def jackknife(X, labels, *, target_sum: float = BULK_TARGET_SUM) -> np.ndarray:
    """``C_p`` per group (sorted labels): the delete-1 jackknife of the ``bulk_lognorm``
    pseudobulk, summed over genes (module docstring).

    ``X``: cells x genes (counts); ``labels``: each cell's group; ``target_sum``: ``T``.
    """
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)
    perts, rows = _groups(labels)
    out = np.zeros(perts.size)
    for k, r in enumerate(rows):
        n = r.size
        if n < 2:
            continue
        Y = _rows(X, r)
        P = Y.sum(axis=0)
        tot = float(P.sum())
        if tot <= 0.0:
            continue
        rest = tot - Y.sum(axis=1)
        if np.any(rest < 0):
            raise InputError("Negative counts reached the jackknife; pass counts.")
        safe = np.where(rest > 0, rest, 1.0)[:, None]
        v = np.log1p(target_sum * (P[None, :] - Y) / safe)
        b = np.log1p(target_sum * P / tot)
        v = np.where((rest > 0)[:, None], v, 0.0) - b[None, :]
        q = np.einsum("ij,ij->j", v, v) - v.sum(axis=0) ** 2 / n
        out[k] = max((n - 1) / n * float(q.sum()), 0.0)
    return out


# ------------------------------------------------------------------- target columns


def _target_columns(labels, genes: pd.Index, targets) -> dict[int, list[int]]:
    """``{row -> [gene columns of its targets]}`` for the labels whose targets are
    measured. ``targets``: None (the label itself is the gene, cell-eval2's rule) or a
    callable label -> list of genes."""
    pos = {str(g): k for k, g in enumerate(genes)}
    out: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        names = [str(label)] if targets is None else list(targets(str(label)))
        cols = sorted({pos[g] for g in names if g in pos})
        if cols:
            out[i] = cols
    return out


# ------------------------------------------------------------------------ pds_cosine


def _cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sim = a @ b.T
    na = np.sqrt(np.einsum("ig,ig->i", a, a))
    nb = np.sqrt(np.einsum("jg,jg->j", b, b))
    denom = na[:, None] * nb[None, :]
    cos = np.zeros_like(sim)
    nz = denom != 0
    cos[nz] = sim[nz] / denom[nz]
    return np.clip(1.0 - cos, 0.0, 2.0)


def pds_cosine(
    pred: tuple[np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray],
    genes,
    *,
    control: str = CONTROL_LABEL,
    control_source: str = "real",
    exclude_target: bool = True,
    targets=None,
) -> pd.Series:
    """``pds_cosine`` per predicted perturbation (module docstring).

    ``pred``, ``real``: ``(labels, mu)`` from :func:`bulk_means`; ``genes``: the
    columns; ``control``: the control label; ``control_source``: ``"real"`` (the
    preset) or ``"pred"`` (the replicate anchor subtracts each side's own control);
    ``exclude_target``: drop the panel's target genes; ``targets``: label -> genes
    (default: the label is the gene).
    """
    genes = pd.Index(genes).astype(str)
    r_lab, r_mu = np.asarray(real[0]).astype(str), np.asarray(real[1], np.float64)
    p_lab, p_mu = np.asarray(pred[0]).astype(str), np.asarray(pred[1], np.float64)
    if not (r_lab == control).any():
        raise InputError(f"No {control!r} cells in the real data; add control cells.")
    r_ctrl = r_mu[np.flatnonzero(r_lab == control)[0]]
    if control_source == "pred":
        if not (p_lab == control).any():
            raise InputError(f"No {control!r} cells in the predictions; add them.")
        p_ctrl = p_mu[np.flatnonzero(p_lab == control)[0]]
    else:
        p_ctrl = r_ctrl
    r_keep, p_keep = r_lab != control, p_lab != control
    real_keys, pred_keys = r_lab[r_keep], p_lab[p_keep]
    real_eff, pred_eff = r_mu[r_keep] - r_ctrl, p_mu[p_keep] - p_ctrl
    if exclude_target:
        cols = _target_columns(real_keys, genes, targets)
        drop = sorted({c for v in cols.values() for c in v})
        keep = np.ones(genes.size, dtype=bool)
        keep[drop] = False
        if not keep.any():
            raise InputError(
                "Every gene is the target of some perturbation; score with "
                "exclude_target=False."
            )
        real_eff, pred_eff = real_eff[:, keep], pred_eff[:, keep]
    dist = _cosine_distances(pred_eff, real_eff)
    pos = {p: j for j, p in enumerate(real_keys)}
    n = real_keys.size
    out = {}
    for i, p in enumerate(pred_keys):
        row = dist[i]
        match = row[pos[p]]
        rank = np.count_nonzero(row < match) + (np.count_nonzero(row == match) - 1) / 2
        out[p] = 1.0 if n - 1 <= 0 else 1.0 - rank / (n - 1)
    return pd.Series(out, name="pds_cosine", dtype=np.float64)


# ------------------------------------------------------------------- expression MSE


def _budget(x: np.ndarray, cols: dict[int, list[int]], w: np.ndarray) -> float:
    """#348's across-perturbation budget ``B`` (module docstring)."""
    n_rows, n_genes = x.shape
    dev = x - x.mean(axis=0)
    s1 = np.einsum("ij,i->j", dev, w)
    s2 = np.einsum("ij,ij,i->j", dev, dev, w)
    wsum = np.full(n_genes, float(w.sum()))
    cnt = np.full(n_genes, float(n_rows))
    for k, cs in cols.items():
        for c in cs:
            v = dev[k, c]
            s1[c] -= w[k] * v
            s2[c] -= w[k] * v * v
            wsum[c] -= w[k]
            cnt[c] -= 1.0
    ok = (cnt >= 2.0) & (wsum > 0.0)
    if not ok.any():
        return 0.0
    return float(np.maximum(s2[ok] - s1[ok] ** 2 / wsum[ok], 0.0).sum())


def _drop_targets(summed, a, b, cols, n_genes) -> tuple[np.ndarray, np.ndarray]:
    out = np.array(summed, dtype=np.float64)
    n_row = np.full(out.size, float(n_genes))
    for k, cs in cols.items():
        for c in cs:
            out[k] -= float(a[k, c] - b[k, c]) ** 2
        n_row[k] = n_genes - len(cs)
    return out, n_row


def _per_gene(summed, n_row) -> np.ndarray:
    return np.divide(summed, n_row, out=np.full(summed.shape, np.nan), where=n_row > 0)


def expr_components(
    pred: tuple[np.ndarray, np.ndarray, np.ndarray],
    real: tuple[np.ndarray, np.ndarray, np.ndarray],
    genes,
    *,
    control: str = CONTROL_LABEL,
    exclude_target: bool = True,
    targets=None,
) -> pd.DataFrame:
    """``num_p`` (``expr_mse_unbiased_capped``) and ``den_p``
    (``expr_distance_unbiased``) per predicted perturbation (module docstring).

    ``pred``, ``real``: ``(labels, mu, C)`` from :func:`bulk_means` and
    :func:`jackknife`; ``genes``, ``control``, ``exclude_target``, ``targets``: as in
    :func:`pds_cosine`.
    """
    genes = pd.Index(genes).astype(str)
    p_lab, p_mu, p_c = (np.asarray(v) for v in pred)
    r_lab, r_mu, r_c = (np.asarray(v) for v in real)
    p_lab, r_lab = p_lab.astype(str), r_lab.astype(str)
    r_index = {p: i for i, p in enumerate(r_lab)}
    keep = np.flatnonzero(p_lab != control)
    rows = np.array([r_index[p] for p in p_lab[keep]], dtype=np.intp)
    n_genes = genes.size
    labels = p_lab[keep]
    cols = _target_columns(labels, genes, targets) if exclude_target else {}
    x = np.asarray(p_mu, np.float64)[keep]
    y = np.asarray(r_mu, np.float64)[rows]
    n_row = np.full(keep.size, float(n_genes))
    for k, cs in cols.items():
        n_row[k] = n_genes - len(cs)
    w = np.divide(1.0, n_row, out=np.zeros_like(n_row), where=n_row > 0)
    term = np.minimum(np.asarray(p_c, np.float64)[keep], np.asarray(r_c)[rows])
    claim = float((term * w).sum())
    if claim > 0.0:
        ratio = _budget(x, cols, w) / claim
        if ratio < 1.0:
            term = term * ratio
    d = x - y
    summed = np.einsum("ij,ij->i", d, d) - term - np.asarray(r_c, np.float64)[rows]
    summed, n_num = _drop_targets(summed, x, y, cols, n_genes)
    num = _per_gene(summed, n_num)
    # the denominator: each real perturbation against the real control
    ci = r_index[control]
    c_mu = np.broadcast_to(np.asarray(r_mu, np.float64)[ci], y.shape)
    d = y - c_mu
    summed = np.einsum("ij,ij->i", d, d) - np.asarray(r_c)[rows] - float(r_c[ci])
    summed, n_den = _drop_targets(summed, y, c_mu, cols, n_genes)
    den = _per_gene(summed, n_den)
    return pd.DataFrame({COMPONENTS[0]: num, COMPONENTS[1]: den}, index=labels)


# --------------------------------------------------------------------------- checks


def _check_counts(adata: ad.AnnData, what: str, *, allow_fractional: bool) -> None:
    X = adata.X
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    values = np.asarray(values, dtype=np.float64)
    if values.size and not np.all(np.isfinite(values)):
        raise InputError(f"The {what} hold NaN or infinite values; pass counts.")
    if values.size and values.min() < 0:
        raise InputError(
            f"The {what} hold negative values; vcc2026 needs raw counts "
            "(for log-normalised data use counts_from_lognorm)."
        )
    if not allow_fractional and values.size and np.any(values != np.rint(values)):
        raise InputError(
            f"The {what} hold non-integer values; vcc2026 needs integer counts "
            "(for log-normalised data use counts_from_lognorm)."
        )


def _labels(adata: ad.AnnData, pert_col: str, what: str) -> np.ndarray:
    if pert_col not in adata.obs.columns:
        raise InputError(
            f"The {what} have no obs column {pert_col!r}; name the perturbation "
            "column with pert_col (--pert-col)."
        )
    return adata.obs[pert_col].astype(str).to_numpy()


def _check_pair(real, pred, *, pert_col, control, allow_fractional) -> None:
    for what, obj in (("real data", real), ("predictions", pred)):
        if obj.n_obs == 0 or obj.n_vars == 0:
            raise InputError(
                f"The {what} are empty ({obj.n_obs} cells x {obj.n_vars} genes); "
                "pass a file with cells and genes."
            )
    if not np.array_equal(
        np.asarray(real.var_names).astype(str), np.asarray(pred.var_names).astype(str)
    ):
        raise InputError(
            "The real data and the predictions have different genes (or gene order); "
            "give both files the same var_names."
        )
    r_lab = _labels(real, pert_col, "real data")
    p_lab = _labels(pred, pert_col, "predictions")
    if not (r_lab == control).any():
        raise InputError(
            f"The real data have no control cells ({pert_col} == {control!r}); "
            "add them or name the control with control (--control)."
        )
    check_same_perturbations(
        set(r_lab) - {control},
        set(p_lab) - {control},  # the real data hold the control (checked above)
        lacking="The predictions lack {n} perturbation(s) of the real data "
        "(e.g. {examples}); predict every perturbation.",
        surplus="The predictions hold perturbation(s) absent from the real data "
        "(e.g. {examples}); drop them or fix the labels.",
    )
    _check_counts(real, "real data", allow_fractional=False)
    _check_counts(pred, "predictions", allow_fractional=allow_fractional)


# ------------------------------------------------------------------------ scoring


def score_expression(
    real: ad.AnnData,
    pred: ad.AnnData,
    *,
    pert_col: str = PERT_COL,
    control: str = CONTROL_LABEL,
    exclude_target: bool = True,
    control_source: str = "real",
    targets=None,
    real_stats: tuple | None = None,
) -> pd.DataFrame:
    """The two expression members per perturbation (index ``perturbation``): columns
    ``pds_cosine``, ``expr_mse_unbiased_capped_norm`` (:func:`_norm_column`) and the two
    :data:`COMPONENTS`. Inputs are checked by :func:`score_anndata`; arguments as
    there, plus ``control_source`` and ``targets`` (:func:`pds_cosine`) and
    ``real_stats``: the real side's ``(labels, mu, C)`` if already computed."""
    genes = pd.Index(real.var_names).astype(str)
    r_lab = real.obs[pert_col].astype(str).to_numpy()
    p_lab = pred.obs[pert_col].astype(str).to_numpy()
    if real_stats is None:
        real_stats = (*bulk_means(real.X, r_lab), jackknife(real.X, r_lab))
    r_perts, r_mu, r_c = real_stats
    p_perts, p_mu = bulk_means(pred.X, p_lab)
    pds = pds_cosine(
        (p_perts, p_mu),
        (r_perts, r_mu),
        genes,
        control=control,
        control_source=control_source,
        exclude_target=exclude_target,
        targets=targets,
    )
    comp = expr_components(
        (p_perts, p_mu, jackknife(pred.X, p_lab)),
        (r_perts, r_mu, r_c),
        genes,
        control=control,
        exclude_target=exclude_target,
        targets=targets,
    )
    order = [p for p in r_perts if p != control]
    table = pd.DataFrame(index=pd.Index(order, name="perturbation"))
    table["pds_cosine"] = pds.reindex(order).to_numpy()
    for c in COMPONENTS:
        table[c] = comp[c].reindex(order).to_numpy()
    table["expr_mse_unbiased_capped_norm"] = _norm_column(table)
    return table


def _norm_column(table: pd.DataFrame) -> np.ndarray:
    """The per-perturbation column of ``expr_mse_unbiased_capped_norm``: ``num_p /
    mean_q den_q`` over the perturbations ``q`` where both components are finite (NaN
    elsewhere), so its mean over perturbations IS cell-eval2's ratio of sums ``sum num /
    sum den``; the denominator is the real data's, the same for every method. (A
    per-perturbation ``num_p / den_p`` would not average to it, and ``den_p`` can be
    near 0 or negative for a weak perturbation.)"""
    num = table[COMPONENTS[0]].to_numpy(dtype=np.float64)
    den = table[COMPONENTS[1]].to_numpy(dtype=np.float64)
    ok = np.isfinite(num) & np.isfinite(den)
    out = np.full(num.shape, np.nan)
    if ok.any() and den[ok].mean() != 0:
        out[ok] = num[ok] / den[ok].mean()
    return out


def score_anndata(
    real: ad.AnnData,
    pred: ad.AnnData,
    *,
    pert_col: str = PERT_COL,
    control: str = CONTROL_LABEL,
    exclude_target: bool = True,
    allow_fractional: bool = False,
    de: bool = True,
    targets=None,
    real_stats: tuple | None = None,
) -> pd.DataFrame:
    """All six members per perturbation of ``real`` (index ``perturbation``, columns
    :data:`COLUMNS`, then :data:`COMPONENTS`), as ``cell-eval2 run --preset vcc2026``.

    ``real``, ``pred``: count cells, same genes, obs ``pert_col`` (control label
    ``control``); ``exclude_target``: leave target genes out (the preset's rule);
    ``allow_fractional``: accept fractional predicted counts (a mean baseline, the
    book's rescaled control cells); ``de``: add the four DE members
    (:func:`helpers.metrics.vcc2026_de.score_de`); ``targets``: label -> genes (default:
    the label is the gene); ``real_stats``: the real side's ``(labels, mu, C)`` if
    already computed. Bad input raises :class:`helpers.errors.InputError` with one
    line.
    """
    _check_pair(
        real,
        pred,
        pert_col=pert_col,
        control=control,
        allow_fractional=allow_fractional,
    )
    table = score_expression(
        real,
        pred,
        pert_col=pert_col,
        control=control,
        exclude_target=exclude_target,
        targets=targets,
        real_stats=real_stats,
    )
    if de:
        from . import vcc2026_de  # engineer 2's module (the four DE members)

        part = vcc2026_de.score_de(
            real,
            pred,
            pert_col=pert_col,
            control=control,
            exclude_target=exclude_target,
            allow_fractional=allow_fractional,
            targets=targets,
        )
        for c in DE_COLUMNS:
            table[c] = part[c].reindex(table.index).to_numpy(dtype=np.float64)
    else:
        for c in DE_COLUMNS:
            table[c] = np.nan
    return table[[*COLUMNS, *COMPONENTS]]


def aggregate(table: pd.DataFrame) -> pd.Series:
    """Each member's aggregate over perturbations, as ``cell-eval2 run`` writes it
    (``agg_results.csv``, row ``mean``): the NaN-skipping mean, and for
    ``expr_mse_unbiased_capped_norm`` the ratio of sums ``sum num_p / sum den_p`` over
    the perturbations where both components are finite.

    ``table``: :func:`score_anndata`'s (columns present are aggregated).
    """
    out = {}
    for c in COLUMNS:
        if c == "expr_mse_unbiased_capped_norm":
            num = table[COMPONENTS[0]].to_numpy(dtype=np.float64)
            den = table[COMPONENTS[1]].to_numpy(dtype=np.float64)
            ok = np.isfinite(num) & np.isfinite(den)
            out[c] = float(num[ok].sum() / den[ok].sum()) if ok.any() else np.nan
        elif c in table:
            v = table[c].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            out[c] = float(v.mean()) if v.size else np.nan
    return pd.Series(out, name="aggregate")


# ---------------------------------------------------------------- baseline, anchor


def baseline_predictions(
    real: ad.AnnData,
    *,
    pert_col: str = PERT_COL,
    control: str = CONTROL_LABEL,
    exclude_target: bool = True,
    seed: int = 0,
) -> ad.AnnData:
    """The mean-response baseline as ``cell-eval2 baseline`` emits it (``baseline.py``,
    ``emit="dispersed"``): fractional count cells, same obs and var as ``real``.

    ``m_g`` = the mean over non-control perturbations of their per-cell mean counts
    (``exclude_target``: without the perturbation targeting ``g``); ``f_g = m_g /
    c_g`` with ``c_g`` the control's mean counts (0 where ``c_g = 0``). Each
    non-control perturbation (sorted) gets as many control cells as it has cells, drawn
    with replacement by ``numpy.random.default_rng(seed).integers``, each gene scaled by
    ``f_g``; control rows keep the real control cells.
    """
    labels = _labels(real, pert_col, "real data")
    X = _csr64(real.X)
    perts, rows = _groups(labels)
    means = np.vstack([np.asarray(X[r].mean(axis=0)).ravel() for r in rows])
    keep = perts != control
    bulk, plabels = means[keep], perts[keep]
    total = bulk.sum(axis=0)
    count = np.full(X.shape[1], float(bulk.shape[0]))
    if exclude_target:
        genes = pd.Index(real.var_names).astype(str)
        for i, cs in _target_columns(plabels, genes, None).items():
            for j in cs:
                total[j] -= bulk[i, j]
                count[j] -= 1.0
        if np.any(count <= 0):
            raise InputError(
                "Every perturbation targets some gene, so its mean response is "
                "undefined; use exclude_target=False."
            )
    profile = total / count
    ctrl_rows = np.flatnonzero(labels == control)
    ctrl = X[ctrl_rows]
    ctrl_pb = np.asarray(ctrl.mean(axis=0)).ravel()
    zero = ctrl_pb <= 0
    scale = np.where(zero, 0.0, profile / np.where(zero, 1.0, ctrl_pb))
    rng = np.random.default_rng(seed)
    non_control = sorted(set(labels[labels != control].tolist()))
    positions = [np.flatnonzero(labels == p) for p in non_control]
    source = np.concatenate(
        [rng.integers(0, ctrl.shape[0], size=p.size) for p in positions]
    )
    emitted = sp.csr_matrix(ctrl[source], dtype=np.float64)
    emitted.data = (emitted.data * scale[emitted.indices]).astype(np.float32)
    emitted = sp.csr_matrix(emitted, dtype=np.float32)
    emitted.eliminate_zeros()
    blocks = sp.vstack([emitted, sp.csr_matrix(ctrl, dtype=np.float32)], format="csr")
    where = np.concatenate([*positions, ctrl_rows])
    order = np.empty(real.n_obs, dtype=np.intp)
    order[where] = np.arange(real.n_obs)
    return ad.AnnData(blocks[order].tocsr(), obs=real.obs.copy(), var=real.var.copy())


def split_halves(
    real: ad.AnnData, *, pert_col: str = PERT_COL, seed: int = 0
) -> tuple[ad.AnnData, ad.AnnData]:
    """Two disjoint halves of ``floor(n / 2)`` cells per group, as cell-eval2 splits
    (``ceiling._disjoint_halves``): groups in pandas groupby order, each group's cells
    permuted by ``numpy.random.default_rng(seed).permutation``; a group with fewer than
    2 cells is dropped. ``seed``: the split's seed."""
    rng = np.random.default_rng(seed)
    a_idx, b_idx = [], []
    for _p, idx in real.obs.groupby(pert_col, observed=True).indices.items():
        perm = rng.permutation(np.asarray(idx))
        h = perm.size // 2
        if h < 1:
            continue
        a_idx.append(perm[:h])
        b_idx.append(perm[h : 2 * h])
    if not a_idx:
        raise InputError("No group has 2 cells to split; the anchor needs replicates.")
    return real[np.concatenate(a_idx)].copy(), real[np.concatenate(b_idx)].copy()


def anchor(
    real: ad.AnnData,
    *,
    pert_col: str = PERT_COL,
    control: str = CONTROL_LABEL,
    exclude_target: bool = True,
    base_seed: int = 0,
    n_splits: int = 5,
    de: bool = True,
) -> pd.DataFrame:
    """The split-half replicate anchor (``cell-eval2 run --anchor``, ``anchor.py``).

    Seeds ``numpy.random.SeedSequence(base_seed).generate_state(n_splits)``; per seed,
    :func:`split_halves` gives ``(a, b)`` and ``b`` is scored as a prediction of ``a``
    with each side's own control (``control_source="pred"``); the anchor of a member is
    the mean over the splits of its aggregate (:func:`aggregate`). Returns one row per
    split (index ``seed``) and member, plus a last row ``replicate`` (the mean).
    ``de``: add the DE members through :func:`helpers.metrics.vcc2026_de.score_de`
    (each half against its own control), except ``de_wilcoxon_lfc_nmae``, whose anchor
    in cell-eval2 is a separate estimator on the same split (``lfc_nmae_ref.py``,
    :func:`helpers.metrics.vcc2026_de.lfc_nmae_reference`).
    """
    seeds = [
        int(s) for s in np.random.SeedSequence(int(base_seed)).generate_state(n_splits)
    ]
    rows = {}
    for seed in seeds:
        half_a, half_b = split_halves(real, pert_col=pert_col, seed=seed)
        table = score_expression(
            half_a,
            half_b,
            pert_col=pert_col,
            control=control,
            exclude_target=exclude_target,
            control_source="pred",
        )
        if de:
            from . import vcc2026_de

            part = vcc2026_de.score_de(
                half_a,
                half_b,
                pert_col=pert_col,
                control=control,
                exclude_target=exclude_target,
                control_source="pred",
            )
            for c in DE_COLUMNS:
                table[c] = part[c].reindex(table.index).to_numpy(dtype=np.float64)
            ref = vcc2026_de.lfc_nmae_reference(
                real,
                (half_a, half_b),
                pert_col=pert_col,
                control=control,
                exclude_target=exclude_target,
            )
            table["de_wilcoxon_lfc_nmae"] = ref.reindex(table.index).to_numpy(
                dtype=np.float64
            )
        rows[seed] = aggregate(table)
    out = pd.DataFrame(rows).T
    out.index.name = "seed"
    out.loc["replicate"] = out.mean(axis=0)
    return out


# ---------------------------------------------------------------------- rescaling


def _score_one(u: float, b: float, r: float, metric: str) -> float:
    """cell-eval2's ``score_one`` on the replicate scale (module docstring)."""
    direction, boxcox, low, high, metric_min = _POLICY[metric]
    d = (r - b) if direction == "higher" else (b - r)
    if not (math.isfinite(b) and math.isfinite(r)) or not d > 0:
        raise InputError(
            f"{metric}: the replicate ({r:.6g}) leaves no headroom over the baseline "
            f"({b:.6g}); cell-eval2 refuses this scale - use more cells per group."
        )
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high

    def core(x: float) -> float:
        if direction == "lower":
            q = (x - r) / (b - r)
            s = 1.0 - q
            if s < 0.0 and boxcox:
                s = max(
                    -_PENALTY_CAP, -(q**_PENALTY_EXPONENT - 1.0) / _PENALTY_EXPONENT
                )
            return s
        return (x - b) / (r - b)

    def clip(x: float) -> float:
        if not math.isfinite(x):
            return lo
        return lo if x <= lo else (hi if x >= hi else x)

    if u is None or not math.isfinite(float(u)):
        return clip(core(metric_min)) if low is None else clip(-math.inf)
    return clip(core(float(u)))


def rescale(user: pd.Series, baseline: pd.Series, replicate: pd.Series) -> pd.Series:
    """Each member's score on the replicate scale: 0 = the baseline, 1 = the replicate
    (``cell-eval2 score --anchor``, column ``from_replicate``; module docstring).

    ``user``, ``baseline``, ``replicate``: aggregates per member (:func:`aggregate` of
    the submission, of :func:`baseline_predictions`, and :func:`anchor`'s
    ``replicate`` row). Members absent from ``replicate`` are left out."""
    out = {}
    for m in COLUMNS:
        if m not in replicate.index or m not in baseline.index:
            continue
        u = user.get(m, np.nan)
        out[m] = _score_one(float(u), float(baseline[m]), float(replicate[m]), m)
    return pd.Series(out, name="from_replicate", dtype=np.float64)


def overall_score(scores: pd.Series) -> float:
    """The competition's overall score: the mean of the members' rescaled scores
    (``cell-eval2 score``, row ``avg_score``). ``scores``: :func:`rescale`'s."""
    if scores.empty:
        raise InputError("No member was rescaled; compute the baseline and the anchor.")
    return float(np.mean(scores.to_numpy(dtype=np.float64)))


# ---------------------------------------------------------------- the book's tasks


def _truth_counts(inp: MetricInput) -> tuple[ad.AnnData, np.ndarray, tuple]:
    """The truth's held-out and control cells as counts over the evaluation genes
    (rebuilt from the log-normalised cells over all their genes), their log-normalised
    values over the evaluation genes, and their ``(labels, mu, C)``; cached per task
    and split (shared by every method)."""
    key = ("vcc2026_truth", id(inp.cells), tuple(inp.conditions), tuple(inp.genes))
    if key not in inp.cache:
        cells = inp.cells
        labels = cells.obs["condition"].astype(str).to_numpy()
        use = np.flatnonzero(np.isin(labels, [*inp.conditions, CONTROL]))
        cols = cells.var_names.get_indexer(inp.genes)
        if (cols < 0).any():
            raise InputError(
                "The truth's cells lack some evaluation genes; load the cells of the "
                "same dataset as the pseudobulks."
            )
        sub = cells[use]
        counts = counts_from_lognorm(sub).X[:, cols]
        truth = ad.AnnData(
            counts,
            obs=pd.DataFrame({PERT_COL: labels[use]}, index=sub.obs_names),
            var=pd.DataFrame(index=pd.Index(inp.genes).astype(str)),
        )
        lognorm = _rows(sub.X, slice(None))[:, cols]
        stats = (*bulk_means(counts, labels[use]), jackknife(counts, labels[use]))
        inp.cache[key] = (cells, truth, lognorm, stats)
    return inp.cache[key][1:]


def _scale_factors(lin: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per gene the factor ``f >= 0`` with ``mean_c log1p(f * lin_cg) = target_g``
    (the definition of :func:`helpers.metrics.vcc.predicted_cells`), by Newton's method
    on ``t = log f``: the left side is convex and increasing in ``t`` and the start
    ``f = expm1(target) / mean(lin)`` lies left of the root (Jensen), so the iterates
    converge; 0 where ``target <= 0`` or where no sampled cell expresses the gene."""
    f = np.zeros(lin.shape[1])
    solve = (lin > 0).any(axis=0) & (target > 0)
    if not solve.any():
        return f
    x, y = lin[:, solve], target[solve]
    t = np.log(np.expm1(y) / x.mean(axis=0))
    for _ in range(60):
        a = x * np.exp(t)[None, :]
        step = (np.log1p(a).mean(axis=0) - y) / (a / (1.0 + a)).mean(axis=0)
        t = np.clip(t - step, -40.0, 40.0)
        if np.all(np.abs(step) < 1e-12):
            break
    f[solve] = np.exp(t)
    return f


def _predicted_counts(
    inp: MetricInput, truth: ad.AnnData, lognorm: np.ndarray
) -> ad.AnnData:
    """Control count cells rescaled to the prediction (:func:`score`), then the
    truth's control cells; dense."""
    labels = truth.obs[PERT_COL].to_numpy()
    ctrl = np.flatnonzero(labels == CONTROL)
    ctrl_counts = _rows(truth.X, ctrl)
    ctrl_lin = np.expm1(lognorm[ctrl])
    seed = 0 if inp.seed is None else int(inp.seed)
    blocks, out_labels = [], []
    for p in inp.conditions:
        n = min(int((labels == p).sum()), ctrl.size)
        rng = np.random.default_rng([seed, zlib.crc32(str(p).encode())])
        rows = np.sort(rng.choice(ctrl.size, n, replace=False))
        target = inp.pred.loc[p].to_numpy(dtype=np.float64)
        blocks.append(ctrl_counts[rows] * _scale_factors(ctrl_lin[rows], target))
        out_labels += [p] * n
    blocks.append(ctrl_counts)
    out_labels += [CONTROL] * ctrl.size
    return ad.AnnData(
        np.vstack(blocks),
        obs=pd.DataFrame(
            {PERT_COL: out_labels}, index=[f"pred{i}" for i in range(len(out_labels))]
        ),
        var=truth.var.copy(),
    )


def score(inp: MetricInput) -> pd.DataFrame:
    """The six members per held-out condition of one method (columns :data:`COLUMNS`).

    The book's tasks hold log-normalised cells and pseudobulk predictions, so: the
    truth's cells become counts (:func:`counts_from_lognorm`, on all genes, then the
    evaluation genes); the predicted cells of condition ``p`` are formed as
    :mod:`helpers.metrics.vcc` forms them - ``n_p`` seeded control cells, each gene
    scaled by the factor ``f_g`` that makes the cells' mean log-normalised value the
    prediction (:func:`_scale_factors`) - and here it is their *counts* that are
    scaled (``f_g * counts``, fractional, as cell-eval2's own baseline is); then
    :func:`score_anndata` with the control ``ctrl``, targets excluded (both genes of a
    double). The control of both sides is the truth's control cells. A condition with
    fewer than 2 observed cells (a rank test needs two; e.g. the half of a small
    condition) gets NaN in every member and is left out of the panel.
    """
    if inp.cells is None:
        raise InputError(
            "The 'vcc2026' metrics need the truth's cells; pass cells= to metric_input."
        )
    labels = inp.cells.obs["condition"].astype(str).value_counts()
    few = [c for c in inp.conditions if labels.get(c, 0) < 2]
    if few and labels.get(CONTROL, 0) >= 2:
        # a rank test needs two cells: such a condition (e.g. half of a small one)
        # gets NaN in every member and leaves the panel, as in the vcc family
        kept = [c for c in inp.conditions if c not in few]
        table = pd.DataFrame(index=pd.Index(inp.conditions, name="condition"))
        if len(kept) < 2:
            return table.assign(**{c: np.nan for c in COLUMNS})
        part = score(replace(inp, pred=inp.pred.loc[kept], obs=inp.obs.loc[kept]))
        return part.reindex(table.index)[COLUMNS]
    truth, lognorm, stats = _truth_counts(inp)
    labels = truth.obs[PERT_COL].to_numpy()
    missing = [p for p in inp.conditions if not (labels == p).any()]
    if missing or not (labels == CONTROL).any():
        raise InputError(
            f"The truth's cells have no cells for {(missing or [CONTROL])[:5]}; "
            "vcc2026 needs cells of every held-out condition and of the control."
        )
    pred = _predicted_counts(inp, truth, lognorm)
    table = score_anndata(
        truth,
        pred,
        pert_col=PERT_COL,
        control=CONTROL,
        allow_fractional=True,
        targets=condition_genes,
        real_stats=stats,
    )
    table.index.name = "condition"
    return table.reindex(inp.conditions)[COLUMNS]


def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """The competition's scores per method on a book task (columns
    :data:`SUMMARY_COLUMNS`): each member rescaled by :func:`rescale` and their mean
    (:func:`overall_score`).

    ``metrics``: per-condition :data:`COLUMNS` of several methods (columns method,
    seed, condition, ...). The scale's ends are the book's positive controls on the
    same (seed, condition) rows: the mean baseline (:data:`BASELINE_METHOD`, the
    training perturbations' mean; cell-eval2's baseline averages the reference's own
    perturbations, :func:`baseline_predictions`) and the split-half replicate
    (:data:`REPLICATE_METHOD`, one split per seed; cell-eval2 averages five,
    :func:`anchor`). Each aggregate is the mean of the per-condition column (for
    ``expr_mse_unbiased_capped_norm`` that is the ratio of sums within a split). A
    member whose scale has no headroom, or a table without the two controls, gives
    NaN (cell-eval2 would stop).
    """
    keys = ["seed", "condition"]
    table = metrics.copy()
    table["seed"] = table["seed"].astype("object").where(table["seed"].notna(), -1)
    have = set(table["method"])
    rows = []
    for method in pd.unique(table["method"]):
        row = {"method": method}
        if not {BASELINE_METHOD, REPLICATE_METHOD} <= have:
            rows.append(row)
            continue
        shared = None
        for name in (method, BASELINE_METHOD, REPLICATE_METHOD):
            idx = pd.MultiIndex.from_frame(table.loc[table["method"] == name, keys])
            shared = idx if shared is None else shared.intersection(idx)
        means = {}
        for name in (method, BASELINE_METHOD, REPLICATE_METHOD):
            part = table[table["method"] == name].set_index(keys)
            part = part[[c for c in COLUMNS if c in part]].reindex(shared)
            means[name] = part.mean(axis=0, skipna=True)
        scores = {}
        for m in COLUMNS:
            try:
                scores[m] = _score_one(
                    float(means[method].get(m, np.nan)),
                    float(means[BASELINE_METHOD].get(m, np.nan)),
                    float(means[REPLICATE_METHOD].get(m, np.nan)),
                    m,
                )
            except InputError:
                scores[m] = np.nan
            row[f"vcc2026_score_{m}"] = scores[m]
        row["vcc2026_score"] = float(np.mean(list(scores.values())))
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
