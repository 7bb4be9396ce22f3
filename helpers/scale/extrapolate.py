"""From a measured run to an atlas: core-hours and memory per worker (chapter 10,
bench_scale.py).

The reduction reads every non-zero once and adds it into a partial sum, so its work is
linear in the number of non-zeros; memory per worker is one block plus the partials of a
few blocks (groups present x genes x 8 bytes), independent of the number of cells.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["core_hours", "TAHOE_NNZ_PER_CELL"]

# Lengths of the token lists of Tahoe-100M cells in the Hub's dataset viewer: 393 to
# 5,450 per cell (the viewer's column summary of a sample of rows; marker entry
# included): the shortest and longest lists of a sample, so bounds, not a mean. The
# mean needs the real shards: helpers.scale.tahoe.nnz_per_cell reads it from the list
# offsets (chapter 10 uses it when a real shard is in the cache).
TAHOE_NNZ_PER_CELL = (393, 5_450)


def core_hours(
    wall_s: float, n_workers: int, nnz: float, targets: dict[str, float]
) -> pd.DataFrame:
    """Scale a measured run (``wall_s`` on ``n_workers`` single-threaded workers,
    ``nnz`` non-zeros)
    linearly in non-zeros to each target (name -> non-zeros): core-hours and hours on
    100 cores."""
    per_nnz = wall_s * n_workers / nnz  # core-seconds per non-zero
    rows = [
        {
            "target": name,
            "nonzeros": float(n),
            "core_hours": per_nnz * n / 3600,
            "hours_on_100_cores": per_nnz * n / 3600 / 100,
        }
        for name, n in targets.items()
    ]
    return pd.DataFrame(rows)
