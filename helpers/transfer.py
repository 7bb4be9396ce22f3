"""The lookup baseline of the transfer comparison (chapters 3 and 5).

The paper's strongest linear variant takes its perturbation embedding ``P`` from
**another screen**: the PCA scores of that screen's pseudobulk, matched by target gene.
For a perturbation of gene ``g`` that row is a compressed copy of the other screen's
*measured response to perturbing g*. The plainest use of that measurement is to predict
it directly:

    lookup_other_screen:  y_hat_p = c + (x_other[g] - c_other)   (A+B: the sum of both)

with ``c`` our control pseudobulk and ``x_other[g] - c_other`` the other screen's
pseudobulk change for ``g``. Genes that the other screen did not measure get the
training mean change (the mean baseline's prediction).

Only perturbations present in both screens can be predicted, by the lookup and by
``linear_P_other_screen`` alike; :func:`shared_perturbations` lists them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .conditions import condition_genes
from .linear import EmbeddingError
from .predictions import Predictions
from .pseudobulk import Pseudobulk

__all__ = [
    "LOOKUP",
    "other_screen_change",
    "shared_perturbations",
    "lookup_other_screen",
    "lookup_method",
]

LOOKUP = "lookup_other_screen"


def _singles(pb: Pseudobulk) -> dict[str, str]:
    """gene -> the name of its single-perturbation condition in ``pb``."""
    out = {}
    for condition in pb.conditions:
        genes = condition_genes(condition)
        if len(genes) == 1:
            out[genes[0]] = condition
    return out


def other_screen_change(other_pb: Pseudobulk, gene: str) -> pd.Series:
    """The other screen's pseudobulk change for a perturbation of ``gene``:
    ``x_other[g] - c_other``.

    Raises :class:`helpers.linear.EmbeddingError` when the other screen has no single
    perturbation of ``gene``.
    """
    conditions = _singles(other_pb)
    if gene not in conditions:
        raise EmbeddingError(
            f"{other_pb.dataset!r} has no perturbation of {gene!r}: nothing to "
            "look up; predict only perturbations both screens hold "
            "(shared_perturbations)."
        )
    return other_pb.means.loc[conditions[gene]] - other_pb.ctrl


def shared_perturbations(
    pb: Pseudobulk, other_pb: Pseudobulk, conditions=None
) -> list[str]:
    """The conditions of ``pb`` (or of ``conditions``) whose every target gene is a
    single perturbation of ``other_pb``: those that a lookup or ``P`` from the other
    screen can embed.
    """
    known = _singles(other_pb)
    conditions = pb.conditions if conditions is None else conditions
    return [
        c
        for c in conditions
        if condition_genes(c) and all(g in known for g in condition_genes(c))
    ]


def lookup_other_screen(
    train_pb: Pseudobulk,
    conditions,
    *,
    other_pb: Pseudobulk,
    seed: int | None = None,
    strict: bool = False,
    method: str = LOOKUP,
) -> Predictions:
    """Predict each condition as our control plus the other screen's observed change for
    its target gene(s) (module docstring). Uses ``train_pb`` only for ``c`` and the
    training mean change.

    Conditions with a target the other screen lacks are left out of the predictions
    (evaluate with ``allow_missing=True``), or raise with ``strict=True``.
    """
    if not isinstance(other_pb, Pseudobulk):
        raise TypeError(
            f"other_pb must be a Pseudobulk, got {type(other_pb).__name__}."
        )
    genes = train_pb.genes
    ctrl = train_pb.ctrl[genes].to_numpy()
    mean_change = (train_pb.means.mean(axis=0) - train_pb.ctrl)[genes].to_numpy()
    shared = genes.isin(other_pb.genes)
    if not shared.any():
        raise EmbeddingError(
            f"{train_pb.dataset!r} and {other_pb.dataset!r} share no measured gene; "
            "align both screens on gene symbols."
        )
    rows, names = [], []
    for condition in conditions:
        targets = condition_genes(condition)
        change = np.zeros(len(genes))  # ctrl: no change
        try:
            for gene in targets:
                change += (
                    other_screen_change(other_pb, gene)
                    .reindex(genes)
                    .fillna(0.0)
                    .to_numpy()
                )
        except EmbeddingError:
            if strict:
                raise
            continue
        if targets:  # genes the other screen did not measure: the training mean change
            change = np.where(shared, change, mean_change)
        rows.append(ctrl + change)
        names.append(condition)
    frame = pd.DataFrame(
        np.array(rows).reshape(len(names), len(genes)),
        index=pd.Index(names, name="condition"),
        columns=genes,
    )
    return Predictions(frame, method, train_pb.dataset, seed)


def lookup_method(other_pb: Pseudobulk):
    """:func:`lookup_other_screen` bound to ``other_pb``, as a benchmark method."""
    from functools import partial

    return partial(lookup_other_screen, other_pb=other_pb)
