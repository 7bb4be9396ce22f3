"""Synthetic screens at any scale and stand-ins in the exact layouts of the atlas-scale
sources.

Everything written here is **synthetic** (random values in a real layout); files say so
in ``uns['perturbbook']['synthetic']`` or in their name, and chapter 10 labels every
number from them.

* :func:`write_synthetic_store`: a count matrix of millions of cells streamed block by
  block into a chunked ``.zarr`` (or ``.h5ad``) store, about ``nnz_per_cell`` non-zeros
  per cell: each cell draws ``nnz_per_cell`` reads from ``softmax(baseline +
  effect[condition])``, the same log-rate model as the book's simulator
  (:mod:`helpers.simulate`: a baseline per gene plus a sparse effect per perturbed
  gene), so pseudobulk changes are real signal, not noise.
* :func:`write_replogle_gwps_standin`: the genome-wide K562 raw single-cell file,
  ``K562_gwps_raw_singlecell_01.h5ad`` (Replogle et al. 2022, Figshare+
  10.25452/figshare.plus.20029387).
* :func:`helpers.scale.tahoe.write_tahoe_standin`: the Tahoe-100M parquet layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import data as data_mod
from ..errors import InputError
from ..loaders import CONTROL, SparseRowWriter

__all__ = ["write_synthetic_store", "write_replogle_gwps_standin", "GWPS"]

SYNTHETIC_NOTE = (
    "SYNTHETIC screen written by helpers.scale.standins: random counts, real layout"
)


def _log_rates(
    rng,
    n_genes: int,
    n_conditions: int,
    effect_genes: int = 20,
    effect_scale: float = 1.0,
):
    """Baseline log-rates (genes) and effects (conditions x genes; row 0 = control, all
    zero).
    """
    baseline = rng.normal(0.0, 1.5, size=n_genes)
    effects = np.zeros((n_conditions, n_genes))
    for p in range(1, n_conditions):
        genes = rng.choice(n_genes, size=min(effect_genes, n_genes), replace=False)
        effects[p, genes] = rng.normal(0.0, effect_scale, size=len(genes))
    return baseline, effects


def _cdfs(baseline, effects) -> np.ndarray:
    """Per-condition cumulative read probabilities, offset by the condition number (one
    sorted array).
    """
    rates = baseline[None, :] + effects
    probs = np.exp(rates - rates.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    return (cdf + np.arange(len(cdf))[:, None]).ravel()


def _draw_block(rng, cdf_flat, codes, n_genes: int, nnz_per_cell: int) -> sp.csr_matrix:
    """Counts of ``len(codes)`` cells: ``~Poisson(nnz_per_cell)`` reads each, summed per
    gene (CSR float32).
    """
    reads = rng.poisson(nnz_per_cell, size=len(codes)).clip(1)
    rows = np.repeat(np.arange(len(codes)), reads)
    u = rng.random(len(rows)) + codes[rows]
    flat = np.searchsorted(cdf_flat, u, side="right")
    cols = np.minimum(flat - codes[rows] * n_genes, n_genes - 1)
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(codes), n_genes)
    )
    m.sum_duplicates()
    return m


def write_synthetic_store(
    path: str | os.PathLike,
    *,
    n_cells: int = 1_000_000,
    n_genes: int = 2_000,
    n_conditions: int = 500,
    nnz_per_cell: int = 100,
    control_fraction: float = 0.1,
    chunk_rows: int = 50_000,
    sort_by_condition: bool = False,
    seed: int = 0,
) -> Path:
    """Stream a synthetic count screen (CSR) into ``path`` (``.zarr`` folder or
    ``.h5ad`` file).

    obs: ``condition`` (``ctrl`` and ``P0001`` ...), ``gem_group`` (1..8); var:
    ``G00001`` ... Memory stays at one block of ``chunk_rows`` cells whatever
    ``n_cells`` is; the store is written under a temporary name and renamed when
    complete. Same arguments -> same bytes of X.

    ``n_genes``, ``n_conditions`` (control included), ``nnz_per_cell`` (mean non-zeros
    per cell), ``control_fraction`` (share of control cells); ``sort_by_condition``:
    store cells condition by condition (else shuffled); ``seed``: the random seed.
    """
    path = Path(path)
    if n_conditions < 2:
        raise InputError(
            "n_conditions must be at least 2 (control and one perturbation)."
        )
    rng = np.random.default_rng(seed)
    baseline, effects = _log_rates(rng, n_genes, n_conditions)
    cdf_flat = _cdfs(baseline, effects)
    n_ctrl = int(round(control_fraction * n_cells))
    codes = np.concatenate(
        [
            np.zeros(n_ctrl, np.int64),
            rng.integers(1, n_conditions, size=n_cells - n_ctrl),
        ]
    )
    codes = np.sort(codes) if sort_by_condition else rng.permutation(codes)
    names = np.array(
        [CONTROL] + [f"P{p:04d}" for p in range(1, n_conditions)], dtype=object
    )
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(names[codes], categories=names),
            "gem_group": rng.integers(1, 9, size=n_cells),
        },
        index=pd.Index([f"cell{i:08d}" for i in range(n_cells)], name="cell"),
    )
    var = pd.DataFrame(
        index=pd.Index([f"G{g:05d}" for g in range(1, n_genes + 1)], name="gene")
    )
    adata = ad.AnnData(
        obs=obs,
        var=var,
        uns={
            "perturbbook": {
                "dataset": "synthetic_scale",
                "synthetic": True,
                "note": SYNTHETIC_NOTE,
                "normalisation": "raw counts",
                "seed": seed,
            }
        },
    )
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    zarr_store = path.suffix == ".zarr"
    try:
        if zarr_store:
            import shutil

            import zarr

            import warnings

            from anndata.io import write_elem

            shutil.rmtree(tmp, ignore_errors=True)
            root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
            with warnings.catch_warnings():
                # anndata 0.12 announces a future default (sharded zarr v3 arrays); the
                # store is
                # written unsharded on purpose: one chunk of rows per block, readable by
                # zarr 3.0+
                warnings.filterwarnings(
                    "ignore", message="zarr v3 autosharding", category=UserWarning
                )
                for key in ("obs", "var", "uns"):
                    write_elem(root, key, getattr(adata, key))
                _stream(
                    SparseRowWriter(root, "X"),
                    rng,
                    cdf_flat,
                    codes,
                    n_genes,
                    nnz_per_cell,
                    chunk_rows,
                )
            if path.exists():
                shutil.rmtree(path)
        else:
            adata.write_h5ad(tmp)
            with h5py.File(tmp, "a") as f:
                _stream(
                    SparseRowWriter(f, "X"),
                    rng,
                    cdf_flat,
                    codes,
                    n_genes,
                    nnz_per_cell,
                    chunk_rows,
                )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()
    return path


def _stream(writer, rng, cdf_flat, codes, n_genes, nnz_per_cell, chunk_rows) -> None:
    for start in range(0, len(codes), chunk_rows):
        block = codes[start : start + chunk_rows]
        writer.append(_draw_block(rng, cdf_flat, block, n_genes, nnz_per_cell))


# --------------------------------------------------------------------------------------
# ------
# Replogle et al. 2022, genome-wide K562 CRISPRi, raw single-cell file

GWPS = {
    # Figshare+ article 20029387 (doi 10.25452/figshare.plus.20029387), file 35775507
    # "K562_gwps_raw_singlecell_01.h5ad"; download links of this id in public scripts
    # (e.g.
    # openproblems-style download lists) and the article page.
    "figshare_file": 35775507,
    # 65,830,941,948 bytes: the size figshare lists (checked in public catalog code that
    # reads the
    # figshare API); the file is "~66 GB" in the issue and ~61.3 GiB in download notes.
    "size": data_mod.checkout_entry("replogle_k562_gwps").size,  # registry: size
    # 1,989,578 cells x 8,248 genes. Cells: scPerturb's table of
    # ReplogleWeissman2022_K562_gwps;
    # genes: a public byte-range probe of the raw file's X (8,242 after scPerturb's
    # processing).
    "n_cells": 1_989_578,
    "n_genes": 8_248,
    # X is one contiguous (not chunked, not compressed) float32 dataset, i.e. DENSE,
    # without anndata
    # encoding attributes (the same byte-range probe; and 1,989,578 x 8,248 x 4 bytes =
    # 65.6 GB,
    # the file's size). helpers.scale.readers reads such an X in row blocks with h5py; a
    # CSR X
    # (e.g. a re-written copy) is read the same way.
    "x_dtype": "float32",
    # obs columns, in the file's order (public loaders that list the author obs
    # columns);
    # `gene` and the other strings are legacy categoricals: int16 codes, categories
    # under
    # obs/__categories (the same probe). Control cells: gene == "non-targeting".
    "obs": [
        "gem_group",
        "gene",
        "gene_id",
        "transcript",
        "gene_transcript",
        "sgID_AB",
        "mitopercent",
        "UMI_count",
        "z_gemgroup_UMI",
        "core_scale_factor",
        "core_adjusted_UMI_count",
    ],
    "var": [
        "gene_name",
        "chr",
        "start",
        "end",
        "class",
        "strand",
        "length",
        "in_matrix",
        "mean",
        "std",
        "cv",
        "fano",
    ],
    # the control label (registry: control_label)
    "control": data_mod.checkout_entry("replogle_k562_gwps").control_label,
    # 9,867 perturbation categories including non-targeting (scPerturb's description of
    # the file).
    "n_perturbations": 9_867,
}


def _legacy_categorical(group: h5py.Group, name: str, values: np.ndarray) -> None:
    """An anndata-0.7 categorical column: int16 codes with a reference to
    obs/__categories/<name>.
    """
    cats, codes = np.unique(values.astype(str), return_inverse=True)
    store = group.require_group("__categories")
    store.create_dataset(name, data=cats.astype(object), dtype=h5py.string_dtype())
    col = group.create_dataset(name, data=codes.astype(np.int16))
    col.attrs["categories"] = store[name].ref


def _legacy_dataframe(
    f: h5py.File, key: str, index_name: str, index, columns: dict
) -> None:
    g = f.create_group(key)
    g.attrs["encoding-type"] = "dataframe"
    g.attrs["encoding-version"] = "0.1.0"
    g.attrs["_index"] = index_name
    g.attrs["column-order"] = np.array(list(columns), dtype=object).astype(
        h5py.string_dtype()
    )
    g.create_dataset(
        index_name, data=np.asarray(index, dtype=object), dtype=h5py.string_dtype()
    )
    for name, values in columns.items():
        values = np.asarray(values)
        if values.dtype.kind in "OUS":
            _legacy_categorical(g, name, values)
        else:
            g.create_dataset(name, data=values)


def write_replogle_gwps_standin(
    path: str | os.PathLike,
    *,
    n_cells: int = 6_000,
    n_genes: int = 400,
    n_perturbations: int = 60,
    n_gem_groups: int = 4,
    dense: bool = True,
    chunk_rows: int = 2_000,
    targets=None,
    seed: int = 0,
) -> Path:
    """A stand-in of ``K562_gwps_raw_singlecell_01.h5ad`` in its layout (see
    :data:`GWPS`), any scale.

    X: raw UMI counts as float32, dense and without encoding attributes as in the real
    file (``dense=False``: a CSR X with anndata's encoding, as a re-written copy would
    have); obs and var with the real columns as anndata-0.7 legacy dataframes. Values
    are synthetic. ``targets``: gene symbols to perturb (e.g. those of another stand-in
    screen), else ``GENE<k>`` names.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    n_pert = (
        n_perturbations if targets is None else min(n_perturbations, len(targets))
    ) + 1
    baseline, effects = _log_rates(rng, n_genes, n_pert)
    cdf_flat = _cdfs(baseline, effects)
    codes = rng.integers(0, n_pert, size=n_cells)
    codes[rng.random(n_cells) < 0.08] = 0
    gene_ids = np.array(
        [f"ENSG{900000 + g:011d}" for g in range(n_genes)], dtype=object
    )
    symbols = np.array([f"GENE{g}" for g in range(n_genes)], dtype=object)
    if targets is not None:
        targets = [str(t) for t in targets][:n_perturbations]
        n_perturbations = len(targets)
        symbols[:n_perturbations] = targets
    targets = (
        rng.choice(n_genes, size=n_perturbations, replace=False)
        if targets is None
        else np.arange(n_perturbations)
    )
    gene = np.array([GWPS["control"]] + [symbols[t] for t in targets], dtype=object)[
        codes
    ]
    gene_id = np.array(
        [GWPS["control"]] + [gene_ids[t] for t in targets], dtype=object
    )[codes]
    transcript = np.where(gene == GWPS["control"], "non-targeting", "P1P2")
    gem = rng.integers(1, n_gem_groups + 1, size=n_cells).astype(np.int64)
    barcodes = ["".join(rng.choice(list("ACGT"), 16)) + f"-{g}" for g in gem]
    tmp = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    totals = np.zeros(n_cells, np.float32)
    try:
        with h5py.File(tmp, "w") as f:
            if dense:
                X = f.create_dataset(
                    "X", shape=(n_cells, n_genes), dtype="float32"
                )  # contiguous
                for start in range(0, n_cells, chunk_rows):
                    block = _draw_block(
                        rng, cdf_flat, codes[start : start + chunk_rows], n_genes, 300
                    )
                    X[start : start + block.shape[0]] = block.toarray()
                    totals[start : start + block.shape[0]] = block.sum(axis=1).A1
            else:
                writer = SparseRowWriter(f, "X")
                for start in range(0, n_cells, chunk_rows):
                    block = _draw_block(
                        rng, cdf_flat, codes[start : start + chunk_rows], n_genes, 300
                    )
                    writer.append(block)
                    totals[start : start + block.shape[0]] = block.sum(axis=1).A1
            gene_transcript = np.array(
                [f"{g}_{t}" for g, t in zip(gene, transcript)], dtype=object
            )
            guide = np.array(
                [f"{gt}_sgA|{gt}_sgB" for gt in gene_transcript], dtype=object
            )
            _legacy_dataframe(
                f,
                "obs",
                "cell_barcode",
                barcodes,
                {
                    "gem_group": gem,
                    "gene": gene,
                    "gene_id": gene_id,
                    "transcript": transcript,
                    "gene_transcript": gene_transcript,
                    "sgID_AB": guide,
                    "mitopercent": rng.uniform(0.01, 0.2, n_cells).astype(np.float32),
                    "UMI_count": totals,
                    "z_gemgroup_UMI": rng.normal(0, 1, n_cells).astype(np.float32),
                    "core_scale_factor": rng.uniform(0.8, 1.2, n_cells).astype(
                        np.float32
                    ),
                    "core_adjusted_UMI_count": totals * 1.0,
                },
            )
            _legacy_dataframe(
                f,
                "var",
                "gene_id",
                gene_ids,
                {
                    "gene_name": symbols,
                    "chr": rng.choice(["chr1", "chr2", "chrX"], n_genes).astype(object),
                    "start": rng.integers(1, 10**8, n_genes),
                    "end": rng.integers(1, 10**8, n_genes),
                    "class": np.array(["gene_version10"] * n_genes, dtype=object),
                    "strand": rng.choice(["+", "-"], n_genes).astype(object),
                    "length": rng.integers(500, 10**5, n_genes),
                    "in_matrix": np.ones(n_genes, bool),
                    "mean": rng.gamma(1.0, 1.0, n_genes),
                    "std": rng.gamma(1.0, 1.0, n_genes),
                    "cv": rng.gamma(1.0, 1.0, n_genes),
                    "fano": rng.gamma(1.0, 1.0, n_genes),
                },
            )
            f.create_group("uns").attrs["perturbbook_synthetic"] = SYNTHETIC_NOTE
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
