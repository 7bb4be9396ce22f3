"""Rehearse the publish workflow: the paper-profile site built from a local mirror.

1. Stand-ins of the paper's files in their real layouts (``helpers.standins`` through
   ``benchmarks/bench_paper_profile.py``'s ``write_standins``: the Norman scFoundation
   zip, GEARS' Adamson and Replogle K562 / RPE1 zips, GEARS' two GO pickles; full size
   or small), SYNTHETIC values.
2. A mirror (``helpers.mirror``) laying them out under the publishers' paths (figshare
   ``ndownloader/files``, Dataverse ``api/access/datafile`` + the ``api/files`` metadata
   with each file's MD5), with the registry's other files (the Norman subset, the
   paper's spreadsheets, the Debian annotation packages) copied from the configured
   cache (``$PERTURBBOOK_CACHE``, as command 1 seeded it; never the network, never the
   default cache when another is configured); served by ``python -m helpers.mirror
   serve`` on 127.0.0.1.
3. ``$PERTURBBOOK_MIRROR`` pointed at it, an empty temporary cache, no seed folder;
   then ``--stage data``: every paper-profile download through the registry and
   ``check-urls`` against the mirror; ``--stage site``: ``PROFILE=paper bash
   scripts/build_book.sh`` (the publish workflow's build) and the browser test
   (tests/book/test_browser.py) on the site it built.

Prints each phase's wall time, the peak memory (largest process, and the sampled sum
over the build's process tree) and the disk used (stand-ins, cache, _build; the mirror
hard-links the stand-ins).

    bash scripts/rehearse_publish.sh --scale small --stage data  # the test runs this
    bash scripts/rehearse_publish.sh --scale small  # the whole small rehearsal
    bash scripts/rehearse_publish.sh --scale full   # full-size stand-ins (hours here)
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# the stand-ins and the process-tree watchdog, shared with the paper-profile benchmark
import bench_paper_profile as bench  # noqa: E402

from helpers import data, mirror, profiles  # noqa: E402

GIB = 1024**3
STANDINS = [
    "norman2019",
    "adamson",
    "replogle_k562_essential",
    "replogle_rpe1_essential",
]


def du(path: Path) -> int:
    """Bytes on disk under ``path``, each hard-linked file counted once."""
    seen, total = set(), 0
    for p in [path] if path.is_file() else path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


# Registry files the rehearsal does not mirror: GEARS' Norman copy (no chapter's paper
# profile reads it) and chapter 10's atlas-scale files (genome-wide K562, 66 GB;
# Tahoe-100M): a paper build runs chapter 10 on the quick profile without them
# (profiles.ATLAS_CHAPTERS).
NOT_MIRRORED = {
    "norman2019_gears",
    "replogle_k562_gwps",
    "tahoe100m_gene_metadata",
    "tahoe100m_shard",
}


def mirror_files(folder: Path) -> dict[str, Path]:
    """Every registry file: stand-ins from ``folder``, the rest from the configured
    cache (``$PERTURBBOOK_USER_CACHE`` if set, else ``helpers.data.cache_dir()``:
    ``$PERTURBBOOK_CACHE``, else the default)."""
    registry = mirror.publisher_registry()
    user_cache = data.cache_dir(os.environ.get("PERTURBBOOK_USER_CACHE") or None)
    files, missing = {}, []
    for entry in registry.values():
        standin = folder / entry.filename
        source = standin if standin.exists() else user_cache / entry.filename
        if source.exists():
            files[entry.name] = source
        elif entry.name not in NOT_MIRRORED:
            missing.append(f"{entry.name} ({entry.filename})")
    if missing:
        raise SystemExit(
            f"error: not in the configured cache {user_cache}: "
            f"{', '.join(missing)}. Run "
            "`bash scripts/build_book.sh` once (it seeds the quick profile's files) "
            "or set "
            "PERTURBBOOK_USER_CACHE to a cache that holds them."
        )
    return files


def start_mirror(root: Path, work: Path) -> tuple[subprocess.Popen, str]:
    port_file = work / "mirror.url"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "helpers.mirror",
            "serve",
            str(root),
            "--port-file",
            str(port_file),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    for _ in range(600):
        if port_file.exists():
            return proc, port_file.read_text().strip()
        if proc.poll() is not None:
            raise SystemExit(
                f"error: the mirror server exited (code {proc.returncode})"
            )
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("error: the mirror server did not start within 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=["small", "full"], default="full")
    parser.add_argument("--stage", choices=["data", "site"], default="site")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep stand-ins, mirror and cache here",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep stand-ins already written in --workdir",
    )
    parser.add_argument(
        "--timeout-min", type=float, default=240.0, help="for the build"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="small mode (a test runs it): --scale small --stage data",
    )
    args = parser.parse_args()
    if args.small:
        args.scale, args.stage = "small", "data"
        print("SMALL MODE: small stand-ins, the data stage only", flush=True)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="rehearse-publish-"))
    work.mkdir(parents=True, exist_ok=True)
    folder, root, cache = work / "standins", work / "mirror", work / "cache"

    def say(text=""):
        print(text, flush=True)

    say(
        f"rehearse_publish  scale={args.scale}  stage={args.stage}  "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    say(
        f"machine: {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GIB:.0f} GB "
        f"RAM, load {os.getloadavg()[0]:.1f}; work folder {work}"
    )
    say(
        "data: SYNTHETIC STAND-INS of the paper's files (helpers.standins), "
        "served by a local mirror"
    )
    start = time.perf_counter()
    rows = bench.write_standins(folder, args.scale, STANDINS, reuse=args.reuse)
    for r in rows:
        say(
            f"  stand-in {r['dataset']:<26}{r['cells']:>9,} cells "
            f"{r['genes']:>7,} genes "
            f"{r['conditions']:>6} "
            f"conditions {r['file_gb']:>6.2f} GB"
        )
    t_standins = time.perf_counter() - start
    shutil.rmtree(root, ignore_errors=True)
    mirror.build_mirror(root, mirror_files(folder))
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    server, url = start_mirror(root, work)
    say(
        f"stand-ins and mirror ready in {t_standins:.0f} s; mirror at {url}; "
        f"empty cache {cache}"
    )
    env = dict(
        os.environ,
        PERTURBBOOK_MIRROR=url,
        PERTURBBOOK_CACHE=str(cache),
        PERTURBBOOK_SEED_DIR=str(work / "no-seed-folder"),
        PROFILE="paper",
        PYTHONPATH=str(ROOT),
        PERTURBBOOK_MIRROR_NOTE=f"it serves SYNTHETIC stand-ins ({args.scale} scale, "
        "helpers.standins: the real files' layouts and condition lists, random values) "
        "of the paper's datasets, so this "
        "page's numbers mean nothing",
    )
    # as a reader's build: figures through the kernel's inline backend (an MPLBACKEND
    # set here would reach the kernels and drop every figure from the pages)
    # the mirror does not serve the atlas-scale files (NOT_MIRRORED), so chapter 10
    # runs on the quick profile, as on a hosted runner (helpers.execute.plan_chapters)
    for key in ("PERTURBBOOK_USAGE_LOG", "MPLBACKEND", "PERTURBBOOK_ATLAS"):
        env.pop(key, None)
    failed = False
    try:
        if args.stage == "data":
            downloads = profiles.PROFILES["paper"]["downloads"]
            for name, cmd in [
                ("fetch", [sys.executable, "-m", "helpers.data", "fetch", *downloads]),
                (
                    "check-urls",
                    [sys.executable, "-m", "helpers.data", "check-urls", *downloads],
                ),
            ]:
                r = bench.run_capped(
                    cmd,
                    env,
                    1e15,
                    work / f"{name}.log",
                    use_prlimit=False,
                    timeout=args.timeout_min * 60,
                )
                say(
                    f"{name:<12}{r['status']:<14}{r['wall_s']:>8.0f} s  "
                    f"peak RSS {r['peak_rss_gb']:.2f} GB"
                )
                say(
                    "    "
                    + "\n    ".join(
                        (work / f"{name}.log")
                        .read_text()
                        .splitlines()[-len(downloads) - 1 :]
                    )
                )
                failed |= r["status"] != "ok"
        else:
            r = bench.run_capped(
                ["bash", "scripts/build_book.sh"],
                env,
                1e15,
                work / "build.log",
                use_prlimit=False,
                timeout=args.timeout_min * 60,
            )
            say(
                f"PROFILE=paper bash scripts/build_book.sh: {r['status']} in "
                f"{r['wall_s']:.0f} s (CPU {r['cpu_s']:.0f} s); peak memory: largest "
                f"process {r['peak_rss_gb']:.2f} GB, process tree "
                f"{r['peak_tree_rss_gb']:.2f} GB"
            )
            status = ROOT / "_build" / "results" / "status.csv"
            if status.exists():
                for row in csv.DictReader(status.open()):
                    say(
                        f"    {row['notebook']:<26}{row['profile']:<7}"
                        f"{row['status']:<8}"
                        f"{row['seconds']:>8} s  "
                        f"{row.get('reason', '')}"
                    )
            if r["status"] != "ok":
                say(
                    "    "
                    + "\n    ".join((work / "build.log").read_text().splitlines()[-15:])
                )
                failed = True
            else:
                b = bench.run_capped(
                    [
                        sys.executable,
                        "-m",
                        "pytest",
                        "tests/book/test_browser.py",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                    ],
                    env,
                    1e15,
                    work / "browser.log",
                    use_prlimit=False,
                    timeout=3600,
                )
                say(
                    f"browser test on the built site: {b['status']} in "
                    f"{b['wall_s']:.0f} s: "
                    f"{(work / 'browser.log').read_text().strip().splitlines()[-1]}"
                )
                failed |= b["status"] != "ok"
    finally:
        os.killpg(server.pid, 15)
        server.wait()
    copies = sum(
        p.stat().st_blocks * 512
        for p in root.rglob("*")
        if p.is_file() and p.stat().st_nlink == 1
    )
    say(
        f"disk: stand-ins {du(folder) / GIB:.2f} GB, "
        f"mirror {copies / GIB:.2f} GB beyond hard links, cache "
        f"{du(cache) / GIB:.2f} GB, _build {du(ROOT / '_build') / GIB:.2f} GB"
    )
    say(f"total {time.perf_counter() - start:.0f} s; {'FAILED' if failed else 'ok'}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
