"""Benchmark: load + pseudobulk of a Norman-scale file (85k cells x 19k genes, sparse).

Prints wall time and peak memory (max resident set size of a fresh process doing only
the measured work). Targets (issue: book foundation): under 60 s and under 4 GB on a
2-core, 24 GB machine. The synthetic file is written once to benchmarks/output/
(git-ignored; ``--workdir``) by the simulator.

    python benchmarks/bench_load_pseudobulk.py [--cells 85000] [--genes 19000] [--chunk
    10000]
    python benchmarks/bench_load_pseudobulk.py --small  # seconds: 3,000 x 500 genes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

MEASURE = r"""
import json, resource, sys, time
from helpers import loaders
from helpers.pseudobulk import pseudobulk
path, mode, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
adata = loaders.read_canonical(path, backed="r" if mode == "backed" else None)
t1 = time.perf_counter()
pb = pseudobulk(adata, chunk_size=chunk)
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(json.dumps({"load_s": t1 - t0, "pseudobulk_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_gb": peak,
                  "conditions": int(pb.means.shape[0]),
                  "genes": int(pb.means.shape[1])}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=85_000)
    parser.add_argument("--genes", type=int, default=19_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=HERE / "output",
        help="where the synthetic file is written once (default: benchmarks/output)",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick check that it runs: 3,000 cells x 500 genes, chunks of 1,000",
    )
    args = parser.parse_args()
    if args.small:
        args.cells, args.genes, args.chunk = 3_000, 500, 1_000
        print("SMALL MODE (--small): not the Norman-scale file the targets are for")

    path = args.workdir / f"norman_scale_{args.cells}x{args.genes}_seed{args.seed}.h5ad"
    if not path.exists():
        from helpers.simulate import write_norman_scale_h5ad

        print(
            f"writing the synthetic Norman-scale file {path.name} (once) ...",
            flush=True,
        )
        start = time.perf_counter()
        write_norman_scale_h5ad(
            path, n_cells=args.cells, n_genes=args.genes, seed=args.seed
        )
        print(
            f"  written in {time.perf_counter() - start:.0f} s, "
            f"{path.stat().st_size / 1e9:.2f} GB on disk"
        )

    import h5py

    with h5py.File(path, "r") as f:
        nnz = f["X"]["data"].shape[0]
    print(
        f"file: {args.cells:,} cells x {args.genes:,} genes, {nnz:,} non-zeros "
        f"({nnz / (args.cells * args.genes):.1%} dense), SYNTHETIC (book simulator)"
    )
    print(
        f"{'mode':<10}{'load s':>9}{'pseudobulk s':>14}{'total s':>10}"
        f"{'peak RSS GB':>13} "
        "  target"
    )
    for mode in ("backed", "in-memory"):
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path), mode, str(args.chunk)],
            check=True,
            capture_output=True,
            text=True,
            cwd=HERE.parent,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ok = (
            "ok"
            if r["total_s"] < 60 and r["peak_rss_gb"] < 4
            else "MISSED (<60 s, <4 GB)"
        )
        print(
            f"{mode:<10}{r['load_s']:>9.1f}{r['pseudobulk_s']:>14.1f}"
            f"{r['total_s']:>10.1f}{r['peak_rss_gb']:>13.2f} "
            f"  {ok}"
        )


if __name__ == "__main__":
    main()
