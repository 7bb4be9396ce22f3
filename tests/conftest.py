"""Shared fixtures: the real Norman subset (through the registry), a loopback HTTP
server, temp registries."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from helpers import data

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# the default cache is off limits while $PERTURBBOOK_CACHE points elsewhere (issue 32)
pytest_plugins = ["tests.cache_guard"]

TESTS = Path(__file__).resolve().parent
FOLDERS = ("unit", "parity", "book")  # each registered as a marker in pyproject.toml


def pytest_collection_modifyitems(config, items):
    """Mark every test with its folder (``pytest -m unit``, ``-m "not book"``)."""
    for item in items:
        try:
            folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        except ValueError:  # a test file outside tests/ (e.g. one written to tmp_path)
            continue
        if folder in FOLDERS:
            item.add_marker(folder)


@pytest.fixture(scope="session")
def subset_path() -> Path:
    """The real Norman 2019 subset from the book's cache (seeded by
    scripts/build_book.sh or downloaded)."""
    return data.fetch("norman2019_subset", progressbar=False)


@pytest.fixture(scope="session")
def norman_subset(subset_path):
    from helpers import loaders

    return loaders.load_dataset("norman2019_subset")


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests_seen: list[str] = []
    user_agents: list[str] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        type(self).requests_seen.append(self.path)
        type(self).user_agents.append(self.headers.get("User-Agent", ""))
        if self.path.startswith(
            "/status/"
        ):  # /status/<code>/...: answer with that HTTP status
            self.send_error(int(self.path.split("/")[2]))
            return
        if self.path.startswith(
            "/cut/"
        ):  # /cut/...: promise 1 MB, send 1 kB, drop the connection
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(b"\x89HDF\r\n\x1a\n" + b"x" * 1016)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def http_server(tmp_path):
    """Serve files from a temporary folder on 127.0.0.1; yields (folder, base_url, list
    of request paths).

    ``/status/<code>/...`` answers with that HTTP status (e.g. 403, as figshare does to
    many scripts); ``/cut/...`` drops the connection in the middle of a transfer.
    """
    root = tmp_path / "served"
    root.mkdir()
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"requests_seen": seen, "user_agents": []})

    def factory(*args, **kwargs):
        return handler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def write_registry(
    path: Path, entries: dict[str, dict]
) -> dict[str, data.RegistryEntry]:
    """Write a registry TOML with the given entries and load it back."""
    lines = []
    for name, spec in entries.items():
        lines.append(f"[{name}]")
        for key, value in spec.items():
            if isinstance(value, int):
                lines.append(f"{key} = {value}")
            elif isinstance(value, list):
                lines.append(
                    f"{key} = "
                    f"[{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]"
                )
            else:
                lines.append(f'{key} = "{value}"')
        lines.append("")
    path.write_text("\n".join(lines))
    return data.load_registry(path)
