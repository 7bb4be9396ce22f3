"""helpers.scale: the Dask pseudobulk equals the book's in-memory one over every layout.

Oracles: helpers.pseudobulk.pseudobulk on the AnnData in memory (itself checked against
scanpy.get.aggregate in tests/unit/test_pseudobulk.py) and, for ``counts=True``,
scanpy's own normalize_total(target_sum=1e4) + log1p before it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import anndata as ad
import dask
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

from helpers.pseudobulk import pseudobulk as pseudobulk_in_memory
from helpers.scale import (
    ScaleError,
    group_means,
    open_store,
    plan_pseudobulk,
    pseudobulk,
)
from helpers.scale.cli import main
from helpers.scale.standins import GWPS, write_replogle_gwps_standin

ROOT = Path(__file__).resolve().parents[2]
N_CELLS, N_GENES = 1_100, 60


def _counts(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(
        N_CELLS,
        N_GENES,
        density=0.15,
        format="csr",
        random_state=seed,
        dtype=np.float32,
    )
    X.data = np.floor(X.data * 20).astype(np.float32) + 1
    X[5] = 0  # a cell without counts stays zero after normalisation
    return sp.csr_matrix(X) if rng is not None else X


def _adata(*, log: bool, dense: bool, shuffled: bool, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    conditions = np.array(["ctrl"] + [f"G{i}" for i in range(1, 12)])
    codes = np.sort(rng.integers(0, len(conditions), N_CELLS))
    if shuffled:
        codes = rng.permutation(codes)
    X = _counts(seed)
    if log:
        a = ad.AnnData(X.copy())
        sc.pp.normalize_total(a, target_sum=1e4)
        sc.pp.log1p(a)
        X = sp.csr_matrix(a.X, dtype=np.float32)
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(conditions[codes]),
            "plate": rng.choice(["p1", "p2", "p3"], N_CELLS),
        },
        index=[f"c{i}" for i in range(N_CELLS)],
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(N_GENES)])
    return ad.AnnData(X.toarray() if dense else X, obs=obs, var=var)


def _write(adata: ad.AnnData, path: Path) -> Path:
    if path.suffix == ".zarr":
        with ad.settings.override(zarr_write_format=3):
            adata.write_zarr(path)
    else:
        adata.write_h5ad(path)
    return path


def _oracle(adata: ad.AnnData, counts: bool, by="condition") -> pd.DataFrame:
    adata = adata.copy()
    if counts:  # scanpy's own normalisation, then the book's in-memory pseudobulk
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
    return pseudobulk_in_memory(adata, by=by).means


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("counts", [True, False])
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("uneven", [False, True])
def test_dask_pseudobulk_equals_in_memory(
    tmp_path, suffix, dense, counts, shuffled, uneven
):
    adata = _adata(log=not counts, dense=dense, shuffled=shuffled)
    store = _write(adata, tmp_path / f"screen{suffix}")
    boundaries = [37, 400, 401, 999] if uneven else None
    screen = open_store(store, chunk_rows=150, boundaries=boundaries)
    assert screen.sparse is not dense
    if uneven:
        assert len(set(screen.X.chunks[0])) > 2 and 1 in screen.X.chunks[0]
    result = group_means(screen, "condition", counts=counts, scheduler="threads")
    expected = _oracle(adata, counts)
    got = result.means.loc[expected.index, expected.columns]
    assert np.abs(got.to_numpy() - expected.to_numpy()).max() <= 1e-6
    assert (
        result.n_cells.loc[expected.index].tolist()
        == adata.obs["condition"].value_counts().loc[expected.index].tolist()
    )


def test_several_by_columns_and_gene_subset(tmp_path):
    adata = _adata(log=False, dense=False, shuffled=True)
    screen = open_store(_write(adata, tmp_path / "s.zarr"), chunk_rows=200)
    genes = ["g3", "g0", "g41"]
    result = group_means(
        screen, ["condition", "plate"], counts=True, genes=genes, scheduler="sync"
    )
    label = adata.obs["condition"].astype(str) + "|" + adata.obs["plate"].astype(str)
    adata.obs["both"] = pd.Categorical(label)
    sc.pp.normalize_total(adata, target_sum=1e4)  # over ALL genes, then the subset
    sc.pp.log1p(adata)
    agg = sc.get.aggregate(adata, by="both", func="mean")  # scanpy as the oracle
    expected = pd.DataFrame(
        agg.layers["mean"], index=agg.obs_names, columns=agg.var_names
    )[genes]
    assert list(result.means.columns) == genes
    assert (
        np.abs(result.means.loc[expected.index].to_numpy() - expected.to_numpy()).max()
        <= 1e-6
    )


@pytest.mark.parametrize(
    "categories", [["ctrl", "B", "a", "10", "9", "unused"], [3, 1, 2, 10, 99]]
)
def test_categorical_groups_match_their_string_labels(tmp_path, categories):
    """The categorical fast path of the group codes (stored codes renumbered) gives
    the groups, order and means that the string labels give; unused categories are
    dropped, numbers are labelled and sorted as strings (scanpy as the oracle)."""
    adata = _adata(log=True, dense=False, shuffled=True)
    rng = np.random.default_rng(3)
    values = rng.choice(categories[:-1], adata.n_obs)
    adata.obs["grp"] = pd.Categorical(values, categories=categories)
    screen = open_store(_write(adata, tmp_path / "s.h5ad"), chunk_rows=150)
    assert isinstance(screen.obs["grp"].dtype, pd.CategoricalDtype)
    result = group_means(screen, "grp", scheduler="sync")
    as_text = adata.copy()
    as_text.obs["grp"] = pd.Categorical(values.astype(str))
    agg = sc.get.aggregate(as_text, by="grp", func="mean")
    expected = pd.DataFrame(
        agg.layers["mean"], index=agg.obs_names, columns=agg.var_names
    )
    assert list(result.means.index) == sorted(str(c) for c in categories[:-1])
    assert (
        np.abs(
            result.means.to_numpy() - expected.loc[result.means.index].to_numpy()
        ).max()
        <= 1e-6
    )
    strings = screen.obs.assign(grp=screen.obs["grp"].astype(str))
    from dataclasses import replace

    slow = group_means(replace(screen, obs=strings), "grp", scheduler="sync")
    pd.testing.assert_frame_equal(result.means, slow.means)
    pd.testing.assert_series_equal(result.n_cells, slow.n_cells)


def test_processes_on_a_two_worker_local_cluster(tmp_path):
    from helpers.scale.cluster import local_client, worker_memory

    adata = _adata(log=False, dense=False, shuffled=True)
    h5 = _write(adata, tmp_path / "s.h5ad")
    dense = _write(_adata(log=False, dense=True, shuffled=False), tmp_path / "d.zarr")
    client = local_client(2)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        for store, data in ((h5, adata), (dense, None)):
            data = data if data is not None else ad.read_zarr(store)
            result = group_means(
                open_store(store, chunk_rows=128), "condition", counts=True
            )
            expected = _oracle(data, True)
            assert (
                np.abs(
                    result.means.loc[expected.index].to_numpy() - expected.to_numpy()
                ).max()
                <= 1e-6
            )
        memory = worker_memory(client)
        assert len(memory) == 2 and all(m > 10 * 2**20 for m in memory.values())
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def test_no_task_receives_every_block(tmp_path):
    screen = open_store(
        _write(_adata(log=True, dense=False, shuffled=True), tmp_path / "s.zarr"),
        chunk_rows=50,
    )
    plan = plan_pseudobulk(screen, "condition", split_every=4)
    n_blocks = screen.X.numblocks[0]
    assert n_blocks == 22 and plan.n_partials() == n_blocks
    dsk = plan.graph
    blocks = plan.block_keys()
    assert blocks and blocks <= set(dsk)
    for key in dsk:
        deps = dask.core.get_dependencies(dsk, key)
        assert len(deps & blocks) <= 1  # a task reads at most one row block
        assert len(deps) <= 4 < n_blocks  # the tree's fan-in is split_every
    # the root depends on every block only through a tree of depth log4(22) = 3
    assert plan.fan_in().max() == 4


def test_pseudobulk_is_the_books_and_control_is_renamed(tmp_path):
    path = write_replogle_gwps_standin(
        tmp_path / "K562_gwps_raw_singlecell_01.h5ad",
        n_cells=900,
        n_genes=50,
        n_perturbations=6,
    )
    screen = open_store(path, chunk_rows=200)
    assert not screen.sparse and list(screen.obs.columns) == GWPS["obs"]
    pb = pseudobulk(
        screen, "gene", control=GWPS["control"], counts=True, scheduler="sync"
    )
    assert "ctrl" in pb.conditions and GWPS["control"] not in pb.conditions
    full = ad.read_h5ad(path)
    full.obs["condition"] = (
        full.obs["gene"].astype(str).replace({GWPS["control"]: "ctrl"})
    )
    expected = _oracle(full, True)
    assert (
        np.abs(pb.means.loc[expected.index].to_numpy() - expected.to_numpy()).max()
        <= 1e-6
    )
    assert pb.delta.loc["ctrl"].abs().max() == 0


# --------------------------------------------------------------------------------------
# ------
# command line: same numbers, one-line errors


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    counts = _adata(log=False, dense=False, shuffled=True)
    logged = _adata(log=True, dense=False, shuffled=True)
    return {
        "counts": _write(counts, folder / "counts.h5ad"),
        "log": _write(logged, folder / "log.zarr"),
        "adata": counts,
        "folder": folder,
    }


def _error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


def test_cli_writes_the_csv(stores, tmp_path):
    out = tmp_path / "pb.csv"
    genes = tmp_path / "genes.txt"
    genes.write_text("g1\ng7\n")
    assert (
        main(
            [
                "pseudobulk",
                str(stores["counts"]),
                "--by",
                "condition",
                "--out",
                str(out),
                "--counts",
                "--chunk-rows",
                "300",
                "--genes",
                str(genes),
            ]
        )
        == 0
    )
    table = pd.read_csv(out, index_col=0)
    assert list(table.columns) == ["g1", "g7", "n_cells"]
    expected = _oracle(stores["adata"], True)[["g1", "g7"]]
    assert (
        np.abs(
            table.loc[expected.index, ["g1", "g7"]].to_numpy() - expected.to_numpy()
        ).max()
        <= 1e-6
    )
    assert table["n_cells"].sum() == N_CELLS


def test_cli_unknown_by_column(stores, tmp_path, capsys):
    line = _error(
        capsys,
        [
            "pseudobulk",
            str(stores["counts"]),
            "--by",
            "drug",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert "obs has no column 'drug'" in line and "condition" in line
    assert not (tmp_path / "x.csv").exists()


def test_cli_counts_on_log_normalised_values(stores, tmp_path, capsys):
    line = _error(
        capsys,
        [
            "pseudobulk",
            str(stores["log"]),
            "--by",
            "condition",
            "--counts",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert "--counts needs raw counts" in line and "drop --counts" in line
    assert not (tmp_path / "x.csv").exists()


def test_cli_file_that_is_not_anndata(tmp_path, capsys):
    bogus = tmp_path / "table.h5ad"
    bogus.write_text("condition,g1\nctrl,1\n")
    line = _error(
        capsys,
        [
            "pseudobulk",
            str(bogus),
            "--by",
            "condition",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert "cannot be read as AnnData" in line and "not an HDF5 file" in line
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["numbers"] = np.arange(3)
    line = _error(
        capsys,
        [
            "pseudobulk",
            str(tmp_path / "plain.h5"),
            "--by",
            "condition",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert "not an AnnData .h5ad file" in line


def test_cli_unreachable_scheduler(stores, tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = _error(
        capsys,
        [
            "pseudobulk",
            str(stores["counts"]),
            "--by",
            "condition",
            "--out",
            str(tmp_path / "x.csv"),
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
        ],
    )
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in line


def test_cli_as_a_process_prints_no_traceback(stores, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.scale",
            "pseudobulk",
            str(stores["counts"]),
            "--by",
            "nope",
            "--out",
            str(tmp_path / "x.csv"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 1
    assert (
        "Traceback" not in run.stderr
        and "error: obs has no column 'nope'" in run.stderr
    )


def test_open_store_errors(tmp_path):
    with pytest.raises(ScaleError, match="does not exist"):
        open_store(tmp_path / "missing.h5ad")
    with pytest.raises(ScaleError, match="chunk-rows"):
        open_store(
            _write(_adata(log=True, dense=False, shuffled=False), tmp_path / "a.h5ad"),
            chunk_rows=0,
        )


# --------------------------------------------------------------------------------------
# ------
# Tahoe-100M parquet layout and the registry -> loader path


def _tahoe_oracle(folder: Path) -> ad.AnnData:
    """The shards read with pandas alone (explode the token lists), marker entries "
    "dropped."""
    cells = pd.read_parquet(folder / "data")
    genes = pd.read_parquet(folder / "metadata" / "gene_metadata.parquet")
    column = pd.Series(np.arange(len(genes)), index=genes["token_id"])
    long = (
        cells[["genes", "expressions"]]
        .reset_index(names="cell")
        .explode(["genes", "expressions"])
    )
    long = long[long["expressions"].astype(float) >= 0]
    X = sp.csr_matrix(
        (
            long["expressions"].astype(float),
            (
                long["cell"].astype(int),
                column.loc[long["genes"].astype(int)].to_numpy(),
            ),
        ),
        shape=(len(cells), len(genes)),
    )
    obs = cells[["drug", "cell_line_id", "plate"]].astype(str)
    return ad.AnnData(
        X,
        obs=obs.set_axis([str(i) for i in range(len(obs))]),
        var=pd.DataFrame(index=genes["ensembl_id"].astype(str)),
    )


def test_tahoe_layout_pseudobulk_by_cell_line_and_drug(tmp_path):
    from helpers.scale.loaders import load_tahoe
    from helpers.scale.tahoe import TAHOE, write_tahoe_standin

    folder = write_tahoe_standin(
        tmp_path / "tahoe",
        n_cells=3_000,
        n_genes=80,
        n_cell_lines=3,
        n_drugs=4,
        n_plates=2,
        n_shards=3,
        row_group_size=400,
    )
    first = pd.read_parquet(next((folder / "data").glob("*.parquet")))
    assert list(first.columns) == ["genes", "expressions"] + TAHOE["obs"]
    assert (
        first["genes"].map(lambda g: g[0]).eq(1).all()
        and first["expressions"].map(lambda e: e[0]).eq(-2).all()
    )
    screen = load_tahoe(folder)
    assert screen.X.numblocks[0] == sum(
        -(-len(pd.read_parquet(p)) // 400) for p in sorted((folder / "data").glob("*"))
    )
    result = group_means(
        screen, ["cell_line_id", "drug"], counts=True, scheduler="threads"
    )
    oracle = _tahoe_oracle(folder)
    sc.pp.normalize_total(oracle, target_sum=1e4)
    sc.pp.log1p(oracle)
    oracle.obs["group"] = (
        oracle.obs["cell_line_id"] + "|" + oracle.obs["drug"]
    ).astype("category")
    agg = sc.get.aggregate(oracle, by="group", func="mean")
    expected = pd.DataFrame(
        agg.layers["mean"], index=agg.obs_names, columns=agg.var_names
    )
    assert (
        np.abs(result.means.loc[expected.index].to_numpy() - expected.to_numpy()).max()
        <= 1e-6
    )
    pb = pseudobulk(
        screen, "condition", scheduler="threads", counts=True
    )  # drug, DMSO_TF -> ctrl
    assert "ctrl" in pb.conditions and TAHOE["control"] not in pb.conditions


def test_fetch_tahoe_through_the_registry_from_a_local_server(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading
    from dataclasses import replace

    from helpers import data
    from helpers.scale.loaders import fetch_tahoe, load_tahoe
    from helpers.scale.tahoe import write_tahoe_standin

    served = write_tahoe_standin(
        tmp_path / "hub", n_cells=600, n_genes=30, n_shards=2, row_group_size=200
    )
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(served)
    )
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    real = data.load_registry()
    local = dict(real)
    local["tahoe100m_gene_metadata"] = replace(
        real["tahoe100m_gene_metadata"], url=f"{base}/metadata/gene_metadata.parquet"
    )
    local["tahoe100m_shard"] = replace(
        real["tahoe100m_shard"],
        url=f"{base}/data/train-00000-of-00002.parquet",
        filename="tahoe100m_train-00000-of-00002.parquet",
    )
    monkeypatch.setattr(data, "load_registry", lambda *a, **k: local)
    monkeypatch.setattr(
        data, "get_entry", lambda name, registry=None: (registry or local)[name]
    )
    try:
        folder = fetch_tahoe(2, download=True, cache=tmp_path / "cache")
        screen = load_tahoe(folder)
        assert screen.n_obs == len(pd.read_parquet(served / "data"))
        assert (tmp_path / "cache" / "tahoe100m_train-00001-of-00002.parquet").exists()
    finally:
        server.shutdown()


def test_replogle_gwps_loader_maps_non_targeting_to_ctrl(tmp_path):
    from helpers.scale.loaders import load_replogle_gwps

    path = write_replogle_gwps_standin(
        tmp_path / "gw.h5ad", n_cells=500, n_genes=40, n_perturbations=5, dense=False
    )
    screen = load_replogle_gwps(path, chunk_rows=128)
    assert screen.sparse
    gene = screen.obs["gene"].astype(str)
    assert ((gene == "non-targeting") == (screen.obs["condition"] == "ctrl")).all()
    with pytest.raises(ScaleError, match="obs lacks"):
        load_replogle_gwps(
            _write(_adata(log=False, dense=False, shuffled=False), tmp_path / "x.h5ad")
        )


# --------------------------------------------------------------------------------------
# ------
# benchmark tasks on stand-ins seeded into a cache, scored by the existing CLI


def _score_with_cli(task_name: str, tmp_path: Path, capsys) -> str:
    from helpers.baselines import BASELINES
    from helpers.benchmark.cli import main as bench_main
    from helpers.benchmark.tasks import get_task

    task = get_task(task_name)
    rows = []
    for split in task.splits:
        pred = BASELINES["no_change"](
            task.training_data(split).pseudobulk, split.held_out, seed=split.seed
        )
        rows.append(pred.renamed("my_model").to_long())
    csv = tmp_path / f"{task_name}.csv"
    pd.concat(rows).to_csv(csv, index=False)
    assert (
        bench_main(
            [
                "--task",
                task_name,
                "--predictions",
                str(csv),
                "--no-extras",
                "--out",
                str(tmp_path / task_name),
            ]
        )
        == 0
    )
    return capsys.readouterr().out


def test_atlas_tasks_score_with_the_benchmark_cli(tmp_path, monkeypatch, capsys):
    from helpers import data, standins
    from helpers.benchmark import tasks
    from helpers.scale.tahoe import write_tahoe_standin

    source = tmp_path / "source"
    standins.write_standins(
        source, scale="small", datasets=("replogle_rpe1_essential",)
    )
    rpe1 = standins.SCALES["small"]["replogle_rpe1_essential"]
    shared = [
        c.split("+")[0]
        for c in standins.single_conditions(
            "replogle_rpe1_essential", rpe1["n_singles"]
        )
        if c != "ctrl"
    ]
    write_replogle_gwps_standin(
        source / "K562_gwps_raw_singlecell_01.h5ad",
        n_cells=3_000,
        n_genes=120,
        n_perturbations=40,
        targets=shared,
    )
    folder = write_tahoe_standin(
        tmp_path / "tahoe",
        n_cells=2_400,
        n_genes=60,
        n_cell_lines=3,
        n_drugs=4,
        n_plates=1,
        n_shards=1,
        row_group_size=500,
    )
    (folder / "data" / "train-00000-of-00001.parquet").rename(
        source / "train-00000-of-03388.parquet"
    )
    (folder / "metadata" / "gene_metadata.parquet").rename(
        source / "gene_metadata.parquet"
    )
    cache = tmp_path / "cache"
    data.seed_cache(source, cache=cache)
    monkeypatch.setenv(data.CACHE_ENV, str(cache))
    for name in ("replogle_k562_gwps_singles", "tahoe_heldout_cell_line"):
        tasks.TASKS[name].__dict__.pop("_loaded", None)
        tasks.TASKS[name].__dict__.pop("truth", None)
        tasks.TASKS[name].__dict__.pop("splits", None)
    out = _score_with_cli("replogle_k562_gwps_singles", tmp_path, capsys)
    assert "my_model" in out and "mean" in out and "linear" in out
    out = _score_with_cli("tahoe_heldout_cell_line", tmp_path, capsys)
    assert "my_model" in out and "other_lines_mean" in out and "no_change" in out
    truth = tasks.TASKS["tahoe_heldout_cell_line"].truth
    assert truth.dataset == "tahoe100m_CVCL_1000" and set(truth.conditions) == {
        "ctrl",
        "Drug01",
        "Drug02",
        "Drug03",
        "Drug04",
    }
    for name in ("replogle_k562_gwps_singles", "tahoe_heldout_cell_line"):
        for attr in ("_loaded", "truth", "splits"):
            tasks.TASKS[name].__dict__.pop(attr, None)


def test_bench_scale_small_mode_runs(tmp_path):
    out = tmp_path / "bench.txt"
    run = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_scale.py",
            "--small",
            "--workdir",
            str(tmp_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = out.read_text()
    assert (
        "SYNTHETIC screens" in report
        and "dask_2w_peak_gib" in report
        and "Tahoe-100M" in report
    )


def test_blocks_never_span_partitions_and_partials_stay_small(tmp_path):
    adata = _adata(
        log=True, dense=False, shuffled=False
    )  # cells stored condition by condition
    adata.obs["plate"] = pd.Categorical(
        np.where(np.arange(N_CELLS) < 470, "plate1", "plate2")
    )
    screen = open_store(
        _write(adata, tmp_path / "p.h5ad"), chunk_rows=200, partition_by="condition"
    )
    starts = np.concatenate([[0], np.cumsum(screen.X.chunks[0])[:-1]])
    labels = adata.obs["condition"].astype(str).to_numpy()
    for s, n in zip(starts, screen.X.chunks[0]):
        assert len(set(labels[s : s + n])) == 1  # one condition per block
    plan = plan_pseudobulk(screen, "condition")
    dsk = plan.graph
    partials = [k for k in dsk if str(k).startswith("_block_partial-")]
    ids, sums, n = dask.get(dsk, partials[0])
    assert len(ids) == 1 and sums.shape == (1, N_GENES)
    expected = _oracle(adata, False)
    got = plan.compute(scheduler="threads").means.loc[expected.index]
    assert np.abs(got.to_numpy() - expected.to_numpy()).max() <= 1e-6
    with pytest.raises(ScaleError, match="no column 'lane' to partition by"):
        open_store(tmp_path / "p.h5ad", partition_by="lane")
