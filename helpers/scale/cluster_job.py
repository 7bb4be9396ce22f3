"""Chapter 10's cluster example, as it runs: a pseudobulk on a Dask scheduler and
workers started by hand (a SLURM allocation, a set of machines).

What a cluster needs, and where each comes from:

1. the book's environment on every node: the same Python with the book's packages
   and ``helpers`` importable (``PYTHONPATH`` = the repository, on a shared
   filesystem, or ``pip install -e`` into a shared environment);
2. a folder every node sees (``SHARED``): the store (each block task opens it by
   path), the scheduler file, and the group codes (written there, so the task graph
   carries a path instead of 4 bytes per cell);
3. the workers started before the work: ``client.wait_for_workers(n)``.

On the cluster (``$BOOK`` the repository, ``$SHARED`` the shared folder)::

    cd $BOOK && export PYTHONPATH=$BOOK
    python -m distributed.cli.dask_scheduler --scheduler-file $SHARED/scheduler.json &
    srun --ntasks 50 python -m distributed.cli.dask_worker --nthreads 1 \\
        --scheduler-file $SHARED/scheduler.json &
    python -m helpers.scale.cluster_job $SHARED/scheduler.json $SHARED/screen.zarr \\
        $SHARED/pb.csv --workers 50 --counts

``tests/unit/test_scale_cluster.py`` runs exactly these commands on 127.0.0.1 (two
workers, no ``srun``) with :data:`SCHEDULER` and :data:`WORKER`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# the launch commands above, as argument lists (tests/unit/test_scale_cluster.py runs
# them)
SCHEDULER = [
    sys.executable,
    "-m",
    "distributed.cli.dask_scheduler",
    "--scheduler-file",
    "{scheduler_file}",
]
WORKER = [
    sys.executable,
    "-m",
    "distributed.cli.dask_worker",
    "--nthreads",
    "1",
    "--scheduler-file",
    "{scheduler_file}",
]


def run(
    scheduler_file: str,
    store: str,
    out: str,
    n_workers: int,
    *,
    by: str = "condition",
    counts: bool = False,
    chunk_rows: int = 20_000,
    timeout: float = 300,
):
    """Connect, wait for ``n_workers`` workers, run the pseudobulk with the group codes
    on the shared folder (the scheduler file's), write ``out`` (CSV); return the plan.
    """
    from distributed import Client

    from helpers.scale import open_store, plan_pseudobulk
    from helpers.scale.reduce import check_counts

    shared = Path(scheduler_file).parent  # every node sees it
    with Client(scheduler_file=scheduler_file, timeout=timeout) as client:
        client.wait_for_workers(n_workers, timeout=timeout)
        # obs read here; X read by the workers, chunk_rows cells per task
        screen = open_store(store, chunk_rows=chunk_rows)
        plan = plan_pseudobulk(screen, by, counts=counts, codes_dir=shared)
        if counts:
            check_counts(screen)
        means = plan.finish(client.compute(plan.result).result())
    means.to_frame().to_csv(out)
    return plan


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.scale.cluster_job")
    parser.add_argument("scheduler_file", help="the scheduler's --scheduler-file")
    parser.add_argument("store", help=".h5ad, .zarr or Tahoe folder on SHARED")
    parser.add_argument("out", help="CSV to write (groups x genes, n_cells)")
    parser.add_argument("--workers", type=int, required=True, help="wait for these")
    parser.add_argument("--by", default="condition")
    parser.add_argument("--counts", action="store_true", help="X holds raw counts")
    parser.add_argument("--chunk-rows", type=int, default=20_000, help="cells per task")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for the workers"
    )
    args = parser.parse_args(argv)
    from helpers.scale.screen import ScaleError

    try:
        plan = run(
            args.scheduler_file,
            args.store,
            args.out,
            args.workers,
            by=args.by,
            counts=args.counts,
            chunk_rows=args.chunk_rows,
            timeout=args.timeout,
        )
    except (ScaleError, OSError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(plan.groups):,} groups, {plan.n_tasks} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
