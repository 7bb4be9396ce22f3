"""Lazy readers: a screen on disk -> Dask array of row blocks and ``obs`` (chapter 10).

Three layouts, all giving a :class:`LazyScreen`:

* ``.h5ad`` and ``.zarr`` AnnData stores, ``X`` CSR or dense, read with anndata's own
  lazy reader (``anndata.experimental.read_elem_lazy``): each block is a task that opens
  the store and reads its rows (``scipy.sparse.csr_matrix`` or ``numpy.ndarray``). HDF5
  stores must be read by one thread per worker process (h5py holds one lock per
  process), so :func:`LazyScreen.threads_ok` is False for them and the cluster helpers
  start single-threaded workers.
* Old h5ad files whose ``X`` carries no anndata encoding attributes (the genome-wide
  K562 raw file is one: contiguous float32, legacy ``__categories`` in obs; see
  :mod:`helpers.scale.standins`) are read with the same row-block tasks, by h5py
  directly.
* The Tahoe-100M parquet layout (:mod:`helpers.scale.tahoe`): one task per parquet row
  group.

``obs`` is read into memory (one row per cell, a few columns: 2 M cells are ~100 MB),
``X`` never is. Uneven row blocks are allowed (``boundaries=``): the reduction of
:mod:`helpers.scale.reduce` can then keep each block inside one partition (a Tahoe
plate, a gem group).
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import dask
import dask.array as da
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .screen import LazyScreen, ScaleError  # re-exported: what every reader returns

__all__ = ["LazyScreen", "ScaleError", "open_store", "row_blocks", "partition_starts"]

DEFAULT_CHUNK_ROWS = 20_000


def row_blocks(n_rows: int, chunk_rows: int, boundaries=None) -> tuple[int, ...]:
    """Row-block sizes: ``chunk_rows`` rows each, never crossing a boundary (sorted row
    offsets).
    """
    if chunk_rows < 1:
        raise ScaleError(
            f"--chunk-rows must be a positive number of rows, got {chunk_rows}."
        )
    cuts = {0, n_rows}
    if boundaries is not None:
        cuts |= {int(b) for b in boundaries if 0 < int(b) < n_rows}
    edges = sorted(cuts)
    sizes = []
    for start, stop in zip(edges[:-1], edges[1:]):
        sizes += [min(chunk_rows, stop - s) for s in range(start, stop, chunk_rows)]
    return tuple(sizes)


def partition_starts(obs: pd.DataFrame, column: str) -> list[int]:
    """Row offsets where ``obs[column]`` changes value (the starts of stored
    partitions).
    """
    if column not in obs:
        raise ScaleError(
            f"obs has no column {column!r} to partition by; "
            f"one of: {', '.join(map(str, obs.columns))}."
        )
    values = obs[column].astype(str).to_numpy()
    return (np.flatnonzero(values[1:] != values[:-1]) + 1).tolist()


def _is_zarr(path: Path) -> bool:
    return path.is_dir() and (
        (path / "zarr.json").exists()
        or (path / ".zgroup").exists()
        or (path / ".zattrs").exists()
    )


def _rows(elem, start: int, stop: int, sparse: bool, n_vars: int, dtype):
    """Rows ``start:stop`` of an h5py/zarr matrix: CSR group (data/indices/indptr) or
    dense array.
    """
    if not sparse:
        return np.asarray(elem[start:stop], dtype=dtype)
    indptr = np.asarray(elem["indptr"][start : stop + 1], dtype=np.int64)
    lo, hi = int(indptr[0]), int(indptr[-1])
    data = np.asarray(elem["data"][lo:hi]).astype(dtype, copy=False)
    return sp.csr_matrix(
        (data, np.asarray(elem["indices"][lo:hi]), indptr - lo),
        shape=(stop - start, n_vars),
    )


def _read_rows(
    path: str,
    kind: str,
    key: str,
    start: int,
    stop: int,
    sparse: bool,
    n_vars: int,
    dtype,
):
    """Open the store, read rows ``start:stop`` of ``key``, close it (one task of the
    graph).
    """
    if kind == "h5ad":
        with h5py.File(path, "r") as f:
            return _rows(f[key], start, stop, sparse, n_vars, dtype)
    import zarr

    return _rows(
        zarr.open_group(path, mode="r")[key], start, stop, sparse, n_vars, dtype
    )


def _block_array(
    path: str, kind: str, key: str, shape, dtype, sparse: bool, sizes
) -> da.Array:
    """A Dask array with one read task per row block (any block sizes)."""
    blocks, start = [], 0
    meta = (
        sp.csr_matrix((0, shape[1]), dtype=dtype)
        if sparse
        else np.empty((0, shape[1]), dtype)
    )
    for size in sizes:
        part = dask.delayed(_read_rows, pure=True)(
            path, kind, key, start, start + size, sparse, shape[1], dtype
        )
        blocks.append(
            da.from_delayed(part, shape=(size, shape[1]), dtype=dtype, meta=meta)
        )
        start += size
    return da.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]


def _h5ad_x_info(f: h5py.File):
    """(sparse?, shape, dtype, has_encoding) of ``X`` in an open h5ad; ScaleError if not
    AnnData.
    """
    if "X" not in f or "obs" not in f or "var" not in f:
        raise ScaleError(
            "it has no X/obs/var groups, so it is not an AnnData .h5ad file"
        )
    x = f["X"]
    enc = x.attrs.get("encoding-type", "")
    enc = enc.decode() if isinstance(enc, bytes) else enc
    if isinstance(x, h5py.Dataset):
        return False, tuple(x.shape), x.dtype, bool(enc)
    fmt = enc or x.attrs.get("h5sparse_format", "")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt.startswith("csc"):
        raise ScaleError(
            "X is stored CSC (by gene), which cannot be read in row blocks; rewrite it "
            "as CSR "
            "(adata.X = adata.X.tocsr(); adata.write_h5ad(...))"
        )
    if not fmt.startswith("csr"):
        raise ScaleError(
            f"X has an unknown encoding {fmt!r}; expected csr_matrix or a dense array"
        )
    shape = tuple(int(s) for s in x.attrs.get("shape", x.attrs.get("h5sparse_shape")))
    return True, shape, x["data"].dtype, bool(enc)


def _probe(path: Path, kind: str) -> None:
    """Raise ScaleError (a short reason) unless ``path`` looks like an AnnData store."""
    if kind == "h5ad":
        try:
            f = h5py.File(path, "r")
        except OSError as err:
            raise ScaleError(
                f"it is not an HDF5 file ({err.__class__.__name__})"
            ) from None
        with f:
            _h5ad_x_info(f)
    else:
        import zarr

        g = zarr.open_group(str(path), mode="r")
        if "X" not in g or "obs" not in g:
            raise ScaleError("it has no X/obs, so it is not an AnnData .zarr store")


def _open_h5ad(path: Path, chunk_rows: int, boundaries) -> tuple[da.Array, bool]:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ScaleError(f"it is not an HDF5 file ({err.__class__.__name__})") from None
    with f:
        sparse, shape, dtype, encoded = _h5ad_x_info(f)
        sizes = row_blocks(shape[0], chunk_rows, boundaries)
        if encoded and len(set(sizes[:-1])) <= 1:
            from anndata.experimental import read_elem_lazy

            X = read_elem_lazy(f["X"], chunks=(sizes[0], shape[1]))
        else:  # uneven blocks, or an old file without encoding attributes
            X = _block_array(str(path), "h5ad", "X", shape, dtype, sparse, sizes)
    return X, sparse


def _open_zarr(path: Path, chunk_rows: int, boundaries) -> tuple[da.Array, bool]:
    import zarr
    from anndata.experimental import read_elem_lazy

    g = zarr.open_group(str(path), mode="r")
    if "X" not in g or "obs" not in g:
        raise ScaleError("it has no X/obs, so it is not an AnnData .zarr store")
    x = g["X"]
    enc = x.attrs.get("encoding-type", "array")
    sparse = enc == "csr_matrix"
    if enc == "csc_matrix":
        raise ScaleError(
            "X is stored CSC (by gene); rewrite it as CSR to read it in row blocks"
        )
    shape = tuple(x.attrs["shape"]) if sparse else tuple(x.shape)
    sizes = row_blocks(shape[0], chunk_rows, boundaries)
    if len(set(sizes[:-1])) <= 1:
        return read_elem_lazy(x, chunks=(sizes[0], shape[1])), sparse
    dtype = x["data"].dtype if sparse else x.dtype
    return _block_array(str(path), "zarr", "X", shape, dtype, sparse, sizes), sparse


def _read_obs_var(path: Path, kind: str):
    """obs and var_names in memory, through anndata's readers (they understand every
    anndata version).
    """
    if kind == "h5ad":
        with h5py.File(path, "r") as f:
            encoded = all(f[k].attrs.get("encoding-type") for k in ("obs", "var"))
            if encoded:  # anndata >= 0.7 layout: read just the two data frames
                from anndata.io import read_elem

                # (2 M cells: 0.6 s, against 1.3 s for read_h5ad(backed="r").obs)
                return read_elem(f["obs"]), read_elem(f["var"])
        # legacy layouts (obs/__categories, e.g. the genome-wide K562 raw file):
        # anndata's full reader understands them
        adata = ad.read_h5ad(path, backed="r")
        obs, var = adata.obs.copy(), adata.var.copy()
        adata.file.close()
    else:
        import zarr
        from anndata.io import read_elem

        g = zarr.open_group(str(path), mode="r")
        obs, var = read_elem(g["obs"]), read_elem(g["var"])
    return obs, var


def open_store(
    path: str | os.PathLike,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    boundaries=None,
    partition_by: str | None = None,
    dataset: str = "",
) -> LazyScreen:
    """Open an ``.h5ad`` file, an AnnData ``.zarr`` store or a Tahoe-100M parquet folder
    lazily.

    ``chunk_rows`` rows per block (the blocks hold every gene, so a cell's library size
    is known inside its block); ``boundaries``: row offsets no block may cross;
    ``partition_by``: an obs column whose runs of equal values (cells stored partition
    by partition, e.g. plate or gem group) no block may cross, so each block's partial
    holds only its partition's groups. Raises :class:`ScaleError` with a one-line reason
    when the path is not such a store.

    ``path``: the store; ``dataset``: its name in the screen (default: the file's stem).
    """
    path = Path(path)
    if not path.exists():
        raise ScaleError(
            f"{path} does not exist; give the path of an .h5ad file or a .zarr store."
        )
    if path.is_dir() and not _is_zarr(path):
        from .tahoe import is_tahoe_folder, open_tahoe

        if is_tahoe_folder(path):
            return open_tahoe(path, dataset=dataset)
        raise ScaleError(
            f"{path} is a folder but neither an AnnData .zarr store nor a Tahoe-100M "
            "parquet folder."
        )
    kind = "zarr" if path.is_dir() else "h5ad"
    try:
        _probe(path, kind)
        obs, var = _read_obs_var(path, kind)
    except ScaleError as err:
        raise ScaleError(f"{path} cannot be read as AnnData: {err}.") from None
    except (KeyError, OSError, TypeError) as err:
        raise ScaleError(
            f"{path} cannot be read as AnnData ({err.__class__.__name__}: {err}); "
            "give an .h5ad file or .zarr store written by anndata."
        ) from None
    if partition_by is not None:
        boundaries = sorted(
            set(boundaries or ()) | set(partition_starts(obs, partition_by))
        )
    try:
        if kind == "h5ad":
            X, sparse = _open_h5ad(path, chunk_rows, boundaries)
        else:
            X, sparse = _open_zarr(path, chunk_rows, boundaries)
        var_names = pd.Index(var.index.astype(str), name="gene")
    except ScaleError as err:
        raise ScaleError(f"{path} cannot be read as AnnData: {err}.") from None
    except (KeyError, OSError, TypeError) as err:
        raise ScaleError(
            f"{path} cannot be read as AnnData ({err.__class__.__name__}: {err}); "
            "give an .h5ad file or .zarr store written by anndata."
        ) from None
    if len(obs) != X.shape[0] or len(var_names) != X.shape[1]:
        raise ScaleError(
            f"{path}: obs/var ({len(obs)} x {len(var_names)}) do not match X "
            f"{X.shape}; the store is damaged."
        )
    return LazyScreen(
        X=X,
        obs=obs,
        var_names=var_names,
        path=str(path),
        kind=kind,
        sparse=sparse,
        dataset=dataset or path.stem,
        meta={"var": var},
    )
