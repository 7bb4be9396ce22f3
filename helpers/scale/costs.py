"""What an atlas-scale pseudobulk costs, from measured rates (chapter 10).

The costs are split into parts, each labelled with where its rate comes from:

* **compute** (the per-block task: read from the page cache, normalise, sum per
  group): the rate measured by ``benchmarks/bench_scale.py`` (:func:`read_bench_scale`,
  :func:`measured_rates`: the slope of the 2-worker reduction's core-seconds over
  non-zeros, sparse CSR, mean of X as stored) plus what normalising adds per non-zero;
  for a dense file, the per-element rate of a dense block; both measured by
  :func:`kernel_rates` on one block in this process;
* **decode** (Tahoe's parquet lists into CSR): :func:`time_tahoe_decode` on a
  stand-in;
* **I/O** (reading the stored bytes): bytes on disk / a read bandwidth that is an
  *assumption* (:data:`ASSUMPTIONS`), never measured here (the benchmark reads from a
  warm page cache);
* **obs** (group labels, read serially by the client before anything runs): the
  benchmark's open time per cell (h5ad), measured, applied to the target's cells;
* **merge** (adding the partials in the tree): bytes moved and elements added, from a
  closed form of the groups a partial holds (:func:`groups_per_block`), a network
  bandwidth that is an assumption, and an add rate measured by :func:`time_merge`.

Every rate is a parameter: give your own (a filesystem's streaming read, a network's
bandwidth) and the table changes with it.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .screen import ScaleError

__all__ = [
    "BENCH_SCALE",
    "ASSUMPTIONS",
    "read_bench_scale",
    "measured_rates",
    "groups_per_block",
    "merge_tree",
    "time_block",
    "time_merge",
    "kernel_rates",
    "atlas_costs",
    "time_tahoe_decode",
    "atlas_targets",
    "stored_bytes",
]

BENCH_SCALE = Path(__file__).resolve().parents[2] / "benchmarks/results/bench_scale.txt"

# Rates this machine cannot measure: (value, where it comes from). Change them to your
# cluster's.
ASSUMPTIONS = {
    "read_gb_per_s_per_worker": (
        0.2,
        "assumed: one worker's streaming read from a shared (network) filesystem; "
        "measure yours with dd if=FILE of=/dev/null bs=64M",
    ),
    "read_gb_per_s_total": (
        5.0,
        "assumed: the shared filesystem's aggregate read ceiling",
    ),
    "network_gb_per_s_per_worker": (
        1.25,
        "assumed: 10 Gbit/s Ethernet between workers (merges move partials)",
    ),
}

_UNITS = {"k": 1e3, "M": 1e6, "G": 1e9}


def read_bench_scale(path=None) -> pd.DataFrame:
    """The measurement table of ``bench_scale.py``'s report (one row per screen size).

    Values such as ``100.04 M`` become numbers; ``attrs`` holds the settings from the
    report's header (``genes``, ``reads_per_cell``, ``conditions``, ``chunk_rows``,
    ``repeat``) and ``path``. Raises :class:`ScaleError` naming the line when the report
    is not one.
    """
    path = Path(path or BENCH_SCALE)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise ScaleError(
            f"cannot read the benchmark report {path} ({err.strerror}); run "
            "python benchmarks/bench_scale.py --out FILE first."
        ) from None
    attrs = {"path": str(path)}
    setting = re.compile(
        r"SYNTHETIC screens: ([\d,]+) genes, ~(\d+) reads/cell, (\d+) conditions, .*"
        r"blocks of ([\d,]+) cells.*median of (\d+) runs"
    )
    header_at = None
    for i, line in enumerate(lines):
        found = setting.match(line.strip())
        if found:
            keys = ("genes", "reads_per_cell", "conditions", "chunk_rows", "repeat")
            attrs.update(
                {k: int(v.replace(",", "")) for k, v in zip(keys, found.groups())}
            )
        if line.split()[:2] == ["cells", "nonzeros"]:
            header_at = i
            break
    if header_at is None or "genes" not in attrs:
        raise ScaleError(
            f"{path} is not a bench_scale.py report (no 'SYNTHETIC screens:' line "
            "followed by a table whose header starts 'cells nonzeros')."
        )
    columns = lines[header_at].split()
    rows = []
    for number, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        tokens = line.split()
        if not tokens or not re.fullmatch(r"\d+", tokens[0]):
            break  # the table ends where a line does not start with a cell count
        values = []
        for token in tokens:
            if token in _UNITS and values:
                values[-1] *= _UNITS[token]
                continue
            try:
                values.append(float(token))
            except ValueError:
                raise ScaleError(
                    f"{path} line {number}: {token!r} is not a number; the table "
                    "is damaged (re-run bench_scale.py)."
                ) from None
        if len(values) != len(columns):
            raise ScaleError(
                f"{path} line {number}: {len(values)} values for {len(columns)} "
                "columns; the table is damaged (re-run bench_scale.py)."
            )
        rows.append(values)
    if not rows:
        raise ScaleError(f"{path}: the table has a header but no rows.")
    table = pd.DataFrame(rows, columns=columns)
    table["cells"] = table["cells"].astype(int)
    table.attrs.update(attrs)
    return table


def _slope(x, y) -> tuple[float, float]:
    """Least-squares slope and intercept of y on x."""
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(slope), float(intercept)


def measured_rates(table: pd.DataFrame, workers: int = 2) -> pd.Series:
    """Rates from the benchmark's table (every size, ``workers``-worker columns):

    * ``compute_ns_per_nnz``: slope of the reduction's core-seconds
      (``dask_{w}w_reduce_s`` x workers) over non-zeros, in core-nanoseconds;
    * ``compute_intercept_s``: that fit's intercept (fixed cost of a run, core-s);
    * ``whole_call_ns_per_nnz``: the report's own ``ns_per_nnz_2w`` of the largest run
      (the open included; what the report prints);
    * ``obs_ns_per_cell``: slope of the open (``dask_{w}w_s - dask_{w}w_reduce_s``, obs
      read serially by the client) over cells;
    * ``peak_gib_per_worker``: the largest peak memory of a worker;
    * ``cells_ratio``: largest / smallest number of cells measured;
    * ``peak_ratio``: peak memory per worker at the largest / at the smallest size.

    ``table``: the benchmark's table (benchmarks/bench_scale.py).
    """
    need = [f"dask_{workers}w_s", f"dask_{workers}w_reduce_s"]
    need += [f"dask_{workers}w_peak_gib", "nonzeros", "cells"]
    missing = [c for c in need if c not in table]
    if missing:
        raise ScaleError(
            f"the benchmark table lacks {missing}; is it bench_scale.py's with "
            f"{workers} workers?"
        )
    if len(table) < 2:
        raise ScaleError("the benchmark table needs at least two sizes to fit a rate.")
    t = table.sort_values("cells")
    core_s = t[f"dask_{workers}w_reduce_s"] * workers
    slope, intercept = _slope(t["nonzeros"], core_s)
    obs_slope, _ = _slope(t["cells"], t[f"dask_{workers}w_s"] - core_s / workers)
    last = t.iloc[-1]
    peak = t[f"dask_{workers}w_peak_gib"]
    return pd.Series(
        {
            "compute_ns_per_nnz": slope * 1e9,
            "compute_intercept_s": intercept,
            "whole_call_ns_per_nnz": last[f"dask_{workers}w_s"]
            * workers
            / last["nonzeros"]
            * 1e9,
            "obs_ns_per_cell": obs_slope * 1e9,
            "peak_gib_per_worker": float(peak.max()),
            "cells_ratio": float(t["cells"].iloc[-1] / t["cells"].iloc[0]),
            "peak_ratio": float(peak.iloc[-1] / peak.iloc[0]),
        }
    )


def groups_per_block(n_groups: int, block_cells: float, layout: str = "shuffled"):
    """Expected number of distinct groups among ``block_cells`` cells.

    ``shuffled``: cells in random order, groups of equal size, so a group is absent
    from a block with probability ``(1 - 1/G) ** cells``:
    ``G * (1 - (1 - 1/G) ** cells)``. ``sorted``: cells stored group by group, so a
    block holds ``cells / (cells per group) + 1`` groups at most (``n_groups`` is then
    the groups of the whole screen and the screen's cells must be given as
    ``block_cells * n_blocks``; use :func:`merge_tree` for that).
    """
    if n_groups < 1 or block_cells < 0:
        raise ScaleError("n_groups must be >= 1 and block_cells >= 0.")
    if layout != "shuffled":
        raise ScaleError(f"layout {layout!r}: groups_per_block knows 'shuffled' only.")
    return n_groups * (1.0 - (1.0 - 1.0 / n_groups) ** block_cells)


def merge_tree(
    n_cells: float,
    block_cells: float,
    n_groups: int,
    *,
    n_genes: int,
    split_every: int = 4,
    layout: str = "shuffled",
    groups_in_block: float | None = None,
) -> pd.DataFrame:
    """The reduction tree level by level: nodes, cells under a node, groups a node's
    partial holds and its bytes (groups x genes x 8, float64 sums).

    ``n_cells`` cells are read in blocks of ``block_cells``; their ``n_groups``
    pseudobulk groups over ``n_genes`` genes are summed in a tree in which each node
    adds ``split_every`` partials (dask's ``split_every``). ``layout``: ``shuffled``
    (groups spread at random: :func:`groups_per_block` of the cells under the node) or
    ``sorted`` (cells stored group by group or partition by partition: a node holds
    ``groups_in_block`` groups per block under it, at most ``n_groups``). Level 0 is the
    per-block partials; the last level is the root.
    """
    if split_every < 2:
        raise ScaleError("split_every must be at least 2.")
    if layout not in ("shuffled", "sorted"):
        raise ScaleError(f"layout must be 'shuffled' or 'sorted', got {layout!r}.")
    if layout == "sorted" and groups_in_block is None:
        raise ScaleError("layout='sorted' needs groups_in_block (groups in one block).")
    nodes, blocks_under, rows = math.ceil(n_cells / block_cells), 1, []
    while True:
        cells = min(n_cells, blocks_under * block_cells)
        if layout == "shuffled":
            groups = groups_per_block(n_groups, cells)
        else:
            groups = min(float(n_groups), groups_in_block * blocks_under)
        rows.append(
            {
                "level": len(rows),
                "nodes": nodes,
                "cells_under_node": cells,
                "groups_per_partial": groups,
                "bytes_per_partial": groups * n_genes * 8.0,
            }
        )
        if nodes == 1:
            return pd.DataFrame(rows)
        nodes, blocks_under = math.ceil(nodes / split_every), blocks_under * split_every


def _best_time(fn, repeat: int) -> float:
    """Fastest of ``repeat`` runs: the one least slowed by other jobs on the machine
    (the convention of Python's ``timeit``)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(min(times))


def time_block(block, codes, *, counts: bool, repeat: int = 3) -> float:
    """Seconds of the reduction's per-block task (:mod:`helpers.scale.reduce`) on
    ``block`` (CSR or dense) with group ``codes``, in this process: the fastest of
    ``repeat`` runs."""
    from .reduce import TARGET_SUM, _block_partial

    codes = np.asarray(codes)
    if block.shape[0] != len(codes):
        raise ScaleError(
            f"block has {block.shape[0]} rows but {len(codes)} codes; give one code "
            "per row."
        )
    if sp.issparse(block):
        block = sp.csr_matrix(block)
    _block_partial(block[:2], codes[:2], 0, counts, TARGET_SUM, None)  # compile
    return _best_time(
        lambda: _block_partial(block, codes, 0, counts, TARGET_SUM, None), repeat
    )


def kernel_rates(
    block, codes, *, dense_rows: int = 5_000, split_every: int = 4, repeat: int = 5
) -> pd.Series:
    """Rates of the kernels that ``bench_scale.py`` does not run, measured in this
    process on ``block`` (already in memory, so no reading), each from the fastest of
    ``repeat`` runs (the run least slowed by other jobs on a shared machine), in
    core-nanoseconds:

    * ``kernel_ns_per_nnz``: the per-block task on CSR, ``counts=False`` (what the
      benchmark runs, here without reading the block);
    * ``normalise_ns_per_nnz``: what ``counts=True`` (normalise, log1p) adds per
      non-zero;
    * ``dense_ns_per_element``: the task with ``counts=True`` on the first
      ``dense_rows`` rows made dense, per matrix element;
    * ``merge_ns_per_element``: :func:`time_merge`, per element added.

    ``codes``: the group code of each row of ``block``; ``split_every``: partials merged
    per tree node.
    """
    if repeat < 1:
        raise ScaleError(f"repeat must be at least 1, got {repeat}.")
    codes = np.asarray(codes)
    csr = sp.csr_matrix(block)
    dense = csr[:dense_rows].toarray()
    nnz = max(csr.nnz, 1)
    plain = time_block(csr, codes, counts=False, repeat=repeat) / nnz
    normalised = time_block(csr, codes, counts=True, repeat=repeat) / nnz
    per_element = time_block(dense, codes[:dense_rows], counts=True, repeat=repeat)
    return pd.Series(
        {
            "kernel_ns_per_nnz": plain * 1e9,
            "normalise_ns_per_nnz": max(normalised - plain, 0.0) * 1e9,
            "dense_ns_per_element": per_element / dense.size * 1e9,
            "merge_ns_per_element": time_merge(split_every=split_every, repeat=repeat),
        }
    )


def time_merge(
    n_groups: int = 2_000, n_genes: int = 2_000, *, split_every: int = 4, repeat=3
) -> float:
    """Nanoseconds per element added by the reduction's merge (fastest of ``repeat``)
    (:func:`helpers.scale.reduce._merge` of ``split_every`` partials of ``n_groups`` x
    ``n_genes``), in this process (seeded random partials)."""
    from .reduce import _merge

    rng = np.random.default_rng(0)
    parts = [
        (
            np.sort(rng.choice(2 * n_groups, size=n_groups, replace=False)),
            rng.random((n_groups, n_genes)),
            np.ones(n_groups, dtype=np.int64),
        )
        for _ in range(split_every)
    ]
    seconds = _best_time(lambda: _merge(*parts), repeat)
    return seconds / (split_every * n_groups * n_genes) * 1e9


def _assumed(assumptions: dict | None, key: str) -> float:
    merged = {k: v[0] for k, v in ASSUMPTIONS.items()}
    merged.update(assumptions or {})
    if key not in merged or not merged[key] > 0:
        raise ScaleError(f"assumption {key!r} must be a positive number.")
    return float(merged[key])


def atlas_costs(
    targets: dict[str, dict],
    rates: dict,
    *,
    workers: int = 100,
    assumptions: dict | None = None,
) -> pd.DataFrame:
    """Core-hours and wall hours on ``workers`` workers, per target and part.

    ``targets``: name -> dict with ``cells``, ``genes``, ``groups``, ``block_cells``,
    ``bytes`` (stored), one of ``nonzeros`` (sparse) or ``elements`` (dense X: the
    kernel touches every element), ``layout`` (``shuffled``/``sorted``, with
    ``groups_in_block`` for sorted), ``split_every`` (default 4), and optional
    ``decode_ns_per_nnz`` (a per-non-zero decoding cost, e.g. parquet lists).
    ``rates``: ``compute_ns_per_nnz`` and ``obs_ns_per_cell`` (the benchmark's,
    :func:`measured_rates`), ``normalise_ns_per_nnz``, ``dense_ns_per_element`` and
    ``merge_ns_per_element`` (:func:`kernel_rates`).
    ``assumptions`` overrides
    :data:`ASSUMPTIONS` (values only).

    Each row says its ``basis``: ``measured`` (a rate measured by the benchmark or in
    this process, extrapolated linearly) or ``estimated`` (a rate that is an
    assumption, or a count that is modelled).
    """
    per_worker = _assumed(assumptions, "read_gb_per_s_per_worker") * 1e9
    total_bw = _assumed(assumptions, "read_gb_per_s_total") * 1e9
    net = _assumed(assumptions, "network_gb_per_s_per_worker") * 1e9
    merge_ns = rates["merge_ns_per_element"]
    if workers < 1:
        raise ScaleError(f"workers must be at least 1, got {workers}.")
    rows = []
    for name, t in targets.items():
        if ("nonzeros" in t) == ("elements" in t):
            raise ScaleError(
                f"target {name!r}: give exactly one of 'nonzeros' (sparse) or "
                "'elements' (dense)."
            )
        # compute: the kernel over every stored value
        if "nonzeros" in t:
            ns = rates["compute_ns_per_nnz"] + rates.get("normalise_ns_per_nnz", 0.0)
            core_s = t["nonzeros"] * ns * 1e-9
            basis, how = (
                "measured",
                (
                    f"{t['nonzeros']:.3g} non-zeros x {ns:.1f} core-ns (bench_scale's "
                    "rate + normalising, measured here)"
                ),
            )
        else:
            ns = rates["dense_ns_per_element"]
            core_s = t["elements"] * ns * 1e-9
            basis, how = (
                "measured",
                (
                    f"{t['elements']:.3g} matrix elements x {ns:.2f} core-ns "
                    "(dense block "
                    "in memory, normalised, measured here; reading is under I/O)"
                ),
            )
        rows.append((name, "compute", basis, core_s, core_s / workers, how))
        if t.get("decode_ns_per_nnz"):  # e.g. parquet lists -> CSR
            core_s = t["nonzeros"] * t["decode_ns_per_nnz"] * 1e-9
            how = (
                f"{t['nonzeros']:.3g} non-zeros x {t['decode_ns_per_nnz']:.1f} core-ns "
                "(decoding measured here on the stand-in)"
            )
            rows.append((name, "decode", "measured", core_s, core_s / workers, how))
        # I/O: stored bytes at an assumed bandwidth (workers wait while reading)
        read_s = t["bytes"] / per_worker
        wall = max(t["bytes"] / (per_worker * workers), t["bytes"] / total_bw)
        rows.append(
            (
                name,
                "I/O",
                "estimated",
                read_s,
                wall,
                f"{t['bytes'] / 1e9:.3g} GB at {per_worker / 1e9:g} GB/s per worker, "
                f"{total_bw / 1e9:g} GB/s in all (assumed)",
            )
        )
        # obs: read serially by the client
        obs_s = t["cells"] * rates["obs_ns_per_cell"] * 1e-9
        rows.append(
            (
                name,
                "obs (serial)",
                "measured" if t.get("obs_like_benchmark", True) else "estimated",
                obs_s,
                obs_s,
                f"{t['cells']:.3g} cells x {rates['obs_ns_per_cell']:.0f} ns "
                "(bench_scale's h5ad open)",
            )
        )
        # merge: every non-root partial is sent to its parent and added there
        tree = merge_tree(
            t["cells"],
            t["block_cells"],
            t["groups"],
            n_genes=t["genes"],
            split_every=t.get("split_every", 4),
            layout=t.get("layout", "shuffled"),
            groups_in_block=t.get("groups_in_block"),
        )
        moved = tree.iloc[:-1]
        per_node_s = moved["bytes_per_partial"] / net + moved["bytes_per_partial"] / (
            8.0 * 1e9 / merge_ns
        )
        # a level's sends run in parallel on at most `workers` workers
        parents = tree["nodes"].iloc[1:].to_numpy()
        k = t.get("split_every", 4)
        wall_levels = np.ceil(parents / workers) * k * per_node_s.to_numpy()
        bytes_moved = float((moved["nodes"] * moved["bytes_per_partial"]).sum())
        leaf = tree.iloc[0]
        rows.append(
            (
                name,
                "merge",
                "estimated",
                float((moved["nodes"] * per_node_s).sum()),
                float(wall_levels.sum()),
                f"{bytes_moved / 1e9:.3g} GB moved in all; "
                f"{int(leaf['nodes']):,} block "
                f"partials of {leaf['groups_per_partial']:,.0f} groups "
                f"({leaf['bytes_per_partial'] / 1e9:.3g} GB each, "
                f"{t.get('layout', 'shuffled')}); "
                f"{net / 1e9:g} GB/s (assumed), {merge_ns:.1f} ns per element added "
                "(measured here)",
            )
        )
    table = pd.DataFrame(
        rows, columns=["target", "part", "basis", "core_s", "wall_s", "how"]
    )
    table["core_hours"] = table.pop("core_s") / 3600
    table[f"hours_on_{workers}"] = table.pop("wall_s") / 3600
    return table[
        ["target", "part", "basis", "core_hours", f"hours_on_{workers}", "how"]
    ]


def time_tahoe_decode(folder, *, max_row_groups: int = 4, repeat: int = 3) -> float:
    """Nanoseconds per non-zero (fastest of ``repeat``) to read and decode Tahoe
    parquet row groups into CSR blocks (:func:`helpers.scale.tahoe._read_row_group`),
    the first ``max_row_groups`` row groups of ``folder``, in this process."""
    import pyarrow.parquet as pq

    from .tahoe import TAHOE, _read_row_group, _shards

    genes = pd.read_parquet(Path(folder) / TAHOE["gene_metadata"])
    lookup = np.full(int(genes["token_id"].max()) + 1, -1, dtype=np.int64)
    lookup[genes["token_id"].to_numpy()] = np.arange(len(genes))
    groups = [
        (str(s), rg)
        for s in _shards(Path(folder))
        for rg in range(pq.ParquetFile(s).num_row_groups)
    ][:max_row_groups]
    if not groups:
        raise ScaleError(f"{folder} has no parquet row groups to time.")
    nnz = sum(_read_row_group(s, rg, lookup, len(genes)).nnz for s, rg in groups)
    seconds = _best_time(
        lambda: [_read_row_group(s, rg, lookup, len(genes)) for s, rg in groups], repeat
    )
    return seconds / nnz * 1e9


def atlas_targets(
    tahoe_nnz_per_cell: dict[str, float],
    *,
    tahoe_bytes_per_nnz: float,
    tahoe_decode_ns_per_nnz: float,
    tahoe_samples_per_block: float = 2,
) -> dict[str, dict]:
    """The two atlas-scale screens as :func:`atlas_costs` targets, with the facts' and
    assumptions' sources in ``source``.

    * genome-wide K562 (:data:`helpers.scale.standins.GWPS`): 1,989,578 cells x 8,248
      genes, DENSE float32 X of 65,830,941,948 bytes, ~9,867 perturbations (registry
      entry ``replogle_k562_gwps``); cells not sorted by perturbation, so a block's
      partial holds :func:`groups_per_block` groups; blocks of 5,000 cells and
      ``split_every=2`` (chapter 10's paper settings). The kernel touches every matrix
      element (dense).
    * Tahoe-100M (:data:`helpers.scale.tahoe.TAHOE`) at each non-zeros-per-cell value
      given (label -> value): 100,648,790 cells, ~62,700 genes, 50 cell lines x ~1,100
      drugs = 55,000 groups (the dataset summary in tahoe.py); ASSUMED: one block per
      shard (cells / 3,388 shards), cells stored sample by sample so a block holds the
      50 cell lines of ``tahoe_samples_per_block`` samples (as the stand-in is
      written), bytes on disk and decoding rate per non-zero as measured on the
      stand-in (random values compress differently from real ones); obs read from
      parquet at the h5ad rate (estimated).

    ``tahoe_nnz_per_cell``: label -> non-zeros per cell; ``tahoe_bytes_per_nnz``: bytes
    on disk per non-zero; ``tahoe_decode_ns_per_nnz``: decoding time per non-zero (both
    measured on the stand-in).
    """
    from .standins import GWPS
    from .tahoe import TAHOE

    targets = {
        "K562 genome-wide (dense)": {
            "cells": GWPS["n_cells"],
            "genes": GWPS["n_genes"],
            "groups": 9_867,
            "block_cells": 5_000,
            "split_every": 2,
            "bytes": GWPS["size"],
            "elements": float(GWPS["n_cells"]) * GWPS["n_genes"],
            "layout": "shuffled",
        }
    }
    n_lines, n_drugs, n_genes = 50, 1_100, 62_700
    for label, per_cell in tahoe_nnz_per_cell.items():
        nnz = float(TAHOE["n_cells"]) * per_cell
        targets[f"Tahoe-100M ({label})"] = {
            "cells": TAHOE["n_cells"],
            "genes": n_genes,
            "groups": n_lines * n_drugs,
            "block_cells": TAHOE["n_cells"] / TAHOE["n_shards"],
            "bytes": nnz * tahoe_bytes_per_nnz,
            "nonzeros": nnz,
            "decode_ns_per_nnz": tahoe_decode_ns_per_nnz,
            "layout": "sorted",
            "groups_in_block": n_lines * tahoe_samples_per_block,
            "obs_like_benchmark": False,
        }
    return targets


def stored_bytes(path) -> int:
    """Bytes on disk of a file, or of every file under a folder (a .zarr store).

    ``path``: the file or folder.
    """
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        raise ScaleError(f"{path} does not exist; give a store's file or folder.")
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
