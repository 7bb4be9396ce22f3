"""Replicate agreement and the oracle bound: how good could a prediction be? (chapter
8).

The observed pseudobulk ``y_p`` of a condition is the mean of ``n_p`` noisy cells, so
even a perfect model cannot reach L2 = 0 or Pearson delta = 1. Two different limits are
estimated from the cells themselves, and they are **not** the same number:

* **replicate agreement**: how well an independent replicate experiment of the same size
  would score against ``y_p``. It carries its own noise *and* the noise of ``y_p``.
* **the oracle** (the best achievable score): how well the true mean ``mu_p``
  (infinitely many cells) scores against ``y_p``. It carries only the noise of ``y_p``.
  No prediction that is made without the test cells can beat it in expectation; a model
  can beat the *replicate*, because a model's error need not be as large as a
  replicate's noise (e.g. a smooth prediction estimated from many training conditions).

The computation (split halves, the bounds, the rescaling) is the ``ceiling`` metric
family's, :mod:`helpers.metrics.ceiling`; this module re-exports it and adds what is
built from the same halves (the positive controls, the evaluation truth).

**Split halves.** For every condition ``p`` the cells are shuffled
(``numpy.random.default_rng([seed, crc32(p)])``, so a condition's halves do not depend
on the other conditions) and cut into two disjoint halves ``A`` and ``B`` of ``m =
floor(n_p / 2)`` cells each (an odd cell out is left out, so both halves have the same
depth); ``y_p^A``, ``y_p^B`` are their pseudobulks
(:func:`helpers.pseudobulk.pseudobulk`). With the control pseudobulk ``c`` of **all**
control cells (the one :func:`helpers.metrics.evaluate` uses) and the evaluation genes
``G`` (top ``n_top`` control-expressed genes): ``r_half = cor(y^A - c, y^B - c)`` and
``l2_half = ||y^A - y^B||`` over ``G``, i.e. the book's own
:func:`helpers.metrics.pearson_delta` and :func:`helpers.metrics.l2` with half B as the
"prediction" of half A; averaged over ``n_repeats`` random cuts (seeds ``seed, seed +
1, ...``).

**Derivation (independent cells, additive noise).** Let a cell of ``p`` be ``mu + e``
with ``Var(e_g) = s_g^2`` and ``S = sum_g s_g^2`` over ``G``. A mean of ``k`` cells has
noise variance ``s_g^2 / k`` per gene. Then

* ``E||y^A - y^B||^2 = 2 S / m`` (two independent means of ``m`` cells);
* replicate: ``E||y' - y||^2 = 2 S / n`` for an independent ``n``-cell replicate ``y'``,
  so ``l2_ceiling = l2_half * sqrt(m / n)`` (``= l2_half / sqrt(2)`` when ``n`` is
  even);
* oracle: ``E||mu - y||^2 = S / n``, so ``l2_oracle = l2_half * sqrt(m / (2 n))``
  (``= l2_half / 2`` when ``n`` is even), i.e. the oracle's L2 is ``1 / sqrt(2)`` of the
  replicate's.

For Pearson delta write ``d = mu - c`` (``c`` is fixed: the same control in every
term), ``V`` the variance of ``d`` across genes and ``N = S / (|G| n)`` the mean noise
variance of a full-depth mean. Then ``r_half ~ V / (V + (n / m) N)``; the reliability
of a full-depth mean (Spearman-Brown with factor ``n / m``, 2 for even ``n``) is ``R =
V / (V + N)``, which is the expected correlation of two independent full-size
replicates, ``pearson_delta_ceiling = R``; the oracle's correlation is ``cor(d, d + e)
~ sqrt(V / (V + N)) = sqrt(R)``: ``pearson_delta_oracle = sqrt(max(R, 0))`` (``R <= 0``
means no detectable signal, where the oracle's expected correlation is about 0).

Both corrections assume independent cells and additive noise uncorrelated with the
effect across genes; ``tests/unit/test_ceilings.py`` checks them on Gaussian cells with
a **known** ``mu``, against the actual distance of the full-data mean to ``mu``. The raw
half-vs-half values stay in the table (``*_half``) so a reader can use them instead. A
prediction can still score better than the oracle on a condition by chance (``y``'s
noise happened to point its way), and systematically only by using the test cells (e.g.
the observed cells plus noise, chapter 8) - or through the shared control ``c``.

**Why a model can beat the replicate, but not the oracle.** For a prediction
``y_hat`` made without the test cells (so independent of their noise), ``E||y_hat -
y||^2 = ||y_hat - mu||^2 + S / n``: its own error plus the truth's noise. The oracle
has no error of its own (``S / n``); a replicate's "error" is its own noise, ``||y' -
mu||^2 ~ S / n``, so it scores ``2 S / n``. A model whose error ``||y_hat - mu||^2``
is below ``S / n`` (one replicate's noise) beats the replicate; none beats the oracle
in expectation. :func:`normalised_summary` reports both parts: ``noise_l2`` (``sqrt(S
/ n)``, estimated by the oracle's L2) and ``error_l2`` (``||y_hat - mu||``, estimated
by ``sqrt(L2^2 - l2_oracle^2)``).

cell-eval's ``--ceiling`` also uses disjoint halves and Spearman-Brown, but splits the
control cells too and corrects the *mean* over perturbations; this module corrects each
condition and keeps the full control, as :func:`helpers.metrics.evaluate` does.

**Normalised score** (0 = the mean baseline, 1 = the oracle), per condition and for
means:

* ``norm_l2 = (l2_mean_baseline - l2_method) / (l2_mean_baseline - l2_oracle)``
* ``norm_pearson_delta = (pd_method - pd_mean_baseline) / (pd_oracle -
  pd_mean_baseline)``

A score above 1 means a method beat the best achievable score: by chance on few
conditions, or because it used the test cells. (Earlier versions of the book ended the
scale at the replicate, ``l2_ceiling``, and called it the noise ceiling; those columns
are kept, as the replicate agreement, and ``norm_*_replicate`` in
:func:`normalised_summary` still uses them.) :func:`normalised_summary` applies the
formulas to the **means** over the same conditions for every method (stable); the
per-condition values of :func:`normalised_scores` are noisy where the baseline is near
the oracle.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from .errors import InputError
from .loaders import CONTROL
from .metrics.ceiling import (
    CEILING_COLUMNS,
    _halves_codes,
    noise_ceiling,
    oracle_pearson,
    rescale,
    spearman_brown,
    split_halves,
)
from .predictions import Predictions
from .pseudobulk import Pseudobulk, group_sums, pseudobulk

__all__ = [
    "split_halves",
    "noise_ceiling",
    "spearman_brown",
    "oracle_pearson",
    "normalised_scores",
    "normalised_summary",
    "CEILING_COLUMNS",
    "interpolated_duplicate",
    "split_half_replicate",
    "split_half_reference",
    "evaluation_truth",
]

_ORACLE_NEEDED = [
    "l2_ceiling",
    "pearson_delta_ceiling",
    "l2_oracle",
    "pearson_delta_oracle",
]


def normalised_scores(
    metrics: pd.DataFrame,
    ceiling: pd.DataFrame,
    *,
    baseline: str = "mean",
    by=("dataset", "seed"),
) -> pd.DataFrame:
    """Per-condition normalised L2 and Pearson delta (0 = ``baseline``, 1 = the oracle).

    ``metrics``: rows of :func:`helpers.metrics.evaluate` for several methods, the
    baseline included; ``ceiling``: :func:`noise_ceiling`. Adds ``l2_ceiling``,
    ``pearson_delta_ceiling`` (replicate agreement), ``l2_oracle``,
    ``pearson_delta_oracle`` (best achievable), ``norm_l2`` and ``norm_pearson_delta``;
    conditions without a ceiling or baseline row get NaN.
    """
    keys = list(by) + ["condition"]
    base = metrics[metrics["method"] == baseline]
    if base.empty:
        raise InputError(
            f"No rows of the baseline {baseline!r} in the metrics; run it on the "
            "same splits."
        )
    missing = [c for c in _ORACLE_NEEDED if c not in ceiling.columns]
    if missing:
        raise InputError(
            f"The ceiling table lacks {missing}; make it with "
            "helpers.ceilings.noise_ceiling."
        )
    base = base.set_index(keys)[["l2", "pearson_delta"]].add_suffix("_base")
    out = metrics.join(base, on=keys)
    ceil = ceiling.set_index(["dataset", "condition"])[_ORACLE_NEEDED]
    out = out.join(ceil, on=["dataset", "condition"])
    out["norm_l2"] = rescale(out["l2"], out["l2_base"], out["l2_oracle"])
    out["norm_pearson_delta"] = rescale(
        out["pearson_delta"], out["pearson_delta_base"], out["pearson_delta_oracle"]
    )
    return out.drop(columns=["l2_base", "pearson_delta_base"])


def normalised_summary(
    metrics: pd.DataFrame,
    ceiling: pd.DataFrame,
    *,
    baseline: str = "mean",
    by=("dataset",),
) -> pd.DataFrame:
    """Normalised scores of the **mean** L2 / Pearson delta per method (0 = baseline,
    1 = oracle).

    For each method the means of the method, of the baseline and of the ceilings are
    all taken over the **same** rows: the (seed, condition) pairs that have a ceiling
    and that both the method and the baseline scored. NaN Pearson deltas (e.g. "no
    change") stay NaN in that method's mean. Columns: by..., method, mean_l2,
    mean_pearson_delta, base_l2, base_pearson_delta (the baseline on those rows),
    ceiling_l2, ceiling_pearson_delta (the replicate), oracle_l2, oracle_pearson_delta,
    norm_l2, norm_pearson_delta (1 = oracle), norm_l2_replicate,
    norm_pearson_delta_replicate (1 = replicate), noise_l2, error_l2, n.

    ``noise_l2 = sqrt(mean(l2_oracle^2))`` estimates how far the observed truth (and a
    replicate) lies from the true mean; ``error_l2 = sqrt(max(mean(l2^2 - l2_oracle^2),
    0))`` how far the method's prediction lies from it (module docstring: "Why a model
    can beat the replicate"). A method beats a replicate in expectation where ``error_l2
    < noise_l2``.

    ``metrics``: the per-perturbation metrics of the methods
    (:func:`helpers.metrics.evaluate`).
    """
    keys = ["seed", "condition"] if "seed" in metrics.columns else ["condition"]
    table = normalised_scores(
        metrics, ceiling, baseline=baseline, by=list(by) + keys[:-1]
    )
    table = table[table["l2_oracle"].notna()]
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        base = group[group["method"] == baseline].set_index(keys)
        for method, part in group.groupby("method", sort=False):
            part = part[part.set_index(keys).index.isin(base.index)]
            paired = base.loc[part.set_index(keys).index]
            mean_l2 = part["l2"].mean()
            mean_pd = part["pearson_delta"].mean(skipna=False)
            base_l2 = paired["l2"].mean()
            base_pd = paired["pearson_delta"].mean(skipna=False)
            ceil_l2, ceil_pd = (
                part["l2_ceiling"].mean(),
                part["pearson_delta_ceiling"].mean(),
            )
            orac_l2, orac_pd = (
                part["l2_oracle"].mean(),
                part["pearson_delta_oracle"].mean(),
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                rows.append(
                    {
                        **dict(zip(by, key if isinstance(key, tuple) else (key,))),
                        "method": method,
                        "mean_l2": mean_l2,
                        "mean_pearson_delta": mean_pd,
                        "base_l2": base_l2,
                        "base_pearson_delta": base_pd,
                        "ceiling_l2": ceil_l2,
                        "ceiling_pearson_delta": ceil_pd,
                        "oracle_l2": orac_l2,
                        "oracle_pearson_delta": orac_pd,
                        "norm_l2": rescale(mean_l2, base_l2, orac_l2),
                        "norm_pearson_delta": rescale(mean_pd, base_pd, orac_pd),
                        "norm_l2_replicate": rescale(mean_l2, base_l2, ceil_l2),
                        "norm_pearson_delta_replicate": rescale(
                            mean_pd, base_pd, ceil_pd
                        ),
                        "noise_l2": float(np.sqrt((part["l2_oracle"] ** 2).mean())),
                        "error_l2": float(
                            np.sqrt(
                                max(
                                    (part["l2"] ** 2 - part["l2_oracle"] ** 2).mean(),
                                    0.0,
                                )
                            )
                        ),
                        "n": len(part),
                    }
                )
    return pd.DataFrame(rows)


# --- positive control: the interpolated duplicate (CellSimBench / scPertEval) --------


def interpolated_duplicate(
    adata: ad.AnnData,
    truth: Pseudobulk | None = None,
    conditions=None,
    *,
    seed: int = 0,
    reference: pd.Series | None = None,
    replicate: dict | None = None,
    method: str = "interpolated_duplicate",
) -> "Predictions":
    """The interpolated-duplicate positive control (Miller et al. 2025, "CellSimBench").

    For every perturbed condition ``p`` (default: all of ``truth``'s; at least 2 cells):

    * ``r_p``: the pseudobulk of a replicate of ``p`` - half B of its cells from the
      seeded cut of :func:`split_halves` (same ``seed``, same halves), or the cells
      ``replicate[p]`` (obs positions) when given;
    * ``alpha_g = 1 - padj_g``: BH-adjusted p-value of Welch's t-test of the replicate
      cells vs every perturbed cell of the other conditions (leave-one-out, control
      excluded), over all genes of ``adata``
      (:func:`helpers.metrics.calibrated.de_vs_all_perturbed`);
    * ``m_p``: ``reference`` if given (e.g. the mean of the training perturbations'
      pseudobulks, CellSimBench's fold mean baseline), else the leave-one-out mean of
      the pseudobulks of all other perturbed conditions of ``truth`` (scPertEval's
      ``all_perturbed_mean_except``);
    * prediction ``alpha * r_p + (1 - alpha) * m_p``: the replicate where the gene
      responds significantly, the average perturbation where it does not.

    Follows scPertEval 0.2.0 ``sources.py: src_interpolated`` (DE: ``ctx.de(pert,
    "tech_dup", "all_perturbed")``, Welch t-test) and CellSimBench
    ``data/add_interpolated_baseline.py`` (there the p-values come from scanpy's
    ``t-test_overestim_var`` vs the rest and ``m`` is the fold's training mean).
    ``tests/parity/test_parity_scperteval.py`` checks it against scPertEval's own source
    on the same halves.

    **What truth it is scored against.** The peers score it against the *other* half A
    of the cells (scPertEval ``gt_half``), which shares no cell with ``r_p``:
    ``split_halves(adata, seed, conditions=...)[0]`` is exactly that half. Scored
    against the full truth (all cells, as the book scores every method), the control
    shares half B's noise with the truth and looks better than an independent replicate
    would.
    """
    from .metrics.calibrated import de_vs_all_perturbed
    from .predictions import Predictions

    if "condition" not in adata.obs:
        raise KeyError(
            "obs has no column 'condition'; load the cells with "
            "helpers.loaders.load_dataset."
        )
    if adata.isbacked:
        raise InputError(
            "interpolated_duplicate needs cells in memory; load the "
            "dataset without backed='r' (or pass adata.to_memory())."
        )
    truth = pseudobulk(adata) if truth is None else truth
    pool = truth.conditions if conditions is None else conditions
    wanted = [c for c in pool if c != CONTROL]
    labels = pd.Categorical(adata.obs["condition"].astype(str))
    if replicate is None:
        codes = _halves_codes(labels, seed, set(wanted) | {CONTROL})
        target = codes >= len(labels.categories)
    else:
        target = np.zeros(adata.n_obs, dtype=bool)
        for condition, rows in replicate.items():
            rows = np.asarray(rows, dtype=np.int64)
            if (np.asarray(labels[rows]) != condition).any():
                raise InputError(
                    f"replicate[{condition!r}] holds cells of other conditions."
                )
            target[rows] = True
    own = pd.Series(np.asarray(labels), index=range(adata.n_obs))
    counts = own[target].value_counts()
    found = [c for c in wanted if counts.get(c, 0) > 0]
    if not found:
        raise InputError(
            "No condition has replicate cells (each needs at least 2 cells)."
        )
    _, padj = de_vs_all_perturbed(adata, found, target=target)
    alpha = np.nan_to_num(1.0 - padj.to_numpy(), nan=0.0)
    codes = np.where(target, labels.codes, -1)
    sums = group_sums(adata.X, codes, len(labels.categories))
    rows = [list(labels.categories).index(c) for c in found]
    n_rep = counts.reindex(found).to_numpy(dtype=np.float64)[:, None]
    rep = sums[rows] / n_rep
    genes = pd.Index(adata.var_names, name="gene")
    if reference is None:
        perturbed = [c for c in truth.conditions if c != CONTROL]
        if len(perturbed) < 2:
            raise InputError(
                "The leave-one-out reference needs at least two perturbed conditions."
            )
        means = truth.means.loc[perturbed, genes].to_numpy(dtype=np.float64)
        position = {c: i for i, c in enumerate(perturbed)}
        absent = [c for c in found if c not in position]
        if absent:
            raise InputError(
                f"Condition(s) {absent[:5]} are not in the truth's pseudobulks."
            )
        total = means.sum(axis=0)
        ref = np.vstack(
            [(total - means[position[c]]) / (len(perturbed) - 1) for c in found]
        )
    else:
        profile = pd.Series(reference).reindex(genes).to_numpy(dtype=np.float64)
        if not np.isfinite(profile).all():
            raise InputError(
                "reference must give a finite value for every gene of the cells."
            )
        ref = np.tile(profile, (len(found), 1))
    values = alpha * rep + (1.0 - alpha) * ref
    frame = pd.DataFrame(values, index=pd.Index(found, name="condition"), columns=genes)
    return Predictions(frame, method, truth.dataset, seed)


# --- split-half replicate: positive control of cell-eval2's replicate scale (ch. 9) ---


def _replicate_conditions(truth: Pseudobulk, conditions) -> list[str]:
    wanted = truth.conditions if conditions is None else conditions
    return [str(c) for c in wanted if c != CONTROL]


def split_half_replicate(
    adata: ad.AnnData, truth: Pseudobulk, conditions=None, *, seed: int = 0
) -> Predictions:
    """A replicate experiment as a "method": half B of each condition's cells (method
    ``split_half_replicate``), the 1.0 end of cell-eval2's replicate scale.

    The halves are :func:`split_halves` with ``seed`` (disjoint, ``floor(n_p / 2)``
    cells each, the odd cell left out, control cells halved too); the prediction of
    ``p`` is half B's pseudobulk over ``truth``'s genes.

    **Score it against half A**, not against the full truth:
    :func:`split_half_reference` gives half A's pseudobulk (with its own control row)
    and cells for the same seed. That is what cell-eval2 does
    (``anchor.py::_score_one_split``: ``compute_metrics(half_b, half_a)``, each half
    with its own control cells; the raw split-half value, **no** Spearman-Brown or depth
    correction, unlike :func:`noise_ceiling`). Scored against the full truth, half B
    would be compared with data that contains its own cells. cell-eval2 averages the
    aggregates of 5 splits (seeds
    ``numpy.random.SeedSequence(base_seed).generate_state(5)``); one call here is one
    split, so average calls with several seeds to do the same. Conditions with fewer
    than 2 cells are left out. ``conditions``: default all perturbed conditions of
    ``truth``.
    """
    wanted = _replicate_conditions(truth, conditions)
    _, half_b = split_halves(adata, seed, conditions=wanted)
    found = [c for c in wanted if c in half_b.conditions]
    # the genes of the cells given (the evaluation genes of a task read backed), in the
    # truth's order
    genes = truth.genes.intersection(half_b.means.columns, sort=False)
    values = half_b.means.loc[found, genes]
    return Predictions(values, "split_half_replicate", truth.dataset, seed)


def split_half_reference(
    adata: ad.AnnData, truth: Pseudobulk, conditions=None, *, seed: int = 0
) -> tuple[Pseudobulk, ad.AnnData]:
    """Half A, what :func:`split_half_replicate` (same ``seed``) is scored against: its
    pseudobulk (conditions and ``ctrl``) and its cells (canonical ``obs["condition"]``).

    ``conditions`` defaults to every condition of ``truth``, so the training
    perturbations are halved too (e.g. for Systema's perturbed-mean reference). A
    condition's halves do not depend on which other conditions are halved
    (:func:`split_halves`), so half A here is the complement of
    :func:`split_half_replicate`'s half B whatever ``conditions`` each is given.
    """
    wanted = _replicate_conditions(truth, conditions)
    half_a, _ = split_halves(adata, seed, conditions=wanted)
    labels = pd.Categorical(adata.obs["condition"].astype(str))
    codes = _halves_codes(labels, seed, set(wanted) | {CONTROL})
    in_a = (codes >= 0) & (codes < len(labels.categories))  # half A codes are 0..n-1
    cells = adata[np.flatnonzero(in_a)].copy()
    means = half_a.means[truth.genes.intersection(half_a.means.columns, sort=False)]
    return Pseudobulk(means, half_a.n_cells, truth.dataset), cells


def evaluation_truth(truth: Pseudobulk, cells, split) -> tuple[Pseudobulk, ad.AnnData]:
    """The truth every method and positive control is scored against where positive
    controls are scored (chapter 9's :func:`helpers.benchmark.verdict.score_all` and the
    benchmark's command line with a calibrated family).

    The positive controls are made from half B of each held-out condition's cells
    (``helpers.benchmark.runner.positive_controls``, the split's seed). Here half B
    is removed: each held-out condition's pseudobulk is the mean of its **half A** (the
    halves of :func:`split_halves`, same seed), everything else (the
    control, the training conditions) keeps all its cells. Returns (that pseudobulk, the
    cells without half B), so methods and controls are compared with the same data and
    the controls never with their own cells. Both sides of a comparison then have half a
    condition's depth against the truth: the split-half replicate is a replicate of
    *half* the experiment, and a method that predicted the true mean would score better
    than it (the replicate carries the noise of its own half as well).
    """
    if "condition" not in cells.obs:
        raise InputError(
            "evaluation_truth needs cells with obs['condition'] "
            "(load them with helpers.loaders.load_dataset)."
        )
    held = [c for c in split.held_out if c in truth.conditions]
    labels = pd.Categorical(cells.obs["condition"].astype(str))
    codes = _halves_codes(labels, split.seed, set(held))
    in_b = codes >= len(labels.categories)
    half_a, _ = split_halves(cells, split.seed, conditions=held)
    found = [c for c in held if c in half_a.conditions]
    genes = truth.genes.intersection(half_a.means.columns, sort=False)
    means = truth.means.copy()
    means.loc[found, genes] = half_a.means.loc[found, genes].to_numpy()
    n_cells = truth.n_cells.copy()
    n_cells.loc[found] = half_a.n_cells.loc[found].to_numpy()
    kept = cells[np.flatnonzero(~in_b)].copy()
    return Pseudobulk(means, n_cells, truth.dataset), kept
