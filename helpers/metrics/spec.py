"""What the book knows about one metric column: :class:`MetricSpec` (chapters 8 and 9).

Each family module of :mod:`helpers.metrics` declares the specs of its columns in
``SPECS``; :mod:`helpers.metrics.catalog` collects them into the one catalog that every
table needing "which way is better" reads. This module imports only
:mod:`helpers.errors`, so every family module can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

__all__ = ["MetricSpec", "DIRECTIONS_ALLOWED", "ROLES"]

DIRECTIONS_ALLOWED = ("higher", "lower")
#: ``score``: a per-condition score of one method (paired tests, ranks, votes);
#: ``reference``: a per-condition bound from the data, the same for every method (a
#: noise ceiling, an oracle); ``summary``: one value per method, derived from the
#: per-condition scores (a calibrated scale, a DRF, a board mean).
ROLES = ("score", "reference", "summary")


@dataclass(frozen=True)
class MetricSpec:
    """One metric column and the facts about it.

    * ``column``: the column name in the book's tables (``l2``, ``mae``, ...);
    * ``family``: the family module that computes it (``paper``, ``vcc``, ...);
    * ``direction``: ``"higher"`` or ``"lower"`` - which way is better;
    * ``needs_cells``: True if computing it needs the cells, not only pseudobulks;
    * ``peer_function``: the peer implementation it equals (``package path::function``),
      or None where the book's own definition has no peer;
    * ``peer_name``: the peer's name of the same quantity (e.g. cell-eval2's
      ``expr_mae``), or None;
    * ``description``: one line saying what it measures;
    * ``role``: ``"score"``, ``"reference"`` or ``"summary"`` (:data:`ROLES`);
    * ``perfect``: the best possible value (0 for an error, 1 for a correlation), or
      None where there is none.
    """

    column: str
    family: str
    direction: str
    needs_cells: bool
    peer_function: str | None
    peer_name: str | None
    description: str
    role: str = "score"
    perfect: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS_ALLOWED:
            raise InputError(
                f"MetricSpec {self.column!r}: direction {self.direction!r} is neither "
                "'higher' nor 'lower'; say which way is better."
            )
        if self.role not in ROLES:
            raise InputError(
                f"MetricSpec {self.column!r}: role {self.role!r} is not one of {ROLES}."
            )
        if "\n" in self.description or not self.description:
            raise InputError(
                f"MetricSpec {self.column!r}: write the description as one "
                "non-empty line."
            )
