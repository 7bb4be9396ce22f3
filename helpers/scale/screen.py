"""What every reader of :mod:`helpers.scale` returns (:class:`LazyScreen`) and the
error it raises on bad input (:class:`ScaleError`); a module of its own so that the
readers (``readers``, ``tahoe``) import it and not each other."""

from __future__ import annotations

from dataclasses import dataclass, field

import dask.array as da
import pandas as pd

from ..errors import BookError

__all__ = ["ScaleError", "LazyScreen"]


class ScaleError(BookError, ValueError):
    """Bad input to helpers.scale; the message names the problem and the fix (the CLI
    prints it)."""


@dataclass
class LazyScreen:
    """A screen read lazily: ``X`` a Dask array of row blocks (all genes per block),
    ``obs`` in memory."""

    X: da.Array
    obs: pd.DataFrame
    var_names: pd.Index
    path: str = ""
    kind: str = ""  # "h5ad" | "zarr" | "parquet"
    sparse: bool = True
    dataset: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return self.X.shape[0]

    @property
    def n_vars(self) -> int:
        return self.X.shape[1]

    @property
    def threads_ok(self) -> bool:
        """False for HDF5: h5py serialises calls within a process, so use one thread
        per worker."""
        return self.kind != "h5ad"

    def __repr__(self) -> str:
        return (
            f"LazyScreen({self.kind} {self.path!r}: {self.n_obs:,} cells x "
            f"{self.n_vars:,} genes, "
            f"{'CSR' if self.sparse else 'dense'}, {self.X.numblocks[0]} row blocks)"
        )
