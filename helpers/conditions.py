"""The condition grammar every helper shares (introduced in chapter 1).

A **condition** names what was done to a group of cells: ``"ctrl"`` (:data:`CONTROL`, no
perturbation), ``"A"`` (gene A perturbed) or ``"A+B"`` (a double: A and B perturbed
together). The order of the two genes of a double carries no meaning: ``"B+A"`` is the
same perturbation as ``"A+B"``. A dataset spells each double one way (the loaders keep
the source's order, e.g. Norman's ``"CEBPE+CEBPB"``); :func:`match_conditions` maps any
spelling onto the dataset's.

Source labels (``"KLF1+ctrl"``, ``"control"``, ...) are mapped onto this grammar by
:func:`helpers.loaders.normalize_condition`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CONTROL", "condition_genes", "target_set", "match_conditions"]

CONTROL = "ctrl"


def condition_genes(condition: str) -> list[str]:
    """The target genes of a canonical condition (``[]`` for ``ctrl``)."""
    return [] if condition == CONTROL else condition.split("+")


def target_set(condition: str) -> frozenset[str]:
    """The set of target genes: equal for ``"A+B"`` and ``"B+A"`` (the same
    perturbation)."""
    return frozenset(condition_genes(str(condition)))


def match_conditions(names: Iterable[str], known: Iterable[str]) -> dict[str, str]:
    """Map each of ``names`` whose spelling differs from ``known``'s but whose targets
    equal a known condition's (``"B+A"`` -> ``"A+B"``) to that known condition. Names
    already in ``known`` and names with no known counterpart are not in the result.
    """
    known = list(known)
    spelled = set(known)
    by_targets = {target_set(c): c for c in known}
    return {
        name: by_targets[target_set(name)]
        for name in names
        if name not in spelled and target_set(name) in by_targets
    }
