"""Benchmark: the Dask pseudobulk (helpers.scale) at 0.25 - 2 M cells, per worker.

SYNTHETIC screens written by ``helpers.scale.standins.write_synthetic_store`` into
``.h5ad`` files (CSR counts, 5,000 genes, ~500 reads per cell, 200 conditions, cells
shuffled; seeded). For each size:

* ``dask 1w`` / ``dask 2w``: ``helpers.scale.group_means`` on a fresh ``LocalCluster``
  of 1 or 2 single-threaded worker processes (blocks of ``--chunk-rows`` cells); wall
  time of the reduction and the peak resident memory of each worker process (includes
  Python, dask and numba);
* ``backed``: today's single-process path, ``helpers.pseudobulk.pseudobulk`` on
  ``anndata.read_h5ad(path, backed="r")`` (10,000-row chunks), in a fresh process (peak
  RSS);
* ``scanpy``: ``scanpy.get.aggregate(by="condition", func="mean")`` on the AnnData read
  into memory, in a fresh process, only where the matrix fits in a quarter of the memory
  available.

Peak memory is each process's ``VmHWM`` (not ``ru_maxrss``, which Linux carries across
``exec``).

All compute the mean of X as stored (``counts=False``), so they do the same work. Each
store is read once before anything is timed, so every path finds it in the page cache
(a cold read measures the disk, the same for all paths); each figure is the median of
``--repeat`` runs (default 5; peak memory: the largest). ``dask_*w_s`` is the whole
call (open, i.e. reading ``obs`` in the calling process, then the reduction), as the
backed path is timed; ``*_reduce_s`` the reduction alone, whose ratio
(``speedup_2w_reduce``) is what a second worker can speed up: the open is serial.
Targets (issue 23): memory per worker flat in the number of cells (<= 2 GB at 2 M), time
linear in non-zeros, 2 workers >= 1.7x faster than 1, 1 worker within 1.5x of the backed
path. The last lines extrapolate the 2-worker time linearly in non-zeros to Tahoe-100M.
The machine may be shared: the load average is printed.

    python benchmarks/bench_scale.py [--small] [--sizes 250000 500000 ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.scale import group_means, open_store  # noqa: E402
from helpers.scale.cluster import local_client, worker_memory  # noqa: E402
from helpers.scale.readers import DEFAULT_CHUNK_ROWS  # noqa: E402
from helpers.scale.extrapolate import TAHOE_NNZ_PER_CELL, core_hours  # noqa: E402
from helpers.scale.standins import write_synthetic_store  # noqa: E402

_CHILD = r"""
import json, sys, time
import anndata as ad
from helpers.scale.cluster import peak_rss_bytes
path, how = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if how == "backed":
    from helpers.pseudobulk import pseudobulk
    adata = ad.read_h5ad(path, backed="r")
    adata.obs["condition"] = adata.obs["condition"].astype(str)
    pb = pseudobulk(adata)
else:
    import scanpy as sc
    adata = ad.read_h5ad(path)
    sc.get.aggregate(adata, by="condition", func="mean")
wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "peak_gib": peak_rss_bytes() / 2**30}))
"""


def _child(path: Path, how: str) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), how],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def _warm_up() -> None:
    import scipy.sparse as sp

    from helpers.pseudobulk import group_sums

    group_sums(sp.csr_matrix(np.ones((2, 2))), np.array([0, 1]), 2)


def _warm_cache(path: Path) -> None:
    """Read the store's bytes once (into the page cache), untimed."""
    with open(path, "rb") as f:
        while f.read(1 << 26):
            pass


def _children(path: Path, how: str, repeat: int) -> dict:
    runs = [_child(path, how) for _ in range(repeat)]
    return {
        "wall_s": float(np.median([r["wall_s"] for r in runs])),
        "peak_gib": max(r["peak_gib"] for r in runs),
    }


def _dask(path: Path, n_workers: int, chunk_rows: int, repeat: int) -> dict:
    """``repeat`` timed runs on one LocalCluster of ``n_workers`` workers: the open
    (``obs`` read in this process) and the reduction, each the median."""
    from dataclasses import replace

    client = local_client(n_workers)
    try:
        # every worker imports helpers and loads the compiled kernel, untimed
        client.run(_warm_up)
        warm = open_store(path, chunk_rows=chunk_rows)
        small = replace(warm, X=warm.X[:1_000], obs=warm.obs.iloc[:1_000])
        group_means(small, "condition", scheduler=client)
        opens, reduces = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            screen = open_store(path, chunk_rows=chunk_rows)
            opened = time.perf_counter()
            group_means(screen, "condition", scheduler=client)
            opens.append(opened - start)
            reduces.append(time.perf_counter() - opened)
        peaks = [m / 2**30 for m in worker_memory(client).values()]
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    total = np.array(opens) + np.array(reduces)
    return {
        f"dask_{n_workers}w_s": float(np.median(total)),
        f"dask_{n_workers}w_reduce_s": float(np.median(reduces)),
        f"dask_{n_workers}w_peak_gib": max(peaks),
    }


def _available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 2**20
    return 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="tiny sizes (a test runs this)"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[250_000, 500_000, 1_000_000, 2_000_000]
    )
    parser.add_argument("--genes", type=int, default=5_000)
    parser.add_argument(
        "--reads", type=int, default=500, help="reads per cell (~non-zeros per cell)"
    )
    parser.add_argument("--conditions", type=int, default=200)
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=DEFAULT_CHUNK_ROWS,
        help="cells per block (default: helpers.scale's own default)",
    )
    parser.add_argument(
        "--workdir", help="where the stores are written (default: a temporary folder)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per figure (median)"
    )
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.chunk_rows < 1 or min(args.sizes) < 1:
        parser.error("--repeat, --chunk-rows and --sizes must be positive")
    if args.small:
        args.sizes, args.genes, args.reads, args.chunk_rows = [3_000], 200, 30, 1_000
        args.repeat = 1
        print("SMALL MODE: one 3,000-cell screen of 200 genes (not a measurement)")
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        return _run(args, Path(args.workdir))
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        return _run(args, Path(tmp))  # the stores are removed afterwards


def _run(args, workdir: Path) -> int:
    lines = [
        f"bench_scale.py  python {platform.python_version()}  {os.cpu_count()} cores  "
        f"load average at start {os.getloadavg()[0]:.1f} (shared machine)",
        f"SYNTHETIC screens: {args.genes:,} genes, ~{args.reads} reads/cell, "
        f"{args.conditions} conditions, "
        f"h5ad CSR counts, blocks of {args.chunk_rows:,} cells; mean of X as stored; "
        f"page cache warm; median of {args.repeat} runs",
    ]
    rows = []
    for n in args.sizes:
        path = workdir / f"screen_{n}_{args.genes}_{args.reads}.h5ad"
        start = time.perf_counter()
        if not path.exists():
            write_synthetic_store(
                path,
                n_cells=n,
                n_genes=args.genes,
                nnz_per_cell=args.reads,
                n_conditions=args.conditions,
                chunk_rows=min(args.chunk_rows, 50_000),
            )
        write_s = time.perf_counter() - start
        nnz = int(
            open_store(path, chunk_rows=args.chunk_rows)
            .X.blocks[0]
            .compute(scheduler="sync")
            .nnz
        )
        nnz = nnz * n / min(n, args.chunk_rows)
        row = {"cells": n, "nonzeros": nnz, "write_s": write_s}
        _warm_cache(path)
        for w in (1, 2):
            row.update(_dask(path, w, args.chunk_rows, args.repeat))
        r = _children(path, "backed", args.repeat)
        row["backed_s"], row["backed_peak_gib"] = r["wall_s"], r["peak_gib"]
        if nnz * 8 * 3 / 2**30 < _available_gib() / 4:
            r = _children(path, "scanpy", args.repeat)
            row["scanpy_s"], row["scanpy_peak_gib"] = r["wall_s"], r["peak_gib"]
        else:
            row["scanpy_s"] = row["scanpy_peak_gib"] = np.nan
        rows.append(row)
        print(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()},
            flush=True,
        )
        report = _report(lines, pd.DataFrame(rows))
        if args.out:  # after every size, so a long run leaves what it finished
            Path(args.out).write_text(report + "\n")
    print(report)
    return 0


def _report(header: list[str], table: pd.DataFrame) -> str:
    lines = list(header)
    table["speedup_2w"] = table["dask_1w_s"] / table["dask_2w_s"]
    table["speedup_2w_reduce"] = table["dask_1w_reduce_s"] / table["dask_2w_reduce_s"]
    table["1w_vs_backed"] = table["dask_1w_s"] / table["backed_s"]
    table["ns_per_nnz_2w"] = table["dask_2w_s"] * 2 / table["nonzeros"] * 1e9
    shown = table.copy()
    shown["nonzeros"] = (shown["nonzeros"] / 1e6).round(2).astype(str) + " M"
    lines.append(shown.round(2).to_string(index=False))
    last = table.iloc[-1]
    low, high = TAHOE_NNZ_PER_CELL
    est = core_hours(
        last["dask_2w_s"],
        2,
        last["nonzeros"],
        {
            f"Tahoe-100M at {low} nnz/cell": 100_648_790 * low,
            f"Tahoe-100M at {high:,} nnz/cell": 100_648_790 * high,
        },
    )
    lines.append(
        "compute only (no I/O, obs or merge: chapter 10 adds them with "
        "helpers.scale.costs), "
        "extrapolated linearly in non-zeros from the largest run "
        f"({int(last['cells']):,} cells, 2 workers); memory per worker stays at the "
        f"measured {last['dask_2w_peak_gib']:.2f} GiB:"
    )
    lines.append(est.round(2).to_string(index=False))
    lines.append(f"load average now {os.getloadavg()[0]:.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
