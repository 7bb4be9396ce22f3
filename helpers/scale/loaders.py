"""Registry -> lazy screen for the atlas-scale sources (chapter 10).

The one-way path of the book, at scale: :mod:`helpers.data` fetches and verifies the
files (registry entries ``replogle_k562_gwps``, ``tahoe100m_gene_metadata``,
``tahoe100m_shard``), these loaders open them lazily with the canonical
``obs['condition']`` (``ctrl`` for controls, as
:func:`helpers.loaders.normalize_condition` maps them), and
:func:`helpers.scale.pseudobulk` turns them into the book's
:class:`~helpers.pseudobulk.Pseudobulk`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .. import data as data_mod
from ..loaders import get_layout, normalize_condition, register_layout
from .readers import DEFAULT_CHUNK_ROWS, LazyScreen, ScaleError, open_store
from .tahoe import TAHOE, open_tahoe

__all__ = [
    "load_screen",
    "load_replogle_gwps",
    "load_tahoe",
    "fetch_tahoe",
    "with_condition",
]


def _condition_of(name: str) -> tuple[str, str]:
    """The registry entry ``name``'s condition column and control label."""
    entry = data_mod.get_entry(name)
    if not entry.condition_column or not entry.control_label:
        raise ScaleError(
            f"Registry entry {name!r} lacks condition_column or control_label; add "
            "both to data/registry.toml (the obs column of the condition and its "
            "control value)."
        )
    return entry.condition_column, entry.control_label


def load_screen(
    name: str,
    path: str | os.PathLike | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    download: bool = False,
    cache=None,
) -> LazyScreen:
    """The registry dataset ``name``, read lazily by its layout's reader.

    ``name``: a registry entry with a lazy layout (``replogle_gwps``,
    ``tahoe_parquet``);
    ``path``: a local file or folder instead of the cached one; ``chunk_rows``: cells
    per block; ``download``: fetch a missing file; ``cache``: the cache folder.
    """
    entry = data_mod.get_entry(name)
    layout = get_layout(entry.layout)
    if not layout.lazy:
        raise ScaleError(
            f"Registry entry {name!r} has layout {entry.layout!r}, read into memory: "
            f"use helpers.loaders.load_dataset({name!r})."
        )
    return layout.reader(
        path, entry, chunk_rows=chunk_rows, download=download, cache=cache
    )


def with_condition(screen: LazyScreen, column: str, control: str) -> LazyScreen:
    """Add the canonical ``obs['condition']`` from ``obs[column]`` (``control`` ->
    ``ctrl``).
    """
    if column not in screen.obs:
        raise ScaleError(
            f"{screen.path}: obs has no column {column!r}; is this the right file?"
        )
    labels = screen.obs[column].astype(str)
    if not (labels == control).any():
        raise ScaleError(f"{screen.path}: no control cells ({column} == {control!r}).")
    mapping = {
        v: ("ctrl" if v == control else normalize_condition(v)) for v in labels.unique()
    }
    screen.obs["condition"] = pd.Categorical(labels.map(mapping))
    return screen


def load_replogle_gwps(
    path: str | os.PathLike | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    download: bool = False,
    cache=None,
    name: str = "replogle_k562_gwps",
) -> LazyScreen:
    """The genome-wide K562 raw single-cell file, lazily; ``obs['condition']`` from
    ``obs['gene']``.

    ``path``: a local copy (default: the registry's file ``name`` from the cache);
    ``chunk_rows``: cells per block; ``download``: fetch a missing file; ``cache``: the
    cache folder; ``name``: the registry entry (any entry in this file's layout,
    ``replogle_gwps``) whose condition column and control label are used.

    X is dense float32 raw counts in the published file and CSR in a re-written copy;
    both are read in blocks of ``chunk_rows`` cells (all genes per block). ``path=None``
    takes the registry's file from the cache (``download=True`` fetches the 66 GB if it
    is missing).
    """
    if path is None:
        path = data_mod.fetch(name, download=download, cache=cache)
    screen = open_store(path, chunk_rows=chunk_rows, dataset=name)
    missing = [c for c in ("gene", "gem_group", "UMI_count") if c not in screen.obs]
    if missing:
        raise ScaleError(
            f"{path} is not the genome-wide K562 raw file: obs lacks {missing}."
        )
    var = screen.meta.get("var")
    if (
        var is not None and "gene_name" in var
    ):  # var index: Ensembl ids; conditions name symbols
        from anndata.utils import make_index_unique

        screen.var_names = make_index_unique(
            pd.Index(var["gene_name"].astype(str), name="gene")
        )
    column, control = _condition_of(name)
    return with_condition(screen, column, control)


@register_layout("replogle_gwps", lazy=True)
def _replogle_gwps_layout(
    path,
    entry,
    /,
    *,
    chunk_rows=DEFAULT_CHUNK_ROWS,
    download=False,
    cache=None,
    **options,
) -> LazyScreen:
    return load_replogle_gwps(
        path, chunk_rows=chunk_rows, download=download, cache=cache, name=entry.name
    )


def fetch_tahoe(
    n_shards: int = 1, *, first: int = 0, download: bool = False, cache=None
) -> Path:
    """Fetch (verify) ``n_shards`` cell shards and the gene table; return a folder in
    the Hub layout.

    Shard ``k`` uses the registry entry ``tahoe100m_shard`` with ``00000`` replaced by
    ``k`` (same checks: format, hash recorded on first download). The folder holds links
    to the cached files, so :func:`load_tahoe` reads it like a local copy of the
    repository.

    ``first``: the first shard's number; ``download``: fetch missing files (``False``:
    raise instead); ``cache``: the cache folder.
    """
    registry = data_mod.load_registry()
    cache = data_mod.cache_dir(cache)
    folder = cache / "tahoe100m"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    genes = data_mod.fetch("tahoe100m_gene_metadata", download=download, cache=cache)
    _link(genes, folder / TAHOE["gene_metadata"])
    template = registry["tahoe100m_shard"]
    for k in range(first, first + n_shards):
        tag = f"{k:05d}"
        entry = replace(
            template,
            name=f"tahoe100m_shard_{tag}",
            url=template.url.replace("00000", tag, 1),
            filename=template.filename.replace("00000", tag, 1),
            seed_names=(),
        )
        path = data_mod.fetch(
            entry.name, download=download, cache=cache, registry={entry.name: entry}
        )
        _link(path, folder / "data" / entry.filename.split("_", 1)[1])
    return folder


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path(target).resolve())


def load_tahoe(
    folder: str | os.PathLike | None = None,
    *,
    n_shards: int = 1,
    download: bool = False,
    cache=None,
) -> LazyScreen:
    """Tahoe-100M shards, lazily; ``obs['condition']`` = drug (``DMSO_TF`` ->
    ``ctrl``)."""
    if folder is None:
        folder = fetch_tahoe(n_shards, download=download, cache=cache)
    screen = open_tahoe(folder)
    column, control = _condition_of("tahoe100m_shard")
    return with_condition(screen, column, control)


@register_layout("tahoe_parquet", lazy=True)
def _tahoe_layout(path, entry, /, *, download=False, cache=None, **options):
    return load_tahoe(path, download=download, cache=cache)
