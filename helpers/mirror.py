"""A local mirror of the registry's publishers, for rehearsing downloads offline.

:func:`build_mirror` lays files out under the publishers' own host and path (what
``$PERTURBBOOK_MIRROR`` in :mod:`helpers.data` maps every registry address to):

* figshare: ``<root>/figshare.com/ndownloader/files/<file id>``;
* Dataverse: ``<root>/dataverse.harvard.edu/api/access/datafile/<file id>`` and, for the
  checksum, the file's metadata ``<root>/dataverse.harvard.edu/api/files/<file id>`` in
  Dataverse's native API JSON (``{"status": "OK", "data": {"dataFile": {"checksum":
  {"type": "MD5", "value": ...}}}}``, guides.dataverse.org, Native API, "Files": the
  object whose checksum :func:`helpers.data.publisher_md5` reads);
* raw.githubusercontent.com and deb.debian.org: the same path as the registry's address.

:func:`serve` answers on 127.0.0.1 with Python's own ``http.server`` (``Content-Length``
set, HTTP 404 for anything not laid out). ``python -m helpers.mirror serve <root>
--port-file <file>`` runs it as a process (scripts/rehearse_publish.sh).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["mirror_path", "build_mirror", "serve", "main"]


def mirror_path(root: Path, url: str) -> Path:
    """Where ``url``'s file lies in the mirror ``root``: ``<root>/<host>/<path>``."""
    parts = urlsplit(url)
    return Path(root) / parts.netloc / parts.path.lstrip("/")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def publisher_registry() -> dict:
    """The registry with the publishers' own addresses, whatever
    ``$PERTURBBOOK_MIRROR`` says (the mirror is laid out at those paths)."""
    from . import data

    saved = os.environ.pop(data.MIRROR_ENV, None)
    try:
        return data.load_registry()
    finally:
        if saved is not None:
            os.environ[data.MIRROR_ENV] = saved


def build_mirror(
    root: str | os.PathLike, files: dict[str, str | os.PathLike], registry=None
) -> Path:
    """Lay out ``files`` ({registry name: local file}) under ``root``, at the
    publishers' paths.

    Files are hard-linked where possible (copied otherwise), so a multi-GB stand-in
    costs no disk twice. Entries with a ``checksum_api`` also get the publisher's
    metadata document with the file's MD5. The registry's own (unmirrored) addresses are
    used, whatever ``$PERTURBBOOK_MIRROR`` says.
    """
    from . import data

    registry = registry if registry is not None else publisher_registry()
    root = Path(root)
    for name, source in files.items():
        entry = data.get_entry(name, registry)
        target = mirror_path(root, entry.url)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        if entry.checksum_api:
            meta = mirror_path(root, entry.checksum_api)
            meta.parent.mkdir(parents=True, exist_ok=True)
            value = _md5(Path(source))
            if (
                "/api/files/" in entry.checksum_api
            ):  # Dataverse native API, file metadata
                doc = {
                    "status": "OK",
                    "data": {
                        "dataFile": {
                            "id": int(entry.url.rstrip("/").rsplit("/", 1)[-1]),
                            "filename": entry.filename,
                            "filesize": Path(source).stat().st_size,
                            "checksum": {"type": "MD5", "value": value},
                        }
                    },
                }
            else:  # figshare v2: the article's file list
                doc = [
                    {
                        "id": int(entry.url.rstrip("/").rsplit("/", 1)[-1]),
                        "name": entry.filename,
                        "size": Path(source).stat().st_size,
                        "computed_md5": value,
                    }
                ]
            meta.write_text(json.dumps(doc))
    return root


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if os.environ.get("PERTURBBOOK_MIRROR_LOG"):
            super().log_message(format, *args)


def serve(root: str | os.PathLike, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``root`` on 127.0.0.1:``port`` (0: any free port) in a daemon thread;
    return (server, base URL).
    Call ``server.shutdown()`` when done."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.mirror", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser(
        "serve", help="serve a mirror folder on 127.0.0.1 until killed"
    )
    p_serve.add_argument("root")
    p_serve.add_argument("--port", type=int, default=0)
    p_serve.add_argument(
        "--port-file", help="write the base URL here once the server answers"
    )
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        print(
            f"error: the mirror folder {args.root} does not exist; build it first "
            "(scripts/rehearse_publish.sh does)",
            file=sys.stderr,
        )
        return 1
    server, url = serve(args.root, args.port)
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(url)
        os.replace(tmp, args.port_file)
    print(f"mirror of {args.root} at {url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
