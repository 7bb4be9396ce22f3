"""Metric family ``ceiling``: the best score the data allow, and how far a method gets
(chapter 8).

Derivation and caveats: :mod:`helpers.ceilings` (module docstring). Per condition, from
split halves of its cells (:func:`split_halves`, :func:`noise_ceiling`, seed
:data:`SEED`, :data:`N_REPEATS` random cuts averaged):

* ``l2_ceiling`` / ``pearson_delta_ceiling``: the agreement of two independent
  replicates of the experiment (``*_half``: of its two halves); ``l2_oracle`` /
  ``pearson_delta_oracle``: the score of the true mean, the best achievable. These are
  the same for every method (bounds from the data, role ``reference``): they are shown
  beside the methods, never compared between them.
* ``norm_l2 = (l2_base - l2) / (l2_base - l2_oracle)`` and ``norm_pearson_delta =
  (pd - pd_base) / (pd_oracle - pd_base)`` (:func:`rescale`): 0 = the mean baseline, 1
  = the oracle; higher is better. ``l2_base``, ``pd_base``: the score of the mean
  baseline's prediction (:func:`helpers.baselines.mean_baseline`: the mean of the
  training pseudobulks, the control's included), computed here from the
  :class:`~.inputs.MetricInput`, so a method is rescaled without other methods' rows.

The leaderboard's per-method columns (:func:`board`): ``ceiling_*`` and ``oracle_*``
(means of the bounds) and ``norm_*`` of the means (method and baseline averaged over the
same rows); :func:`helpers.ceilings.normalised_summary` adds ``norm_*_replicate`` (1 = a
replicate).

This module holds the computation; :mod:`helpers.ceilings` re-exports it (with the
positive controls and the evaluation truth made from the same halves) and imports it
from here, never the reverse.
"""

from __future__ import annotations

import zlib

import anndata as ad
import numpy as np
import pandas as pd

from ..conditions import CONTROL
from ..errors import InputError
from ..pseudobulk import Pseudobulk, group_sums, pseudobulk, top_control_genes
from .inputs import MetricInput
from .paper import l2, pearson_delta
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
    "SEED",
    "N_REPEATS",
    "CEILING_COLUMNS",
    "spearman_brown",
    "oracle_pearson",
    "split_halves",
    "noise_ceiling",
    "rescale",
    "score",
    "board",
]

NAME = "ceiling"
COLUMNS: list[str] = [
    "l2_ceiling",
    "pearson_delta_ceiling",
    "l2_oracle",
    "pearson_delta_oracle",
    "norm_l2",
    "norm_pearson_delta",
]
NEEDS_CELLS = True
#: The seed of the first random cut into halves, and how many cuts are averaged.
SEED = 0
N_REPEATS = 5
#: The method at 0 of the normalised scores (its rows, where :func:`board` needs them).
BASELINE = "mean"

CEILING_COLUMNS = [
    "dataset",
    "condition",
    "n_cells",
    "n_half",
    "l2_half",
    "pearson_delta_half",
    "l2_ceiling",
    "pearson_delta_ceiling",
    "l2_oracle",
    "pearson_delta_oracle",
    "n_genes",
    "n_repeats",
]


def spearman_brown(r, factor: float = 2.0):
    """Reliability of a mean of ``factor`` times as many cells: ``factor r / (1 +
    (factor - 1) r)``."""
    r = np.asarray(r, dtype=np.float64)
    return factor * r / (1.0 + (factor - 1.0) * r)


def oracle_pearson(reliability):
    """Expected correlation of the true mean with one noisy full-depth mean:
    ``sqrt(R)``.

    ``R`` is the full-depth reliability (Spearman-Brown of the split-half r; module
    docstring); ``R <= 0`` (no detectable signal) gives 0, NaN stays NaN.
    """
    r = np.asarray(reliability, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(r), np.nan, np.sqrt(np.clip(r, 0.0, None)))


def _halves_codes(
    labels: pd.Categorical, seed: int, wanted: set[str] | None
) -> np.ndarray:
    """Group code per cell: condition k -> k (half A) or n + k (half B); -1 = not
    used."""
    codes = np.asarray(labels.codes, dtype=np.int64)
    n = len(labels.categories)
    out = np.full(len(codes), -1, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n + 1))
    names = [str(c) for c in labels.categories]
    for k in range(n):
        if wanted is not None and names[k] not in wanted:
            continue
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows) < 2:
            continue
        # one generator per (seed, condition name): a condition's halves do not depend
        # on which other conditions are asked for or on the order of the cells' labels
        rng = np.random.default_rng([seed, zlib.crc32(names[k].encode())])
        rows = rows[rng.permutation(len(rows))]
        cut = len(rows) // 2
        out[rows[:cut]] = k
        out[rows[cut : 2 * cut]] = n + k
    return out


def split_halves(
    adata: ad.AnnData, seed: int, *, by: str = "condition", conditions=None
) -> tuple[Pseudobulk, Pseudobulk]:
    """Pseudobulks of two random halves of each condition's cells (seeded; see the
    module docstring).

    Conditions with fewer than 2 cells are left out. ``conditions`` restricts the
    conditions (default: all). Returns (half A, half B) as
    :class:`~helpers.pseudobulk.Pseudobulk`; both keep a ``ctrl`` row (the control
    halves), which :func:`noise_ceiling` does not use.
    """
    if by not in adata.obs:
        raise KeyError(
            f"obs has no column {by!r}; load the cells with "
            "helpers.loaders.load_dataset."
        )
    if adata.isbacked:
        raise InputError(
            "split_halves needs cells in memory; load the dataset without backed='r' "
            "(or pass adata.to_memory())."
        )
    labels = pd.Categorical(adata.obs[by].astype(str))
    wanted = None if conditions is None else set(map(str, conditions)) | {CONTROL}
    codes = _halves_codes(labels, seed, wanted)
    n = len(labels.categories)
    sums = group_sums(adata.X, codes, 2 * n)
    counts = np.bincount(codes[codes >= 0], minlength=2 * n)
    dataset = adata.uns.get("perturbbook", {}).get("dataset", "")
    names = pd.Index([str(c) for c in labels.categories], name="condition")
    out = []
    for half in (0, 1):
        part = slice(half * n, (half + 1) * n)
        keep = counts[part] > 0
        means = pd.DataFrame(
            sums[part][keep] / counts[part][keep, None],
            index=names[keep],
            columns=pd.Index(adata.var_names, name="gene"),
        )
        out.append(
            Pseudobulk(
                means,
                pd.Series(counts[part][keep], index=names[keep], name="n_cells"),
                dataset,
            )
        )
    return out[0], out[1]


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation; NaN where a row is constant (as
    helpers.metrics.pearson_delta)."""
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        out[i] = pearson_delta(a[i], b[i], 0.0)
    return out


def noise_ceiling(
    adata: ad.AnnData,
    truth: Pseudobulk | None = None,
    conditions=None,
    *,
    seed: int = 0,
    n_repeats: int = 5,
    n_top: int = 1000,
    genes=None,
) -> pd.DataFrame:
    """Replicate agreement and oracle bound of L2 and Pearson delta per condition.

    Formulas: module docstring. ``truth`` (default: ``pseudobulk(adata)``) gives the
    control profile ``c`` and the evaluation genes (top ``n_top`` control-expressed
    genes, or ``genes``), exactly as in :func:`helpers.metrics.evaluate`. One row per
    perturbed condition with at least 2 cells; columns :data:`CEILING_COLUMNS`:
    ``*_half`` (half vs half), ``*_ceiling`` (an independent full-size replicate) and
    ``*_oracle`` (the true mean, the best achievable score); ``n_cells`` counts the
    condition's cells in ``adata``, ``n_half`` those of one half.

    ``conditions``: the perturbed conditions scored (default: all with at least 2
    cells); ``seed``: the random halves; ``n_repeats``: how many random splits into
    halves are averaged.
    """
    if n_repeats < 1:
        raise InputError("n_repeats must be at least 1.")
    truth = pseudobulk(adata) if truth is None else truth
    if genes is None:
        genes = top_control_genes(truth.ctrl, min(n_top, len(truth.genes)))
    wanted = [
        c
        for c in (truth.conditions if conditions is None else conditions)
        if c != CONTROL
    ]
    return _bounds(
        adata, truth.ctrl, wanted, genes, seed=seed, n_repeats=n_repeats
    ).assign(dataset=truth.dataset)[CEILING_COLUMNS]


def _bounds(adata, ctrl, wanted, genes, *, seed, n_repeats) -> pd.DataFrame:
    """:func:`noise_ceiling`'s table (``dataset`` empty) for the perturbed conditions
    ``wanted``, with the control profile ``ctrl`` (a Series over the genes)."""
    genes = pd.Index(genes)
    ctrl = ctrl[genes].to_numpy()
    total_l2, total_r, found = None, None, None
    for repeat in range(n_repeats):
        half_a, half_b = split_halves(adata, seed + repeat, conditions=wanted)
        found = [c for c in wanted if c in half_a.conditions and c in half_b.conditions]
        a = half_a.means.loc[found, genes].to_numpy()
        b = half_b.means.loc[found, genes].to_numpy()
        l2_half = np.sqrt(((a - b) ** 2).sum(axis=1))
        r_half = _row_pearson(b - ctrl, a - ctrl)
        total_l2 = l2_half if total_l2 is None else total_l2 + l2_half
        total_r = r_half if total_r is None else total_r + r_half
    l2_half, r_half = total_l2 / n_repeats, total_r / n_repeats
    n_cells = (
        adata.obs["condition"].astype(str).value_counts().reindex(found).to_numpy()
    )
    n_half = half_a.n_cells.reindex(found).to_numpy()
    depth = (
        n_cells / n_half
    )  # full depth over half depth: 2 for an even number of cells
    reliability = spearman_brown(r_half, factor=depth)
    table = pd.DataFrame(
        {
            "dataset": "",
            "condition": found,
            "n_cells": n_cells.astype(int),
            "n_half": n_half.astype(int),
            "l2_half": l2_half,
            "pearson_delta_half": r_half,
            "l2_ceiling": l2_half / np.sqrt(depth),
            "pearson_delta_ceiling": reliability,
            "l2_oracle": l2_half / np.sqrt(2.0 * depth),
            "pearson_delta_oracle": oracle_pearson(reliability),
            "n_genes": len(genes),
            "n_repeats": n_repeats,
        }
    )
    return table[CEILING_COLUMNS]


def rescale(value, zero, one):
    """``(value - zero) / (one - zero)``: 0 at ``zero``, 1 at ``one`` (inf or NaN where
    ``one == zero``); e.g. ``norm_l2 = rescale(l2, l2_base, l2_oracle)``.

    ``value``: the method's score; ``zero``: the baseline's; ``one``: the oracle's (or a
    replicate's). Numbers or arrays.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return (value - zero) / (one - zero) + 0.0  # + 0.0: no signed zero


def _ceiling_table(inp: MetricInput) -> pd.DataFrame:
    """:func:`noise_ceiling` of every perturbed condition of ``inp``'s cells, indexed by
    condition, computed once per task (kept in ``inp.cache``). All at once: the cost is
    the pass over the cells, and a condition's halves do not depend on the others."""
    if inp.cells is None:
        raise InputError(
            "The ceiling family needs the truth's cells; use a task with cells."
        )
    key = (NAME, SEED, N_REPEATS, tuple(inp.genes))
    if key not in inp.cache:
        labels = pd.unique(inp.cells.obs["condition"].astype(str))
        wanted = [c for c in labels if c != CONTROL]
        inp.cache[key] = _bounds(
            inp.cells, inp.ctrl, wanted, inp.genes, seed=SEED, n_repeats=N_REPEATS
        ).set_index("condition")
    return inp.cache[key]


def _mean_baseline(inp: MetricInput) -> np.ndarray:
    """The mean baseline's prediction (:func:`helpers.baselines.mean_baseline`): the
    mean of the control's and the training perturbations' pseudobulks."""
    rows = np.vstack([inp.ctrl.to_numpy()[None, :], inp.train.to_numpy()])
    # row-major, rows in the split's order (the control first), as the baseline sums
    return np.ascontiguousarray(rows, dtype=np.float64).mean(axis=0)


def score(inp: MetricInput) -> pd.DataFrame:
    """The bounds and the normalised scores per condition of ``inp`` (module
    docstring); NaN for a condition with fewer than 2 cells.

    ``inp``: one method's predictions on one split, with the truth's cells.
    """
    index = pd.Index(inp.conditions, name="condition")
    bounds = _ceiling_table(inp).reindex(index)
    ctrl = inp.ctrl.to_numpy(dtype=np.float64)
    base = _mean_baseline(inp)
    pred, obs = inp.pred.to_numpy(), inp.obs.to_numpy()
    method_l2 = np.array([l2(p, o) for p, o in zip(pred, obs)])
    method_pd = np.array([pearson_delta(p, o, ctrl) for p, o in zip(pred, obs)])
    base_l2 = np.array([l2(base, o) for o in obs])
    base_pd = np.array([pearson_delta(base, o, ctrl) for o in obs])
    out = bounds[COLUMNS[:4]].astype(np.float64)
    out["norm_l2"] = rescale(method_l2, base_l2, bounds["l2_oracle"].to_numpy())
    out["norm_pearson_delta"] = rescale(
        method_pd, base_pd, bounds["pearson_delta_oracle"].to_numpy()
    )
    return out


def board(metrics: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Per method: the means of the bounds (``ceiling_*``, ``oracle_*``) and the
    normalised scores of the mean L2 / Pearson delta (``norm_*``: 0 = ``baseline``, 1 =
    the oracle), the method's and the baseline's means taken over the same (seed,
    condition) rows that have a bound. Empty where the baseline has no rows.

    ``metrics``: per-condition rows of several methods with ``l2``, ``pearson_delta``
    and :data:`COLUMNS`; ``baseline``: the method at 0.
    """
    columns = [
        "ceiling_l2",
        "ceiling_pearson_delta",
        "oracle_l2",
        "oracle_pearson_delta",
        "norm_l2",
        "norm_pearson_delta",
    ]
    empty = pd.DataFrame(columns=columns, index=pd.Index([], name="method"))
    if "l2_oracle" not in metrics.columns:
        return empty
    rows = metrics[metrics["l2_oracle"].notna()]
    keys = ["seed", "condition"]
    base = rows[rows["method"] == baseline].set_index(keys)
    if not len(base):
        return empty
    frame = {}
    for method, part in rows.groupby("method", sort=False):
        part = part[part.set_index(keys).index.isin(base.index)]
        paired = base.loc[part.set_index(keys).index]
        b_l2, b_pd = paired["l2"].mean(), paired["pearson_delta"].mean()
        o_l2, o_pd = part["l2_oracle"].mean(), part["pearson_delta_oracle"].mean()
        m_l2, m_pd = part["l2"].mean(), part["pearson_delta"].mean()
        frame[method] = {
            "ceiling_l2": part["l2_ceiling"].mean(),
            "ceiling_pearson_delta": part["pearson_delta_ceiling"].mean(),
            "oracle_l2": o_l2,
            "oracle_pearson_delta": o_pd,
            "norm_l2": rescale(m_l2, b_l2, o_l2),
            "norm_pearson_delta": rescale(m_pd, b_pd, o_pd),
        }
    out = pd.DataFrame.from_dict(frame, orient="index")[columns]
    if baseline in out.index:  # 0 by definition, not a sum-order rounding residue
        out.loc[baseline, ["norm_l2", "norm_pearson_delta"]] = 0.0
    out.index.name = "method"
    return out


def _bound(column: str, direction: str, what: str, role: str) -> MetricSpec:
    return MetricSpec(column, NAME, direction, True, None, None, what, role=role)


SPECS = (
    _bound("l2_ceiling", "lower", "L2 of two independent replicates", "reference"),
    _bound(
        "pearson_delta_ceiling",
        "higher",
        "Pearson delta of two independent replicates",
        "reference",
    ),
    _bound("l2_oracle", "lower", "L2 of the true mean (best achievable)", "reference"),
    _bound(
        "pearson_delta_oracle",
        "higher",
        "Pearson delta of the true mean (best achievable)",
        "reference",
    ),
    MetricSpec(
        "norm_l2",
        NAME,
        "higher",
        True,
        None,
        None,
        "L2 rescaled: 0 = mean baseline, 1 = the oracle",
        perfect=1.0,
    ),
    MetricSpec(
        "norm_pearson_delta",
        NAME,
        "higher",
        True,
        None,
        None,
        "Pearson delta rescaled: 0 = mean baseline, 1 = the oracle",
        perfect=1.0,
    ),
    _bound("l2_half", "lower", "L2 of two half-size replicates", "reference"),
    _bound(
        "pearson_delta_half",
        "higher",
        "Pearson delta of two half-size replicates",
        "reference",
    ),
    _bound("ceiling_l2", "lower", "mean L2 of two replicates (board)", "reference"),
    _bound(
        "ceiling_pearson_delta",
        "higher",
        "mean Pearson delta of two replicates (board)",
        "reference",
    ),
    _bound("oracle_l2", "lower", "mean L2 of the true mean (board)", "reference"),
    _bound(
        "oracle_pearson_delta",
        "higher",
        "mean Pearson delta of the true mean (board)",
        "reference",
    ),
    _bound(
        "norm_l2_replicate",
        "higher",
        "mean L2 rescaled: 0 = mean baseline, 1 = a replicate",
        "summary",
    ),
    _bound(
        "norm_pearson_delta_replicate",
        "higher",
        "mean Pearson delta rescaled: 0 = mean baseline, 1 = a replicate",
        "summary",
    ),
)
