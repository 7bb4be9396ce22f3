"""The paper's "*" protocol: one embedding per condition, decoded by a ridge regression
(chapter 5).

scBERT, Geneformer and UCE are not perturbation models. The paper
(``benchmark/src/run_scbert.py``, ``run_geneformer.py``, ``run_uce.py``) turns each into
one: the foundation model embeds every condition (``"ctrl"``, ``"A"``, ``"A+B"``) once,
and ``sklearn.linear_model.Ridge()`` (``alpha = 1``, with intercept) maps a condition's
embedding :math:`e_c` to its mean log-normalised expression :math:`y_c`,

.. math:: \\hat y_c = b + W e_c, \\quad
   (b, W) = \\arg\\min \\sum_{c \\in \\text{train}} \\lVert y_c - b - W e_c \\rVert^2
   + \\alpha \\lVert W \\rVert_F^2,

fitted on the training conditions (``ctrl`` included). Conditions the model cannot embed
are dropped. The encoders live in :mod:`helpers.models.uce`, :mod:`.geneformer` and
:mod:`.scbert` (``condition_embeddings``); this module is the decoder they share and
the two diagnostics of what the protocol does to a prediction:

- :func:`embedding_spread`: how far the condition embeddings vary, relative to their
  size (0: every condition gets the same embedding);
- :func:`shrinkage_to_intercept`: how far each prediction sits from the profile the
  ridge falls back to when embeddings do not vary (the training conditions' mean, the
  mean baseline), relative to how far the truth sits from it (0: the prediction *is*
  the mean baseline).

The embeddings are computed before the split (as in the paper), so the method holds the
table for every condition; it reads no held-out expression through it beyond what the
encoder's protocol puts in (which each encoder's docstring states).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from ..conditions import CONTROL
from ..errors import InputError
from ..linear import RandomControls, random_embedding_like
from ..predictions import Predictions
from .contract import TaskData

__all__ = [
    "ConditionRidge",
    "embedding_spread",
    "random_controls",
    "shrinkage_to_intercept",
]


def _checked_table(embedding: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(embedding, pd.DataFrame) or embedding.empty:
        raise InputError(
            f"{name}: the condition embedding must be a non-empty DataFrame "
            "(conditions x dimensions); compute it with the encoder's "
            "condition_embeddings(...)."
        )
    table = embedding.astype(np.float64)
    if not np.isfinite(table.to_numpy()).all():
        raise InputError(
            f"{name}: the condition embedding holds NaN or infinite values; recompute "
            "it (a condition without cells cannot be embedded: leave it out)."
        )
    if table.index.has_duplicates:
        raise InputError(f"{name}: conditions embedded twice; keep one row each.")
    table.index = table.index.astype(str)
    return table


@dataclass
class ConditionRidge:
    """A benchmark method (:class:`helpers.models.contract.Method`): the paper's ridge
    decoder on a precomputed condition embedding.

    ``embedding``: conditions x dimensions (every condition the encoder could embed,
    ``ctrl`` included); ``name``: the method's name (the book's tiny models:
    ``tiny_uce``, ``tiny_geneformer``, ``tiny_scbert``); ``alpha``: the ridge penalty
    (the paper: scikit-learn's default, 1). Held-out conditions without an embedding
    are left out of the predictions (score with ``allow_missing=True``) and listed in
    :attr:`not_predicted`; ``fits`` keeps each split's fitted ridge.
    """

    embedding: pd.DataFrame
    name: str
    alpha: float = 1.0
    fits: list[Ridge] = field(default_factory=list, repr=False)
    not_predicted: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.embedding = _checked_table(self.embedding, self.name)

    def fit(self, train_means: pd.DataFrame) -> Ridge:
        """The ridge from embedding to mean expression on the embedded rows of
        ``train_means`` (training conditions x genes)."""
        rows = [c for c in train_means.index if c in self.embedding.index]
        if len(rows) < 2:
            raise InputError(
                f"{self.name}: fewer than 2 training conditions have an embedding; "
                "embed the training conditions (ctrl and the perturbations) first."
            )
        ridge = Ridge(alpha=self.alpha, fit_intercept=True)
        ridge.fit(self.embedding.loc[rows].to_numpy(), train_means.loc[rows].to_numpy())
        return ridge

    def predict(self, train: TaskData, conditions: Sequence[str]) -> Predictions:
        """Fit on ``train``'s training conditions and predict ``conditions`` (the
        contract's call); ``train``: one split's training data, ``conditions``: the
        held-out conditions."""
        means = train.pseudobulk.means
        ridge = self.fit(means)
        self.fits.append(ridge)
        known = [c for c in conditions if c in self.embedding.index]
        self.not_predicted = [c for c in conditions if c not in self.embedding.index]
        values = ridge.predict(self.embedding.loc[known].to_numpy())
        table = pd.DataFrame(values, index=known, columns=means.columns)
        return Predictions(table, self.name, train.dataset, train.seed)


def random_controls(
    tables: dict[str, pd.DataFrame], *, seeds=(0, 1, 2, 3, 4)
) -> RandomControls:
    """The control for "does the model's embedding carry more than its dimension?": for
    each ``name -> condition embedding`` in ``tables``, the same ridge on a random
    Gaussian table of the same conditions, dimension and root-mean-square entry
    (:func:`helpers.linear.random_embedding_like`), one per seed, named
    ``<name>_random``. ``seeds``: the embedding seeds. Run with
    :func:`helpers.controls.run_seeded`; compare with
    :func:`helpers.controls.versus_controls` (``pairs``: name -> its control).
    """
    seeds = tuple(seeds)
    methods, pairs = {}, {}
    for name, table in tables.items():
        control = f"{name}_random"
        table = _checked_table(table, name)
        methods[control] = {
            seed: ConditionRidge(random_embedding_like(table, seed), control)
            for seed in seeds
        }
        pairs[name] = control
    return RandomControls(methods=methods, pairs=pairs, seeds=seeds)


def embedding_spread(embedding: pd.DataFrame, *, exclude_control: bool = True) -> float:
    """How far condition embeddings vary: the root-mean-square distance of the
    embeddings from their mean, over their root-mean-square norm,

    .. math:: s = \\sqrt{\\tfrac{1}{n} \\sum_c \\lVert e_c - \\bar e \\rVert^2}
       \\big/ \\sqrt{\\tfrac{1}{n} \\sum_c \\lVert e_c \\rVert^2}.

    ``embedding``: conditions x dimensions; ``exclude_control``: leave ``ctrl`` out
    (Geneformer's protocol gives it zeros). 0: every condition the same embedding.
    """
    table = _checked_table(embedding, "embedding_spread")
    if exclude_control:
        table = table.drop(index=CONTROL, errors="ignore")
    x = table.to_numpy()
    size = np.sqrt((x**2).sum(axis=1).mean())
    if size == 0:
        return float("nan")
    return float(np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean()) / size)


def shrinkage_to_intercept(
    predictions: pd.DataFrame, truth: pd.DataFrame, train_means: pd.DataFrame
) -> pd.Series:
    """Per condition, ``||prediction - m|| / ||truth - m||`` with ``m`` the mean of the
    training conditions' profiles (what the ridge predicts for an embedding that equals
    the training conditions' mean embedding: the mean baseline).

    ``predictions``, ``truth``: held-out conditions x genes; ``train_means``: training
    conditions x genes (the ridge's training rows). 0: the prediction is the mean
    baseline; 1: it moves as far from it as the truth does.
    """
    m = train_means.mean(axis=0)
    rows = predictions.index.intersection(truth.index)
    genes = predictions.columns
    pred = predictions.loc[rows, genes].sub(m[genes], axis=1)
    true = truth.loc[rows, genes].sub(m[genes], axis=1)
    out = np.sqrt((pred**2).sum(axis=1)) / np.sqrt((true**2).sum(axis=1))
    return out.rename("shrinkage")
