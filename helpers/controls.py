"""Random controls of matching dimension, crossed intervals and the dimension effect
(chapter 5).

Chapter 5 feeds pretrained embeddings into the linear model. An embedding can look
useful for a reason that has nothing to do with knowledge: its **dimension**. This
module

* runs the random controls of :func:`helpers.linear.random_control_variants` over their
  seeds (:func:`run_seeded`, which adds an ``embedding_seed`` column);
* scores each method with intervals that resample conditions, split seeds and embedding
  seeds as crossed factors (:func:`crossed_summary`, :func:`crossed_forest`, through
  :mod:`helpers.uncertainty`);
* compares each embedding with its control, paired on the condition
  (:func:`versus_controls`), and says when there are too few conditions to conclude
  (:func:`conclusion`);
* demonstrates why a high-dimensional ``P`` makes ``P_A + P_B`` additive
  (:func:`additivity_by_dimension`).

Why dimension alone: the fitted training reconstruction is ``G W
P^T = Pi_G Y~ H_P``, where ``Pi_G = G (G^T G + lambda I)^-1 G^T`` projects on the gene
embedding and ``H_P = P (P^T P + lambda I)^-1 P^T`` is the hat matrix of the training
perturbation embeddings (conditions x conditions). A new perturbation ``q`` is predicted
as ``c + b + Pi_G Y~ h_q`` with ``h_q = P (P^T P + lambda I)^-1 P_q``. When ``dim(P)``
reaches the number of training conditions, a generic ``P`` has full row rank and ``H_P``
is nearly the identity, so ``h_A`` is nearly the indicator of ``A``. For a double,
``P_AB = P_A + P_B`` gives ``h_AB = h_A + h_B`` and the prediction becomes ``c + b +
Pi_G (Y~_A + Y~_B)``: the additive model projected on the gene embedding, whatever the
embedding's content.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import metrics
from .benchmark import run_methods
from .conditions import condition_genes
from .linear import RandomControls, fit_linear_model, random_embedding_like
from .pseudobulk import Pseudobulk
from .uncertainty import crossed_interval, describe, direction, paired_interval
from .errors import InputError

__all__ = [
    "EMBEDDING_SEED",
    "run_seeded",
    "crossed_summary",
    "crossed_forest",
    "versus_controls",
    "conclusion",
    "paired_comparisons",
    "additivity_by_dimension",
    "beside_controls",
    "dimension_plot",
]

EMBEDDING_SEED = "embedding_seed"


def run_seeded(
    truth: Pseudobulk, splits, controls: RandomControls, **kwargs
) -> pd.DataFrame:
    """:func:`helpers.benchmark.run_methods` for every control and embedding seed.

    Returns the per-perturbation metrics with an ``embedding_seed`` column. Controls
    that cannot be fitted (as their embedding, e.g. a G whose training P is too small)
    are not printed once per seed but listed in ``attrs["not_fitted"]`` (method, seed,
    embedding_seed, reason).

    ``truth``: the pseudobulk the methods are trained and scored on; ``splits``: the
    splits; ``controls``: the random controls and embedding methods
    (:class:`RandomControls`); ``kwargs``: passed on to
    :func:`helpers.benchmark.run_methods`.
    """
    if not isinstance(controls, RandomControls):
        raise TypeError(
            "controls must come from helpers.linear.random_control_variants."
        )
    splits = list(splits)
    tables, not_fitted = [], []
    for seed in controls.seeds:
        methods = {name: by_seed[seed] for name, by_seed in controls.methods.items()}
        with contextlib.redirect_stdout(io.StringIO()):
            table, _ = run_methods(truth, splits, methods, **kwargs)
        not_fitted += [{**r, EMBEDDING_SEED: seed} for r in table.attrs["not_fitted"]]
        tables.append(table.assign(**{EMBEDDING_SEED: seed}))
    out = pd.concat(tables, ignore_index=True)
    out.attrs["not_fitted"] = not_fitted
    return out


def _with_seed_column(table: pd.DataFrame) -> pd.DataFrame:
    if EMBEDDING_SEED in table.columns:
        return table.assign(
            **{EMBEDDING_SEED: table[EMBEDDING_SEED].fillna(-1).astype(int)}
        )
    return table.assign(**{EMBEDDING_SEED: -1})


def _factors(table: pd.DataFrame) -> list[str]:
    return [f for f in ("condition", "seed", EMBEDDING_SEED) if f in table.columns]


def crossed_summary(
    table: pd.DataFrame,
    value: str = "l2",
    *,
    methods=None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per dataset and method: the mean of ``value`` with a 95% interval resampling
    conditions, split seeds and embedding seeds as crossed factors. Columns: dataset,
    method, n (rows), n_condition, n_seed, n_embedding_seed, mean, lower, upper.

    ``table``: the per-perturbation metrics with an ``embedding_seed`` column
    (:func:`run_seeded`); ``methods``: those summarised (default: all); ``n_boot``,
    ``seed``: the bootstrap.
    """
    table = _with_seed_column(table)
    methods = list(pd.unique(table["method"]) if methods is None else methods)
    rows = []
    for (dataset, method), group in table[table["method"].isin(methods)].groupby(
        ["dataset", "method"], sort=False
    ):
        r = crossed_interval(group, value, _factors(group), n_boot=n_boot, seed=seed)
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "n": r["n_rows"],
                "n_condition": r["n_condition"],
                "n_seed": r.get("n_seed", 1),
                "n_embedding_seed": r[f"n_{EMBEDDING_SEED}"],
                "mean": r["estimate"],
                "lower": r["lower"],
                "upper": r["upper"],
            }
        )
    out = pd.DataFrame(rows)
    rank = out["method"].map({m: i for i, m in enumerate(methods)})
    return (
        out.assign(_rank=rank)
        .sort_values(["dataset", "_rank"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def crossed_forest(
    table: pd.DataFrame,
    baseline: str = "mean",
    methods=None,
    *,
    min_coverage: float = 0.5,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`helpers.metrics.forest` (same coverage rule and common set), with the
    interval of each mean ratio resampling conditions, split seeds and embedding seeds
    as crossed factors instead of (seed, condition) rows. Columns as ``forest`` plus
    n_condition, n_seed, n_embedding_seed; ``attrs`` as ``forest``'s.

    ``table``: the per-perturbation metrics with an ``embedding_seed`` column
    (:func:`run_seeded`); ``baseline``: the method of ratio 1; ``methods``: those shown
    (default: all); ``min_coverage``: as in ``forest``; ``n_boot``, ``seed``: the
    bootstrap.
    """
    table = _with_seed_column(table)
    keys = ["dataset", "seed", "condition"]
    # coverage and common set count (seed, condition) pairs, once per embedding seed
    once = table.drop_duplicates(["method", *keys])
    plain = metrics.forest(
        once, baseline, methods, min_coverage=min_coverage, n_boot=1, seed=seed
    )
    kept = plain.attrs["common"][["method", *keys]].drop_duplicates()
    common = table.merge(kept, on=["method", *keys], how="inner")
    plain.attrs["common"] = common
    base = (
        common[common["method"] == baseline].groupby(keys)["l2"].mean().rename("_base")
    )
    ratios = common.join(base, on=keys)
    ratios["ratio"] = ratios["l2"] / ratios["_base"]
    rows = []
    for (dataset, method), group in ratios.groupby(["dataset", "method"], sort=False):
        r = crossed_interval(group, "ratio", _factors(group), n_boot=n_boot, seed=seed)
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "n": r["n_rows"],
                "n_condition": r["n_condition"],
                "n_seed": r.get("n_seed", 1),
                "n_embedding_seed": r[f"n_{EMBEDDING_SEED}"],
                "mean_ratio": r["estimate"],
                "lower": r["lower"],
                "upper": r["upper"],
            }
        )
    out = pd.DataFrame(rows)
    out.attrs.update(plain.attrs)
    return out


def conclusion(result: dict, min_conditions: int = 10) -> str:
    """``direction`` of an interval result, or ``"too few conditions"`` when fewer than
    ``min_conditions`` conditions were resampled (a percentile bootstrap over a handful
    of conditions is too unstable to support a direction).
    """
    if result.get("n_condition", 0) < min_conditions:
        return "too few conditions"
    return direction(result["lower"], result["upper"])


def versus_controls(
    table: pd.DataFrame,
    pairs: dict,
    value: str = "l2",
    *,
    lower_is_better: bool = True,
    min_conditions: int = 10,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each embedding method against its random control of matching dimension, paired on
    (dataset, split seed, condition): ``d = control - method`` (lower is better;
    positive = the embedding is better), with an interval resampling conditions, split
    seeds and embedding seeds as crossed factors.

    ``pairs``: method -> control (``RandomControls.pairs``). Only conditions both scored
    are used. Columns: dataset, method, control, n_condition, n_embedding_seed,
    method_mean, control_mean, difference, lower, upper, direction, conclusion (``"too
    few conditions"`` below ``min_conditions``).

    ``table``: the per-perturbation metrics with an ``embedding_seed`` column;
    ``value``: the metric column; ``lower_is_better``: its direction; ``n_boot``,
    ``seed``: the bootstrap.
    """
    table = _with_seed_column(table)
    keys = ["dataset", "seed", "condition"]
    rows = []
    for method, control in pairs.items():
        a = table[table["method"] == method]
        c = table[table["method"] == control]
        if a.empty or c.empty:
            continue
        a = a.groupby(keys)[value].mean().rename("_method")
        merged = c[[*keys, EMBEDDING_SEED, value]].join(a, on=keys, how="inner")
        sign = 1.0 if lower_is_better else -1.0
        merged["d"] = sign * (merged[value] - merged["_method"])
        for dataset, group in merged.groupby("dataset"):
            r = crossed_interval(group, "d", _factors(group), n_boot=n_boot, seed=seed)
            pair = group.drop_duplicates(keys)
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "control": control,
                    "n_condition": r["n_condition"],
                    "n_embedding_seed": r[f"n_{EMBEDDING_SEED}"],
                    "method_mean": float(pair["_method"].mean()),
                    "control_mean": float(group[value].mean()),
                    "difference": r["estimate"],
                    "lower": r["lower"],
                    "upper": r["upper"],
                    "direction": direction(r["lower"], r["upper"]),
                    "conclusion": conclusion(r, min_conditions),
                }
            )
    return pd.DataFrame(rows)


def paired_comparisons(
    table: pd.DataFrame,
    comparisons,
    value: str = "l2",
    *,
    lower_is_better: bool = True,
    factors=("condition", "seed"),
    min_conditions: int = 10,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`helpers.uncertainty.paired_interval` per dataset for each ``(method,
    baseline)`` of ``comparisons``, paired on ``factors`` and resampling them as crossed
    factors.

    Datasets where either method has no rows are skipped. Columns: dataset, method,
    baseline, n_condition, estimate (mean paired difference, positive = method better),
    lower, upper, direction, conclusion (``"too few conditions"`` below
    ``min_conditions``), sentence (:func:`helpers.uncertainty.describe`, or what is
    missing when n is too small).

    ``table``: the per-perturbation metrics; ``value``: the metric column;
    ``lower_is_better``: its direction; ``n_boot``, ``seed``: the bootstrap.
    """
    rows = []
    for dataset, group in table.groupby("dataset", sort=False):
        present = set(group["method"])
        for method, baseline in comparisons:
            if method not in present or baseline not in present:
                continue
            r = paired_interval(
                group,
                method,
                baseline,
                value=value,
                lower_is_better=lower_is_better,
                factors=list(factors),
                n_boot=n_boot,
                seed=seed,
            )
            verdict = conclusion(r, min_conditions)
            sentence = describe(r)
            if verdict == "too few conditions":
                sentence = (
                    f"{method} vs {baseline} on {value}: only {r['n_condition']} "
                    f"paired conditions (fewer than {min_conditions}), too few to "
                    f"conclude; mean difference {r['estimate']:.3f} "
                    f"[{r['lower']:.3f}, {r['upper']:.3f}]"
                )
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "baseline": baseline,
                    "n_condition": r["n_condition"],
                    "estimate": r["estimate"],
                    "lower": r["lower"],
                    "upper": r["upper"],
                    "direction": r["direction"],
                    "conclusion": verdict,
                    "sentence": f"{dataset}: {sentence}",
                }
            )
    return pd.DataFrame(rows)


def _hat_columns(P_train: np.ndarray, P_new: np.ndarray, ridge: float) -> np.ndarray:
    """``P_train (P_train^T P_train + ridge I)^-1 P_new^T`` (training x new)."""
    gram = P_train.T @ P_train + ridge * np.eye(P_train.shape[1])
    return P_train @ np.linalg.solve(gram, P_new.T)


def additivity_by_dimension(
    pb: Pseudobulk,
    split,
    dims: Sequence[int],
    *,
    seeds=(0, 1, 2),
    k: int = 10,
    ridge: float = 0.1,
) -> pd.DataFrame:
    """The dimension effect, computed: a random Gaussian ``P`` of each dimension in
    ``dims`` (one row per target gene; a double is the sum of its two rows) in the
    linear model with the training-PCA ``G``, fitted on ``split``'s training conditions,
    predicting its held-out doubles.

    Per (dim, seed): ``n_train`` (training conditions), ``self_weight`` (mean over the
    doubles of the weight ``h_q`` puts on the double's own two singles, 1 =
    interpolation; module docstring), ``to_projected_additive`` (mean L2 distance
    between the prediction and the projected additive model ``c + b + Pi_G (Y~_A +
    Y~_B)``) and ``l2`` (mean L2 to the observed double). Rows with ``dim`` 0 hold the
    projected additive (``"projected_additive"``) and the additive model.

    ``pb``: the pseudobulk (training and held-out conditions); ``seeds``: the seeds of
    the random ``P``; ``k``: the dimension of ``G`` (training PCA); ``ridge``: the ridge
    penalty of the fit.
    """
    doubles = [c for c in split.held_out if len(condition_genes(c)) == 2]
    if not doubles:
        raise InputError(
            "The split holds out no double perturbation; nothing to demonstrate."
        )
    train_pb = pb.subset(split.train)
    targets = sorted(
        {g for c in [*train_pb.conditions, *doubles] for g in condition_genes(c)}
    )
    ctrl = train_pb.ctrl.to_numpy()
    truth = pb.means.loc[doubles].to_numpy()
    rows = []
    proj_add = None
    for dim in dims:
        for seed in seeds:
            base = pd.DataFrame(np.ones((len(targets), int(dim))), index=targets)
            P = random_embedding_like(base, seed)
            fit = fit_linear_model(
                train_pb,
                perturbation_embedding=P,
                predict_conditions=doubles,
                k=k,
                ridge=ridge,
            )
            train = [c for c in train_pb.conditions if c in fit.P.index]
            pred, _ = fit.predict(doubles)
            G = fit.G.to_numpy()
            Y = (train_pb.means.loc[train] - train_pb.ctrl).to_numpy().T
            Yt = Y - fit.b.to_numpy()[:, None]
            Pi_Y = G @ np.linalg.solve(G.T @ G + ridge * np.eye(G.shape[1]), G.T @ Yt)
            H = _hat_columns(
                fit.P.loc[train].to_numpy(), fit.P.loc[doubles].to_numpy(), ridge
            )
            position = {
                condition_genes(c)[0]: i
                for i, c in enumerate(train)
                if len(condition_genes(c)) == 1
            }
            own = [[position[g] for g in condition_genes(c)] for c in doubles]
            weight = np.mean([H[idx, j].mean() for j, idx in enumerate(own)])
            proj_add = np.array(
                [ctrl + fit.b.to_numpy() + Pi_Y[:, idx].sum(axis=1) for idx in own]
            )
            values = pred.values.loc[doubles].to_numpy()
            rows.append(
                {
                    "dim": int(dim),
                    "seed": seed,
                    "n_train": len(train),
                    "self_weight": float(weight),
                    "to_projected_additive": float(
                        np.linalg.norm(values - proj_add, axis=1).mean()
                    ),
                    "l2": float(np.linalg.norm(values - truth, axis=1).mean()),
                }
            )
    additive = np.array(
        [
            train_pb.means.loc[[train[position[g]] for g in condition_genes(c)]]
            .to_numpy()
            .sum(axis=0)
            - ctrl
            for c in doubles
        ]
    )
    for name, values in (("projected_additive", proj_add), ("additive", additive)):
        rows.append(
            {
                "dim": 0,
                "seed": -1,
                "n_train": rows[-1]["n_train"],
                "model": name,
                "l2": float(np.linalg.norm(values - truth, axis=1).mean()),
            }
        )
    out = pd.DataFrame(rows)
    out["model"] = out.get("model", pd.Series(dtype=object)).fillna("linear_P_random")
    return out


def beside_controls(methods, pairs: dict) -> list[str]:
    """``methods`` in order, each embedding method followed by its random control (for
    plots); a control whose embedding is not in ``methods`` goes last; other methods
    keep their order.

    ``pairs``: method -> its random control (``RandomControls.pairs``).
    """
    methods = list(methods)
    controls_ = set(pairs.values())
    out = []
    for m in methods:
        if m in controls_:
            continue
        out.append(m)
        if m in pairs and pairs[m] in methods and pairs[m] not in out:
            out.append(pairs[m])
    return out + [m for m in methods if m not in out]


def dimension_plot(
    demo: pd.DataFrame,
    embeddings: pd.DataFrame | None = None,
    ax=None,
    *,
    title: str = "",
):
    """Mean L2 of the random-P linear model against dim(P) (mean and range over seeds),
    with the projected additive and additive models as lines and, if given, the
    embeddings as labelled points.

    ``demo``: the L2 table of :func:`additivity_by_dimension` (columns model, dim,
    l2); ``embeddings``: columns label, dim, l2; ``ax``: the axes to draw on (a new
    figure if None); ``title``: the panel title.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    lm = (
        demo[demo["model"] == "linear_P_random"]
        .groupby("dim")["l2"]
        .agg(["mean", "min", "max"])
    )
    ax.errorbar(
        lm.index,
        lm["mean"],
        yerr=[lm["mean"] - lm["min"], lm["max"] - lm["mean"]],
        fmt="o-",
        ms=4,
        capsize=2,
        color="grey",
        label="random P (range over seeds)",
    )
    for model, style in (("projected_additive", "--"), ("additive", ":")):
        value = demo.loc[demo["model"] == model, "l2"]
        if len(value):
            ax.axhline(
                value.iloc[0],
                color="black",
                linestyle=style,
                linewidth=0.9,
                label=model.replace("_", " "),
            )
    n_train = int(demo["n_train"].iloc[0])
    ax.axvline(
        n_train, color="tab:red", linewidth=0.8, label=f"{n_train} training conditions"
    )
    if embeddings is not None:
        for _, row in embeddings.iterrows():
            ax.plot(row["dim"], row["l2"], "D", color="tab:blue")
            ax.annotate(
                row["label"],
                (row["dim"], row["l2"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.set_xlabel("dimension of P (log scale)")
    ax.set_ylabel("mean L2 on the held-out doubles")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return ax
