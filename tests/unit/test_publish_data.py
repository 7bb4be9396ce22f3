"""The registry behind a local mirror ($PERTURBBOOK_MIRROR), and the weekly check that
every registry address still answers with the registered file (``python -m helpers.data
check-urls``), offline against an HTTP
server on 127.0.0.1 laid out like the publishers (helpers.mirror)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from helpers import data, mirror


def _zip(path: Path, member: str, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return path


@pytest.fixture()
def publishers(tmp_path, monkeypatch):
    """A registry of four files at figshare-, Dataverse- and GitHub-style addresses,
    and a mirror of them."""
    files = tmp_path / "files"
    files.mkdir()
    good = _zip(
        files / "good.zip",
        "good/perturb_processed.h5ad",
        b"\x89HDF\r\n\x1a\n" + b"1" * 5000,
    )
    dv = _zip(
        files / "dv.zip",
        "dv/perturb_processed.h5ad",
        b"\x89HDF\r\n\x1a\n" + b"2" * 7000,
    )
    sized = _zip(files / "sized.zip", "x.txt", b"3" * 300)
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    registry_text = f"""
[good_figshare]
url = "https://figshare.com/ndownloader/files/111"
filename = "good.zip"
format = "zip"
member = "good/perturb_processed.h5ad"
sha256 = "{sha}"
size = {good.stat().st_size}

[dataverse_md5]
url = "https://dataverse.harvard.edu/api/access/datafile/222"
checksum_api = "https://dataverse.harvard.edu/api/files/222"
filename = "dv.zip"
format = "zip"
member = "dv/perturb_processed.h5ad"

[wrong_size]
url = "https://raw.githubusercontent.com/o/r/0123/sized.zip"
filename = "sized.zip"
format = "zip"
size = {sized.stat().st_size + 1}

[moved_away]
url = "https://dataverse.harvard.edu/api/access/datafile/999"
filename = "gone.zip"
format = "zip"
"""
    registry_file = tmp_path / "registry.toml"
    registry_file.write_text(registry_text)
    monkeypatch.setenv(data.REGISTRY_ENV, str(registry_file))
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    root = mirror.build_mirror(
        tmp_path / "mirror",
        {"good_figshare": good, "dataverse_md5": dv, "wrong_size": sized},
    )
    server, url = mirror.serve(root)
    monkeypatch.setenv(data.MIRROR_ENV, url)
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    yield {"root": root, "url": url, "dv": dv, "good": good}
    server.shutdown()


def test_mirror_keeps_the_publishers_host_and_path():
    assert (
        data.mirrored(
            "https://figshare.com/ndownloader/files/44477939", "http://127.0.0.1:8000/"
        )
        == "http://127.0.0.1:8000/figshare.com/ndownloader/files/44477939"
    )
    assert (
        data.mirrored("https://dataverse.harvard.edu/api/files/6154020", "")
        == "https://dataverse.harvard.edu/api/files/6154020"
    )
    with pytest.raises(data.DataError, match="PERTURBBOOK_MIRROR"):
        data.mirrored("https://figshare.com/x", "127.0.0.1:8000")


def test_registry_addresses_follow_the_mirror(monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, "http://127.0.0.1:9")
    entry = data.load_registry()["norman2019_gears"]
    assert (
        entry.url
        == "http://127.0.0.1:9/dataverse.harvard.edu/api/access/datafile/6154020"
    )
    assert (
        entry.checksum_api
        == "http://127.0.0.1:9/dataverse.harvard.edu/api/files/6154020"
    )


def test_the_dataverse_metadata_document_is_what_publisher_md5_reads(publishers):
    doc = json.loads(
        (publishers["root"] / "dataverse.harvard.edu/api/files/222").read_text()
    )
    assert doc["data"]["dataFile"]["checksum"]["type"] == "MD5"
    entry = data.get_entry("dataverse_md5")
    assert (
        data.publisher_md5(entry)
        == hashlib.md5(publishers["dv"].read_bytes()).hexdigest()
    )


def test_fetch_through_the_mirror_into_an_empty_cache_logs_what_was_read(
    publishers, tmp_path, monkeypatch
):
    log = tmp_path / "usage.jsonl"
    monkeypatch.setenv(data.USAGE_LOG_ENV, str(log))
    path = data.fetch("dataverse_md5", progressbar=False)
    assert path.name == "perturb_processed.h5ad" and path.read_bytes().startswith(
        b"\x89HDF"
    )
    record = json.loads(log.read_text().splitlines()[0])
    assert record["name"] == "dataverse_md5"
    assert record["sha256"] == hashlib.sha256(publishers["dv"].read_bytes()).hexdigest()
    assert record["url"].startswith(publishers["url"])


def test_check_urls_names_every_dataset_that_moved_or_changed(publishers, capsys):
    rc = data.main(["check-urls"])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "ok: " in lines["good_figshare"] and "sha256" in lines["good_figshare"]
    assert "publisher MD5" in lines["dataverse_md5"]
    assert "FAILED" in lines["wrong_size"] and "registry expects" in lines["wrong_size"]
    assert "FAILED" in lines["moved_away"] and "HTTP 404" in lines["moved_away"]
    assert "'wrong_size'" in err and "'moved_away'" in err and "2 of 4" in err
    assert "Traceback" not in err


def test_check_urls_catches_a_changed_file_behind_the_same_address(publishers, capsys):
    target = mirror.mirror_path(
        publishers["root"], "https://figshare.com/ndownloader/files/111"
    )
    # the mirror hard-links: replace the file, do not write through the link
    target.unlink()
    _zip(target, "good/perturb_processed.h5ad", b"\x89HDF\r\n\x1a\n" + b"X" * 5000)
    assert data.main(["check-urls", "good_figshare"]) == 1
    assert "sha256" in capsys.readouterr().out


def test_check_urls_passes_when_everything_answers(publishers, capsys):
    assert data.main(["check-urls", "good_figshare", "dataverse_md5"]) == 0
    assert "all 2 registry addresses answer" in capsys.readouterr().out
