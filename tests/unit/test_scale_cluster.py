"""Chapter 10's cluster example (helpers/scale/cluster_job.py) runs as written: a
``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started with the
book's environment (same Python, PYTHONPATH = the repository), a shared folder for the
store, the scheduler file and the group codes; and the task graph carries no group
labels. The oracle is scanpy's normalise + log1p and a pandas group mean."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.scale import open_store, plan_pseudobulk
from helpers.scale import cluster_job
from helpers.scale.reduce import CodesSlice, graph_bytes

ROOT = Path(__file__).resolve().parents[2]
N_CELLS, N_GENES, N_GROUPS = 6_000, 40, 30


def _screen(path: Path) -> ad.AnnData:
    rng = np.random.default_rng(7)
    counts = rng.poisson(rng.gamma(0.5, 2.0, size=N_GENES), size=(N_CELLS, N_GENES))
    counts[:, 0] += 1  # no empty cells
    groups = np.array(["ctrl"] + [f"G{i:02d}" for i in range(1, N_GROUPS)])
    adata = ad.AnnData(
        sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame(
            {"condition": pd.Categorical(rng.choice(groups, size=N_CELLS))},
            index=[f"c{i}" for i in range(N_CELLS)],
        ),
        var=pd.DataFrame(index=[f"g{j}" for j in range(N_GENES)]),
    )
    adata.write_zarr(path)
    return adata


def _oracle(adata: ad.AnnData) -> pd.DataFrame:
    import scanpy as sc

    norm = adata.copy()
    sc.pp.normalize_total(norm, target_sum=1e4)
    sc.pp.log1p(norm)
    frame = pd.DataFrame(norm.X.toarray(), columns=norm.var_names)
    return frame.groupby(adata.obs["condition"].to_numpy()).mean()


def _start(argv, scheduler_file, env, log):
    cmd = [a.format(scheduler_file=scheduler_file) for a in argv]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two workers started by the commands of cluster_job's docstring
    (``dask scheduler`` / ``dask worker`` with the book's PYTHONPATH), on 127.0.0.1."""
    shared = tmp_path / "shared"
    shared.mkdir()
    scheduler_file = shared / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = open(tmp_path / "dask.log", "w")
    extra = ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"]
    procs = [_start(cluster_job.SCHEDULER + extra, scheduler_file, env, log)]
    deadline = time.time() + 60
    while not scheduler_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert scheduler_file.exists(), (tmp_path / "dask.log").read_text()[-2000:]
    procs += [
        _start(cluster_job.WORKER + ["--no-dashboard"], scheduler_file, env, log)
        for _ in range(2)
    ]
    try:
        yield shared, scheduler_file, env
    finally:
        for proc in reversed(procs):  # only the processes this fixture started
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def test_cluster_job_runs_as_written_on_local_scheduler_and_workers(dask_cluster):
    shared, scheduler_file, env = dask_cluster
    adata = _screen(shared / "screen.zarr")
    out = shared / "pb.csv"
    run = subprocess.run(
        [sys.executable, "-m", "helpers.scale.cluster_job", str(scheduler_file),
         str(shared / "screen.zarr"), str(out), "--workers", "2", "--counts",
         "--chunk-rows", "1000"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    got = pd.read_csv(out, index_col=0)
    expected = _oracle(adata)
    assert sorted(got.index) == sorted(expected.index)
    diff = got.loc[expected.index, expected.columns].to_numpy() - expected.to_numpy()
    assert np.abs(diff).max() <= 1e-5
    counts = adata.obs["condition"].value_counts()
    assert (got["n_cells"] == counts.loc[got.index]).all()
    # the codes went to the shared folder, not into the graph
    assert list(shared.glob("codes-*.npy"))
    # the book's CLI against the same scheduler, codes on the shared folder
    import json

    address = json.loads(scheduler_file.read_text())["address"]
    cli_out = shared / "cli.csv"
    run = subprocess.run(
        [sys.executable, "-m", "helpers.scale", "pseudobulk",
         str(shared / "screen.zarr"), "--by", "condition", "--counts",
         "--scheduler", address, "--codes-dir", str(shared), "--out", str(cli_out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(cli_out, index_col=0), got)


def test_cluster_job_waits_for_workers_and_keeps_codes_out_of_the_graph(dask_cluster):
    shared, scheduler_file, _ = dask_cluster
    adata = _screen(shared / "screen.zarr")
    plan = cluster_job.run(
        str(scheduler_file),
        str(shared / "screen.zarr"),
        str(shared / "pb.csv"),
        2,
        chunk_rows=1_000,
    )
    sizes = graph_bytes(plan)
    # a block task carries a CodesSlice (a path and two ints), not 4 bytes per cell
    screen = open_store(shared / "screen.zarr", chunk_rows=1_000)
    embedded = plan_pseudobulk(screen, "condition")
    assert graph_bytes(embedded)["total"] > sizes["total"] + 4 * N_CELLS * 0.9
    assert sizes["largest"] < 4_000
    slices = [
        a
        for task in plan.graph.values()
        for a in getattr(task, "args", ())
        if isinstance(a, CodesSlice)
    ]
    assert len(slices) == plan.n_blocks == 6
    assert sum(s.stop - s.start for s in slices) == adata.n_obs
    # waiting for more workers than there are ends in one line, not a hang
    run = subprocess.run(
        [sys.executable, "-m", "helpers.scale.cluster_job", str(scheduler_file),
         str(shared / "screen.zarr"), str(shared / "x.csv"), "--workers", "3",
         "--timeout", "5"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode != 0 and not (shared / "x.csv").exists()


def test_local_client_closes_its_cluster():
    from helpers.scale.cluster import local_client

    with local_client(1) as client:
        cluster = client.cluster
        assert len(client.scheduler_info()["workers"]) == 1
    assert cluster.status.name == "closed"
