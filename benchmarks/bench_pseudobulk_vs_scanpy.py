"""Benchmark: helpers.pseudobulk vs scanpy.get.aggregate(by="condition", func="mean").

Shape (issue 16): 100,000 cells x 5,000 genes, sparse CSR float32 with exactly 50 M
non-zeros (500 per cell), 300 conditions assigned to cells at random (interleaved).
SYNTHETIC data, seeded. Both are measured in one run on the same in-memory AnnData: wall
time warm (best of ``--repeats`` calls after one warm-up call, which also compiles the
book's loop) and peak memory allocated during one call (tracemalloc, which sees numpy's
and scipy's buffers; the input matrix itself is not counted for either). Target: time
ratio (book / scanpy) <= 1 and memory ratio < 0.1. Also checks that both give the same
means (max |difference|).

    python benchmarks/bench_pseudobulk_vs_scanpy.py [--cells 100000] [--genes 5000]
    python benchmarks/bench_pseudobulk_vs_scanpy.py --small   # seconds: 5,000 x 500
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc
from importlib.metadata import version

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from helpers.pseudobulk import pseudobulk


def make_cells(
    n_cells: int, n_genes: int, per_cell: int, n_conditions: int, seed: int
) -> ad.AnnData:
    """Sparse log-normalised-like cells: ``per_cell`` distinct genes per cell (one per
    stratum)."""
    rng = np.random.default_rng(seed)
    stride = n_genes // per_cell
    indices = np.empty((n_cells, per_cell), dtype=np.int32)
    for start in range(
        0, n_cells, 10_000
    ):  # strata keep the genes of a cell distinct and sorted
        stop = min(start + 10_000, n_cells)
        offset = rng.integers(0, stride, size=(stop - start, per_cell), dtype=np.int32)
        indices[start:stop] = np.arange(per_cell, dtype=np.int32) * stride + offset
    data = rng.gamma(2.0, 0.5, size=n_cells * per_cell).astype(np.float32)
    indptr = np.arange(0, n_cells * per_cell + 1, per_cell, dtype=np.int64)
    X = sp.csr_matrix((data, indices.ravel(), indptr), shape=(n_cells, n_genes))
    names = np.array([f"P{i}" for i in range(n_conditions - 1)] + ["ctrl"])
    condition = pd.Categorical(names[rng.integers(0, n_conditions, size=n_cells)])
    obs = pd.DataFrame(
        {"condition": condition}, index=[f"cell{i}" for i in range(n_cells)]
    )
    return ad.AnnData(
        X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    )


def measure(func, repeats: int) -> tuple[float, float, object]:
    """(best warm seconds, peak MiB of one call, result)."""
    result = func()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    func()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(times), peak / 2**20, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=5_000)
    parser.add_argument("--per-cell", type=int, default=500)
    parser.add_argument("--conditions", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick check that it runs: 5,000 cells x 500 genes, 50 per cell, "
        "30 conditions, 1 repeat",
    )
    args = parser.parse_args()
    if args.small:
        args.cells, args.genes, args.per_cell = 5_000, 500, 50
        args.conditions, args.repeats = 30, 1
        print("SMALL MODE (--small): not the shape the targets are for")

    adata = make_cells(
        args.cells, args.genes, args.per_cell, args.conditions, args.seed
    )
    print(
        f"SYNTHETIC cells: {adata.n_obs:,} x {adata.n_vars:,}, {adata.X.nnz:,} "
        "non-zeros "
        f"({adata.X.dtype}, CSR), {adata.obs['condition'].nunique()} conditions; "
        f"python {platform.python_version()}, scanpy {version('scanpy')}"
    )
    book_s, book_mib, book = measure(lambda: pseudobulk(adata).means, args.repeats)
    scanpy_s, scanpy_mib, agg = measure(
        lambda: sc.get.aggregate(adata, by="condition", func="mean"), args.repeats
    )
    oracle = pd.DataFrame(
        np.asarray(agg.layers["mean"]),
        index=agg.obs_names.astype(str),
        columns=agg.var_names,
    )
    diff = float(np.abs(book.loc[oracle.index].to_numpy() - oracle.to_numpy()).max())
    print(
        f"helpers.pseudobulk       : {book_s * 1e3:8.1f} ms warm, peak "
        f"{book_mib:8.1f} MiB"
    )
    print(
        f"scanpy.get.aggregate mean: {scanpy_s * 1e3:8.1f} ms warm, peak "
        f"{scanpy_mib:8.1f} MiB"
    )
    print(f"time ratio (book / scanpy)  : {book_s / scanpy_s:.2f}  (target <= 1)")
    print(f"memory ratio (book / scanpy): {book_mib / scanpy_mib:.3f}  (target < 0.1)")
    print(f"max |book - scanpy| over all means: {diff:.2e}")


if __name__ == "__main__":
    main()
