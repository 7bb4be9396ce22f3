"""Is the split sound? An audit of train vs held-out before anything is scored
(introduced in chapter 8).

:func:`audit_split` checks a :class:`helpers.splits.Split` against the data and returns
a table of findings, one row per check, with a ``status``:

* ``leak`` (an error: :meth:`SplitAudit.raise_for_leaks` raises
  :class:`SplitLeakError`):
  - ``ctrl_held_out``: the control is held out (every baseline needs it in training);
  - ``same_perturbation``: a held-out condition is the same perturbation as a training
    one written differently (``A+B`` vs ``B+A``);
  - ``shared_cells``: cells (by ``obs_names``) or identical non-empty expression rows
    appear in a training and a held-out condition;
  - ``false_claim``: a claim made about the split (``claims=``) does not hold.
* ``note`` (reported): what the held-out set asks of a model - how many held-out doubles
  recombine two singles seen in training (the additive baseline needs both), one, or
  none; how many held-out targets were never perturbed in training; conditions of the
  data missing from the split.
* ``ok``: a check that found nothing.

Claims (``claims=`` names, each checked and reported as ``ok`` or ``false_claim``):
``"seen_singles"`` (every held-out double has both singles in train),
``"unseen_targets"`` (no held-out target gene is perturbed in any training condition),
``"doubles_only"`` (only doubles are held out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .loaders import CONTROL, condition_genes
from .splits import HELD_OUT, Split
from .errors import BookError, InputError

__all__ = ["SplitLeakError", "SplitAudit", "audit_split", "CLAIMS"]

CLAIMS = ("seen_singles", "unseen_targets", "doubles_only")


class SplitLeakError(BookError, ValueError):
    """The split leaks held-out information into training (the message lists the
    leaks)."""


@dataclass
class SplitAudit:
    """Findings of :func:`audit_split`: ``table`` with columns check, status, count,
    detail."""

    table: pd.DataFrame
    split: Split

    @property
    def leaks(self) -> pd.DataFrame:
        return self.table[self.table["status"].isin(["leak", "false_claim"])]

    @property
    def ok(self) -> bool:
        return self.leaks.empty

    def raise_for_leaks(self) -> "SplitAudit":
        """Raise :class:`SplitLeakError` naming every leak; return self if there is
        none."""
        if not self.ok:
            lines = [f"- {r.check}: {r.detail}" for r in self.leaks.itertuples()]
            raise SplitLeakError(
                f"Split {self.split.dataset!r} seed {self.split.seed} leaks "
                "held-out information:\n"
                + "\n".join(lines)
                + "\nFix the split (helpers.splits) before scoring; results on it are "
                "inflated."
            )
        return self


def _row_hashes(matrix, rows: np.ndarray) -> np.ndarray:
    """A hash of each selected expression row (exact values, sparse or dense); empty
    rows are skipped."""
    import hashlib

    import scipy.sparse as sp

    block = matrix[rows]
    out = []
    if sp.issparse(block):
        block = sp.csr_matrix(block)
        block.sort_indices()
        for i in range(block.shape[0]):
            lo, hi = block.indptr[i], block.indptr[i + 1]
            if hi == lo:
                continue
            h = hashlib.blake2b(block.indices[lo:hi].tobytes(), digest_size=16)
            h.update(np.asarray(block.data[lo:hi], dtype=np.float64).tobytes())
            out.append(h.hexdigest())
    else:
        block = np.asarray(block, dtype=np.float64)
        out = [
            hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest()
            for row in block
            if row.any()
        ]
    return np.asarray(out)


def audit_split(
    split: Split,
    conditions=None,
    *,
    adata=None,
    claims=(),
    subsets: tuple[str, ...] = HELD_OUT,
) -> SplitAudit:
    """Audit ``split`` (see the module docstring); ``adata`` (canonical cells) enables
    the cell checks.

    ``conditions``: the conditions of the data (default: those of ``adata`` or of the
    split).

    ``claims``: the claims of :data:`CLAIMS` the split must support; ``subsets``: the
    held-out subsets checked.
    """
    unknown = set(claims) - set(CLAIMS)
    if unknown:
        raise InputError(f"Unknown claim(s) {sorted(unknown)}; known: {CLAIMS}.")
    rows = []

    def add(check, status, count, detail):
        rows.append(
            {"check": check, "status": status, "count": int(count), "detail": detail}
        )

    train = [c for c in split.train]
    held = split.conditions(*subsets)
    train_set = set(train)

    add(
        "ctrl_held_out",
        "leak" if CONTROL in held else "ok",
        int(CONTROL in held),
        "ctrl is held out; keep it in train" if CONTROL in held else "ctrl is in train",
    )

    canon = {c: frozenset(condition_genes(c)) for c in split.assignment}
    train_by_set = {canon[c]: c for c in train}
    same = [
        (h, train_by_set[canon[h]])
        for h in held
        if canon[h] in train_by_set and h != CONTROL
    ]
    add(
        "same_perturbation",
        "leak" if same else "ok",
        len(same),
        f"held-out = training perturbation: {same[:5]}"
        if same
        else "no held-out condition is a training condition written differently",
    )

    if adata is not None:
        labels = adata.obs["condition"].astype(str).to_numpy()
        in_train = np.isin(labels, train)
        in_held = np.isin(labels, held)
        names = pd.Index(adata.obs_names)
        shared_names = names[in_train].intersection(names[in_held])
        hashes_train = _row_hashes(adata.X, np.flatnonzero(in_train))
        hashes_held = _row_hashes(adata.X, np.flatnonzero(in_held))
        shared_rows = np.intersect1d(hashes_train, hashes_held)
        n = len(shared_names) + len(shared_rows)
        add(
            "shared_cells",
            "leak" if n else "ok",
            n,
            f"{len(shared_names)} cell name(s) (e.g. {list(shared_names[:3])}) "
            f"and {len(shared_rows)} "
            "identical expression row(s) are in both train and held-out conditions"
            if n
            else f"no cell of the {int(in_held.sum())} held-out cells is among "
            f"the {int(in_train.sum())} "
            "training cells (by name or by expression)",
        )

    doubles = [h for h in held if len(condition_genes(h)) == 2]
    seen = {h: sum(g in train_set for g in condition_genes(h)) for h in doubles}
    counts = {k: sum(v == k for v in seen.values()) for k in (2, 1, 0)}
    add(
        "doubles_recombine_seen_singles",
        "note",
        counts[2],
        f"held-out doubles with both singles in train: {counts[2]}, one: "
        f"{counts[1]}, none: {counts[0]}",
    )
    train_targets = {g for c in train for g in condition_genes(c)}
    held_targets = {g for h in held for g in condition_genes(h)}
    unseen = sorted(held_targets - train_targets)
    add(
        "unseen_targets",
        "note",
        len(unseen),
        f"{len(unseen)} of {len(held_targets)} held-out target genes are never "
        "perturbed in training",
    )
    if conditions is None and adata is not None:
        conditions = adata.obs["condition"].astype(str).unique()
    if conditions is not None:
        absent = sorted(set(map(str, conditions)) - set(split.assignment))
        add(
            "conditions_not_in_split",
            "note",
            len(absent),
            f"{len(absent)} condition(s) of the data are in no subset (e.g. "
            f"{absent[:5]})",
        )

    for claim in claims:
        if claim == "seen_singles":
            bad = [h for h, k in seen.items() if k < 2]
            detail = f"held-out doubles with a single not in train: {bad[:5]}"
        elif claim == "unseen_targets":
            bad = sorted(held_targets & train_targets)
            detail = f"held-out targets perturbed in training: {bad[:5]}"
        else:  # doubles_only
            bad = [h for h in held if len(condition_genes(h)) != 2]
            detail = f"held-out conditions that are not doubles: {bad[:5]}"
        add(
            f"claim:{claim}",
            "false_claim" if bad else "ok",
            len(bad),
            detail if bad else f"claim {claim!r} holds",
        )
    return SplitAudit(
        pd.DataFrame(rows, columns=["check", "status", "count", "detail"]), split
    )
