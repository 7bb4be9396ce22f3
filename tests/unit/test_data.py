"""The data registry: verified downloads, bad downloads, offline errors, cache
seeding."""

from __future__ import annotations

import hashlib
import json
import socket
import zipfile
from pathlib import Path

import pytest

from helpers import data
from helpers.data import DataError

from tests.conftest import SHARED, write_registry

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(data.time, "sleep", lambda s: None)


def fake_h5(payload: bytes = b"payload") -> bytes:
    return HDF5_MAGIC + payload


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cache_files(cache: Path) -> set[str]:
    return {
        p.name
        for p in cache.rglob("*")
        if p.is_file() and not p.name.startswith(".verified")
    }


def test_registry_entries_are_complete():
    registry = data.load_registry()
    for name in [
        "norman2019_subset",
        "norman2019",
        "norman2019_gears",
        "adamson",
        "replogle_k562_essential",
        "replogle_rpe1_essential",
        "gears_gene2go",
        "paper_perturbation_prediction",
    ]:
        entry = registry[name]
        assert entry.url.startswith("https://")
        assert entry.licence and entry.citation and entry.format in data.MAGIC
    assert (
        registry["norman2019_subset"].sha256
        == "220998f5630c813228c8661c86dd52244b9ac87127511289af90e0d900d8429b"
    )
    assert (
        registry["norman2019"].url == "https://figshare.com/ndownloader/files/44477939"
    )
    assert registry["adamson"].member == "adamson/perturb_processed.h5ad"
    assert sum(e.name.startswith("paper_") for e in registry.values()) == 9


def test_registry_hashes_match_the_published_source_data():
    registry = data.load_registry()
    sums = dict(
        line.split()[::-1]
        for line in (SHARED / "reference/ahlmann_eltze_2025/source_data/SHA256SUMS")
        .read_text()
        .splitlines()
    )
    by_file = {e.filename: e for e in registry.values() if e.name.startswith("paper_")}
    assert set(by_file) == set(sums)
    for filename, digest in sums.items():
        assert by_file[filename].sha256 == digest
        assert "f5b6679445dacb35ad36f71f9888e3d0799b5acd" in by_file[filename].url


def test_unknown_dataset_lists_the_registered_ones():
    with pytest.raises(DataError, match="Unknown dataset 'nope'.*norman2019_subset"):
        data.get_entry("nope")


def test_download_verifies_and_caches(tmp_path, http_server):
    served, base, seen = http_server
    content = fake_h5(b"good")
    (served / "good.h5ad").write_bytes(content)
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "good": {
                "url": f"{base}/good.h5ad",
                "filename": "good.h5ad",
                "format": "h5ad",
                "sha256": sha(content),
            },
        },
    )
    cache = tmp_path / "cache"
    path = data.fetch("good", cache=cache, registry=registry, progressbar=False)
    assert path.read_bytes() == content and path.parent == cache
    data.fetch("good", cache=cache, registry=registry, progressbar=False)
    assert seen == ["/good.h5ad"], (
        "a cached, verified file must not be downloaded again"
    )


def test_hash_mismatch_is_rejected_and_leaves_no_file(tmp_path, http_server):
    served, base, _ = http_server
    (served / "bad.h5ad").write_bytes(fake_h5(b"tampered"))
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "bad": {
                "url": f"{base}/bad.h5ad",
                "filename": "bad.h5ad",
                "format": "h5ad",
                "sha256": sha(fake_h5(b"orig")),
            },
        },
    )
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        data.fetch("bad", cache=cache, registry=registry, progressbar=False)
    message = str(err.value)
    assert (
        "'bad'" in message
        and f"{base}/bad.h5ad" in message
        and "sha256 mismatch" in message
    )
    assert "python -m helpers.data seed" in message
    assert cache_files(cache) == set()


def test_html_error_page_is_named_and_discarded(tmp_path, http_server):
    served, base, _ = http_server
    (served / "page").write_text(
        "<!DOCTYPE html><html><body>Dataverse: service unavailable</body></html>"
    )
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "dv": {
                "url": f"{base}/page",
                "filename": "dv.zip",
                "format": "zip",
                "member": "x/perturb_processed.h5ad",
            },
        },
    )
    cache = tmp_path / "cache"
    with pytest.raises(
        DataError,
        match="HTML page instead of a zip file.*Dataverse: service unavailable",
    ):
        data.fetch("dv", cache=cache, registry=registry, progressbar=False)
    assert cache_files(cache) == set()


def test_no_network_gives_an_actionable_error(tmp_path):
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "off": {
                "url": f"http://127.0.0.1:{closed_port()}/x.h5ad",
                "filename": "x.h5ad",
                "format": "h5ad",
            },
        },
    )
    with pytest.raises(DataError) as err:
        data.fetch(
            "off",
            cache=tmp_path / "cache",
            registry=registry,
            retries=2,
            progressbar=False,
        )
    message = str(err.value)
    assert (
        "Could not download dataset 'off'" in message and "ConnectionError" in message
    )
    assert "python -m helpers.data seed" in message and "PERTURBBOOK_CACHE" in message


def test_http_404_is_not_retried(tmp_path, http_server):
    _, base, seen = http_server
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "gone": {
                "url": f"{base}/missing.h5ad",
                "filename": "m.h5ad",
                "format": "h5ad",
            },
        },
    )
    with pytest.raises(DataError, match="HTTPError"):
        data.fetch(
            "gone",
            cache=tmp_path / "cache",
            registry=registry,
            retries=3,
            progressbar=False,
        )
    assert seen == ["/missing.h5ad"]


def test_download_off_raises_instead_of_fetching(tmp_path, http_server):
    _, base, seen = http_server
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "x": {"url": f"{base}/x.h5ad", "filename": "x.h5ad", "format": "h5ad"},
        },
    )
    with pytest.raises(
        DataError, match="not in the cache .* downloading is switched off"
    ):
        data.fetch("x", cache=tmp_path / "cache", registry=registry, download=False)
    assert seen == []


def test_unpublished_hash_is_recorded_and_then_enforced(tmp_path, http_server):
    served, base, seen = http_server
    content = fake_h5(b"first good download")
    (served / "n.h5ad").write_bytes(content)
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "nohash": {"url": f"{base}/n.h5ad", "filename": "n.h5ad", "format": "h5ad"},
        },
    )
    cache = tmp_path / "cache"
    path = data.fetch("nohash", cache=cache, registry=registry, progressbar=False)
    assert data._recorded_hashes(cache)["nohash"] == sha(content)
    path.write_bytes(fake_h5(b"bit rot"))  # the cached file gets corrupted
    with pytest.raises(
        DataError, match="failed its check .*sha256 mismatch.*was removed"
    ):
        data.fetch("nohash", cache=cache, registry=registry, download=False)
    assert not path.exists()
    # with downloading allowed, the corrupted file is replaced by a fresh verified copy
    assert (
        data.fetch(
            "nohash", cache=cache, registry=registry, progressbar=False
        ).read_bytes()
        == content
    )
    assert len(seen) == 2


def test_zip_member_is_extracted(tmp_path, http_server):
    served, base, _ = http_server
    inner = fake_h5(b"inner")
    with zipfile.ZipFile(served / "ds.zip", "w") as zf:
        zf.writestr("ds/perturb_processed.h5ad", inner)
        zf.writestr("ds/cell_graphs.pkl", b"\x80ignored")
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "ds": {
                "url": f"{base}/ds.zip",
                "filename": "ds.zip",
                "format": "zip",
                "member": "ds/perturb_processed.h5ad",
            },
        },
    )
    path = data.fetch(
        "ds", cache=tmp_path / "cache", registry=registry, progressbar=False
    )
    assert path.name == "perturb_processed.h5ad" and path.read_bytes() == inner


def test_zip_without_the_member_is_rejected(tmp_path, http_server):
    served, base, _ = http_server
    with zipfile.ZipFile(served / "ds.zip", "w") as zf:
        zf.writestr("other/file.txt", "x")
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "ds": {
                "url": f"{base}/ds.zip",
                "filename": "ds.zip",
                "format": "zip",
                "member": "ds/perturb_processed.h5ad",
            },
        },
    )
    with pytest.raises(DataError, match="does not contain 'ds/perturb_processed.h5ad'"):
        data.fetch("ds", cache=tmp_path / "cache", registry=registry, progressbar=False)
    assert cache_files(tmp_path / "cache") == set()


def test_seed_copies_verified_files_and_rejects_bad_ones(tmp_path):
    good, bad = fake_h5(b"good"), fake_h5(b"bad")
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "a": {
                "url": "https://example.org/a.h5ad",
                "filename": "a.h5ad",
                "format": "h5ad",
                "sha256": sha(good),
                "seed_names": ["a_copy.h5ad"],
            },
            "b": {
                "url": "https://example.org/b.h5ad",
                "filename": "b.h5ad",
                "format": "h5ad",
                "sha256": sha(good),
            },
        },
    )
    source = tmp_path / "src" / "nested"
    source.mkdir(parents=True)
    (source / "a_copy.h5ad").write_bytes(good)
    (source / "b.h5ad").write_bytes(bad)
    (source / "unrelated.txt").write_text("ignored")
    cache = tmp_path / "cache"
    table = data.seed_cache(tmp_path / "src", cache=cache, registry=registry).set_index(
        "dataset"
    )
    assert table.loc["a", "status"] == "seeded"
    assert table.loc["b", "status"].startswith("rejected: sha256 mismatch")
    assert cache_files(cache) == {"a.h5ad"}
    again = data.seed_cache(tmp_path / "src", cache=cache, registry=registry).set_index(
        "dataset"
    )
    assert again.loc["a", "status"] == "already cached"


def test_seeding_the_real_subset_from_shared(tmp_path):
    table = data.seed_cache(SHARED / "data", cache=tmp_path / "cache")
    assert table.set_index("dataset").loc["norman2019_subset", "status"] == "seeded"
    path = data.fetch("norman2019_subset", cache=tmp_path / "cache", download=False)
    assert data.sha256sum(path) == data.get_entry("norman2019_subset").sha256


def test_seed_from_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        data.seed_cache(tmp_path / "absent", cache=tmp_path / "cache")


def test_cli_seed_and_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    assert data.main(["seed", str(SHARED / "reference")]) == 0
    out = capsys.readouterr().out
    assert "paper_perturbation_prediction" in out and "seeded" in out
    assert data.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "norman2019_subset" in listing
    assert data.main(["fetch", "not_a_dataset"]) == 1
    assert "Unknown dataset" in capsys.readouterr().err


def test_cache_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "envcache"))
    assert (
        data.cache_dir() == tmp_path / "envcache" and (tmp_path / "envcache").is_dir()
    )


def test_check_format_messages(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        data.check_format(empty, "h5ad")
    other = tmp_path / "other"
    other.write_bytes(b"GIF89a....")
    with pytest.raises(DataError, match="not a h5ad file"):
        data.check_format(other, "h5ad")


# --------------------------------------------------------------------------------------
# publisher checksums, refusals, seeding by content, the real Norman zip layout


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def test_dataverse_md5_is_read_from_the_metadata_api_and_checked(tmp_path, http_server):
    served, base, seen = http_server
    content = fake_h5(b"dataverse file")
    (served / "access").mkdir()
    (served / "access" / "6154020").write_bytes(content)
    (served / "files").mkdir()
    # the shape of Dataverse's file metadata (GET /api/files/<id>)
    (served / "files" / "6154020").write_text(
        json.dumps(
            {
                "status": "OK",
                "data": {
                    "label": "norman.zip",
                    "dataFile": {
                        "id": 6154020,
                        "filename": "norman.zip",
                        "checksum": {"type": "MD5", "value": md5(content)},
                    },
                },
            }
        )
    )
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "dv": {
                "url": f"{base}/access/6154020",
                "filename": "dv.h5ad",
                "format": "h5ad",
                "checksum_api": f"{base}/files/6154020",
            },
        },
    )
    cache = tmp_path / "cache"
    path = data.fetch("dv", cache=cache, registry=registry, progressbar=False)
    assert path.read_bytes() == content
    assert seen[:2] == ["/files/6154020", "/access/6154020"]
    assert data._recorded_hashes(cache)["dv"] == sha(content)


def test_figshare_md5_from_the_article_file_list_and_a_mismatch_leaves_the_cache_clean(
    tmp_path, http_server
):
    served, base, _ = http_server
    (served / "ndownloader").mkdir()
    (served / "ndownloader" / "44477939").write_bytes(fake_h5(b"what arrived"))
    (served / "articles").mkdir()
    # the shape of figshare's GET /v2/articles/<id>/files: one item per file,
    # computed_md5 per file
    (served / "articles" / "files").write_text(
        json.dumps(
            [
                {"id": 1234, "name": "other.zip", "computed_md5": md5(b"other")},
                {
                    "id": 44477939,
                    "name": "data.zip",
                    "computed_md5": md5(fake_h5(b"what the publisher holds")),
                },
            ]
        )
    )
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "fs": {
                "url": f"{base}/ndownloader/44477939",
                "filename": "fs.h5ad",
                "format": "h5ad",
                "checksum_api": f"{base}/articles/files",
            },
        },
    )
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="MD5 mismatch.*publisher metadata"):
        data.fetch("fs", cache=cache, registry=registry, progressbar=False)
    assert cache_files(cache) == set() and not data._recorded_hashes(cache)


def test_registry_md5_is_enforced(tmp_path, http_server):
    served, base, _ = http_server
    (served / "x.h5ad").write_bytes(fake_h5(b"x"))
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "x": {
                "url": f"{base}/x.h5ad",
                "filename": "x.h5ad",
                "format": "h5ad",
                "md5": md5(fake_h5(b"x")),
            },
            "y": {
                "url": f"{base}/x.h5ad",
                "filename": "y.h5ad",
                "format": "h5ad",
                "md5": md5(b"different"),
            },
        },
    )
    assert data.fetch(
        "x", cache=tmp_path / "c", registry=registry, progressbar=False
    ).exists()
    with pytest.raises(DataError, match="MD5 mismatch"):
        data.fetch("y", cache=tmp_path / "c", registry=registry, progressbar=False)
    assert cache_files(tmp_path / "c") == {"x.h5ad", "recorded_hashes.json"}


def test_unreadable_checksum_api_stops_before_the_transfer(tmp_path, http_server):
    _, base, seen = http_server
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "x": {
                "url": f"{base}/x.h5ad",
                "filename": "x.h5ad",
                "format": "h5ad",
                "checksum_api": f"{base}/nope",
            },
        },
    )
    with pytest.raises(DataError, match="Could not read the publisher's checksum"):
        data.fetch("x", cache=tmp_path / "c", registry=registry, progressbar=False)
    assert seen == ["/nope"]


def test_403_gives_the_browser_recipe_and_downloads_send_a_browser_user_agent(
    tmp_path, http_server
):
    served, base, seen = http_server
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "fs": {
                "url": f"{base}/status/403/file",
                "filename": "fs.zip",
                "format": "zip",
                "member": "a/b.h5ad",
            },
        },
    )
    with pytest.raises(DataError) as err:
        data.fetch(
            "fs", cache=tmp_path / "c", registry=registry, retries=3, progressbar=False
        )
    message = str(err.value)
    assert (
        "HTTP 403" in message
        and "in a browser" in message
        and f"{base}/status/403/file" in message
    )
    assert "python -m helpers.data seed" in message and "any name" in message
    assert len(seen) == 1, "a refusal is not retried"
    assert cache_files(tmp_path / "c") == set()


def test_downloads_use_a_browser_like_user_agent(tmp_path, http_server, monkeypatch):
    served, base, _ = http_server
    (served / "x.h5ad").write_bytes(fake_h5(b"x"))
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "x": {"url": f"{base}/x.h5ad", "filename": "x.h5ad", "format": "h5ad"},
        },
    )
    import requests

    sent = []
    original = requests.get

    def spy(url, *args, **kwargs):
        sent.append((kwargs.get("headers") or {}).get("User-Agent", ""))
        return original(url, *args, **kwargs)

    monkeypatch.setattr(requests, "get", spy)
    data.fetch("x", cache=tmp_path / "c", registry=registry, progressbar=False)
    assert sent and all(agent.startswith("Mozilla/5.0") for agent in sent)


def test_html_challenge_page_gives_the_browser_recipe(tmp_path, http_server):
    served, base, _ = http_server
    (served / "44477939").write_text(
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"
    )
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "fs": {
                "url": f"{base}/44477939",
                "filename": "fs.zip",
                "format": "zip",
                "member": "a/b.h5ad",
            },
        },
    )
    with pytest.raises(
        DataError,
        match="refused the scripted download.*HTML page.*Just a moment.*in a browser",
    ):
        data.fetch("fs", cache=tmp_path / "c", registry=registry, progressbar=False)
    assert cache_files(tmp_path / "c") == set()


def test_truncated_zip_is_rejected_and_leaves_no_file(tmp_path, http_server):
    served, base, _ = http_server
    with zipfile.ZipFile(served / "full.zip", "w") as zf:
        zf.writestr("a/b.h5ad", fake_h5(b"x" * 5000))
    (served / "cut.zip").write_bytes(
        (served / "full.zip").read_bytes()[:-40]
    )  # central directory lost
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "z": {
                "url": f"{base}/cut.zip",
                "filename": "z.zip",
                "format": "zip",
                "member": "a/b.h5ad",
            },
        },
    )
    with pytest.raises(DataError, match="not a readable zip archive"):
        data.fetch("z", cache=tmp_path / "c", registry=registry, progressbar=False)
    assert cache_files(tmp_path / "c") == set()


def test_seeding_recognises_a_browser_saved_file_by_content(tmp_path):
    good = fake_h5(b"known content")
    with zipfile.ZipFile(tmp_path / "x", "w") as zf:
        zf.writestr("scFoundation/GEARS/data/norman.h5ad", fake_h5(b"inner"))
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "hashed": {
                "url": "https://example.org/1",
                "filename": "hashed.h5ad",
                "format": "h5ad",
                "sha256": sha(good),
            },
            "zipped": {
                "url": "https://example.org/2",
                "filename": "zipped.zip",
                "format": "zip",
                "member": "scFoundation/GEARS/data/norman.h5ad",
            },
        },
    )
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    (downloads / "file (1).h5ad").write_bytes(good)
    (tmp_path / "x").rename(
        downloads / "44477939"
    )  # what a browser may call the figshare zip
    (downloads / "norman.h5ad").write_bytes(fake_h5(b"unpacked by hand"))
    table = data.seed_cache(downloads, cache=tmp_path / "cache", registry=registry)
    status = {Path(src).name: st for src, st in zip(table["source"], table["status"])}
    assert status["file (1).h5ad"] == "seeded (recognised by content)"
    assert status["44477939"] == "seeded (recognised by content)"
    assert status["norman.h5ad"].startswith(
        "rejected: this is 'scFoundation/GEARS/data/norman.h5ad' unpacked"
    )
    assert {"hashed.h5ad", "zipped.zip"} <= cache_files(tmp_path / "cache")
    assert data.fetch(
        "zipped", cache=tmp_path / "cache", registry=registry, download=False
    ).read_bytes() == fake_h5(b"inner")


def test_seeding_the_real_layout_norman_zip_and_loading_it(tmp_path):
    """The test that would have caught the blocker of issue #13: the registry's Norman
    entry against a zip in the real layout (figshare 44477939 holds
    scFoundation/GEARS/data/<h5ad>)."""
    from helpers import loaders, standins

    source = tmp_path / "src"
    source.mkdir()
    standins.write_scfoundation_norman_zip(
        source / "figshare download (1).zip", n_cells=1200, n_genes=300
    )
    genes = standins.go_genes_for(standins.norman_conditions())
    standins.write_go_gene_list(source / "essential_all_data_pert_genes.pkl", genes)
    standins.write_gene2go(source / "gene2go_all.pkl", genes)
    cache = tmp_path / "cache"
    table = data.seed_cache(source, cache=cache).set_index("dataset")
    assert table.loc["norman2019", "status"] == "seeded (recognised by content)"
    assert set(table.loc[["gears_go_genes", "gears_gene2go"], "status"]) == {"seeded"}
    path = data.fetch("norman2019", cache=cache, download=False)
    assert path.name == "gse133344_k562gi_oe_pert227_84986_19264_withtotalcount.h5ad"
    adata = loaders.load_dataset("norman2019", cache=cache, download=False, backed="r")
    assert adata.uns["perturbbook"]["go_filter"]["conditions_removed"] == [
        "IER5L+ctrl",
        "LYL1+IER5L",
    ]


def test_interrupted_transfer_leaves_no_partial_file(tmp_path, http_server):
    _, base, seen = http_server
    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "cut": {
                "url": f"{base}/cut/x.h5ad",
                "filename": "x.h5ad",
                "format": "h5ad",
            },
        },
    )
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="Could not download dataset 'cut'"):
        data.fetch("cut", cache=cache, registry=registry, retries=2, progressbar=False)
    assert len(seen) == 2, "an interrupted transfer is retried"
    assert not any(cache.rglob("*")), (
        "no partial file and no temporary folder stays in the cache"
    )
