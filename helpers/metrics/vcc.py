"""Metric family ``vcc``: the Virtual Cell Challenge metrics, as in cell-eval2 0.20.0.

The 2025 challenge (Arc Institute's cell-eval) scored MAE, a perturbation discrimination
score and a DE overlap, and normalised them to a baseline; cell-eval2 (PyPI
``cell-eval2``, the re-implementation used for 2026) keeps these three as its ``vcc``
profile (``cell_eval2/catalog.py``: ``expr_mae``, ``pds_l1``, ``de_wilcoxon_overlap``)
and adds a *replicate scale*: 0 = the baseline, 1 = a split-half replicate of the
experiment. Notation as in :mod:`helpers.metrics.paper`: held-out conditions ``Q``,
observed pseudobulk ``y_p``, prediction ``y_hat_p``, control pseudobulk ``c`` (all
control cells), evaluation genes ``G``. The book's data are log-normalised, which is
cell-eval2's ``lognorm`` comparator: a pseudobulk is the mean of the cells'
log-normalised values, as :func:`helpers.pseudobulk.pseudobulk` computes it.

* ``mae`` = ``mean_{g in G} |y_hat_pg - y_pg|`` (cell-eval2 ``metrics/delta.py::mae``
  with ``safe.safe_mae``; catalog name ``expr_mae``, v1 name ``mae``).

* ``discrimination_score_l1`` (cell-eval2
  ``metrics/discrimination.py::discrimination_score`` with ``distance="l1"``, catalog
  ``pds_l1``, under the default ``EvalConfig()`` = ``v2``: ``control_source="real"``,
  ``rank_denominator="n-1"``, ``tie_policy="midrank"``, ``exclusion_scope="panel"``).
  Effects ``e_hat_p = y_hat_p - c`` and ``e_q = y_q - c`` (the real control on both
  sides). First every gene that is the target of a held-out condition is removed from
  ``G`` ("panel" scope, one fixed gene set for all pairs, so a prediction cannot win by
  spiking the other conditions' targets). Then with ``d(p, q) = sum_g |e_hat_pg -
  e_qg|`` over the remaining genes, against every held-out condition ``q`` (``n = |Q|``,
  ``p`` included):

      rank(p) = #{q : d(p, q) < d(p, p)} + (#{q : d(p, q) = d(p, p)} - 1) / 2
      discrimination_score_l1(p) = 1 - rank(p) / (n - 1)       (rank: 0-based midrank)

  1 = the prediction is closest to its own effect, 0 = farthest, 0.5 = a guess (an
  all-tied row). Target genes come from the book's condition names
  (:func:`helpers.conditions.condition_genes`, both genes of a double); cell-eval2 maps
  each label to one gene by name (``distances.py::resolve_exclusion_columns``) and
  cannot resolve ``A+B``, so on a panel of doubles it excludes nothing - where no target
  is measured (the Norman subset) both exclude nothing. Differences from the peer: ``n =
  1`` gives NaN here (cell-eval2 returns 1.0 when ``n - 1 = 0``); a panel whose targets
  are unmeasured is scored without exclusion rather than refused (the labels are parsed,
  not guessed, so there is no name mismatch to guard against).

* ``de_overlap_vcc`` (cell-eval2 ``metrics/de.py::de_overlap`` with ``k=None``,
  ``metric="overlap"``: catalog ``de_wilcoxon_overlap``, v1 ``overlap_at_N``, the VCC
  2025 DE score). DE tables as cell-eval2's CPU path builds them
  (``de_compute.py::compute_de``, ``backend="scanpy"``, ``input_type="lognorm"``, v2
  ``DEParams``): for each condition, its cells vs the control cells over ``G``; p-values
  from ``scanpy.tl.rank_genes_groups(method="wilcoxon", tie_correct=True)``, adjusted
  per condition (Benjamini-Hochberg, scanpy's ``pvals_adj``; v2
  ``fdr_scope="per_pert"``); ``log2FC = log2((m_p + 1e-9) / (m_c + 1e-9))`` with ``m``
  the arithmetic mean of ``expm1`` of the cells (v2 ``mean_calc="arithmetic"``,
  ``epsilon=1e-9``); a NaN log2FC counts as not significant (``nan_lfc_policy="mask"``);
  the CPM gene filter is skipped on log-normalised input by the CPU backends, as there
  (``_resolve_cpm_filter``). Significant = ``p_adj < 0.05``; genes ranked by
  ``|log2FC|`` (descending; ties keep gene order, cell-eval2's ordinal rank). With
  ``R_p`` the truth's significant genes in that order, ``P_p`` the prediction's, and ``k
  = |R_p|``:

      de_overlap_vcc(p) = |R_p[:k] ∩ P_p[:k]| / k,   and 0 when k = 0 or P_p is empty

  NaN for a condition with fewer than 2 observed cells (a rank test needs two; scanpy
  refuses one), e.g. in a split half of a small condition.
  As in cell-eval2: an empty set is *not* counted as agreement - a condition whose truth
  has no DE gene scores 0 for every method, and a prediction with no DE gene ("no
  change") scores 0. cell-eval 0.8.2 (2025) computed the same ratio.

  **Predicted cells.** DE needs cells, and the book's predictions are pseudobulks. The
  VCC asks for predicted cells; a pseudobulk exported as identical copies
  (``to_cell_eval``) has zero spread, so a rank test calls almost every gene significant
  whatever was predicted, and control cells *shifted* by the predicted change fail the
  same way on genes the control never expresses (every cell moves off 0 by the same tiny
  amount, a "perfectly significant" change). The book forms the predicted cells of ``p``
  as **control cells rescaled to the prediction**: ``S_p`` a seeded sample of ``n_p``
  control cells (``n_p`` = the number of observed cells of ``p``, so the test has the
  truth's power; all control cells if there are fewer; ``numpy.random.default_rng([seed,
  crc32(p)])``), and per gene ``x -> log1p(f_g * expm1(x))`` with ``f_g >= 0`` solved
  (bisection) so that the cells' mean is the predicted ``y_hat_pg``: a perturbation
  scales a gene's expression, zeros stay zeros, the cell-to-cell spread is the
  control's. A gene the sampled control cells never express cannot be scaled and stays 0
  there (its predicted value is not represented); where the prediction is <= 0 the gene
  is 0 in every cell. "No change" gives ``f = 1``: cells distributed like the control,
  (almost) no DE gene, overlap 0.

**Target-gene exclusion** (:attr:`MetricInput.exclude_target`; :mod:`.paper`).
``de_overlap_vcc`` honours it: with the option, ``p``'s targets are removed from both
ranked lists ``R_p`` and ``P_p`` before the top ``k`` are compared (``k`` = the
truth's significant genes that are not targets), so a knocked-down target that every
method predicts cannot count as agreement. ``discrimination_score_l1`` always leaves the
held-out conditions' targets out (cell-eval2's default, "panel" scope, above), so the
option does not change it. ``mae`` is a per-gene average and keeps every gene.

``summarise`` turns the three per-condition metrics into cell-eval2's replicate scale
(``score.py::_replicate_entries`` + ``scoring.py::score_one``): per method, ``u`` = the
mean over its conditions (NaN skipped; cell-eval2 ``run.aggregate_metrics``), ``b`` =
the same for the mean baseline (:data:`BASELINE_METHOD`), ``r`` = the same for the
split-half replicate (:data:`REPLICATE_METHOD`,
:func:`helpers.ceilings.split_half_replicate`), on the (seed, condition) rows all three
share:

    s = (u - b) / (r - b)        (0 = baseline, 1 = replicate; either direction)

then the catalog's policy for each metric: ``mae`` (``scoring.ERROR``) below 0 follows
the Box-Cox tail ``max(-6, -(q^2 - 1) / 2)`` with ``q = (u - r) / (b - r)``; the two
bounded metrics (``scoring.BOUNDED``) are clipped at 0. A non-finite ``u`` takes the
floor (-6 and 0). A degenerate scale (``r`` not better than ``b``) gives NaN (cell-eval2
stops there). ``replicate_score_vcc`` is the mean of the three (cell-eval2's
``avg_score`` over the profile).
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from ..conditions import CONTROL, condition_genes
from ..errors import InputError
from .inputs import MetricInput
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
    "score",
    "summarise",
    "mae",
    "discrimination_scores",
    "de_table",
    "wilcoxon_vs_control",
    "sorted_control",
    "wilcoxon_vs_sorted_control",
    "de_overlaps",
    "predicted_cells",
    "prediction_cells",
    "replicate_score",
    "BASELINE_METHOD",
    "REPLICATE_METHOD",
    "SUMMARY_COLUMNS",
    "P_ADJ_THRESHOLD",
    "EPSILON",
]

NAME = "vcc"
COLUMNS: list[str] = ["mae", "discrimination_score_l1", "de_overlap_vcc"]
NEEDS_CELLS = True

BASELINE_METHOD = "mean"
REPLICATE_METHOD = "split_half_replicate"
P_ADJ_THRESHOLD = 0.05
EPSILON = 1e-9
_PER_CONDITION = (
    MetricSpec(
        "mae",
        NAME,
        "lower",
        False,
        "cell_eval2 metrics/delta.py::mae",
        "expr_mae",
        "Mean absolute error of prediction and observed pseudobulk over the genes",
        perfect=0.0,
    ),
    MetricSpec(
        "discrimination_score_l1",
        NAME,
        "higher",
        False,
        "cell_eval2 metrics/discrimination.py::discrimination_score",
        "pds_l1",
        "1 - normalised L1 rank of the own effect among the held-out effects",
        perfect=1.0,
    ),
    MetricSpec(
        "de_overlap_vcc",
        NAME,
        "higher",
        True,
        "cell_eval2 metrics/de.py::de_overlap",
        "de_wilcoxon_overlap",
        "Share of the truth's significant DE genes among the prediction's top genes",
        perfect=1.0,
    ),
)
#: (floor, Box-Cox tail) of cell-eval2's catalog policy for each metric; the direction
#: is the metric's spec's
_POLICY = {
    "mae": (-6.0, True),
    "discrimination_score_l1": (0.0, False),
    "de_overlap_vcc": (0.0, False),
}
_DIRECTION = {spec.column: spec.direction for spec in _PER_CONDITION}
SUMMARY_COLUMNS = (
    ["method"] + [f"replicate_score_{m}" for m in COLUMNS] + ["replicate_score_vcc"]
)
#: The family's columns: per condition, then :func:`summarise`'s (module docstring).
SPECS = (
    *_PER_CONDITION,
    *(
        MetricSpec(
            f"replicate_score_{spec.column}",
            NAME,
            "higher",
            spec.needs_cells,
            "cell_eval2 scoring.py::score_one",
            None,
            f"{spec.column} on the replicate scale (0 = mean baseline, 1 = replicate)",
            role="summary",
        )
        for spec in _PER_CONDITION
    ),
    MetricSpec(
        "replicate_score_vcc",
        NAME,
        "higher",
        True,
        "cell_eval2 scoring.py::score_one",
        "avg_score",
        "mean of the three VCC metrics' replicate-scale scores",
        role="summary",
    ),
)


def mae(pred: pd.DataFrame, obs: pd.DataFrame) -> pd.Series:
    """``mean_g |pred - obs|`` per condition (row)."""
    diff = pred.to_numpy(dtype=np.float64) - obs[pred.columns].to_numpy(
        dtype=np.float64
    )
    return pd.Series(np.abs(diff).mean(axis=1), index=pred.index, name="mae")


def discrimination_scores(
    pred: pd.DataFrame, obs: pd.DataFrame, ctrl: pd.Series
) -> pd.Series:
    """cell-eval2's ``pds_l1`` per condition (definition, differences: module doc)."""
    genes = pd.Index(pred.columns)
    targets = {g for q in obs.index for g in condition_genes(str(q))}
    keep = ~genes.isin(list(targets))
    if not keep.any():
        raise InputError(
            "Every evaluation gene is the target of a held-out condition; the "
            "discrimination score has no gene left to compare on."
        )
    c = ctrl[genes].to_numpy(dtype=np.float64)
    e_hat = (pred.to_numpy(dtype=np.float64) - c)[:, keep]
    e = (obs[genes].to_numpy(dtype=np.float64) - c)[:, keep]
    dist = cdist(e_hat, e, metric="cityblock")  # as cell-eval2's pairwise_full
    own = obs.index.get_indexer(pred.index)
    if (own < 0).any():
        raise InputError(
            "The discrimination score needs the observed profile of every "
            "predicted condition."
        )
    n = len(obs)
    if n < 2:
        return pd.Series(np.nan, index=pred.index, name="discrimination_score_l1")
    match = dist[np.arange(len(own)), own][:, None]
    rank = (dist < match).sum(axis=1) + ((dist == match).sum(axis=1) - 1) / 2.0
    return pd.Series(
        1.0 - rank / (n - 1), index=pred.index, name="discrimination_score_l1"
    )


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


@numba.njit(cache=True, nogil=True)
def _rank_sums_vs_sorted(ctrl_sorted, ctrl_ties, group):
    """Per gene: the rank sum of ``group``'s cells among group + control cells
    (average ranks for ties) and scanpy's tie correction ``1 - sum(t^3 - t) / (N^3 -
    N)`` over the combined sample.

    ``ctrl_sorted``: the control cells, each gene's column sorted ascending;
    ``ctrl_ties``: per gene, ``sum(k^3 - k)`` over the control's distinct values (``k``
    their counts). A group value ``v`` seen ``m`` times, with ``L`` combined values
    below it and ``t`` equal to it (control + group), takes ranks ``L + 1 .. L + t``:
    it adds ``m * (L + (t + 1) / 2)``. Rank sums are sums of half-integers, exact in
    float64, so they equal the sums of ``scanpy``'s ``rankdata`` bit for bit.
    """
    n_c, n_genes = ctrl_sorted.shape
    n_g = group.shape[0]
    size = np.float64(n_c + n_g)
    sums = np.zeros(n_genes)
    tc = np.ones(n_genes)
    for j in range(n_genes):
        c = ctrl_sorted[:, j]
        g = np.sort(group[:, j])
        ties = ctrl_ties[j]
        below_in_group = 0
        i = 0
        total = 0.0
        while i < n_g:
            v = g[i]
            m = 1
            while i + m < n_g and g[i + m] == v:
                m += 1
            lo = np.searchsorted(c, v, side="left")
            hi = np.searchsorted(c, v, side="right")
            k = hi - lo
            t = k + m
            total += m * (lo + below_in_group + (t + 1) / 2.0)
            ties += np.float64(t) ** 3 - t - (np.float64(k) ** 3 - k)
            below_in_group += m
            i += m
        sums[j] = total
        if size >= 2:
            tc[j] = 1.0 - ties / (size**3 - size)
    return sums, tc


def _control_ties(ctrl_sorted: np.ndarray) -> np.ndarray:
    """Per gene ``sum(k^3 - k)`` over the distinct values of a column-sorted matrix."""
    n = ctrl_sorted.shape[0]
    out = np.zeros(ctrl_sorted.shape[1])
    if n == 0:
        return out
    new = np.ones(ctrl_sorted.shape, dtype=bool)
    new[1:] = ctrl_sorted[1:] != ctrl_sorted[:-1]
    for j in range(ctrl_sorted.shape[1]):
        k = np.diff(np.append(np.flatnonzero(new[:, j]), n)).astype(np.float64)
        out[j] = (k**3 - k).sum()
    return out


def wilcoxon_vs_control(
    X: np.ndarray, labels: np.ndarray, groups: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each group's cells vs the ``ctrl`` cells, gene by gene: (p-values, BH-adjusted
    p-values), as ``scanpy.tl.rank_genes_groups(method="wilcoxon", tie_correct=True,
    reference="ctrl")`` computes them (scanpy 1.11 ``_RankGenes.wilcoxon`` and
    ``compute_statistics``: z = (rank sum - n (N + 1) / 2) / sqrt(tc n m (N + 1) / 12),
    a NaN z set to 0, p = 2 sf(|z|), p_adj = statsmodels ``fdr_bh``).

    scanpy ranks the group and all control cells afresh for every group; the control is
    the same for all, so here it is sorted once and each group's values are placed into
    it by binary search (:func:`_rank_sums_vs_sorted`): the same numbers
    (``tests/parity/test_metrics_vcc_de.py`` compares with scanpy itself), about a
    hundred times faster on the paper's Norman split.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    ctrl = sorted_control(X[labels == CONTROL])
    return {
        group: wilcoxon_vs_sorted_control(
            ctrl, np.ascontiguousarray(X[labels == group])
        )
        for group in groups
    }


def sorted_control(ctrl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The control cells prepared once for :func:`wilcoxon_vs_sorted_control`: each
    gene's column sorted ascending, and per gene ``sum(k^3 - k)`` over its distinct
    values (``k`` their counts). ``ctrl``: control cells x genes, float64."""
    ctrl = np.sort(ctrl, axis=0)
    return ctrl, _control_ties(ctrl)


def wilcoxon_vs_sorted_control(
    ctrl: tuple[np.ndarray, np.ndarray], cells: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One group's cells vs the control, gene by gene: (p-values, BH-adjusted
    p-values), the test of :func:`wilcoxon_vs_control`.

    ``ctrl``: :func:`sorted_control` of the control cells; ``cells``: the group's
    cells x genes (float64, C-contiguous).
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    ctrl_sorted, ctrl_ties = ctrl
    m_active = ctrl_sorted.shape[0]
    n_active = cells.shape[0]
    sums, tc = _rank_sums_vs_sorted(ctrl_sorted, ctrl_ties, cells)
    std_dev = np.sqrt(tc * n_active * m_active * (n_active + m_active + 1) / 12.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (sums - (n_active * ((n_active + m_active + 1) / 2.0))) / std_dev
    scores[np.isnan(scores)] = 0
    pvals = 2 * stats.distributions.norm.sf(np.abs(scores))
    pvals[np.isnan(pvals)] = 1
    _, pvals_adj, _, _ = multipletests(pvals, alpha=0.05, method="fdr_bh")
    return pvals, pvals_adj


def de_table(
    X: np.ndarray, labels: np.ndarray, genes: pd.Index, groups: list[str]
) -> pd.DataFrame:
    """DE of each group's cells vs the ``ctrl`` cells, as cell-eval2's CPU path does it.

    ``X``: log-normalised cells x ``genes``; ``labels``: the cells' conditions (``ctrl``
    the reference). Columns: target, feature, log2_fold_change, p_value, p_adj (the
    feature order of each target is ``genes``). The p-values are scanpy's Wilcoxon
    test (:func:`wilcoxon_vs_control`).
    """
    labels = np.asarray(labels).astype(str)
    use = np.isin(labels, list(groups) + [CONTROL])
    X, labels = np.asarray(X[use], dtype=np.float64), labels[use]
    tests = wilcoxon_vs_control(X, labels, list(groups))
    linear = np.expm1(X)
    ref_mean = linear[labels == CONTROL].mean(axis=0)
    features = pd.Index(genes, dtype=str)
    frames = []
    for group in groups:
        mean = linear[labels == group].mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lfc = np.log2((mean + EPSILON) / (ref_mean + EPSILON))
        pvals, pvals_adj = tests[group]
        frames.append(
            pd.DataFrame(
                {
                    "target": group,
                    "feature": features,
                    "log2_fold_change": lfc,
                    "p_value": pvals,
                    "p_adj": pvals_adj,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _ranked_significant(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Significant genes of each target, ordered by |log2FC| descending (stable)."""
    p_adj = table["p_adj"].where(table["log2_fold_change"].notna(), 1.0)  # NaN-LFC mask
    sig = table[p_adj < P_ADJ_THRESHOLD].copy()
    sig["abs_lfc"] = sig["log2_fold_change"].abs()
    out = {}
    for target, part in sig.groupby("target", sort=False):
        out[str(target)] = part.sort_values("abs_lfc", ascending=False, kind="stable")[
            "feature"
        ].to_numpy()
    return out


def de_overlaps(
    pred_table: pd.DataFrame,
    real_table: pd.DataFrame,
    conditions,
    *,
    exclude_target: bool = False,
) -> pd.Series:
    """``de_overlap_vcc`` per condition from the two DE tables (module docstring).

    ``pred_table``, ``real_table``: :func:`de_table`'s tables of the prediction and the
    truth; ``conditions``: the conditions to score; ``exclude_target``: drop each
    condition's targets from both ranked lists first.
    """
    real, pred = _ranked_significant(real_table), _ranked_significant(pred_table)
    out = {}
    for p in conditions:
        r_genes = real.get(p, np.array([], dtype=str))
        p_genes = pred.get(p, np.array([], dtype=str))
        if exclude_target:
            targets = condition_genes(str(p))
            r_genes = r_genes[~np.isin(r_genes, targets)]
            p_genes = p_genes[~np.isin(p_genes, targets)]
        k = r_genes.size
        out[p] = 0.0 if k == 0 else np.intersect1d(r_genes[:k], p_genes[:k]).size / k
    return pd.Series(out, name="de_overlap_vcc", dtype=np.float64)


def _scale_to_mean(lin: np.ndarray, target: np.ndarray, iters: int = 64) -> np.ndarray:
    """Per gene, the factor ``f >= 0`` with ``mean_c log1p(f * lin_c) = target``.

    Bisection on ``log f``; 0 where ``target <= 0``; NaN where the control sample is all
    zero (no factor reaches another mean).
    """
    lo = np.full(lin.shape[1], -40.0)
    hi = np.full(lin.shape[1], 40.0)
    for _ in range(iters):
        mid = (lo + hi) / 2.0
        too_high = np.log1p(lin * np.exp(mid)).mean(axis=0) > target
        hi = np.where(too_high, mid, hi)
        lo = np.where(too_high, lo, mid)
    f = np.exp((lo + hi) / 2.0)
    f[target <= 0] = 0.0
    f[(lin > 0).sum(axis=0) == 0] = np.nan
    return f


def predicted_cells(
    pred: pd.DataFrame, ctrl_cells: np.ndarray, n_cells: dict[str, int], *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Control cells rescaled to the prediction (module docstring): (X, labels).

    ``ctrl_cells``: log-normalised control cells over ``pred``'s genes. A gene with no
    expression in the sampled control cells stays 0 (no scaling reaches another mean).
    """
    blocks, labels = [], []
    for p in pred.index:
        n = min(int(n_cells[p]), len(ctrl_cells))
        rng = np.random.default_rng([seed, zlib.crc32(str(p).encode())])
        rows = np.sort(rng.choice(len(ctrl_cells), n, replace=False))
        lin = np.expm1(ctrl_cells[rows])
        f = _scale_to_mean(lin, pred.loc[p].to_numpy(dtype=np.float64))
        blocks.append(np.log1p(lin * np.nan_to_num(f, nan=0.0)))
        labels += [str(p)] * n
    return np.vstack(blocks), np.asarray(labels)


def _cache_key(inp: MetricInput, what: str) -> tuple:
    # the cells object is part of the key (and kept alive in the cache entry): two
    # truths with the same conditions and genes (full data, a split half) never share
    return (what, id(inp.cells), tuple(inp.conditions), tuple(inp.genes))


def _truth_cells(inp: MetricInput):
    """(X over the evaluation genes, labels) of held-out and control cells, cached."""
    key = _cache_key(inp, "vcc_truth_cells")
    if key not in inp.cache:
        cells = inp.cells
        labels = cells.obs["condition"].astype(str).to_numpy()
        use = np.isin(labels, inp.conditions + [CONTROL])
        cols = cells.var_names.get_indexer(inp.genes)
        if (cols < 0).any():
            raise InputError(
                "The truth's cells lack some evaluation genes; load the cells of "
                "the same dataset as the pseudobulks."
            )
        X = _dense(cells.X[np.flatnonzero(use)][:, cols])
        inp.cache[key] = (cells, X, labels[use])
    return inp.cache[key][1:]


def _truth_de(inp: MetricInput, X: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    key = _cache_key(inp, "vcc_truth_de")
    if key not in inp.cache:
        inp.cache[key] = (inp.cells, de_table(X, labels, inp.genes, inp.conditions))
    return inp.cache[key][1]


def prediction_cells(inp: MetricInput) -> tuple[np.ndarray, np.ndarray]:
    """The predicted cells of every condition of ``inp``, then the truth's control cells
    (the DE reference): (X over the evaluation genes, labels)."""
    X, labels = _truth_cells(inp)
    ctrl_cells = X[labels == CONTROL]
    n_cells = {p: int((labels == p).sum()) for p in inp.conditions}
    seed = 0 if inp.seed is None else int(inp.seed)
    pX, plabels = predicted_cells(inp.pred, ctrl_cells, n_cells, seed=seed)
    return (
        np.vstack([pX, ctrl_cells]),
        np.concatenate([plabels, np.full(len(ctrl_cells), CONTROL)]),
    )


def score(inp: MetricInput) -> pd.DataFrame:
    """Per-condition VCC metrics of one method (columns :data:`COLUMNS`);
    ``de_overlap_vcc`` honours ``inp.exclude_target`` (module docstring)."""
    if inp.cells is None:
        raise InputError(
            "The 'vcc' metrics need the truth's cells (DE statistics); pass cells= "
            "to metric_input."
        )
    X, labels = _truth_cells(inp)
    missing = [p for p in inp.conditions if not (labels == p).any()]
    if missing or not (labels == CONTROL).any():
        raise InputError(
            f"The truth's cells have no cells for {(missing or [CONTROL])[:5]}; "
            "DE needs cells of every held-out condition and of the control."
        )
    table = pd.DataFrame(index=pd.Index(inp.conditions, name="condition"))
    table["mae"] = mae(inp.pred, inp.obs).to_numpy()
    table["discrimination_score_l1"] = discrimination_scores(
        inp.pred, inp.obs, inp.ctrl
    ).to_numpy()
    # a rank test needs at least 2 cells in a group (scanpy refuses one): a condition
    # with fewer observed cells (e.g. in a split half) has no DE score, NaN
    testable = [p for p in inp.conditions if int((labels == p).sum()) >= 2]
    table["de_overlap_vcc"] = np.nan
    if testable:
        sub = replace(inp, pred=inp.pred.loc[testable], obs=inp.obs.loc[testable])
        real_de = _truth_de(sub, X, labels)
        pred_de = de_table(*prediction_cells(sub), inp.genes, testable)
        table.loc[testable, "de_overlap_vcc"] = (
            de_overlaps(pred_de, real_de, testable, exclude_target=inp.exclude_target)
            .reindex(testable)
            .to_numpy()
        )
    return table[COLUMNS]


def replicate_score(u: float, b: float, r: float, *, metric: str) -> float:
    """cell-eval2's replicate-scale score of one aggregate (module docstring).

    ``u``: the method's mean of ``metric`` (one of :data:`COLUMNS`); ``b``: the mean
    baseline's; ``r``: the split-half replicate's, all on the same rows. Which way is
    better comes from the metric's spec (:data:`SPECS`).
    """
    direction = _DIRECTION[metric]
    floor, boxcox = _POLICY[metric]
    if not (np.isfinite(b) and np.isfinite(r)):
        return float("nan")
    headroom = (r - b) if direction == "higher" else (b - r)
    if not headroom > 0:
        return float("nan")
    if not np.isfinite(u):
        return floor
    if direction == "lower":
        q = (u - r) / (b - r)
        s = 1.0 - q
        if s < 0.0 and boxcox:
            s = max(-6.0, -(q**2 - 1.0) / 2.0)
    else:
        s = (u - b) / (r - b)
    return float(max(s, floor))


def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """Replicate-calibrated scores per method (columns :data:`SUMMARY_COLUMNS`).

    ``metrics`` holds the per-condition :data:`COLUMNS` of several methods (columns
    method, seed, condition, ...), the mean baseline and the split-half replicate among
    them.
    """
    for needed in (BASELINE_METHOD, REPLICATE_METHOD):
        if not (metrics["method"] == needed).any():
            raise InputError(
                f"The replicate-calibrated VCC score needs rows of {needed!r} in the "
                "metrics table; score the mean baseline and the split-half replicate "
                "(helpers.ceilings.split_half_replicate) on the same splits."
            )
    if "dataset" in metrics and metrics["dataset"].nunique() > 1:
        raise InputError(
            "The replicate-calibrated VCC score is per dataset: call summarise on one "
            f"dataset's rows at a time (got {sorted(metrics['dataset'].unique())[:5]})."
        )
    keys = ["seed", "condition"]
    table = metrics.copy()
    table["seed"] = table["seed"].astype("object").where(table["seed"].notna(), -1)
    rows = []
    for method in pd.unique(table["method"]):
        shared = None
        for name in (method, BASELINE_METHOD, REPLICATE_METHOD):
            idx = pd.MultiIndex.from_frame(table.loc[table["method"] == name, keys])
            shared = idx if shared is None else shared.intersection(idx)
        row = {"method": method}
        scores = []
        for metric in COLUMNS:
            means = {}
            for name in (method, BASELINE_METHOD, REPLICATE_METHOD):
                part = table[table["method"] == name].set_index(keys)[metric]
                means[name] = (
                    float(np.nanmean(part.reindex(shared).to_numpy(dtype=np.float64)))
                    if len(shared) and part.reindex(shared).notna().any()
                    else float("nan")
                )
            s = replicate_score(
                means[method],
                means[BASELINE_METHOD],
                means[REPLICATE_METHOD],
                metric=metric,
            )
            row[f"replicate_score_{metric}"] = s
            scores.append(s)
        row["replicate_score_vcc"] = float(np.mean(scores))
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
