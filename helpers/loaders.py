"""One loader, one canonical AnnData, whatever the source (introduced in chapter 1).

The canonical form every later step relies on:

* ``obs["condition"]``: ``"ctrl"`` for control cells, ``"A"`` for a single perturbation
  of gene A, ``"A+B"`` for a double (categorical). GEARS' ``"A+ctrl"`` / ``"ctrl+A"``
  and perturbench's ``"control"`` are mapped onto it; the source's own label is kept in
  ``obs["condition_source"]``.
* ``obs["n_targets"]``: 0 for control, 1 for singles, 2 for doubles;
  ``obs["cell_line"]``.
* ``var_names``: gene symbols (unique).
* ``X``: log-normalised expression as the source provides it (which normalisation: see
  ``adata.uns["perturbbook"]["normalisation"]``); ``layers["counts"]`` where the source
  has raw counts.
* ``uns["perturbbook"]``: dataset name, layout, normalisation, source file, whether
  counts exist.

``load_dataset(name, backed="r")`` opens large files (the full Norman file is ~85k cells
x 19k genes) without reading ``X`` into memory; :func:`helpers.pseudobulk.pseudobulk`
then reads it in row chunks.

One reader per real source: :func:`read_perturbench` (the Norman subset),
:func:`read_gears` (GEARS' Dataverse files) and :func:`read_scfoundation`
(scFoundation's Norman file, the one the paper used). Each is registered under its
layout name (:func:`register_layout`, one protocol: :class:`LayoutReader`);
:func:`load_dataset` picks the reader by the registry entry's ``layout``, so a new
dataset in an existing layout needs its registry entry only. The atlas-scale layouts
(``replogle_gwps``, ``tahoe_parquet``) register lazy readers in
:mod:`helpers.scale.loaders`. Where the registry entry says ``go_filter = true`` the
loader applies **GEARS' GO filter** as the paper did through GEARS (GEARS
``gears/pertdata.py``: ``PertData.load`` -> ``set_pert_genes`` and
``utils.filter_pert_in_go``): a condition is kept when each of its two ``+`` parts is
``ctrl`` or a gene of GEARS' perturbable-gene list
(``essential_all_data_pert_genes.pkl``) that also has GO annotations (a key of
``gene2go_all.pkl``). What it removed is printed and stored in
``adata.uns["perturbbook"]["go_filter"]``. For Norman it removes ``IER5L+ctrl`` and
``LYL1+IER5L``. (scFoundation's GEARS fork, which the paper ran on the scFoundation
file, takes the genes from the keys of its own ``gene2go.pkl`` instead; that file is not
public, and GEARS' list gives the paper's counts: ctrl + 100 singles + 124 doubles.)

With ``backed="r"`` and conditions removed, the kept cells are written once to a derived
file in the cache (``<dataset>/.../.go_filtered/``, streamed in row chunks; it costs
about the size of the source h5ad on disk) and that file is opened backed, because a
backed AnnData cannot be subset without reading ``X`` into memory.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import data as data_mod
from .conditions import (  # the grammar lives in helpers.conditions; re-exported here
    CONTROL,
    condition_genes,
)
from .errors import BookError

__all__ = [
    "CONTROL",
    "LoaderError",
    "normalize_condition",
    "condition_genes",
    "canonicalize",
    "read_perturbench",
    "read_gears",
    "read_scfoundation",
    "gears_go_genes",
    "go_filter_keep",
    "read_canonical",
    "load_dataset",
    "Layout",
    "LayoutReader",
    "LAYOUTS",
    "register_layout",
    "get_layout",
    "condition_table",
    "SparseRowWriter",
]


class SparseRowWriter:
    """Write a CSR matrix into an open h5ad file (``h5py.File``) block of rows by block
    of rows.

    The first block replaces whatever stands at ``key`` (e.g. the empty placeholder that
    ``AnnData.write_h5ad`` wrote) and is stored resizable by anndata; later blocks are
    appended. Used by every writer that streams a matrix too large for memory (the
    GO-filtered copies here, the simulator's Norman-scale file, the stand-ins).
    """

    def __init__(self, h5, key: str):
        self.h5, self.key, self._out = h5, key, None

    def append(self, block: sp.csr_matrix) -> None:
        from anndata.io import sparse_dataset, write_elem

        if self._out is None:
            if self.key in self.h5:
                del self.h5[self.key]
            write_elem(self.h5, self.key, block)
            self._out = sparse_dataset(self.h5[self.key])
        else:
            self._out.append(block)


_CONTROL_ALIASES = {
    "ctrl",
    "control",
    "non-targeting",
    "non_targeting",
    "nt",
    "negctrl",
}


class LoaderError(BookError, ValueError):
    """A file or AnnData does not have the layout the loader expects (message says what
    and how to fix)."""


def normalize_condition(label: str) -> str:
    """Map a source condition label to the canonical form: ``ctrl``, ``A`` or ``A+B``.

    ``"control"`` -> ``"ctrl"``; ``"KLF1+ctrl"`` and ``"ctrl+KLF1"`` -> ``"KLF1"``;
    ``"CEBPE+CEBPB"`` stays as it is (the order of the source is kept).
    """
    text = str(label).strip()
    if text.lower() in _CONTROL_ALIASES:
        return CONTROL
    parts = [p.strip() for p in text.split("+")]
    if any(p == "" for p in parts):
        raise LoaderError(
            f"Malformed condition label {label!r}: empty gene name around '+'."
        )
    genes = [p for p in parts if p.lower() not in _CONTROL_ALIASES]
    if not genes:
        return CONTROL
    if len(set(genes)) != len(genes):
        raise LoaderError(
            f"Malformed condition label {label!r}: the same gene appears twice."
        )
    return "+".join(genes)


def canonicalize(
    adata: ad.AnnData,
    *,
    condition_key: str,
    dataset: str,
    layout: str,
    normalisation: str,
    gene_symbol_key: str | None = None,
    cell_line: str | None = None,
    source_file: str | None = None,
) -> ad.AnnData:
    """Bring an AnnData (in memory or backed) into the canonical form described in the
    module docstring.

    Works in place on ``obs``/``var``/``uns`` and never touches ``X`` (so backed files
    stay on disk).
    """
    if condition_key not in adata.obs:
        raise LoaderError(
            f"{dataset}: obs has no column {condition_key!r} with the "
            "perturbation condition "
            f"(columns: {list(adata.obs.columns)}). Pass condition_key= naming "
            "the right column."
        )
    source = adata.obs[condition_key].astype(str)
    mapping = {label: normalize_condition(label) for label in pd.unique(source)}
    condition = source.map(mapping)
    if CONTROL not in set(mapping.values()):
        raise LoaderError(
            f"{dataset}: no control cells found in obs[{condition_key!r}] "
            f"(looked for {sorted(_CONTROL_ALIASES)}). "
            "Every analysis in the book is relative to control; check the "
            "control label of your file."
        )
    adata.obs["condition_source"] = source.values
    categories = [CONTROL] + sorted(set(mapping.values()) - {CONTROL})
    adata.obs["condition"] = pd.Categorical(condition.values, categories=categories)
    adata.obs["n_targets"] = np.array(
        [len(condition_genes(c)) for c in condition], dtype=np.int8
    )
    if cell_line is None:
        cell_line = (
            str(adata.obs["cell_type"].iloc[0])
            if "cell_type" in adata.obs
            else "unknown"
        )
    adata.obs["cell_line"] = pd.Categorical([cell_line] * adata.n_obs)

    if gene_symbol_key is not None:
        if gene_symbol_key not in adata.var:
            raise LoaderError(
                f"{dataset}: var has no column {gene_symbol_key!r} with gene symbols "
                f"(columns: {list(adata.var.columns)})."
            )
        symbols = adata.var[gene_symbol_key].astype(str).values
        adata.var["source_var_name"] = adata.var_names.values
        adata.var_names = pd.Index(symbols)
    n_dup = int(adata.var_names.duplicated().sum())
    if n_dup:
        adata.var_names_make_unique()
    adata.var.index.name = "gene"
    adata.obs.index.name = "cell"

    has_counts = "counts" in adata.layers
    adata.uns["perturbbook"] = {
        "dataset": dataset,
        "layout": layout,
        "normalisation": normalisation,
        "source_file": source_file or "",
        "has_counts": has_counts,
        "duplicated_gene_symbols_made_unique": n_dup,
    }
    return adata


def _as_float32_csr(X):
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    else:
        X = sp.csr_matrix(np.asarray(X))
    if X.dtype != np.float32:
        X = X.astype(np.float32)
    return X


def gears_go_genes(
    *, cache: str | os.PathLike | None = None, download: bool = True, registry=None
) -> frozenset[str]:
    """GEARS' perturbable genes with GO annotation:
    ``essential_all_data_pert_genes.pkl`` & keys of ``gene2go_all.pkl``.

    As GEARS v0.1.2 ``PertData.set_pert_genes`` builds ``pert_names`` (registry entries
    ``gears_go_genes`` and ``gears_gene2go``, Harvard Dataverse files 6934320 and
    6153417). Both files are pickles, read like GEARS reads them, after the registry has
    checked them.
    """
    paths = {}
    for name in ("gears_go_genes", "gears_gene2go"):
        paths[name] = data_mod.fetch(
            name, cache=cache, download=download, registry=registry
        )
    with open(paths["gears_go_genes"], "rb") as fh:
        essential = pickle.load(fh)
    with open(paths["gears_gene2go"], "rb") as fh:
        gene2go = pickle.load(fh)
    if isinstance(essential, (str, bytes)) or not hasattr(essential, "__iter__"):
        raise LoaderError(
            f"{paths['gears_go_genes']}: expected a pickled list of gene symbols "
            "(GEARS' "
            f"essential_all_data_pert_genes.pkl), got {type(essential).__name__}."
        )
    if not isinstance(gene2go, dict):
        raise LoaderError(
            f"{paths['gears_gene2go']}: expected a pickled dict gene -> GO terms "
            "(GEARS' gene2go_all.pkl), "
            f"got {type(gene2go).__name__}."
        )
    return frozenset(str(g) for g in essential if g in gene2go)


def go_filter_keep(label: str, go_genes) -> bool:
    """GEARS' rule (``utils.filter_pert_in_go``) on a source label: keep ``ctrl``, and
    ``A+B`` when each part is ``ctrl`` or in ``go_genes``. A label without ``+`` (other
    than ``ctrl``) is an error, as in GEARS."""
    if label == CONTROL:
        return True
    parts = str(label).split("+")
    if len(parts) != 2:
        raise LoaderError(
            f"Condition {label!r} is not in GEARS spelling ('ctrl', 'A+ctrl', "
            "'ctrl+A' or 'A+B'); "
            "GEARS' GO filter is defined only for that spelling."
        )
    return all(p == CONTROL or p in go_genes for p in parts)


def _go_filter_report(labels, go_genes) -> dict:
    labels = pd.unique(pd.Series(labels, dtype=str))
    removed = sorted(label for label in labels if not go_filter_keep(label, go_genes))
    return {
        "rule": "GEARS filter_pert_in_go: each '+' part is ctrl or in "
        "essential_all_data_pert_genes.pkl & gene2go_all.pkl",
        "conditions_removed": removed,
        "n_conditions_removed": len(removed),
        "n_conditions_kept": int(len(labels) - len(removed)),
    }


def _filtered_copy(
    path: Path,
    adata: ad.AnnData,
    keep: np.ndarray,
    removed: list[str],
    chunk_rows: int = 10_000,
) -> Path:
    """Write the kept cells of a backed file to a derived h5ad next to it, streaming X
    in row chunks.

    A backed AnnData cannot be subset without reading X into memory (a backed view
    cannot be indexed again), so the filtered cells are written once and reused; the
    file name carries a key of the source file (size, mtime) and of the removed
    conditions. Costs disk: about the kept share of the source file.
    """
    import hashlib
    import json

    import h5py

    stat = path.stat()
    key = hashlib.sha256(
        json.dumps(
            [str(path.resolve()), stat.st_size, stat.st_mtime_ns, removed]
        ).encode()
    )
    target = path.parent / ".go_filtered" / f"{path.stem}.{key.hexdigest()[:12]}.h5ad"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f"{path.stem}.*.h5ad"):
        stale.unlink()  # an older filtered copy of the same source
    n_keep = int(keep.sum())
    empty = sp.csr_matrix((n_keep, adata.n_vars), dtype=np.float32)
    layers = list(adata.layers.keys())
    small = ad.AnnData(
        X=empty,
        obs=adata.obs[keep].copy(),
        var=adata.var.copy(),
        uns=dict(adata.uns),
        layers={k: empty.copy() for k in layers},
    )
    tmp = target.with_name(target.name + ".part")
    try:
        small.write_h5ad(tmp)
        sources = [("X", adata.X), *[(f"layers/{k}", adata.layers[k]) for k in layers]]
        with h5py.File(tmp, "a") as h5:
            for name, matrix in sources:
                out = SparseRowWriter(h5, name)
                for start in range(0, adata.n_obs, chunk_rows):
                    stop = min(start + chunk_rows, adata.n_obs)
                    out.append(_as_float32_csr(matrix[start:stop])[keep[start:stop]])
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def read_perturbench(
    path: str | os.PathLike,
    *,
    dataset: str = "norman2019_subset",
    screen: str = "norman19",
    normalisation: str = "",
) -> ad.AnnData:
    """Read a perturbench-style h5ad (``obs["condition"]`` with ``control``;
    ``obs["dataset"]`` naming screens).

    Only cells of ``screen`` are kept (the development file also holds another screen).
    """
    adata = ad.read_h5ad(path)
    for col in ("condition", "dataset"):
        if col not in adata.obs:
            raise LoaderError(
                f"{path}: not in perturbench layout, obs lacks {col!r} (has "
                f"{list(adata.obs.columns)})."
            )
    screens = adata.obs["dataset"].astype(str)
    if screen not in set(screens):
        raise LoaderError(
            f"{path}: no cells of screen {screen!r}; screens present: "
            f"{sorted(set(screens))}."
        )
    adata = adata[screens.values == screen].copy()
    adata.X = _as_float32_csr(adata.X)
    cell_line = (
        str(adata.obs["cell_type"].iloc[0]).upper()
        if "cell_type" in adata.obs
        else None
    )
    return canonicalize(
        adata,
        condition_key="condition",
        dataset=dataset,
        layout="perturbench",
        normalisation=normalisation,
        cell_line=cell_line,
        source_file=str(path),
    )


_LAYOUT_NAMES = {
    "gears": "GEARS",
    "scfoundation": "scFoundation (Norman, figshare 44477939)",
}


def _read_gears_like(
    path,
    *,
    dataset: str,
    layout: str,
    backed: str | None,
    normalisation: str,
    go_genes,
    required_obs,
) -> ad.AnnData:
    path = Path(path)
    adata = ad.read_h5ad(path, backed=backed)
    missing = [c for c in required_obs if c not in adata.obs]
    if missing:
        raise LoaderError(
            f"{path}: not in {_LAYOUT_NAMES[layout]} layout, obs lacks "
            f"{', '.join(repr(c) for c in missing)} "
            f"(has {list(adata.obs.columns)})."
        )
    report = None
    if go_genes is not None:
        source = adata.obs["condition"].astype(str)
        report = _go_filter_report(source, go_genes)
        keep = ~source.isin(report["conditions_removed"]).to_numpy()
        report["n_cells_removed"] = int((~keep).sum())
        print(
            f"{dataset}: GEARS' GO filter removed {report['n_conditions_removed']} of "
            f"{report['n_conditions_removed'] + report['n_conditions_kept']} "
            "conditions "
            f"({report['n_cells_removed']} cells): "
            f"{', '.join(report['conditions_removed']) or 'none'}"
        )
        if not keep.all():
            if backed:
                filtered = _filtered_copy(
                    path, adata, keep, report["conditions_removed"]
                )
                adata.file.close()
                adata = ad.read_h5ad(filtered, backed=backed)
                report["filtered_file"] = str(filtered)
            else:
                adata = adata[keep].copy()
            adata.obs["condition"] = (
                adata.obs["condition"].astype(str).astype("category")
            )
    gene_key = "gene_name" if "gene_name" in adata.var else None
    if not backed:
        if (
            "counts" not in adata.layers
            and adata.raw is not None
            and adata.raw.n_vars == adata.n_vars
        ):
            adata.layers["counts"] = _as_float32_csr(adata.raw.X)
            adata.raw = None
        adata.X = _as_float32_csr(adata.X)
    adata = canonicalize(
        adata,
        condition_key="condition",
        dataset=dataset,
        layout=layout,
        normalisation=normalisation,
        gene_symbol_key=gene_key,
        source_file=str(path),
    )
    if report is not None:
        adata.uns["perturbbook"]["go_filter"] = report
    return adata


def read_gears(
    path: str | os.PathLike,
    *,
    dataset: str,
    backed: str | None = None,
    normalisation: str = "",
    go_genes=None,
) -> ad.AnnData:
    """Read GEARS' ``perturb_processed.h5ad`` (``obs["condition"]`` as ``A+ctrl`` /
    ``ctrl+A`` / ``A+B`` / ``ctrl``).

    Layout (GEARS ``data_utils.get_DE_genes``; see ``helpers/standins.py`` for the
    sources): var index = Ensembl ids with symbols in ``var['gene_name']`` (the symbols
    become ``var_names``, the ids go to ``var['source_var_name']``); obs ``cell_type`` /
    ``dose_val`` / ``control`` / ``condition_name``; uns DE dictionaries;
    ``layers['counts']`` in GEARS Norman. ``go_genes``: apply GEARS' GO filter (see
    :func:`gears_go_genes`). With ``backed="r"``, ``X`` stays on disk.
    """
    return _read_gears_like(
        path,
        dataset=dataset,
        layout="gears",
        backed=backed,
        normalisation=normalisation,
        go_genes=go_genes,
        required_obs=("condition",),
    )


def read_scfoundation(
    path: str | os.PathLike,
    *,
    dataset: str = "norman2019",
    backed: str | None = None,
    normalisation: str = "",
    go_genes=None,
) -> ad.AnnData:
    """Read scFoundation's Norman h5ad (the member of figshare file 44477939 that the
    paper used).

    Layout (the paper's ``prepare_perturbation_data.py``; scFoundation's GEARS fork;
    issue #13): obs ``condition`` in GEARS spelling, ``cell_type``, ``total_count``;
    ``var['gene_name']``; X sparse. ``go_genes``: apply GEARS' GO filter, as the paper
    did through GEARS.
    """
    return _read_gears_like(
        path,
        dataset=dataset,
        layout="scfoundation",
        backed=backed,
        normalisation=normalisation,
        go_genes=go_genes,
        required_obs=("condition", "total_count"),
    )


def read_canonical(path: str | os.PathLike, *, backed: str | None = None) -> ad.AnnData:
    """Read an h5ad written by this book (e.g. by the simulator), which is already
    canonical."""
    adata = ad.read_h5ad(path, backed=backed)
    if "condition" not in adata.obs or "perturbbook" not in adata.uns:
        raise LoaderError(
            f"{path}: not a canonical AnnData written by the book's helpers."
        )
    return adata


class LayoutReader(Protocol):
    """What every layout reader is: ``reader(path, entry, **options)``.

    ``path``: the verified local file (:func:`helpers.data.fetch`); ``entry``: its
    :class:`helpers.data.RegistryEntry`; ``options``: ``backed``, ``cache``,
    ``download`` (and ``chunk_rows`` for lazy readers); a reader ignores the options
    it does not use.
    Returns the canonical AnnData (``lazy=False``) or a lazy screen of
    :mod:`helpers.scale` (``lazy=True``).
    """

    def __call__(self, path: Path, entry: data_mod.RegistryEntry, /, **options): ...


@dataclass(frozen=True)
class Layout:
    """A registered layout: its name (the registry's ``layout`` field), its reader, and
    whether the reader is lazy (atlas-scale sources, :mod:`helpers.scale.loaders`)."""

    name: str
    reader: LayoutReader
    lazy: bool = False


#: layout name -> :class:`Layout`; filled by :func:`register_layout`.
LAYOUTS: dict[str, Layout] = {}
# modules that register further layouts (imported on demand: they need Dask)
_LAYOUT_MODULES = (".scale.loaders",)


def register_layout(name: str, *, lazy: bool = False):
    """Decorator: register ``reader`` (a :class:`LayoutReader`) for the layout ``name``.

    ``name``: the value of the registry's ``layout`` field; ``lazy``: the reader returns
    a lazy screen instead of an AnnData. A registry entry with that layout is then read
    by it without any other change.
    """

    def decorate(reader: LayoutReader) -> LayoutReader:
        LAYOUTS[name] = Layout(name, reader, lazy)
        return reader

    return decorate


def get_layout(name: str | None) -> Layout:
    """The registered :class:`Layout` called ``name``; an unknown one is an error naming
    the known layouts."""
    if name not in LAYOUTS:
        import importlib

        for module in _LAYOUT_MODULES:
            importlib.import_module(module, __package__)
    if name not in LAYOUTS:
        raise LoaderError(
            f"Unknown layout {name!r}: give the registry entry one of the known "
            f"layouts ({', '.join(sorted(LAYOUTS))}) or register a reader with "
            "@register_layout."
        )
    return LAYOUTS[name]


@register_layout("perturbench")
def _perturbench_layout(path: Path, entry: data_mod.RegistryEntry, /, **options):
    # the perturbench subset is small and always read into memory
    return read_perturbench(path, dataset=entry.name, normalisation=entry.normalisation)


def _gears_like_layout(read):
    def reader(
        path: Path,
        entry: data_mod.RegistryEntry,
        /,
        *,
        backed=None,
        cache=None,
        download=True,
        **options,
    ):
        go_genes = None
        if entry.go_filter:
            go_genes = gears_go_genes(cache=cache, download=download)
        return read(
            path,
            dataset=entry.name,
            normalisation=entry.normalisation,
            backed=backed,
            go_genes=go_genes,
        )

    return reader


register_layout("gears")(_gears_like_layout(read_gears))
register_layout("scfoundation")(_gears_like_layout(read_scfoundation))


def load_dataset(
    name: str,
    *,
    backed: str | None = None,
    download: bool = True,
    cache: str | os.PathLike | None = None,
) -> ad.AnnData:
    """Fetch a registered dataset (see :mod:`helpers.data`) and return it as canonical
    AnnData.

    ``name``: the registry name; ``backed``: ``"r"`` keeps ``X`` on disk (use it for
    the full Norman, Replogle files on small machines); ``download``: ``False`` raises
    instead of downloading; ``cache``: the cache folder (default:
    :func:`helpers.data.cache_dir`).
    The entry's ``layout`` picks the reader (:data:`LAYOUTS`). Entries with
    ``go_filter = true`` (the paper's GEARS and scFoundation files) get GEARS' GO filter
    (module docstring), which needs the registry files ``gears_go_genes`` and
    ``gears_gene2go``.
    """
    entry = data_mod.get_entry(name)
    try:
        layout = get_layout(entry.layout)
    except LoaderError as err:
        raise LoaderError(
            f"Registry entry {name!r} is not a dataset with a known layout: {err}"
        ) from None
    if layout.lazy:
        raise LoaderError(
            f"Registry entry {name!r} is not a dataset with a known layout for memory "
            f"(layout={entry.layout!r} is read lazily): use "
            f"helpers.scale.loaders.load_screen({name!r})."
        )
    path = data_mod.fetch(name, download=download, cache=cache)
    return layout.reader(
        Path(path), entry, backed=backed, cache=cache, download=download
    )


def condition_table(adata: ad.AnnData) -> pd.DataFrame:
    """One row per condition of ``adata`` (canonical): condition, kind (control /
    single / double), targets, number of cells."""
    if "condition" not in adata.obs:
        raise LoaderError(
            "obs has no 'condition'; load the data with load_dataset() first."
        )
    counts = adata.obs["condition"].value_counts(sort=False)
    counts = counts[counts > 0]
    kinds = {0: "control", 1: "single", 2: "double"}
    rows = []
    for condition, n in counts.items():
        genes = condition_genes(str(condition))
        rows.append(
            {
                "condition": str(condition),
                "kind": kinds.get(len(genes), f"{len(genes)} targets"),
                "targets": ";".join(genes),
                "n_cells": int(n),
            }
        )
    table = pd.DataFrame(rows)
    order = {"control": 0, "single": 1, "double": 2}
    table["_order"] = table["kind"].map(order).fillna(3)
    return (
        table.sort_values(["_order", "condition"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _short_path(value: str, roots: dict[str, Path]) -> str:
    """``value`` relative to the first root that holds it, as ``<name>/...``."""
    try:
        path = Path(value).resolve()
    except (OSError, ValueError):
        return value
    for name, root in roots.items():
        try:
            return f"<{name}>/{path.relative_to(root).as_posix()}"
        except ValueError:
            continue
    return value


def _wrap_path(text: str, width: int) -> list[str]:
    """A path in lines of at most ``width`` characters, broken after a ``/``."""
    lines, line = [], ""
    for part in text.split("/"):
        piece = part if not line else "/" + part
        if line and len(line) + len(piece) > width:
            lines.append(line + "/")
            piece = part
            line = ""
        line += piece
        while len(line) > width:  # one name longer than the page: cut it
            lines.append(line[:width])
            line = line[width:]
    return lines + [line]


def provenance_text(adata: ad.AnnData, width: int = 88) -> str:
    """``adata``'s ``uns["perturbbook"]`` as ``key  value`` lines of at most ``width``
    characters (nested records as ``go_filter.rule``; lists comma-separated).

    Paths (``source_file``, the GO filter's ``filtered_file``) are shown relative to the
    data cache (``<cache>/``, ``$PERTURBBOOK_CACHE``) or to the folder beside the
    repository (``<repo parent>/``, where ``../shared`` lives) and broken after a
    ``/``: a full cache path such as ``/home/runner/.cache/perturbbook/norman2019/...``
    is wider than the book's page and says nothing a reader can use.
    """
    import textwrap

    roots = {
        "cache": data_mod.cache_dir().resolve(),
        "repo parent": Path(__file__).resolve().parents[2],
    }
    items: list[tuple[str, object]] = []

    def flatten(record: dict, prefix: str = "") -> None:
        for key, value in record.items():
            if isinstance(value, dict):
                flatten(value, f"{prefix}{key}.")
            else:
                items.append((f"{prefix}{key}", value))

    flatten(dict(adata.uns.get("perturbbook", {})))
    key_width = min(max((len(k) for k, _ in items), default=0) + 2, 32, width // 3)
    room = width - key_width
    out = []
    for key, value in items:
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or "none"
        text = str(value)
        if isinstance(value, str) and os.sep in value and " " not in value:
            lines = _wrap_path(_short_path(value, roots), room)
        else:
            lines = textwrap.wrap(text, room, break_long_words=True) or [""]
        label = key if len(key) < key_width else key + "\n" + " " * key_width
        out.append(f"{label:<{key_width}}{lines[0]}")
        out += [" " * key_width + line for line in lines[1:]]
    return "\n".join(out)
