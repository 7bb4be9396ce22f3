"""Data registry, verified downloads and the local cache (introduced in chapter 1).

Every file the book reads comes through :func:`fetch`:

registry (``data/registry.toml``) -> the publisher's MD5 (registry, or the publisher's
metadata API) -> download with a browser-like User-Agent, retries and a progress bar
(pooch) -> check (format, sha256 / MD5; trust on first use where no checksum exists) ->
atomic move into the cache -> (for zip archives) extraction of the member the loaders
read.

A publisher that refuses the script (HTTP 401/403, or an HTML challenge page instead of
the file, as figshare does to many notebook servers) gets an error that says how to
download the file in a browser and seed it; seeding recognises the saved file by name or
by content.

A file that fails a check never stays in the cache. Where no network is available (CI, a
course room), :func:`seed_cache` copies files you already have into the cache through
the same checks: ``python -m helpers.data seed ../shared``.

The cache directory is ``$PERTURBBOOK_CACHE`` if set, otherwise the user's cache
directory (``~/.cache/perturbbook`` on Linux). Where ``$PERTURBBOOK_NO_DEFAULT_CACHE``
is ``1`` (set by ``scripts/build_book.sh`` and the test suite whenever
``$PERTURBBOOK_CACHE`` is set), asking for the default cache is an error: a step that
lost the setting (a subprocess started without it) stops with one line instead of
reading or filling another cache than the configured one.

A local mirror (``$PERTURBBOOK_MIRROR``, e.g. ``http://127.0.0.1:8000``) replaces the
scheme and host of every registry address and keeps the publisher's host and path under
it: figshare's ``https://figshare.com/ndownloader/files/44477939`` is read from
``$PERTURBBOOK_MIRROR/figshare.com/ndownloader/files/44477939``, Dataverse's metadata
``https://dataverse.harvard.edu/api/files/6154020`` from
``$PERTURBBOOK_MIRROR/dataverse.harvard.edu/api/files/6154020``. The checks are the
same.

``python -m helpers.data check-urls`` streams every registry address (hashing it, not
storing it) and fails, naming each dataset, where an address no longer answers, or
answers with another size or checksum than the registry (or the publisher's metadata,
or the hash recorded at the first download).

Where ``$PERTURBBOOK_USAGE_LOG`` names a file, every :func:`fetch` (and the simulator,
through :func:`record_use`) appends one JSON line saying what was read;
``helpers.execute`` uses it to label each executed page with the data it ran on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from .errors import BookError

__all__ = [
    "DataError",
    "RegistryEntry",
    "cache_dir",
    "default_cache_dir",
    "load_registry",
    "get_entry",
    "checkout_entry",
    "fetch",
    "seed_cache",
    "cache_status",
    "sha256sum",
    "check_format",
    "publisher_md5",
    "BROWSER_USER_AGENT",
    "mirrored",
    "record_use",
    "check_urls",
]

CACHE_ENV = "PERTURBBOOK_CACHE"
NO_DEFAULT_CACHE_ENV = "PERTURBBOOK_NO_DEFAULT_CACHE"
REGISTRY_ENV = "PERTURBBOOK_REGISTRY"
MIRROR_ENV = "PERTURBBOOK_MIRROR"
USAGE_LOG_ENV = "PERTURBBOOK_USAGE_LOG"
RECORDED_HASHES = "recorded_hashes.json"
# figshare and Dataverse answer many scripted clients with 403 or an HTML challenge page
# (googlecolab/colabtools#4601); a browser-like User-Agent avoids part of it.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0 Safari/537.36"
)

# Leading bytes of each format the registry names (xlsx files are zip archives).
MAGIC = {
    "h5ad": b"\x89HDF\r\n\x1a\n",
    "zip": b"PK\x03\x04",
    "xlsx": b"PK\x03\x04",
    "pickle": b"\x80",
    "deb": b"!<arch>\n",
    "parquet": b"PAR1",
}


class DataError(BookError, RuntimeError):
    """A dataset could not be provided: the message names the dataset, what went wrong
    and the fix."""


@dataclass(frozen=True)
class RegistryEntry:
    """One dataset of the registry (``data/registry.toml`` says what each field means).

    Besides where a file comes from and how it is checked, an entry holds the dataset's
    facts that the rest of the book reads from here (the one record per dataset): its
    ``label``, ``cell_line``, ``modality``, ``control_label``, ``transfer_source``, the
    paper's id and counts, the benchmark task it gets and the sizes of its stand-ins.
    """

    name: str
    url: str
    filename: str
    format: str
    description: str = ""
    sha256: str = ""
    md5: str = ""
    checksum_api: str = ""
    size: int | None = None
    member: str | None = None
    layout: str | None = None
    normalisation: str = ""
    licence: str = ""
    citation: str = ""
    kind: str = "dataset"
    seed_names: tuple[str, ...] = field(default_factory=tuple)
    go_filter: bool = False
    label: str = ""
    short_label: str = ""
    cell_line: str = ""
    file_cell_type: str = ""
    modality: str = ""
    control_label: str = ""
    condition_column: str = ""
    transfer_source: str = ""
    paper_id: str = ""
    paper_n_singles: int | None = None
    benchmark: str = ""
    counts_layer: bool = False
    standin_full: Mapping[str, int] | None = None
    standin_small: Mapping[str, int] | None = None
    standin_targets_in_var: float | None = None

    @property
    def display_label(self) -> str:
        """``label``, else the registry name."""
        return self.label or self.name

    def standin(self, scale: str) -> Mapping[str, int] | None:
        """The stand-in sizes of ``scale`` (``"full"`` or ``"small"``), or None."""
        return {"full": self.standin_full, "small": self.standin_small}[scale]

    @property
    def names_to_seed(self) -> set[str]:
        """File names that :func:`seed_cache` recognises as this entry."""
        return {self.filename, *self.seed_names}


# --------------------------------------------------------------------------------------
# registry and cache locations


def _default_registry_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "registry.toml"


def checkout_entry(name: str) -> RegistryEntry:
    """The entry ``name`` of this checkout's ``data/registry.toml`` (not
    ``$PERTURBBOOK_REGISTRY``): the facts of the real files that the stand-in writers
    imitate."""
    return get_entry(name, load_registry(_default_registry_path()))


def load_registry(path: str | os.PathLike | None = None) -> dict[str, RegistryEntry]:
    """Read the registry TOML (default: ``data/registry.toml`` of this checkout, or
    ``$PERTURBBOOK_REGISTRY``)."""
    path = Path(path or os.environ.get(REGISTRY_ENV) or _default_registry_path())
    if not path.is_file():
        raise DataError(
            f"The data registry {path} does not exist. The helpers are meant to "
            "be installed from a "
            "checkout of the book (pip install -e .), which holds "
            "data/registry.toml; or point "
            f"${REGISTRY_ENV} at a registry file."
        )
    stat = path.stat()
    mirror = os.environ.get(MIRROR_ENV, "")
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, mirror)
    if key not in _REGISTRY_CACHE:
        _REGISTRY_CACHE.clear()
        _REGISTRY_CACHE[key] = _read_registry(path)
    return dict(_REGISTRY_CACHE[key])


# the last registry read, keyed by (path, mtime, size, mirror): entries are frozen
_REGISTRY_CACHE: dict[tuple, dict[str, RegistryEntry]] = {}


def _read_registry(path: Path) -> dict[str, RegistryEntry]:
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    entries = {}
    for name, spec in raw.items():
        missing = {"url", "filename", "format"} - set(spec)
        if missing:
            raise DataError(
                f"Registry entry {name!r} in {path} lacks {sorted(missing)}."
            )
        if spec["format"] not in MAGIC:
            raise DataError(
                f"Registry entry {name!r} has format {spec['format']!r}; known "
                f"formats: {sorted(MAGIC)}."
            )
        spec = _checked_fields(name, dict(spec), path)
        spec["seed_names"] = tuple(spec.get("seed_names", ()))
        for key in ("url", "checksum_api"):
            if spec.get(key):
                spec[key] = mirrored(spec[key])
        entries[name] = RegistryEntry(name=name, **spec)
    for entry in entries.values():
        if entry.transfer_source and entry.transfer_source not in entries:
            raise DataError(
                f"Registry entry {entry.name!r} in {path}: transfer_source "
                f"{entry.transfer_source!r} is not a registry entry; name one of "
                f"{', '.join(sorted(entries))}."
            )
    return entries


_FIELD_TYPES = {
    "int": (int,),
    "int | None": (int,),
    "float | None": (int, float),
    "bool": (bool,),
    "str": (str,),
    "str | None": (str,),
    "tuple[str, ...]": (list, tuple),
    "Mapping[str, int] | None": (dict,),
}
_ALLOWED = {
    "modality": ("CRISPRa", "CRISPRi", "drug"),
    "benchmark": ("singles",),
}
_STANDIN_KEYS = {"n_cells", "n_genes", "n_singles", "n_doubles"}


def _checked_fields(name: str, spec: dict, path: Path) -> dict:
    """``spec`` with each field checked against :class:`RegistryEntry` (one line per
    problem: the entry, the field and the fix)."""
    import dataclasses

    fields = dataclasses.fields(RegistryEntry)
    types = {f.name: f.type for f in fields if f.name != "name"}
    where = f"Registry entry {name!r} in {path}"
    for key, value in spec.items():
        if key not in types:
            raise DataError(
                f"{where} has the unknown field {key!r}; fix its spelling or use one "
                "of "
                f"{', '.join(sorted(types))}."
            )
        ok = _FIELD_TYPES[types[key]]
        if not isinstance(value, ok) or (bool not in ok and isinstance(value, bool)):
            raise DataError(
                f"{where}: field {key!r} is {value!r}; write a {types[key]} value."
            )
        if key in _ALLOWED and value not in _ALLOWED[key]:
            raise DataError(
                f"{where}: field {key!r} is {value!r}; use one of "
                f"{', '.join(_ALLOWED[key])}."
            )
        if key.startswith("standin_") and isinstance(value, dict):
            bad = sorted(set(value) - _STANDIN_KEYS) or sorted(
                {"n_cells", "n_genes", "n_singles"} - set(value)
            )
            if bad or not all(isinstance(v, int) for v in value.values()):
                raise DataError(
                    f"{where}: field {key!r} is {value!r}; give integer n_cells, "
                    "n_genes, n_singles (and n_doubles for double screens)."
                )
            spec[key] = MappingProxyType(dict(value))
    return spec


def mirrored(url: str, mirror: str | None = None) -> str:
    """``url`` as served by the mirror ``mirror`` (default ``$PERTURBBOOK_MIRROR``;
    none: ``url`` itself):
    ``https://host/path`` -> ``<mirror>/host/path``."""
    from urllib.parse import urlsplit

    mirror = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    if not mirror:
        return url
    parts = urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataError(
            f"${MIRROR_ENV} is {mirror!r}: give the mirror's base address, e.g. "
            "http://127.0.0.1:8000 "
            f"(or unset ${MIRROR_ENV} to download from the publishers)."
        )
    source = urlsplit(url)
    query = f"?{source.query}" if source.query else ""
    return f"{mirror.rstrip('/')}/{source.netloc}{source.path}{query}"


def record_use(name: str, **detail) -> None:
    """Append what was read (a registry dataset, the simulator, ...) to
    ``$PERTURBBOOK_USAGE_LOG``, if set."""
    log = os.environ.get(USAGE_LOG_ENV)
    if not log:
        return
    with open(log, "a") as fh:
        fh.write(json.dumps({"name": name, **detail}, sort_keys=True) + "\n")


def get_entry(
    name: str, registry: dict[str, RegistryEntry] | None = None
) -> RegistryEntry:
    """The registry entry called ``name`` (from ``registry``, default: the registry
    file), with a helpful error for unknown names."""
    registry = registry if registry is not None else load_registry()
    if name not in registry:
        raise DataError(
            f"Unknown dataset {name!r}. Registered datasets: "
            f"{', '.join(sorted(registry))}."
        )
    return registry[name]


def default_cache_dir() -> Path:
    """Where the cache is when ``$PERTURBBOOK_CACHE`` is not set: the user's cache
    directory (``$XDG_CACHE_HOME/perturbbook``, else ``~/.cache/perturbbook`` on Linux).
    Not created."""
    import pooch

    return Path(pooch.os_cache("perturbbook")).expanduser()


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``path`` if given, else ``$PERTURBBOOK_CACHE``, else the
    user cache dir.

    Raises :class:`DataError` instead of using the user cache dir where
    ``$PERTURBBOOK_NO_DEFAULT_CACHE=1`` (module docstring).
    """
    if path is None:
        path = os.environ.get(CACHE_ENV)
    if not path:
        if os.environ.get(NO_DEFAULT_CACHE_ENV) == "1":
            raise DataError(
                f"{CACHE_ENV} is not set here, but {NO_DEFAULT_CACHE_ENV}=1 says the "
                "configured cache must be used, not the default "
                f"{default_cache_dir()}: "
                f"pass the cache on (keep {CACHE_ENV} in the subprocess's environment, "
                "or give cache=...)."
            )
        path = default_cache_dir()
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------
# checks


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    return _digests(path, chunk)["sha256"]


def _digests(path: str | os.PathLike, chunk: int = 1 << 20) -> dict[str, str]:
    """sha256 and md5 of a file in one pass (publishers give MD5, the book records
    sha256)."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            sha.update(block)
            md5.update(block)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def _looks_like_html(head: bytes) -> bool:
    text = head.lstrip().lower()
    return (
        text.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))
        or b"<html" in text[:512]
    )


def check_format(path: str | os.PathLike, fmt: str) -> None:
    """Raise :class:`DataError` unless the file starts with the magic bytes of ``fmt``.

    An HTML page (what a failing Dataverse or figshare request often returns with
    status 200) is named as such in the message.
    """
    with open(path, "rb") as fh:
        head = fh.read(1024)
    _check_head(head, fmt)


def _check_head(head: bytes, fmt: str) -> None:
    """:func:`check_format` on the first bytes of a file."""
    if head.startswith(MAGIC[fmt]):
        return
    if _looks_like_html(head):
        snippet = head[:200].decode("utf-8", errors="replace").replace("\n", " ")
        raise DataError(
            f"got an HTML page instead of a {fmt} file (starts with: {snippet!r})"
        )
    if not head:
        raise DataError(f"got an empty file instead of a {fmt} file")
    raise DataError(
        f"the file is not a {fmt} file (first bytes {head[:8]!r}, expected "
        f"{MAGIC[fmt]!r})"
    )


def _cached_digests(path: Path, cache: Path) -> dict[str, str]:
    """sha256 and md5 of ``path``; for files in the cache remembered per (size, mtime),
    so multi-GB files are hashed once rather than on every fetch."""
    if path.parent.resolve() != cache.resolve():
        return _digests(path)
    stamp_file = cache / ".verified.json"
    stamps = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
    stat = path.stat()
    key = str(path.resolve())
    stamp = stamps.get(key)
    if (
        stamp
        and stamp["size"] == stat.st_size
        and stamp["mtime_ns"] == stat.st_mtime_ns
        and "md5" in stamp
    ):
        return {"sha256": stamp["sha256"], "md5": stamp["md5"]}
    digests = _digests(path)
    stamps[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **digests}
    tmp = stamp_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamps, indent=1))
    os.replace(tmp, stamp_file)
    return digests


def _recorded_hashes(cache: Path) -> dict[str, str]:
    path = cache / RECORDED_HASHES
    if path.exists():
        return json.loads(path.read_text())
    return {}


def _record_hash(cache: Path, name: str, digest: str) -> None:
    hashes = _recorded_hashes(cache)
    hashes[name] = digest
    tmp = cache / (RECORDED_HASHES + ".tmp")
    tmp.write_text(json.dumps(hashes, indent=2, sort_keys=True))
    os.replace(tmp, cache / RECORDED_HASHES)


def _verify(entry: RegistryEntry, path: Path, cache: Path, *, md5: str = "") -> str:
    """Check a candidate file for ``entry``; return its sha256 or raise
    :class:`DataError`.

    Checks, in order: format (magic bytes; an HTML page is named as such), the registry
    sha256 or the sha256 recorded at the first good download, the publisher's MD5
    (``md5``: from the registry or read from the publisher's metadata API at download
    time), and for zips the member path.
    """
    check_format(path, entry.format)
    digests = _cached_digests(path, cache)
    digest = digests["sha256"]
    expected = entry.sha256 or _recorded_hashes(cache).get(entry.name, "")
    if expected and digest != expected:
        origin = (
            "registry"
            if entry.sha256
            else f"hash recorded at the first download ({RECORDED_HASHES})"
        )
        raise DataError(
            f"sha256 mismatch: got {digest}, expected {expected} ({origin})"
        )
    md5 = (md5 or entry.md5).lower()
    if md5 and digests["md5"] != md5:
        origin = "registry" if entry.md5 else f"publisher metadata {entry.checksum_api}"
        raise DataError(
            f"MD5 mismatch: got {digests['md5']}, expected {md5} ({origin})"
        )
    if entry.format == "zip" and entry.member:
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as err:
            raise DataError(
                f"the file is not a readable zip archive ({err}); it is probably "
                "truncated"
            ) from None
        if entry.member not in names:
            raise DataError(
                f"the archive does not contain {entry.member!r} (it holds {names[:10]})"
            )
    return digest


def publisher_md5(entry: RegistryEntry, *, timeout: float = 60) -> str:
    """The MD5 the publisher lists for ``entry``: the registry's ``md5``, else read from
    ``checksum_api``.

    ``checksum_api`` is the publisher's metadata address: Dataverse's file metadata
    (``https://dataverse.harvard.edu/api/files/<id>``, JSON ``data.dataFile.checksum`` =
    ``{"type": "MD5", "value": ...}``, older servers ``data.dataFile.md5``) or
    figshare's file list of the article
    (``https://api.figshare.com/v2/articles/<article>/files``, a JSON list whose item
    with the ``id`` of the download URL's file carries ``computed_md5``). Returns ``""``
    where the registry has neither (then the hash of the first good download is
    recorded: trust on first use).
    """
    if entry.md5:
        return entry.md5.lower()
    if not entry.checksum_api:
        return ""
    import requests

    try:
        response = requests.get(
            entry.checksum_api,
            headers={"User-Agent": BROWSER_USER_AGENT, "Accept": "application/json"},
            timeout=timeout,
        )
        response.raise_for_status()
        meta = response.json()
    except (requests.exceptions.RequestException, ValueError) as err:
        raise DataError(
            f"Could not read the publisher's checksum of dataset {entry.name!r} "
            f"from {entry.checksum_api} "
            f"({type(err).__name__}: {err}); the download is not verified without it."
        ) from None
    value = ""
    if isinstance(meta, list):  # figshare: the article's file list
        file_id = entry.url.rstrip("/").rsplit("/", 1)[-1]
        for item in meta:
            if str(item.get("id")) == file_id:
                value = item.get("computed_md5") or item.get("supplied_md5") or ""
    elif isinstance(meta, dict):  # Dataverse: file metadata
        datafile = (meta.get("data") or {}).get("dataFile") or {}
        checksum = datafile.get("checksum") or {}
        if str(checksum.get("type", "")).upper() == "MD5":
            value = checksum.get("value", "")
        value = value or datafile.get("md5", "")
    if not value:
        raise DataError(
            f"The publisher's metadata for dataset {entry.name!r} "
            f"({entry.checksum_api}) lists no MD5 for "
            f"{entry.url}; check the registry's checksum_api."
        )
    return str(value).lower()


def _deb_data_tar(path: Path):
    """Open the ``data.tar.*`` of a Debian package (an ar archive) as a tarfile, without
    dpkg."""
    import io
    import tarfile

    with open(path, "rb") as fh:
        if fh.read(8) != MAGIC["deb"]:
            raise DataError(f"{path} is not a Debian package")
        while header := fh.read(60):
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            if name.startswith("data.tar"):
                payload = fh.read(size)
                mode = {
                    "data.tar.xz": "r:xz",
                    "data.tar.gz": "r:gz",
                    "data.tar.bz2": "r:bz2",
                    "data.tar": "r:",
                }.get(name)
                if mode is None:
                    raise DataError(f"{path}: unsupported package payload {name}")
                return tarfile.open(fileobj=io.BytesIO(payload), mode=mode)
            fh.seek(size + (size % 2), 1)
    raise DataError(f"{path} holds no data.tar member")


def _how_to_seed(entry: RegistryEntry, cache: Path) -> str:
    return (
        f"To provide the file by hand, download {entry.url} on a machine with "
        "network access and run "
        "`python -m helpers.data seed <folder or file>` (the file is recognised "
        "by its name "
        f"{entry.filename!r} or by its content, whatever the browser called it; "
        f"cache: {cache}; set "
        f"${CACHE_ENV} to use another cache directory)."
    )


def _manual_download(entry: RegistryEntry, cache: Path, why: str) -> str:
    return (
        f"The publisher refused the scripted download of dataset {entry.name!r} "
        f"({why}). figshare and "
        "Dataverse do this to many scripts and notebook servers (e.g. Colab). "
        "Download it in a browser "
        f"instead: open {entry.url}, let the browser save the file (any name, "
        "any folder; do not unpack "
        "it), then run\n"
        f"    python -m helpers.data seed <the saved file or its folder>\n"
        f"which checks it and copies it into the cache ({cache}; set "
        f"${CACHE_ENV} for another one). "
        "In Colab, upload the file first (Files pane) and run the same command "
        "in a cell with '!'."
    )


# --------------------------------------------------------------------------------------
# download, seed, fetch


def _install(
    entry: RegistryEntry, candidate: Path, cache: Path, *, move: bool, md5: str = ""
) -> Path:
    """Verify ``candidate`` and place it atomically at its cache path (bad files never
    land)."""
    digest = _verify(entry, candidate, cache, md5=md5)
    target = cache / entry.filename
    staging = Path(
        tempfile.mkstemp(dir=cache, prefix=f".{entry.filename}.", suffix=".part")[1]
    )
    try:
        if move:
            shutil.move(candidate, staging)
        else:
            shutil.copyfile(candidate, staging)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    if not entry.sha256:
        _record_hash(cache, entry.name, digest)
    return target


def _download(
    entry: RegistryEntry, cache: Path, retries: int, progressbar: bool
) -> Path:
    import pooch
    import requests

    md5 = publisher_md5(
        entry
    )  # before the transfer: a publisher checksum we cannot read stops here
    tmpdir = Path(tempfile.mkdtemp(dir=cache, prefix=".download-"))
    try:
        part = tmpdir / entry.filename
        downloader = pooch.HTTPDownloader(
            progressbar=progressbar,
            timeout=60,
            headers={"User-Agent": BROWSER_USER_AGENT},
        )
        last_error: Exception | None = None
        for attempt in range(1, retries + 1):
            try:
                downloader(entry.url, str(part), None)
                last_error = None
                break
            except requests.exceptions.HTTPError as err:
                last_error = err
                status = err.response.status_code if err.response is not None else None
                if status in (401, 403):
                    raise DataError(
                        _manual_download(
                            entry, cache, f"HTTP {status} from {entry.url}"
                        )
                    ) from None
                if status is not None and status < 500 and status != 429:
                    break  # a client error will not go away by retrying
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as err:  # refused, timed out, cut off mid-transfer
                last_error = err
                part.unlink(missing_ok=True)
            if attempt < retries:
                time.sleep(min(2**attempt, 10))
        if last_error is not None:
            raise DataError(
                f"Could not download dataset {entry.name!r} from {entry.url} "
                f"({type(last_error).__name__}: {last_error}). Check your "
                "network connection. " + _how_to_seed(entry, cache)
            ) from last_error
        try:
            return _install(entry, part, cache, move=True, md5=md5)
        except DataError as err:
            if str(err).startswith("got an HTML page"):
                raise DataError(
                    _manual_download(
                        entry, cache, f"it sent an HTML page instead of the file: {err}"
                    )
                    + " The page was discarded and the cache is unchanged."
                ) from None
            raise DataError(
                f"Download of dataset {entry.name!r} from {entry.url} was "
                f"rejected: {err}. The file was "
                "discarded and the cache is unchanged. Try again later "
                "(Dataverse and figshare sometimes "
                "serve error pages); if it persists, " + _how_to_seed(entry, cache)
            ) from None
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _extract_member(entry: RegistryEntry, archive: Path, cache: Path) -> Path:
    target = cache / entry.name / entry.member
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        if entry.format == "deb":
            with _deb_data_tar(archive) as tar:
                try:
                    member = tar.getmember(entry.member)
                except KeyError:
                    raise DataError(
                        f"{archive} does not contain {entry.member!r}"
                    ) from None
                tar.extract(member, staging, filter="data")
                extracted = staging / entry.member
        else:
            with zipfile.ZipFile(archive) as zf:
                extracted = Path(zf.extract(entry.member, staging))
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def fetch(
    name: str,
    *,
    cache: str | os.PathLike | None = None,
    download: bool = True,
    retries: int = 3,
    progressbar: bool = True,
    registry: dict[str, RegistryEntry] | None = None,
) -> Path:
    """Return the local path of a registered file, downloading and verifying it if
    needed.

    For zip entries and Debian packages the path of the extracted ``member`` is
    returned. A file already in the cache is re-checked against the registry hash (or
    the hash recorded at its first download), so a corrupted cache is caught rather than
    read.

    Disk cost of archives: the cache keeps the verified archive *and* the extracted
    member. The archive is what the publisher's checksum covers, so keeping it lets
    every later fetch re-verify and re-extract without a new download; an h5ad cannot
    be read in place from a deflated zip (HDF5 needs random access). For Norman
    (figshare 44477939) that is the zip plus the unpacked h5ad; data/README.md gives
    the sizes measured on a full-scale stand-in. ``download=False`` raises instead of
    downloading (the offline quick profile uses this, so nothing is fetched behind your
    back).
    """
    entry = get_entry(name, registry)
    cache = cache_dir(cache)
    path = cache / entry.filename
    if path.exists():
        try:
            _verify(entry, path, cache)
        except DataError as err:
            path.unlink()
            shutil.rmtree(cache / entry.name, ignore_errors=True)
            if not download:
                raise DataError(
                    f"The cached file of dataset {name!r} ({path}) failed its "
                    f"check ({err}) and was "
                    "removed. " + _how_to_seed(entry, cache)
                ) from None
    if not path.exists():
        if not download:
            raise DataError(
                f"Dataset {name!r} is not in the cache ({cache}) and downloading "
                "is switched off. " + _how_to_seed(entry, cache)
            )
        path = _download(entry, cache, retries, progressbar)
    if os.environ.get(USAGE_LOG_ENV):
        record_use(
            name,
            kind=entry.kind,
            filename=entry.filename,
            url=entry.url,
            sha256=_cached_digests(path, cache)["sha256"],
            cache=str(cache.resolve()),
        )
    if entry.format in ("zip", "deb") and entry.member:
        return _extract_member(entry, path, cache)
    return path


def _identify_by_content(
    path: Path, entries: list[RegistryEntry], cache: Path
) -> list[RegistryEntry]:
    """Registry entries that ``path`` is, judged by content: a known sha256 / MD5
    (registry, recorded at a first download), or for zip entries the member path inside
    the archive."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    recorded = _recorded_hashes(cache)
    size = path.stat().st_size
    digests: dict[str, str] | None = None
    found = []
    for entry in entries:
        if not head.startswith(MAGIC[entry.format]) or (
            entry.size and entry.size != size
        ):
            continue
        sha = entry.sha256 or recorded.get(entry.name, "")
        if sha or entry.md5:
            digests = digests or _digests(path)
            if digests["sha256"] == sha or digests["md5"] == entry.md5.lower():
                found.append(entry)
                continue
        if entry.format == "zip" and entry.member:
            try:
                with zipfile.ZipFile(path) as zf:
                    if entry.member in zf.namelist():
                        found.append(entry)
            except zipfile.BadZipFile:
                pass
    return found


def seed_cache(
    source: str | os.PathLike,
    *,
    cache: str | os.PathLike | None = None,
    registry: dict[str, RegistryEntry] | None = None,
) -> pd.DataFrame:
    """Copy registered files found under ``source`` (a file or a folder, searched
    recursively) into the cache.

    A file is recognised by its name (the entry's ``filename`` or one of its
    ``seed_names``) or, whatever its name (a browser may call it ``44477939`` or
    ``file.zip``), by its content: a sha256 / MD5 the registry knows or the cache
    recorded, or, for a zip entry, the member path inside the archive. It is then
    checked exactly like a download: a file that fails is reported and not copied. A
    member that was unpacked from its zip (e.g. the Norman ``.h5ad``) is reported with a
    hint to seed the zip. Returns a table of what was found: dataset, source path,
    status.
    """
    registry = registry if registry is not None else load_registry()
    cache = cache_dir(cache)
    source = Path(source)
    if not source.exists():
        raise DataError(f"Cannot seed the cache from {source}: no such file or folder.")
    files = (
        [source]
        if source.is_file()
        else sorted(p for p in source.rglob("*") if p.is_file())
    )
    by_name: dict[str, list[RegistryEntry]] = {}
    by_member: dict[str, RegistryEntry] = {}
    for entry in registry.values():
        for fname in entry.names_to_seed:
            by_name.setdefault(fname, []).append(entry)
        if entry.format == "zip" and entry.member:
            by_member[Path(entry.member).name] = entry
    rows = []
    for path in files:
        entries = by_name.get(path.name, [])
        how = ""
        if (
            not entries
            and path.name in by_member
            and by_member[path.name].filename != path.name
        ):
            entry = by_member[path.name]
            rows.append(
                {
                    "dataset": entry.name,
                    "source": str(path),
                    "status": (
                        f"rejected: this is {entry.member!r} unpacked from the "
                        "archive; seed the archive as "
                        f"downloaded from {entry.url} (any file name), the cache "
                        "extracts the member itself"
                    ),
                }
            )
            continue
        if not entries:
            entries = _identify_by_content(path, list(registry.values()), cache)
            how = " (recognised by content)"
        for entry in entries:
            target = cache / entry.filename
            try:
                if target.exists() and sha256sum(target) == sha256sum(path):
                    status = "already cached"
                else:
                    _install(entry, path, cache, move=False)
                    shutil.rmtree(
                        cache / entry.name, ignore_errors=True
                    )  # stale extraction
                    status = "seeded" + how
            except DataError as err:
                status = f"rejected: {err}"
            rows.append({"dataset": entry.name, "source": str(path), "status": status})
    return pd.DataFrame(rows, columns=["dataset", "source", "status"])


def cache_status(
    cache: str | os.PathLike | None = None,
    registry: dict[str, RegistryEntry] | None = None,
) -> pd.DataFrame:
    """One row per registry entry: whether its file is in the cache, its size and where
    it comes from."""
    registry = registry if registry is not None else load_registry()
    cache = cache_dir(cache)
    rows = []
    for entry in registry.values():
        path = cache / entry.filename
        rows.append(
            {
                "dataset": entry.name,
                "kind": entry.kind,
                "format": entry.format,
                "cached": path.exists(),
                "size_mb": round(path.stat().st_size / 1e6, 2)
                if path.exists()
                else None,
                "hash": (
                    "sha256 known"
                    if entry.sha256
                    else "publisher MD5"
                    if entry.md5
                    else "publisher MD5 (metadata API)"
                    if entry.checksum_api
                    else "recorded at first download"
                ),
                "url": entry.url,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# the registry's addresses still answer with the registered file


def _check_url(entry: RegistryEntry, cache: Path, timeout: float) -> str:
    """Stream ``entry.url`` (hashing, not storing it); return what was checked or
    raise DataError."""
    import requests

    md5 = publisher_md5(entry, timeout=timeout)
    sha256 = entry.sha256 or _recorded_hashes(cache).get(entry.name, "")
    sha, md5_hash, size, head = hashlib.sha256(), hashlib.md5(), 0, b""
    try:
        with requests.get(
            entry.url,
            headers={"User-Agent": BROWSER_USER_AGENT},
            stream=True,
            timeout=timeout,
            allow_redirects=True,
        ) as response:
            if response.status_code != 200:
                raise DataError(f"HTTP {response.status_code} from {entry.url}")
            announced = response.headers.get("Content-Length")
            for block in response.iter_content(1 << 20):
                if len(head) < 1024:
                    head += block[: 1024 - len(head)]
                sha.update(block)
                md5_hash.update(block)
                size += len(block)
    except requests.exceptions.RequestException as err:
        raise DataError(
            f"{entry.url} did not answer ({type(err).__name__}: {err})"
        ) from None
    _check_head(head, entry.format)
    if announced is not None and int(announced) != size:
        raise DataError(
            f"{entry.url} announced {int(announced):,} bytes but sent {size:,} (cut "
            "off)"
        )
    if entry.size is not None and entry.size != size:
        raise DataError(
            f"size {size:,} bytes, the registry expects {entry.size:,} ({entry.url})"
        )
    checked = [f"{size:,} bytes"]
    if sha256:
        if sha.hexdigest() != sha256:
            origin = (
                "the registry"
                if entry.sha256
                else f"the first download ({RECORDED_HASHES})"
            )
            raise DataError(
                f"sha256 {sha.hexdigest()}, expected {sha256} from {origin} "
                f"({entry.url})"
            )
        checked.append("sha256")
    if md5:
        if md5_hash.hexdigest() != md5:
            raise DataError(
                f"MD5 {md5_hash.hexdigest()}, the publisher lists {md5} ({entry.url})"
            )
        checked.append("publisher MD5")
    if not sha256 and not md5:
        checked.append(
            "no checksum known yet (trust on first use; fetch it once to record one)"
        )
    return "ok: " + ", ".join(checked)


def check_urls(
    names: list[str] | None = None,
    *,
    cache: str | os.PathLike | None = None,
    registry: dict[str, RegistryEntry] | None = None,
    timeout: float = 60,
) -> pd.DataFrame:
    """Check that every registry address (or those of ``names``) still answers with
    the registered file.

    Each file is streamed (not stored) and compared with the registry's ``size`` and
    ``sha256``, the publisher's MD5 (``md5`` or ``checksum_api``) and, where the
    registry has no sha256, the hash recorded at the first download in ``cache``.
    Returns one row per dataset: dataset, url, status ("ok: ..." or
    "FAILED: ...").
    """
    registry = registry if registry is not None else load_registry()
    cache = cache_dir(cache)
    rows = []
    for name in names or list(registry):
        entry = get_entry(name, registry)
        try:
            status = _check_url(entry, cache, timeout)
        except DataError as err:
            status = f"FAILED: {err}"
        rows.append({"dataset": name, "url": entry.url, "status": status})
    return pd.DataFrame(rows, columns=["dataset", "url", "status"])


# --------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.data", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registry and what is cached")
    p_fetch = sub.add_parser("fetch", help="download (or verify) datasets")
    p_fetch.add_argument("names", nargs="+")
    p_seed = sub.add_parser(
        "seed", help="copy files you already have into the cache, with the same checks"
    )
    p_seed.add_argument("source", help="a file or a folder (searched recursively)")
    p_check = sub.add_parser(
        "check-urls",
        help="check that every registry address still answers with the "
        "registered file (size and checksums); the files are not kept",
    )
    p_check.add_argument("names", nargs="*", help="datasets to check (default: all)")
    p_check.add_argument(
        "--timeout", type=float, default=60, help="seconds per request without data"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(f"cache: {cache_dir()}")
            print(cache_status().drop(columns="url").to_string(index=False))
        elif args.command == "fetch":
            for name in args.names:
                print(f"{name}: {fetch(name)}")
        elif args.command == "seed":
            table = seed_cache(args.source)
            print(f"cache: {cache_dir()}")
            print(
                table.to_string(index=False)
                if len(table)
                else "no registered files found"
            )
            if table["status"].str.startswith("rejected").any():
                return 1
        elif args.command == "check-urls":
            table = check_urls(args.names or None, timeout=args.timeout)
            for row in table.itertuples():
                print(f"{row.dataset:<45} {row.status}", flush=True)
            failed = table[table["status"].str.startswith("FAILED")]
            for row in failed.itertuples():
                if (
                    os.environ.get("GITHUB_ACTIONS") == "true"
                ):  # an error annotation on the run's page
                    print(
                        "::error title=data URL check failed: "
                        f"{row.dataset}::{row.status}"
                    )
                print(f"error: dataset {row.dataset!r}: {row.status}", file=sys.stderr)
            if len(failed):
                print(
                    f"error: {len(failed)} of {len(table)} registry address(es) "
                    "failed: "
                    f"{', '.join(failed['dataset'])}",
                    file=sys.stderr,
                )
                return 1
            print(
                f"all {len(table)} registry addresses answer with the registered files"
            )
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
