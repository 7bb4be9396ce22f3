"""The book's metrics: one module per metric family, and the one ``evaluate`` (chapters
2 and 9).

* :mod:`.paper` - the paper's metrics and :func:`evaluate` (L2, Pearson delta, r; ratios
  to a baseline and the forest plot). Its public names are re-exported here, as before.
* :mod:`.systema` - Systema (Vinas Torne et al., Nat. Biotechnol. 2025): Pearson delta
  against the mean of the training perturbations, centroid accuracy.
* :mod:`.calibrated` - CellSimBench (Miller et al. 2025) / scPertEval (Schaefer et al.
  2026): DE-weighted MSE and R2 delta, and the dynamic range fraction against negative
  and positive controls.
* :mod:`.vcc` - the Virtual Cell Challenge (cell-eval 2025, cell-eval2 2026): MAE,
  perturbation discrimination, DE overlap, and the replicate-calibrated score.
* :mod:`.families` - :func:`score_families`, the one function that adds the families'
  columns.
* :mod:`.retrieval`, :mod:`.de_agreement`, :mod:`.ceiling`, :mod:`.distribution` -
  chapter 8's families (retrieval ranks, DE agreement, noise ceiling and oracle, energy
  distance of cells).
* :mod:`.catalog` - every metric column once (:class:`MetricSpec`: family, which way is
  better, needs cells, peer, description); the family modules declare their specs, the
  catalog collects them.

Constant predictions (e.g. "no change") get the same treatment in every family: NaN
where a correlation is undefined, never a number made of rounding noise.
"""

from . import catalog
from . import paper as _paper
from .families import (
    FAMILIES,
    FAMILY_CHOICES,
    family_columns,
    family_names,
    score_families,
    summarise_families,
)
from .inputs import MetricInput, metric_input
from .paper import (
    METRIC_COLUMNS,
    bootstrap_mean_ratio,
    common_conditions,
    error_vs_top_n,
    evaluate,
    forest,
    l2,
    non_target_mask,
    pearson_delta,
    pearson_r,
    ratio_to_baseline,
    summarise,
    top_n_grid,
)
from .spec import MetricSpec

__all__ = [
    *_paper.__all__,
    "FAMILIES",
    "FAMILY_CHOICES",
    "family_names",
    "family_columns",
    "score_families",
    "summarise_families",
    "MetricInput",
    "metric_input",
    "MetricSpec",
    "catalog",
]
