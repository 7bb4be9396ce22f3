"""Sampling noise of a pseudobulk: the noise floor of L2 (introduced in chapter 2).

The observed pseudobulk of condition ``p`` is the mean of its ``n_p`` cells, ``y_p =
mu_p + e_p``, where ``mu_p`` is the mean an infinitely deep experiment would give and
``e_p`` the sampling error (independent cells: ``Var e_pg = sigma_pg^2 / n_p``). Over
the evaluation genes ``G``

    v_p = E ||y_p - mu_p||^2 = sum_{g in G} sigma_pg^2 / n_p .

**Noise floor of a condition**: ``floor_l2 = sqrt(v_p)``, the L2 that a prediction equal
to the true mean ``mu_p`` would get against the observed ``y_p``. (It is the root of an
expected square; with hundreds of genes ``||e_p||`` concentrates, so its mean is within
a few per cent of ``sqrt(v_p)``; ``tests/unit/test_noise_floor.py`` checks that on
simulated cells.)

Two estimators of ``v_p`` from the cells themselves:

* **split halves** (``v_halves``): :func:`helpers.ceilings.split_halves` cuts each
  condition's cells into two disjoint random halves of ``m = floor(n_p / 2)`` cells;
  with ``d = mean_A - mean_B``, ``E ||d||^2 = 2 sum_g sigma_pg^2 / m``, so ``v_halves =
  ||d||^2 m / (2 n_p)`` (for even ``n_p``: ``||d||^2 / 4``, i.e. ``||mean_A - mean_B|| /
  2`` estimates ``||y_p - mu_p||``), averaged over ``n_repeats`` random cuts (seeds
  ``seed, seed + 1, ...``);
* **per-gene variance** (``v_genes``): ``sum_g s_pg^2 / n_p`` with the unbiased sample
  variance ``s_pg^2`` of the condition's cells (no randomness).

**Noise floor of the additive prediction** of a double ``A+B``: the prediction ``y_A +
y_B - y_ctrl`` is made of three noisy means. If the double were exactly additive
(``mu_AB = mu_A + mu_B - mu_ctrl``), its L2 against the observed ``y_AB`` would be
``||e_A + e_B - e_ctrl - e_AB||`` with four independent terms, so

    floor_additive_l2 = sqrt(v_A + v_B + v_ctrl + v_AB) .

An additive L2 that cannot be told apart from this floor is explained by sampling noise
alone. (:func:`additive_floor`; ``ctrl`` is the pseudobulk of all control cells, as the
additive baseline uses it.)
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .ceilings import split_halves
from .conditions import condition_genes
from .loaders import CONTROL
from .pseudobulk import group_sums
from .errors import InputError

__all__ = [
    "sampling_noise",
    "additive_floor",
    "compare_with_floor",
    "NOISE_COLUMNS",
    "FLOOR_COLUMNS",
]

NOISE_COLUMNS = [
    "dataset",
    "condition",
    "n_cells",
    "v_halves",
    "v_genes",
    "floor_l2",
    "floor_l2_genes",
    "n_genes",
    "n_repeats",
]
FLOOR_COLUMNS = [
    "dataset",
    "condition",
    "floor_l2",
    "floor_additive_l2",
    "floor_additive_l2_genes",
]


def _cells_in_memory(
    adata: ad.AnnData, conditions: list[str], genes: pd.Index, chunk_size: int = 10_000
) -> ad.AnnData:
    """The cells of ``conditions`` and the columns ``genes``, in memory (read in row
    chunks when ``adata`` is backed, so the full matrix is never loaded)."""
    obs = adata.obs["condition"].astype(str).to_numpy()
    rows = np.flatnonzero(np.isin(obs, conditions))
    cols = adata.var_names.get_indexer(genes)
    if adata.isbacked:
        blocks = []
        for start in range(0, len(rows), chunk_size):
            block = adata.X[rows[start : start + chunk_size]]
            block = sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)
            blocks.append(block[:, cols])
        X = sp.vstack(blocks).tocsr() if sp.issparse(blocks[0]) else np.vstack(blocks)
    else:
        X = adata.X[rows][:, cols]
    out = ad.AnnData(
        X=X,
        obs=pd.DataFrame({"condition": obs[rows]}, index=adata.obs_names[rows]),
        var=pd.DataFrame(index=pd.Index(genes, name="gene")),
    )
    out.uns["perturbbook"] = dict(adata.uns.get("perturbbook", {}))
    return out


def sampling_noise(
    adata: ad.AnnData, genes, conditions=None, *, seed: int = 0, n_repeats: int = 5
) -> pd.DataFrame:
    """Sampling variance ``v_p`` and noise floor ``sqrt(v_p)`` of each condition's
    pseudobulk over ``genes`` (formulas: module docstring), from split halves and from
    per-gene variances.

    ``conditions`` default: every condition of ``adata``; ``ctrl`` is always included.
    Conditions with fewer than 2 cells are left out. Works on backed data (only the
    cells of ``conditions`` and the columns ``genes`` are read). One row per condition;
    columns :data:`NOISE_COLUMNS`.

    ``seed``: the random halves; ``n_repeats``: how many random splits into halves are
    averaged.
    """
    if "condition" not in adata.obs:
        raise KeyError(
            "obs has no column 'condition'; load the cells with "
            "helpers.loaders.load_dataset."
        )
    if n_repeats < 1:
        raise InputError(f"n_repeats must be at least 1; got {n_repeats}.")
    genes = pd.Index(list(genes))
    absent = genes.difference(adata.var_names)
    if len(absent):
        raise InputError(
            f"{len(absent)} of the genes are not in the data (e.g. "
            f"{list(absent[:3])}); pass genes of adata.var_names."
        )
    present = pd.unique(adata.obs["condition"].astype(str))
    wanted = list(present) if conditions is None else [str(c) for c in conditions]
    missing = sorted(set(wanted) - set(present))
    if missing:
        raise InputError(
            f"Condition(s) {missing[:5]} have no cells in the data; pass "
            "conditions of adata.obs['condition']."
        )
    wanted = list(dict.fromkeys([CONTROL, *wanted]))
    cells = _cells_in_memory(adata, wanted, genes)
    labels = pd.Categorical(cells.obs["condition"], categories=wanted)
    codes = np.asarray(labels.codes, dtype=np.int64)
    n = np.bincount(codes, minlength=len(wanted)).astype(np.float64)
    keep = n >= 2
    sums = group_sums(cells.X, codes, len(wanted))
    squares = cells.X.multiply(cells.X) if sp.issparse(cells.X) else cells.X**2
    sums2 = group_sums(squares, codes, len(wanted))
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (sums2 - sums**2 / n[:, None]) / (n[:, None] - 1)
        v_genes = np.clip(var, 0, None).sum(axis=1) / n
    names = [c for c, k in zip(wanted, keep) if k]
    v_halves = np.zeros(len(names))
    for repeat in range(n_repeats):
        half_a, half_b = split_halves(cells, seed + repeat, conditions=names)
        a = half_a.means.loc[names, genes].to_numpy()
        b = half_b.means.loc[names, genes].to_numpy()
        m = half_a.n_cells.loc[names].to_numpy(dtype=np.float64)
        v_halves += ((a - b) ** 2).sum(axis=1) * m / (2.0 * n[keep])
    v_halves /= n_repeats
    table = pd.DataFrame(
        {
            "dataset": adata.uns.get("perturbbook", {}).get("dataset", ""),
            "condition": names,
            "n_cells": n[keep].astype(int),
            "v_halves": v_halves,
            "v_genes": v_genes[keep],
            "floor_l2": np.sqrt(v_halves),
            "floor_l2_genes": np.sqrt(v_genes[keep]),
            "n_genes": len(genes),
            "n_repeats": n_repeats,
        }
    )
    return table[NOISE_COLUMNS]


def additive_floor(noise: pd.DataFrame, doubles) -> pd.DataFrame:
    """Noise floors of each double ``A+B``: ``floor_l2`` (a prediction equal to the true
    mean) and ``floor_additive_l2 = sqrt(v_A + v_B + v_ctrl + v_AB)`` (the additive
    prediction of an exactly additive double), from :func:`sampling_noise`'s split-half
    ``v_halves`` (``floor_additive_l2_genes``: from ``v_genes``). Columns
    :data:`FLOOR_COLUMNS`.

    ``noise``: the table of :func:`sampling_noise`; ``doubles``: the double
    perturbations ``A+B``.
    """
    needed = {"condition", "v_halves", "v_genes"}
    if not needed <= set(noise.columns):
        raise InputError(
            f"noise needs the columns {sorted(needed)}; pass the table of "
            "helpers.noise.sampling_noise."
        )
    table = noise.set_index("condition")
    rows = []
    for double in doubles:
        parts = condition_genes(str(double))
        if len(parts) != 2:
            raise InputError(f"{double!r} is not a double perturbation 'A+B'.")
        absent = [c for c in (str(double), *parts, CONTROL) if c not in table.index]
        if absent:
            raise InputError(
                f"The noise table has no row for {absent} (needed for "
                f"{double!r}); compute sampling_noise over those conditions."
            )
        terms = table.loc[[str(double), *parts, CONTROL]]
        rows.append(
            {
                "dataset": terms["dataset"].iloc[0] if "dataset" in terms else "",
                "condition": str(double),
                "floor_l2": float(np.sqrt(terms["v_halves"].iloc[0])),
                "floor_additive_l2": float(np.sqrt(terms["v_halves"].sum())),
                "floor_additive_l2_genes": float(np.sqrt(terms["v_genes"].sum())),
            }
        )
    return pd.DataFrame(rows, columns=FLOOR_COLUMNS)


def compare_with_floor(
    metrics: pd.DataFrame,
    floors: pd.DataFrame,
    *,
    method: str = "additive",
    floor: str = "floor_additive_l2",
    factors=("condition", "seed"),
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Is ``method``'s L2 above its noise floor? The excess ``l2 - floor`` per row of
    ``metrics`` (the floor joined by condition), its mean with a crossed interval over
    ``factors`` (:func:`helpers.uncertainty.crossed_interval`) and a ``sentence``:

    * fewer conditions than :func:`helpers.conclusions.too_few` allows: too few to
      conclude;
    * interval above 0: the error exceeds what sampling noise alone gives;
    * interval covering 0: the error cannot be told apart from sampling noise;
    * interval below 0: the error is smaller than the floor (the floor's assumptions
      fail).

    Returns crossed_interval's dict plus ``mean_l2``, ``mean_floor``, ``ratio``
    (``mean_l2 / mean_floor``), ``too_few``, ``sentence``.

    ``floors``: the table of :func:`additive_floor`; ``n_boot``, ``seed``, ``level``:
    the bootstrap.
    """
    from .conclusions import smallest_sign_flip_p, too_few
    from .uncertainty import crossed_interval, direction

    rows = metrics[metrics["method"] == method]
    if rows.empty:
        raise InputError(
            f"No rows of method {method!r} in the metrics; it has "
            f"{sorted(set(metrics['method']))}."
        )
    if floor not in floors.columns:
        raise InputError(
            f"floors has no column {floor!r}; pass helpers.noise.additive_floor's "
            "table."
        )
    joined = rows.merge(floors[["condition", floor]], on="condition", how="left")
    absent = sorted(set(joined.loc[joined[floor].isna(), "condition"]))
    if absent:
        raise InputError(
            f"No noise floor for {absent[:5]}; compute it for every condition "
            "of the metrics."
        )
    joined["excess"] = joined["l2"] - joined[floor]
    out = crossed_interval(
        joined, "excess", list(factors), n_boot=n_boot, seed=seed, level=level
    )
    n = out["n_condition"] if "condition" in factors else out[f"n_{list(factors)[0]}"]
    out.update(
        mean_l2=float(joined["l2"].mean()),
        mean_floor=float(joined[floor].mean()),
        too_few=too_few(n, level),
    )
    out["ratio"] = out["mean_l2"] / out["mean_floor"]
    ci = (
        f"mean excess {out['estimate']:.3f} [{out['lower']:.3f}, {out['upper']:.3f}], "
        f"{level:.0%} interval over {n} conditions"
    )
    head = (
        f"{method}'s mean L2 {out['mean_l2']:.3f} against a noise floor of "
        f"{out['mean_floor']:.3f} (ratio {out['ratio']:.2f}): {ci}"
    )
    if out["too_few"]:
        verdict = (
            f"too few conditions to conclude (an exact sign-flip test over {n} "
            f"cannot reach p < {1 - level:.2f}; smallest p "
            f"{smallest_sign_flip_p(n):.3f})"
        )
    else:
        verdict = {
            "better": "the error exceeds what sampling noise alone gives",
            "inconclusive": "the error cannot be told apart from sampling noise alone",
            "worse": "the error is below the floor: the floor's assumptions fail here",
        }[direction(out["lower"], out["upper"])]
    out["sentence"] = f"{head}; {verdict}."
    return out
