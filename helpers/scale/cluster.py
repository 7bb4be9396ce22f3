"""Where the Dask reduction runs: a LocalCluster on this machine or an existing
scheduler.

The same call runs on a laptop and on a cluster; only the ``Client`` differs:

* ``local_client(n_workers=2)``: a ``distributed.LocalCluster`` of worker *processes*
  with one thread each (HDF5 files are read by one thread per process: h5py serialises
  calls within a process), each told where ``helpers`` lives so it can unpickle the
  book's functions;
* ``connect("tcp://host:8786")``: a running scheduler (SLURM via dask-jobqueue,
  Kubernetes, a cloud service), with a short connect timeout and a one-line error when
  it cannot be reached.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from .readers import ScaleError

__all__ = [
    "local_client",
    "connect",
    "worker_memory",
    "peak_rss_bytes",
    "CONNECT_TIMEOUT_S",
]

CONNECT_TIMEOUT_S = 5
_ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds helpers/


def _worker_env() -> dict:
    path = os.environ.get("PYTHONPATH", "")
    parts = [p for p in path.split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join([_ROOT, *[p for p in parts if p != _ROOT]])}


def local_client(
    n_workers: int = 2, *, threads_per_worker: int = 1, memory_limit: str = "auto"
):
    """A ``distributed.Client`` on a new LocalCluster of ``n_workers`` single-threaded
    processes; use it as a context manager (``with local_client(2) as client:``), which
    closes the cluster too.

    ``threads_per_worker``: threads per worker process; ``memory_limit``: per worker
    (Dask's syntax, e.g. ``'4GiB'``).
    """
    from distributed import Client

    if n_workers < 1:
        raise ScaleError(f"--workers must be at least 1, got {n_workers}.")
    # the Client starts the LocalCluster itself, so closing the Client (or leaving a
    # ``with local_client() as client:`` block) also closes the cluster
    return Client(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=":0",  # a free port, never a clash
        env=_worker_env(),
        silence_logs=40,
    )


def connect(address: str, *, timeout: float = CONNECT_TIMEOUT_S):
    """A ``distributed.Client`` of the scheduler at ``address``; ScaleError if it does
    not answer.

    ``timeout``: seconds to wait for the scheduler.
    """
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise ScaleError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
            f"({err.__class__.__name__}); start it (dask scheduler / dask-jobqueue) or "
            "check the address."
        ) from None


def peak_rss_bytes() -> int:
    """Peak resident memory of this process since it started (Linux ``VmHWM``).

    Not ``getrusage().ru_maxrss``: Linux keeps that across ``exec``, so a fresh worker
    process would report the peak of the process that started it.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )  # elsewhere: kilobytes


def worker_memory(client) -> dict:
    """Peak resident memory (bytes) of every worker process since it started.

    ``client``: a ``distributed.Client``.
    """
    return client.run(peak_rss_bytes)
