"""Metric family ``systema``: Vinas Torne et al., Nat. Biotechnol. 2025 (chapter 9).

Systema argues that changes measured against the *control* reward systematic variation -
the shift every perturbation shares (stress, cell-cycle, selection) - which is exactly
what the mean baseline predicts. It scores against the average perturbation instead.
Notation as in :mod:`helpers.metrics.paper`: ``y_p`` observed pseudobulk of held-out
condition ``p``, ``y_hat_p`` its prediction, over the evaluation genes ``G``.

* ``pearson_delta_perturbed_mean``: ``cor( y_hat_p - m, y_p - m )`` over ``G``, with the
  reference ``m = (1/|T|) sum_{t in T} y_t`` the **equal-weight mean of the training
  perturbations' pseudobulks** ``T`` (control excluded; :attr:`MetricInput.train`). Each
  perturbation counts once whatever its number of cells. This is Systema's "perturbed
  centroid" reference (``evaluation/eval_utils.py::average_of_perturbation_centroids``,
  applied to the training AnnData's non-control cells, README "PearsonDelta metrics with
  custom reference") and its ``evaluation/pearson_delta_reference_metrics.py``
  (``corr_all_allpert``). NaN when either change is constant (the book's convention,
  :func:`helpers.metrics.paper.pearson_delta`), e.g. a method that predicts ``m``
  itself.

  The reference must not contain the held-out conditions. scPertEval 0.2.0's built-in
  ``all_perturbed_mean`` source (``scperteval/dataset.py::all_perturbed_mean_except``)
  centres condition ``p`` on the mean of *all other* perturbations of the evaluation
  set, held-out ones included: the reference then carries part of the truth of the other
  test conditions, which a model could not have seen - a leak that flatters every
  method. The book uses only ``train``.

* ``centroid_accuracy``: Systema's ``evaluation/centroid_accuracy.py::
  calculate_centroid_accuracies``. With Euclidean distances ``d(p, q) = ||y_hat_p -
  y_q||`` over ``G`` from the prediction of ``p`` to the observed profile of every
  held-out condition ``q`` (``Q`` = the held-out conditions of :attr:`MetricInput.obs`,
  ``p`` included):

      centroid_accuracy(p) = #{ q in Q, q != p : d(p, q) > d(p, p) } / (|Q| - 1)

  1 = the prediction is strictly closer to its own true profile than to every other one;
  ties count as *not* farther (Systema's strict ``>``), so a prediction equidistant from
  two truths is not credited for that pair. The space is the post-perturbation profiles
  themselves; subtracting any common reference (control or ``m``) leaves Euclidean
  distances unchanged, so it is the same value in delta space. The method's centroid
  accuracy is the mean over ``p``. Defined for constant predictions too (a distance, not
  a correlation); NaN when ``|Q| < 2`` (no other condition to compare with).
  scPertEval's ``nir`` (``protocols/metrics.py``, squared distances, ties broken by
  seeded noise) agrees wherever no two distances tie.

**Target-gene exclusion** (:attr:`MetricInput.exclude_target`; :mod:`.paper`). Both
columns honour it. ``pearson_delta_perturbed_mean`` of ``p`` is computed over the
evaluation genes that are not ``p``'s targets. ``centroid_accuracy`` drops, once for
the whole comparison, every gene that is a target of any held-out condition of ``Q``
(cell-eval2's ``exclusion_scope="panel"``): all distances of a row are then taken over
one gene set, and neither the prediction's own target nor another condition's target
can decide which truth it lies closest to. Dropping only ``p``'s own targets from row
``p`` (cell-eval2's legacy ``"row"`` scope) would leave every other condition's
knocked-down target in its distances, a channel a prediction could score through.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from ..errors import InputError
from ..conditions import condition_genes
from .inputs import MetricInput
from .paper import non_target_mask, pearson_delta
from .spec import MetricSpec

__all__ = [
    "NAME",
    "COLUMNS",
    "NEEDS_CELLS",
    "SPECS",
    "score",
    "perturbed_mean",
    "centroid_accuracies",
]

NAME = "systema"
COLUMNS: list[str] = ["pearson_delta_perturbed_mean", "centroid_accuracy"]
NEEDS_CELLS = False
#: The family's columns (definitions: module docstring).
SPECS = (
    MetricSpec(
        "pearson_delta_perturbed_mean",
        NAME,
        "higher",
        False,
        "systema evaluation/pearson_delta_reference_metrics.py",
        "corr_all_allpert",
        "Pearson delta against the equal-weight mean of the training perturbations",
        perfect=1.0,
    ),
    MetricSpec(
        "centroid_accuracy",
        NAME,
        "higher",
        False,
        "systema evaluation/centroid_accuracy.py::calculate_centroid_accuracies",
        "centroid_accuracy",
        "Share of other held-out truths farther from the prediction than its own",
        perfect=1.0,
    ),
)


def perturbed_mean(train: pd.DataFrame) -> pd.Series:
    """Equal-weight mean of the training perturbations' pseudobulks (control excluded).

    ``train`` is :attr:`MetricInput.train` (training conditions x evaluation genes); a
    ``ctrl`` row there is refused rather than averaged in.
    """
    if "ctrl" in train.index:
        raise InputError(
            "The perturbed-mean reference excludes the control: drop the 'ctrl' row "
            "from the training pseudobulks (MetricInput.train never has it)."
        )
    if train.empty:
        raise InputError(
            "No training perturbations to average for Systema's perturbed-mean "
            "reference; the split must train on at least one perturbation."
        )
    return train.mean(axis=0)


def centroid_accuracies(
    pred: pd.DataFrame, obs: pd.DataFrame, *, exclude_target: bool = False
) -> pd.Series:
    """Systema's centroid accuracy of every predicted condition (module docstring).

    ``pred`` and ``obs``: conditions x genes with the same columns; every predicted
    condition must be a row of ``obs`` (the candidates ``Q`` are all rows of ``obs``).
    ``exclude_target``: leave out every gene that is a target of a row of ``obs``
    (module docstring, "panel" scope).
    """
    missing = pred.index.difference(obs.index)
    if len(missing):
        raise InputError(
            f"Centroid accuracy needs the true profile of every predicted condition; "
            f"missing {list(missing)[:5]}."
        )
    columns = pd.Index(pred.columns)
    if exclude_target:
        targets = {g for q in obs.index for g in condition_genes(str(q))}
        columns = columns[~columns.isin(list(targets))]
        if not len(columns):
            raise InputError(
                "Every evaluation gene is the target of a held-out condition; "
                "centroid accuracy without targets has no gene left: score more genes."
            )
    P = pred[columns].to_numpy(dtype=np.float64)
    Y = obs[columns].to_numpy(dtype=np.float64)
    dist = cdist(P, Y, metric="euclidean")  # as Systema's centroid_accuracy.py
    own = obs.index.get_indexer(pred.index)
    self_dist = dist[np.arange(len(own)), own]
    n_other = len(obs) - 1
    if n_other < 1:
        return pd.Series(np.nan, index=pred.index, name="centroid_accuracy")
    farther = (dist > self_dist[:, None]).sum(axis=1)
    return pd.Series(farther / n_other, index=pred.index, name="centroid_accuracy")


def score(inp: MetricInput) -> pd.DataFrame:
    """Per-condition Systema metrics of one method (columns :data:`COLUMNS`); both
    honour ``inp.exclude_target`` (module docstring)."""
    ref = perturbed_mean(inp.train).reindex(inp.genes).to_numpy(dtype=np.float64)
    pred = inp.pred.to_numpy(dtype=np.float64)
    obs = inp.obs.to_numpy(dtype=np.float64)
    pdm = []
    for i, condition in enumerate(inp.conditions):
        keep = (
            non_target_mask(inp.genes, condition)
            if inp.exclude_target
            else np.ones(len(inp.genes), dtype=bool)
        )
        pdm.append(pearson_delta(pred[i, keep], obs[i, keep], ref[keep]))
    table = pd.DataFrame(
        {"pearson_delta_perturbed_mean": pdm},
        index=pd.Index(inp.conditions, name="condition"),
    )
    table["centroid_accuracy"] = centroid_accuracies(
        inp.pred, inp.obs, exclude_target=inp.exclude_target
    ).to_numpy()
    return table[COLUMNS]
