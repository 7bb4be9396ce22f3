"""Chapter 10's cost model (helpers/scale/costs.py) and Tahoe's non-zeros per cell.

Oracles: a hand-written benchmark report and hand-computed costs, the report's own
printed ratio column, a Monte-Carlo count of distinct groups, and pyarrow's list
lengths."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.scale import costs
from helpers.scale.screen import ScaleError
from helpers.scale.tahoe import nnz_per_cell, write_tahoe_standin

REPORT = """\
bench_scale.py  python 3.11.7  2 cores  load average at start 1.5 (shared machine)
SYNTHETIC screens: 5,000 genes, ~500 reads/cell, 200 conditions, h5ad CSR counts, \
blocks of 20,000 cells; mean of X as stored; page cache warm; median of 5 runs
  cells nonzeros  dask_2w_s  dask_2w_reduce_s  dask_2w_peak_gib
 100000 10.00 M      0.30              0.20              0.40
 200000 20.00 M      0.50              0.30              0.41
 400000 40.00 M      0.90              0.50              0.43
extrapolated linearly in non-zeros from the largest run:
  Tahoe-100M at 393 nnz/cell 3.955497e+10        0.08                0.00
"""


def test_read_bench_scale_parses_a_hand_written_report(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text(REPORT)
    table = costs.read_bench_scale(path)
    assert table["cells"].tolist() == [100_000, 200_000, 400_000]
    assert table["nonzeros"].tolist() == [10e6, 20e6, 40e6]
    assert table["dask_2w_reduce_s"].tolist() == [0.2, 0.3, 0.5]
    assert table.attrs["genes"] == 5_000 and table.attrs["chunk_rows"] == 20_000
    assert table.attrs["reads_per_cell"] == 500 and table.attrs["repeat"] == 5
    rates = costs.measured_rates(table)
    # reduce core-s = 2 x (0.1 + 1e-8 nnz): slope 20 core-ns per non-zero, by hand
    assert rates["compute_ns_per_nnz"] == pytest.approx(20.0)
    assert rates["compute_intercept_s"] == pytest.approx(0.2)
    # open = total - reduce = 0.1, 0.2, 0.4 s for 1, 2, 4 x 1e5 cells: 1,000 ns/cell
    assert rates["obs_ns_per_cell"] == pytest.approx(1_000.0)
    assert rates["whole_call_ns_per_nnz"] == pytest.approx(0.9 * 2 / 40e6 * 1e9)
    assert rates["cells_ratio"] == 4 and rates["peak_ratio"] == pytest.approx(
        0.43 / 0.4
    )


def test_the_committed_report_agrees_with_its_own_ratio_column():
    table = costs.read_bench_scale()  # benchmarks/results/bench_scale.txt
    assert len(table) >= 2 and table["cells"].is_monotonic_increasing
    # ns_per_nnz_2w is printed by bench_scale.py from two other printed columns
    ratio = table["dask_2w_s"] * 2 / table["nonzeros"] * 1e9
    assert np.allclose(ratio, table["ns_per_nnz_2w"], atol=0.1)
    rates = costs.measured_rates(table)
    assert rates["whole_call_ns_per_nnz"] == pytest.approx(
        table["ns_per_nnz_2w"].iloc[-1], abs=0.05
    )
    assert 0 < rates["compute_ns_per_nnz"] < rates["whole_call_ns_per_nnz"]


def test_damaged_reports_fail_in_one_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(REPORT.replace("0.50              0.30", "0.50  oops  0.30"))
    with pytest.raises(ScaleError, match=r"line 5: 'oops' is not a number"):
        costs.read_bench_scale(bad)
    short = tmp_path / "short.txt"
    short.write_text(REPORT.replace("0.43\n", "\n"))
    with pytest.raises(ScaleError, match="line 6: 4 values for 5 columns"):
        costs.read_bench_scale(short)
    other = tmp_path / "other.txt"
    other.write_text("hello\n")
    with pytest.raises(ScaleError, match="not a bench_scale.py report"):
        costs.read_bench_scale(other)
    with pytest.raises(ScaleError, match="cannot read the benchmark report"):
        costs.read_bench_scale(tmp_path / "missing.txt")


def test_groups_per_block_matches_a_monte_carlo_count():
    rng = np.random.default_rng(1)
    counts = [len(np.unique(rng.integers(0, 9_867, size=5_000))) for _ in range(200)]
    expected = costs.groups_per_block(9_867, 5_000)
    assert abs(np.mean(counts) - expected) < 3 * np.std(counts) / np.sqrt(200) + 1
    assert 3_800 < expected < 4_100  # "about 4,000 groups per 5,000-cell block"
    assert costs.groups_per_block(10, 1_000) == pytest.approx(10, abs=1e-6)


def test_merge_tree_levels_by_hand():
    tree = costs.merge_tree(1_989_578, 5_000, 9_867, n_genes=8_248, split_every=2)
    assert tree["nodes"].tolist() == [398, 199, 100, 50, 25, 13, 7, 4, 2, 1]
    assert tree["bytes_per_partial"].iloc[-1] == pytest.approx(9_867 * 8_248 * 8)
    sorted_tree = costs.merge_tree(
        1_000, 100, 50, n_genes=10, split_every=4, layout="sorted", groups_in_block=2
    )
    assert sorted_tree["nodes"].tolist() == [10, 3, 1]
    assert sorted_tree["groups_per_partial"].tolist() == [2, 8, 32]
    with pytest.raises(ScaleError, match="needs groups_in_block"):
        costs.merge_tree(1_000, 100, 50, n_genes=10, layout="sorted")


def test_atlas_costs_by_hand():
    rates = {
        "compute_ns_per_nnz": 5.0,
        "normalise_ns_per_nnz": 5.0,
        "dense_ns_per_element": 1.0,
        "obs_ns_per_cell": 200.0,
        "merge_ns_per_element": 1.0,
    }
    target = {
        "cells": 1e6,
        "genes": 100,
        "groups": 1,
        "block_cells": 5e5,
        "bytes": 2e9,
        "nonzeros": 1e9,
        "split_every": 2,
    }
    table = costs.atlas_costs(
        {"t": target},
        rates,
        workers=10,
        assumptions={
            "read_gb_per_s_per_worker": 0.2,
            "read_gb_per_s_total": 1.0,
            "network_gb_per_s_per_worker": 1.0,
        },
    ).set_index("part")
    assert table.loc["compute", "basis"] == "measured"
    assert table.loc["compute", "core_hours"] * 3600 == pytest.approx(1e9 * 10e-9)
    assert table.loc["compute", "hours_on_10"] * 3600 == pytest.approx(1.0)
    assert table.loc["I/O", "basis"] == "estimated"
    assert table.loc["I/O", "core_hours"] * 3600 == pytest.approx(10.0)
    assert table.loc["I/O", "hours_on_10"] * 3600 == pytest.approx(2.0)  # 1 GB/s cap
    assert table.loc["obs (serial)", "hours_on_10"] * 3600 == pytest.approx(0.2)
    # 2 leaf partials of 1 group x 100 genes x 8 bytes, each sent (1 GB/s) and added
    # (1 ns per element) once
    per = 800 / 1e9 + 100 * 1e-9
    assert table.loc["merge", "core_hours"] * 3600 == pytest.approx(2 * per)
    dense = dict(target, elements=5e8)
    del dense["nonzeros"]
    d = costs.atlas_costs({"d": dense}, rates).set_index("part")
    # 5e8 elements x 1 ns = 0.5 s
    assert d.loc["compute", "core_hours"] * 3600 == pytest.approx(0.5)
    assert "decode" not in d.index
    parquet = costs.atlas_costs({"p": dict(target, decode_ns_per_nnz=3.0)}, rates)
    decode = parquet.set_index("part").loc["decode"]
    assert decode["basis"] == "measured"
    assert decode["core_hours"] * 3600 == pytest.approx(1e9 * 3e-9)
    with pytest.raises(ScaleError, match="exactly one of 'nonzeros'"):
        costs.atlas_costs({"x": dict(target, elements=1.0)}, rates)
    with pytest.raises(ScaleError, match="must be a positive number"):
        costs.atlas_costs({"t": target}, rates, assumptions={"read_gb_per_s_total": 0})


def test_time_block_and_merge_rates():
    rng = np.random.default_rng(0)
    block = sp.random(500, 50, density=0.1, format="csr", random_state=1) * 10
    codes = rng.integers(0, 5, size=500)
    assert costs.time_block(block.ceil(), codes, counts=True) > 0
    assert costs.time_block(block.toarray(), codes, counts=False) > 0
    with pytest.raises(ScaleError, match="500 rows but 499 codes"):
        costs.time_block(block, codes[:-1], counts=False)
    assert costs.time_merge(50, 50, repeat=1) > 0
    rates = costs.kernel_rates(block.ceil(), codes, dense_rows=100, repeat=1)
    assert list(rates.index) == [
        "kernel_ns_per_nnz",
        "normalise_ns_per_nnz",
        "dense_ns_per_element",
        "merge_ns_per_element",
    ]
    assert (rates >= 0).all() and rates["kernel_ns_per_nnz"] > 0
    with pytest.raises(ScaleError, match="repeat must be at least 1"):
        costs.kernel_rates(block, codes, repeat=0)


def test_tahoe_nnz_per_cell_from_the_list_offsets(tmp_path):
    import pyarrow.parquet as pq

    folder = write_tahoe_standin(
        tmp_path / "t", n_cells=900, n_genes=60, n_shards=2, row_group_size=200
    )
    got = nnz_per_cell(folder)
    lengths = np.concatenate(
        [
            pq.read_table(p, columns=["genes"]).to_pandas()["genes"].map(len)
            for p in sorted((folder / "data").glob("*.parquet"))
        ]
    )
    assert got["cells"] == len(lengths)
    assert got["nonzeros"] == (lengths - 1).sum()  # one marker entry per cell
    assert got["mean"] == pytest.approx((lengths - 1).mean())
    assert got["max"] == (lengths - 1).max()
    first = nnz_per_cell(folder, max_row_groups=1)
    assert first["row_groups"] == 1 and first["cells"] == 200
    assert first["nonzeros"] == (lengths[:200] - 1).sum()
    with pytest.raises(ScaleError, match="no parquet shards"):
        nnz_per_cell(tmp_path)


def test_tahoe_graph_holds_the_gene_lookup_once_and_no_codes(tmp_path):
    from helpers.scale import plan_pseudobulk
    from helpers.scale.reduce import graph_bytes
    from helpers.scale.tahoe import open_tahoe

    folder = write_tahoe_standin(
        tmp_path / "t", n_cells=2_000, n_genes=2_000, n_shards=2, row_group_size=200
    )
    screen = open_tahoe(folder)
    n_blocks = screen.X.numblocks[0]
    assert n_blocks == 10
    # the token -> gene lookup: (largest token + 1) int64 entries
    lookup_bytes = 8 * (int(pd.read_parquet(folder / "metadata/gene_metadata.parquet")
                            ["token_id"].max()) + 1)  # fmt: skip
    plan = plan_pseudobulk(screen, "drug", codes_dir=tmp_path)
    sizes = graph_bytes(plan)
    # one copy of the lookup, not one per row group
    assert lookup_bytes <= sizes["total"] < lookup_bytes + 3_000 * n_blocks
