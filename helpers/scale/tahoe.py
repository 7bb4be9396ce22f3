"""Tahoe-100M in its Hugging Face parquet layout: reader and stand-in (chapter 10).

Layout facts, each with where it comes from:

* the dataset ``tahoebio/Tahoe-100M`` on the Hugging Face Hub (CC0-1.0) holds one row
  per cell in parquet shards ``data/train-XXXXX-of-NNNNN.parquet`` (the Hub's
  ``push_to_hub`` naming; a public scan script counts **3,388** shards), and tables
  under ``metadata/``, among them ``metadata/gene_metadata.parquet`` with columns
  ``token_id``, ``ensembl_id``, ``gene_symbol`` (public download scripts read it by this
  path and these columns);
* the cell table's columns (the Hub's dataset viewer): ``genes`` (list of gene token
  ids), ``expressions`` (list of numbers, same length), ``drug``, ``sample``,
  ``BARCODE_SUB_LIB_ID``, ``cell_line_id`` (Cellosaurus ids such as ``CVCL_0480``),
  ``moa-fine``, ``canonical_smiles``, ``pubchem_cid``, ``plate`` (``plate1`` ...);
* every cell's lists start with a marker, token ``1`` with expression ``-2`` (the
  viewer's rows), not a measured gene: the reader drops every entry whose expression is
  negative;
* only non-zero genes are stored and the values are raw counts, no normalisation (a
  public summary of the dataset card: "Sparse tokenized (only non-zero genes stored)",
  "Raw counts"); about 62,700 genes (Ensembl 109, GRCh38), 50 cell lines, ~1,100 drug
  treatments, 14 plates;
* controls are plate-matched vehicle wells with ``drug == "DMSO_TF"`` (the same summary,
  and peers' loaders that use ``DMSO_TF`` as the control perturbation).

The reader makes one Dask task per parquet **row group**, returning a CSR block (cells x
genes in ``gene_metadata`` order), so the pseudobulk of :mod:`helpers.scale.reduce` runs
unchanged; obs holds the scalar columns (one row per cell). Groups of cell line x drug
sit in one plate, so each block's partial holds only its own groups.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import data as data_mod
from .screen import LazyScreen, ScaleError

__all__ = [
    "TAHOE",
    "is_tahoe_folder",
    "open_tahoe",
    "write_tahoe_standin",
    "tahoe_shard_names",
    "nnz_per_cell",
]

TAHOE = {
    "repo_id": "tahoebio/Tahoe-100M",
    "n_shards": 3_388,
    "obs": [
        "drug",
        "sample",
        "BARCODE_SUB_LIB_ID",
        "cell_line_id",
        "moa-fine",
        "canonical_smiles",
        "pubchem_cid",
        "plate",
    ],
    "gene_metadata": "metadata/gene_metadata.parquet",
    "marker_token": 1,
    "marker_value": -2.0,
    "control": data_mod.checkout_entry("tahoe100m_shard").control_label,  # registry
    "n_cells": 100_648_790,  # "100.6 M cells" (issue; Tahoe-100M preprint: 100,648,790)
}


def tahoe_shard_names(n_shards: int = TAHOE["n_shards"]) -> list[str]:
    """Paths of the cell shards inside the Hub repository
    (``data/train-00000-of-03388.parquet`` ...).
    """
    return [f"data/train-{i:05d}-of-{n_shards:05d}.parquet" for i in range(n_shards)]


def _shards(folder: Path) -> list[Path]:
    return sorted((folder / "data").glob("*.parquet")) or sorted(
        folder.glob("*.parquet")
    )


def is_tahoe_folder(folder: str | os.PathLike) -> bool:
    """True for a folder with cell shards (``data/*.parquet``) and
    ``metadata/gene_metadata.parquet``.
    """
    folder = Path(folder)
    return bool(_shards(folder)) and (folder / TAHOE["gene_metadata"]).exists()


def _read_row_group(
    path: str, row_group: int, lookup: np.ndarray, n_vars: int
) -> sp.csr_matrix:
    """One parquet row group -> CSR counts (cells x genes); marker entries (value < 0)
    dropped.
    """
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read_row_group(
        row_group, columns=["genes", "expressions"]
    )
    genes, values = (
        table.column("genes").combine_chunks(),
        table.column("expressions").combine_chunks(),
    )
    offsets = np.asarray(genes.offsets, dtype=np.int64)
    tokens = np.asarray(genes.values, dtype=np.int64)
    counts = np.asarray(values.values, dtype=np.float32)
    keep = counts >= 0
    if (tokens[keep] >= len(lookup)).any() or (lookup[tokens[keep]] < 0).any():
        raise ScaleError(
            f"{path}: gene tokens missing from metadata/gene_metadata.parquet; "
            "download the gene metadata of the same dataset revision."
        )
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))[keep]
    m = sp.csr_matrix(
        (counts[keep], (rows, lookup[tokens[keep]])), shape=(len(offsets) - 1, n_vars)
    )
    m.sum_duplicates()
    return m


def _concat_categorical(parts: list[pd.Series]) -> pd.Categorical:
    """One categorical from the shards' columns (each with its own categories)."""
    from pandas.api.types import union_categoricals

    cats = [
        p.astype("category") if not isinstance(p.dtype, pd.CategoricalDtype) else p
        for p in parts
    ]
    return union_categoricals(cats, sort_categories=True)


def open_tahoe(
    folder: str | os.PathLike, *, dataset: str = "tahoe100m", obs_columns=None
) -> LazyScreen:
    """A :class:`LazyScreen` of the parquet shards in ``folder`` (one block per row
    group).

    ``obs`` holds ``obs_columns`` of every cell in the calling process, as categoricals
    (codes, not strings): 1 byte per cell for a column of fewer than 128 values (cell
    line, plate), 2 for fewer than 32,768 (drug), so for Tahoe-100M's 100.6 M cells
    the four default columns take under 1 GB.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    shards = _shards(folder)
    if not shards:
        raise ScaleError(f"{folder} has no parquet shards (data/*.parquet).")
    genes = pd.read_parquet(folder / TAHOE["gene_metadata"])
    missing = {"token_id", "ensembl_id"} - set(genes.columns)
    if missing:
        raise ScaleError(
            f"{folder / TAHOE['gene_metadata']} lacks columns {sorted(missing)}."
        )
    genes = genes.sort_values("token_id").reset_index(drop=True)
    lookup = np.full(int(genes["token_id"].max()) + 1, -1, dtype=np.int64)
    lookup[genes["token_id"].to_numpy()] = np.arange(len(genes))
    n_vars = len(genes)
    columns = list(obs_columns or ["drug", "sample", "cell_line_id", "plate"])
    obs_parts, blocks = [], []
    meta = sp.csr_matrix((0, n_vars), dtype=np.float32)
    # one task holds the token -> gene lookup (62,710 x 8 bytes for the real table);
    # every row-group task depends on it instead of carrying a copy in the graph
    lookup = dask.delayed(lookup, pure=True, name=f"tahoe-lookup-{n_vars}")
    for shard in shards:
        pf = pq.ParquetFile(shard)
        names = set(pf.schema_arrow.names)
        # string columns come back dictionary-encoded (pandas categoricals): 100 M
        # cells x 4 columns as codes, never as Python strings
        types = {c: pf.schema_arrow.field(c).type for c in columns if c in names}
        text = [
            c
            for c, t in types.items()
            if pa.types.is_string(t) or pa.types.is_large_string(t)
        ]
        if text:
            pf = pq.ParquetFile(shard, read_dictionary=text)
        if not {"genes", "expressions"} <= names or not set(columns) <= names:
            raise ScaleError(
                f"{shard} is not a Tahoe-100M cell shard (columns "
                f"{sorted(names)[:12]})."
            )
        obs_parts.append(pf.read(columns=columns).to_pandas())
        for rg in range(pf.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            part = dask.delayed(_read_row_group, pure=True)(
                str(shard), rg, lookup, n_vars
            )
            blocks.append(
                da.from_delayed(part, shape=(n, n_vars), dtype=np.float32, meta=meta)
            )
    obs = pd.DataFrame(
        {col: _concat_categorical([part[col] for part in obs_parts]) for col in columns}
    )
    # the shards carry no cell ids: cells are numbered in shard order (a RangeIndex,
    # no 100 M strings)
    obs.index = pd.RangeIndex(len(obs), name="cell")
    var_names = pd.Index(genes["ensembl_id"].astype(str), name="gene")
    X = da.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
    meta_info = {"gene_symbol": genes.get("gene_symbol")}
    return LazyScreen(
        X=X,
        obs=obs,
        var_names=var_names,
        path=str(folder),
        kind="parquet",
        sparse=True,
        dataset=dataset,
        meta=meta_info,
    )


def nnz_per_cell(folder: str | os.PathLike, *, max_row_groups: int | None = None):
    """Measured non-zeros per cell of a folder of shards, from the list offsets of the
    ``genes`` column (marker entries, whose expression is negative, not counted).

    Returns a ``pd.Series``: ``cells``, ``nonzeros``, ``mean``, ``min``, ``max`` and
    ``row_groups`` (read). ``max_row_groups`` stops early (a sample of the first row
    groups, in shard order). On the stand-in this measures the generator's setting; the
    real figure needs the real shards (:func:`helpers.scale.loaders.fetch_tahoe`).

    ``folder``: a folder of shards in the Hub layout.
    """
    import pyarrow.parquet as pq

    shards = _shards(Path(folder))
    if not shards:
        raise ScaleError(f"{folder} has no parquet shards (data/*.parquet).")
    if max_row_groups is not None and max_row_groups < 1:
        raise ScaleError(f"max_row_groups must be at least 1, got {max_row_groups}.")
    per_cell, read = [], 0
    for shard in shards:
        pf = pq.ParquetFile(shard)
        for rg in range(pf.num_row_groups):
            if max_row_groups is not None and read >= max_row_groups:
                break
            table = pf.read_row_group(rg, columns=["genes", "expressions"])
            genes = table.column("genes").combine_chunks()
            values = table.column("expressions").combine_chunks()
            offsets = np.asarray(genes.offsets, dtype=np.int64)
            marker = np.asarray(values.values) < 0
            rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
            markers = np.bincount(rows[marker], minlength=len(offsets) - 1)
            per_cell.append(np.diff(offsets) - markers)
            read += 1
    counts = np.concatenate(per_cell)
    return pd.Series(
        {
            "cells": int(len(counts)),
            "nonzeros": int(counts.sum()),
            "mean": float(counts.mean()),
            "min": int(counts.min()),
            "max": int(counts.max()),
            "row_groups": read,
        },
        dtype=object,
    )


def write_tahoe_standin(
    folder: str | os.PathLike,
    *,
    n_cells: int = 20_000,
    n_genes: int = 500,
    n_cell_lines: int = 5,
    n_drugs: int = 8,
    n_plates: int = 2,
    n_shards: int = 4,
    row_group_size: int = 2_000,
    nnz_per_cell: int = 150,
    seed: int = 0,
) -> Path:
    """A synthetic Tahoe-100M folder in the Hub layout (see the module docstring), any
    scale.

    Drugs are spread over plates, every plate has ``DMSO_TF`` wells of every cell line
    (plate-matched controls); cells are written plate by plate, as one plate's sample
    wells after another. Counts follow the scale generator's model
    (:mod:`helpers.scale.standins`) with one effect per drug shared by all cell lines
    plus a baseline per cell line.

    ``folder``: where to write; ``n_cells``, ``n_genes``, ``n_cell_lines``, ``n_drugs``
    (``DMSO_TF`` not counted), ``n_plates``, ``n_shards`` (parquet files),
    ``row_group_size`` (rows per parquet row group), ``nnz_per_cell`` (mean non-zeros
    per cell); ``seed``: the random seed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .standins import _cdfs, _draw_block, _log_rates

    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens = np.sort(
        rng.choice(np.arange(3, 3 + 4 * n_genes), size=n_genes, replace=False)
    )
    pd.DataFrame(
        {
            "token_id": tokens,
            "ensembl_id": [f"ENSG{700000 + i:011d}" for i in range(n_genes)],
            "gene_symbol": [f"TG{i}" for i in range(n_genes)],
        }
    ).to_parquet(folder / TAHOE["gene_metadata"], index=False)
    drugs = [TAHOE["control"]] + [f"Drug{d:02d}" for d in range(1, n_drugs + 1)]
    lines = [f"CVCL_{1000 + i:04d}" for i in range(n_cell_lines)]
    baseline, effects = _log_rates(rng, n_genes, len(drugs))
    line_shift = rng.normal(0, 0.5, size=(n_cell_lines, n_genes))
    cdf = {li: _cdfs(baseline + line_shift[li], effects) for li in range(n_cell_lines)}
    plate_of_drug = {d: 1 + (i % n_plates) for i, d in enumerate(drugs[1:])}
    cells = []  # (plate, drug index, line)
    per = max(1, n_cells // (n_cell_lines * (n_drugs + n_plates)))
    for plate in range(1, n_plates + 1):
        plate_drugs = [0] + [
            i + 1 for i, d in enumerate(drugs[1:]) if plate_of_drug[d] == plate
        ]
        for d in plate_drugs:
            for li in range(n_cell_lines):
                cells += [(plate, d, li)] * per
    cells = np.array(cells)
    n = len(cells)
    drug_codes, line_codes = cells[:, 1], cells[:, 2]
    matrix = sp.vstack(
        [
            _draw_block(
                rng, cdf[li], drug_codes[line_codes == li], n_genes, nnz_per_cell
            )
            for li in range(n_cell_lines)
        ]
    ).tocsr()
    order = np.concatenate(
        [np.flatnonzero(line_codes == li) for li in range(n_cell_lines)]
    )
    matrix = matrix[np.argsort(order)]  # back to plate-by-plate order
    genes_col, expr_col = [], []
    for r in range(n):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        genes_col.append(
            [TAHOE["marker_token"]] + tokens[matrix.indices[lo:hi]].tolist()
        )
        expr_col.append([TAHOE["marker_value"]] + matrix.data[lo:hi].tolist())
    drug_names = np.array(drugs, dtype=object)[drug_codes]
    table = pd.DataFrame(
        {
            "genes": genes_col,
            "expressions": expr_col,
            "drug": drug_names,
            "sample": [
                f"smp_{1000 + p * 100 + d}" for p, d in zip(cells[:, 0], drug_codes)
            ],
            "BARCODE_SUB_LIB_ID": [
                f"{r:02d}_{r % 997:03d}_{r % 113:03d}-lib_{1100 + r % 7}"[:19].ljust(
                    19, "0"
                )
                for r in range(n)
            ],
            "cell_line_id": np.array(lines, dtype=object)[line_codes],
            "moa-fine": np.where(drug_codes == 0, "Vehicle", "unclear"),
            "canonical_smiles": np.where(drug_codes == 0, "CS(C)=O", "C1=CC=CC=C1"),
            "pubchem_cid": np.where(drug_codes == 0, "679.0", "241.0"),
            "plate": [f"plate{p}" for p in cells[:, 0]],
        }
    )
    schema = pa.schema(
        [("genes", pa.list_(pa.int64())), ("expressions", pa.list_(pa.float32()))]
        + [(c, pa.string()) for c in TAHOE["obs"]]
    )
    bounds = np.linspace(0, n, n_shards + 1).astype(int)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = pa.Table.from_pandas(
            table.iloc[lo:hi], schema=schema, preserve_index=False
        )
        pq.write_table(
            part,
            folder / "data" / f"train-{i:05d}-of-{n_shards:05d}.parquet",
            row_group_size=row_group_size,
        )
    (folder / "SYNTHETIC_STANDIN.txt").write_text(
        "SYNTHETIC stand-in of tahoebio/Tahoe-100M written by helpers.scale.tahoe: "
        "random counts, "
        "real layout.\n"
    )
    return folder
