"""Resource figures the model runners and benchmarks report."""

from __future__ import annotations

import resource

__all__ = ["peak_rss_gb"]


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GiB (Linux reports ``ru_maxrss``
    in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
