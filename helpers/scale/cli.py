"""Command line of helpers.scale, the same function as the notebooks use (chapter 10).

    python -m helpers.scale pseudobulk STORE --by COLUMN [--by COLUMN ...]
        --out FILE.csv [--counts] [--workers N | --scheduler ADDRESS]
        [--chunk-rows N] [--genes FILE] [--partition-by COLUMN] [--codes-dir DIR]

Writes a CSV: the group label (values of several --by columns joined by '|'), one column
per gene, then ``n_cells``. Bad input ends with one line on stderr that names the
problem and the fix (exit status 1), never a traceback, and never a half-written output
file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .readers import DEFAULT_CHUNK_ROWS, ScaleError, open_store
from .reduce import check_counts, plan_pseudobulk

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.scale", description="Atlas-scale pseudobulk on Dask."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pb = sub.add_parser(
        "pseudobulk", help="mean (log-normalised) expression per group of cells"
    )
    pb.add_argument(
        "store", help=".h5ad file, AnnData .zarr store or Tahoe-100M parquet folder"
    )
    pb.add_argument(
        "--by",
        action="append",
        required=True,
        metavar="COLUMN",
        help="obs column to group by (repeat for several: cell line x drug)",
    )
    pb.add_argument("--out", required=True, metavar="FILE.csv")
    pb.add_argument(
        "--counts",
        action="store_true",
        help="X holds raw counts: normalise each cell to 10,000 total, log1p, then "
        "average",
    )
    where = pb.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="start a LocalCluster of N single-threaded worker processes",
    )
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="use a running Dask scheduler"
    )
    pb.add_argument(
        "--chunk-rows",
        type=int,
        default=DEFAULT_CHUNK_ROWS,
        metavar="N",
        help=f"cells per block (default {DEFAULT_CHUNK_ROWS:,})",
    )
    pb.add_argument(
        "--genes", metavar="FILE", help="text file, one gene (var name) per line"
    )
    pb.add_argument(
        "--partition-by",
        metavar="COLUMN",
        help="obs column whose runs of equal values no block may cross (cells stored "
        "by plate)",
    )
    pb.add_argument(
        "--codes-dir",
        metavar="DIR",
        help="folder every worker sees (a cluster's shared filesystem): the group "
        "codes are written there instead of into the task graph",
    )
    return parser


def _read_genes(path: str) -> list[str]:
    try:
        genes = [g.strip() for g in Path(path).read_text().splitlines() if g.strip()]
    except OSError as err:
        raise ScaleError(
            f"cannot read --genes file {path} ({err.strerror}); give a text file, one "
            "gene a line."
        )
    if not genes:
        raise ScaleError(f"--genes file {path} lists no genes; give one gene per line.")
    return genes


def _run(args) -> Path:
    from .cluster import connect, local_client

    out = Path(args.out)
    if not out.parent.exists():
        raise ScaleError(
            f"the folder of --out ({out.parent}) does not exist; create it first."
        )
    genes = _read_genes(args.genes) if args.genes else None
    client = None
    if args.scheduler:
        client = connect(args.scheduler)  # before reading anything: fail fast
    screen = open_store(
        args.store, chunk_rows=args.chunk_rows, partition_by=args.partition_by
    )
    plan = plan_pseudobulk(
        screen, args.by, counts=args.counts, genes=genes, codes_dir=args.codes_dir
    )
    if args.counts:
        check_counts(screen)
    print(f"{screen!r}; {len(plan.groups):,} groups; {plan.n_tasks:,} tasks")
    try:
        if client is None and args.workers:
            client = local_client(args.workers)
        if client is not None:
            from distributed import progress

            future = client.compute(plan.result)
            progress(future)
            print()
            result = plan.finish(future.result())
        else:
            from dask.diagnostics import ProgressBar

            with ProgressBar(out=sys.stdout):
                result = plan.compute(scheduler="threads")
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    tmp = out.with_name(out.name + ".part")
    result.to_frame().to_csv(tmp)
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = _run(args)
    except ScaleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0
