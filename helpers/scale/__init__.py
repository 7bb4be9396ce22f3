"""Atlas-scale screens on Dask (chapter 10): lazy readers, the pseudobulk as a Dask
reduction, a CLI.

Imports one way: ``helpers.scale`` uses ``helpers.pseudobulk`` (its kernel and its
``Pseudobulk``), ``helpers.loaders`` and ``helpers.data``; nothing in the rest of
``helpers`` imports ``helpers.scale`` except the benchmark's task registry, lazily.
"""

from .readers import LazyScreen, ScaleError, open_store, partition_starts, row_blocks
from .reduce import GroupMeans, PseudobulkPlan, group_means, plan_pseudobulk, pseudobulk

__all__ = [
    "LazyScreen",
    "ScaleError",
    "open_store",
    "partition_starts",
    "row_blocks",
    "GroupMeans",
    "PseudobulkPlan",
    "group_means",
    "plan_pseudobulk",
    "pseudobulk",
]
