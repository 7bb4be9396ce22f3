"""Benchmark: the CPU chapters' paper profile on full-scale stand-ins, 12 GB memory cap.

Writes stand-ins of the paper's files in their real layouts (``helpers.standins``: the
Norman scFoundation zip 84,986 x 19,264 sparse, GEARS' Adamson 65,899 x 5,060 and
Replogle K562 162,264 x 5,000 / RPE1 161,423 x 5,000 zips, cell counts of the paper's
dataset table) with the paper's real condition lists
(``helpers.published.paper_conditions``) plus the conditions GEARS' GO filter removes,
seeds them into a temporary cache (``PERTURBBOOK_CACHE``) together with the published
spreadsheets and annotation packages of the user's cache, and executes the paper profile
of chapters 1, 2, 3, 5, 6 and 7 with papermill, each in its own process tree. Values are
random (SYNTHETIC STAND-INS): only time and memory mean anything.

Memory cap (``--cap-gb``, default 12, Colab's free tier): a watchdog samples the
resident memory (RSS) of the chapter's whole process tree (papermill + kernel) every
0.25 s and kills the tree above the cap; the chapter then counts as failed. With
``--prlimit`` the kernel additionally gets an address-space limit (``prlimit --as``);
address-space caps count reserved virtual memory, not use, and can break libraries that
reserve large ranges (torch, BLAS thread arenas), so the RSS watchdog is the default.
Reported per chapter: wall time, CPU time (user + system of the whole tree; less
sensitive than wall time to other work on a shared machine), peak RSS of the largest
process (``wait4`` ru_maxrss, exact), the peak of the tree's summed RSS (sampled) and
the 1-minute load average at the end.

Chapter 4 (GEARS + the scGPT-style model; a GPU chapter) is measured separately
(``--gears-caps``): GEARS' data processing (``gears_runner.prepare_gears_data``: DE
genes, one dense graph per cell, loaders) on the full Norman stand-in with at most N
cells per condition, for each N given.

    python benchmarks/bench_paper_profile.py --small         # a minute: chapter 1
    python benchmarks/bench_paper_profile.py --scale small   # minutes; development
    python benchmarks/bench_paper_profile.py --scale full --record  # -> results/
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [
    "01_data",
    "02_double_perturbations",
    "03_linear_model",
    "05_embeddings",
    "06_interactions",
    "07_your_model",
]
NEEDS = {  # registry datasets each chapter's paper profile reads
    "01_data": ["norman2019"],
    "02_double_perturbations": ["norman2019"],
    "06_interactions": ["norman2019"],
    "03_linear_model": [
        "adamson",
        "replogle_k562_essential",
        "replogle_rpe1_essential",
    ],
    "05_embeddings": ["adamson", "replogle_k562_essential", "replogle_rpe1_essential"],
    "07_your_model": ["replogle_k562_essential", "replogle_rpe1_essential"],
}
GIB = 1024**3


def gears_spelling(conditions: list[str]) -> list[str]:
    return [c if c == "ctrl" or "+" in c else f"{c}+ctrl" for c in conditions]


def standin_conditions(name: str) -> list[str]:
    """The paper's conditions of ``name`` (after the GO filter) plus conditions the GO
    filter removes.

    Read from the paper's dataset overview in the configured cache
    (``$PERTURBBOOK_CACHE``; command 1 seeds it from ``../shared``), never downloaded: a
    benchmark does not reach for the network.
    """
    from helpers import published

    if name in ("norman2019", "norman2019_gears"):
        conditions = published.paper_conditions("norman2019", download=False)
        return [*gears_spelling(conditions), "IER5L+ctrl", "LYL1+IER5L"]
    return [
        *gears_spelling(published.paper_conditions(name, download=False)),
        "NOGO0+ctrl",
    ]


def write_standins(
    folder: Path,
    scale: str,
    datasets: list[str],
    *,
    reuse: bool = False,
    cells: dict[str, int] | None = None,
) -> list[dict]:
    from helpers import data, standins

    rows = []
    for name in datasets:
        spec = dict(standins.SCALES[scale][name])
        if cells and name in cells:
            spec["n_cells"] = cells[name]
        conditions = standin_conditions(name)
        if (
            scale == "small"
        ):  # about 12 cells per condition and room for the targets kept among the genes
            spec["n_cells"] = max(spec["n_cells"], 12 * len(conditions))
            spec["n_genes"] = max(
                spec["n_genes"], min(1000, len(conditions) // 2 + 200)
            )
        path = folder / data.get_entry(name).filename
        stamp = path.with_name(path.name + ".spec.json")
        wanted = json.dumps(
            {
                "n_cells": spec["n_cells"],
                "n_genes": spec["n_genes"],
                "conditions": conditions,
            }
        )
        if reuse and path.exists() and stamp.exists() and stamp.read_text() == wanted:
            rows.append(
                {
                    "dataset": name,
                    "cells": spec["n_cells"],
                    "genes": spec["n_genes"],
                    "conditions": len(conditions),
                    "file_gb": path.stat().st_size / 1e9,
                    "write_s": float("nan"),
                }
            )
            continue
        start = time.perf_counter()
        written = standins.write_standins(
            folder,
            scale=scale,
            datasets=[name],
            overrides={name: {**spec, "conditions": conditions}},
        )
        path = written[name]
        stamp.write_text(wanted)
        rows.append(
            {
                "dataset": name,
                "cells": spec["n_cells"],
                "genes": spec["n_genes"],
                "conditions": len(conditions),
                "file_gb": path.stat().st_size / 1e9,
                "write_s": time.perf_counter() - start,
            }
        )
    # the GO gene lists must cover every dataset's targets: write them once for all
    all_conditions = [c for name in datasets for c in standin_conditions(name)]
    genes = standins.go_genes_for(all_conditions)
    standins.write_go_gene_list(
        folder / data.get_entry("gears_go_genes").filename, genes
    )
    standins.write_gene2go(folder / data.get_entry("gears_gene2go").filename, genes)
    return rows


def seed(folder: Path, cache: Path) -> None:
    """Seed the stand-ins, then the published spreadsheets and annotation packages of
    the configured cache (``$PERTURBBOOK_CACHE``, else the default)."""
    from helpers import data

    table = data.seed_cache(folder, cache=cache)
    bad = table[~table["status"].str.startswith(("seeded", "already"))]
    if len(bad):
        raise SystemExit(f"seeding the stand-ins failed:\n{bad.to_string()}")
    user_cache = data.cache_dir(None)
    for entry in data.load_registry().values():
        if entry.kind in ("published_results", "annotation") and entry.name not in (
            "gears_go_genes",
            "gears_gene2go",
        ):
            source = user_cache / entry.filename
            if source.exists():
                data.seed_cache(source, cache=cache)
            else:
                print(
                    f"  (not in {user_cache}: {entry.filename}; the chapters may "
                    "download it)"
                )


def scgpt_standin(cache: Path, datasets: list[str], folder: Path) -> Path:
    """Chapter 5's paper profile needs the released scGPT_human folder: a full-size
    stand-in in its layout (``helpers.standins.write_scgpt_checkpoint``: 60,697 tokens,
    d = 512, 12 layers, random weights) whose vocabulary holds the stand-ins' measured
    genes and targets, as the real vocabulary holds real symbols."""
    from helpers import loaders, standins
    from helpers.conditions import condition_genes

    genes: set[str] = set()
    for name in datasets:
        adata = loaders.load_dataset(name, backed="r", download=False, cache=cache)
        genes |= set(map(str, adata.var_names))
        genes |= {
            g
            for c in adata.obs["condition"].astype(str).unique()
            for g in condition_genes(c)
        }
    standins.write_scgpt_checkpoint(folder, sorted(genes))
    return folder


def first_load(cache: Path, datasets: list[str]) -> tuple[float, float]:
    """What a reader's first load does once, timed apart from the chapters: unpack each
    zip's member into the cache, then write the GO-filtered copy that backed loads read
    (``helpers.loaders``)."""
    from helpers import data, loaders

    os.environ["PERTURBBOOK_CACHE"] = str(cache)
    start = time.perf_counter()
    for name in datasets:
        data.fetch(name, cache=cache, download=False, progressbar=False)
    unpacked = time.perf_counter()
    for name in datasets:
        loaders.load_dataset(name, backed="r", download=False, cache=cache)
    return unpacked - start, time.perf_counter() - unpacked


class Watchdog(threading.Thread):
    """Samples the summed RSS of a process tree; kills the tree (its session) above
    ``cap`` bytes."""

    def __init__(self, pid: int, cap: float, interval: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.cap, self.interval = pid, cap, interval
        self.peak, self.killed, self.done = 0, False, threading.Event()

    def run(self):
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak = max(self.peak, rss)
            if rss > self.cap and not self.killed:
                self.killed = True
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.done.wait(self.interval)


def run_capped(
    cmd: list[str],
    env: dict,
    cap: float,
    log: Path,
    *,
    use_prlimit: bool,
    timeout: float,
) -> dict:
    if use_prlimit:
        cmd = ["prlimit", f"--as={int(cap)}", "--", *cmd]
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        dog = Watchdog(proc.pid, cap)
        dog.start()
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        dog.done.set()
        dog.join()
    wall = time.perf_counter() - start
    state = (
        "ok"
        if proc.returncode == 0
        else (
            "KILLED >cap"
            if dog.killed
            else "TIMEOUT"
            if wall >= timeout
            else f"FAILED rc={proc.returncode}"
        )
    )
    return {
        "status": state,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_gb": usage.ru_maxrss * 1024 / GIB,
        "peak_tree_rss_gb": dog.peak / GIB,
        "load": os.getloadavg()[0],
    }


GEARS_MEASURE = r"""
import json, resource, sys, tempfile, time
import numpy as np
import pandas as pd
from helpers import annotations, loaders, published
from helpers.models.gears import runner as gears_runner
cap = int(sys.argv[1])
t0 = time.perf_counter()
adata = loaders.load_dataset("norman2019", backed="r")
obs = adata.obs["condition"].astype(str).to_numpy()
rng = np.random.default_rng(1)
keep = np.sort(np.concatenate(
    [rng.permutation(np.flatnonzero(obs == c))[:cap] for c in pd.unique(obs)]
))
sub = adata[keep].to_memory()
split = published.paper_double_split(1, sorted(set(obs)))
t1 = time.perf_counter()
pert_data, genes, dropped = gears_runner.prepare_gears_data(
    sub, split, annotations.gene2go(), tempfile.mkdtemp(prefix="gears-bench-")
)
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
print(json.dumps({"cells": int(len(keep)), "genes": len(genes),
                  "load_subsample_s": t1 - t0, "gears_processing_s": t2 - t1,
                  "peak_rss_gb": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument(
        "--chapters", default=",".join(CHAPTERS), help="comma-separated; '' for none"
    )
    parser.add_argument("--cap-gb", type=float, default=12.0)
    parser.add_argument(
        "--prlimit",
        action="store_true",
        help="also cap the address space (prlimit --as)",
    )
    parser.add_argument("--timeout-min", type=float, default=30.0, help="per chapter")
    parser.add_argument(
        "--gears-caps",
        default="",
        help="cells per condition for the GEARS measurement, e.g. 50,100",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep stand-ins, cache and outputs here",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep stand-ins already written in --workdir",
    )
    parser.add_argument(
        "--only-standins",
        action="store_true",
        help="write and seed the stand-ins, then stop",
    )
    parser.add_argument(
        "--datasets",
        default="",
        help="comma-separated registry names to write (default: what the "
        "chapters need)",
    )
    parser.add_argument(
        "--cells",
        default="",
        help="override cell counts, e.g. norman2019=34000 (reported as such)",
    )
    parser.add_argument(
        "--tag",
        default="",
        help="suffix of the recorded file (runs split over processes)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="also write benchmarks/results/bench_paper_profile[_small].txt",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="quick check that the benchmark runs: --scale small --chapters 01_data",
    )
    args = parser.parse_args()
    if args.small:
        if args.record:
            raise SystemExit(
                "error: --small is a quick check, not a measurement: "
                "drop --record or --small."
            )
        args.scale, args.chapters = "small", "01_data"
        print(
            "SMALL MODE (--small): chapter 1 on small stand-ins; the figures say "
            "nothing about the cap"
        )

    sys.path.insert(0, str(ROOT))
    chapters = [c for c in args.chapters.split(",") if c]
    unknown = set(chapters) - set(CHAPTERS)
    if unknown:
        raise SystemExit(f"unknown chapters {sorted(unknown)}; choose from {CHAPTERS}")
    gears_caps = [int(x) for x in args.gears_caps.split(",") if x]
    datasets = sorted(
        {d for c in chapters for d in NEEDS[c]}
        | ({"norman2019"} if gears_caps else set())
    )
    if args.datasets:
        datasets = args.datasets.split(",")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-paper-"))
    work.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    watchdog = (
        "RSS watchdog + prlimit --as"
        if args.prlimit
        else "RSS watchdog on the process tree"
    )
    say(
        f"bench_paper_profile  scale={args.scale}  cap={args.cap_gb:g} GB "
        f"({watchdog}) "
        " "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    say(
        f"machine: {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GIB:.0f} "
        "GB RAM, "
        f"{platform.platform()}; Python {platform.python_version()}"
    )
    say(
        "data: SYNTHETIC STAND-INS (helpers.standins: real layouts, the paper's "
        "condition lists, random values)"
    )
    folder, cache, results = work / "standins", work / "cache", work / "results"
    start = time.perf_counter()
    cells = {k: int(v) for k, v in (x.split("=") for x in args.cells.split(",") if x)}
    if cells:
        say(f"CELL COUNTS OVERRIDDEN (not full scale): {cells}")
    rows = write_standins(folder, args.scale, datasets, reuse=args.reuse, cells=cells)
    say("")
    say(
        f"{'stand-in':<26}{'cells':>9}{'genes':>8}{'conds':>7}"
        f"{'file GB':>9}{'write s':>9}"
    )
    for r in rows:
        say(
            f"{r['dataset']:<26}{r['cells']:>9,}{r['genes']:>8,}{r['conditions']:>7}{r['file_gb']:>9.2f}{r['write_s']:>9.0f}"
        )
    reused_cache = args.reuse and (cache / ".seeded").exists()
    if not reused_cache:
        shutil.rmtree(cache, ignore_errors=True)
        seed(folder, cache)
        (cache / ".seeded").write_text("")
    unpack_s, filter_s = first_load(cache, datasets)
    say(
        f"stand-ins ready in {time.perf_counter() - start:.0f} s (nan = reused). "
        "A reader's first load, once: unpack "
        f"the zips' members {unpack_s:.0f} s, write the GO-filtered copies "
        f"{filter_s:.0f} s; cache now "
        f"{sum(p.stat().st_size for p in cache.rglob('*') if p.is_file()) / 1e9:.1f} GB"
    )
    if args.only_standins:
        return

    env = dict(
        os.environ,
        PERTURBBOOK_CACHE=str(cache),
        PERTURBBOOK_RESULTS=str(results),
        PYTHONPATH=str(ROOT),
        MPLBACKEND="Agg",
    )
    cap = args.cap_gb * GIB
    extra = {}
    if "05_embeddings" in chapters:
        t0 = time.perf_counter()
        ckpt = scgpt_standin(cache, NEEDS["05_embeddings"], work / "scGPT_human")
        extra["05_embeddings"] = ["-p", "scgpt_checkpoint", str(ckpt)]
        say(
            "(chapter 5 reads a full-size scGPT_human stand-in, 60,697 tokens x "
            "512, 12 layers, random "
            f"weights: written in {time.perf_counter() - t0:.0f} s)"
        )
    say("")
    say(
        f"{'chapter (paper profile)':<26}{'status':<14}{'wall s':>8}{'CPU s':>8}"
        f"{'peak RSS GB':>13}{'tree RSS GB':>13}"
        f"{'load':>6}"
    )
    out = work / "executed"
    out.mkdir(exist_ok=True)
    for chapter in chapters:
        cmd = [
            sys.executable,
            "-m",
            "papermill",
            str(ROOT / "notebooks" / f"{chapter}.ipynb"),
            str(out / f"{chapter}.ipynb"),
            "-p",
            "profile",
            "paper",
            "--cwd",
            str(ROOT / "notebooks"),
            "-k",
            "python3",
            "--no-progress-bar",
            *extra.get(chapter, []),
        ]
        r = run_capped(
            cmd,
            env,
            cap,
            work / f"{chapter}.log",
            use_prlimit=args.prlimit,
            timeout=args.timeout_min * 60,
        )
        say(
            f"{chapter:<26}{r['status']:<14}{r['wall_s']:>8.0f}{r['cpu_s']:>8.0f}{r['peak_rss_gb']:>13.2f}"
            f"{r['peak_tree_rss_gb']:>13.2f}{r['load']:>6.1f}"
        )
        if r["status"] != "ok":
            tail = (work / f"{chapter}.log").read_text().splitlines()[-6:]
            say("    " + "\n    ".join(t[:160] for t in tail))
    if gears_caps:
        say("")
        say(
            "chapter 4: GEARS data processing (new_data_process + custom split + "
            "loaders) on the Norman stand-in"
        )
        say(
            f"{'cells/condition':<16}{'cells':>8}{'genes':>8}  "
            f"{'status':<14}{'load s':>8}{'GEARS s':>9}{'CPU s':>8}"
            f"{'peak RSS GB':>13}"
        )
        for n in gears_caps:
            log = work / f"gears_{n}.log"
            r = run_capped(
                [sys.executable, "-c", GEARS_MEASURE, str(n)],
                env,
                cap,
                log,
                use_prlimit=args.prlimit,
                timeout=args.timeout_min * 60,
            )
            info = {}
            for line in log.read_text().splitlines():
                if line.startswith("{"):
                    info = json.loads(line)
            say(
                f"{n:<16}{info.get('cells', 0):>8,}{info.get('genes', 0):>8,}  "
                f"{r['status']:<14}"
                f"{info.get('load_subsample_s', float('nan')):>8.0f}"
                f"{info.get('gears_processing_s', float('nan')):>9.0f}"
                f"{r['cpu_s']:>8.0f}{r['peak_rss_gb']:>13.2f}"
            )
            if r["status"] != "ok":
                say(
                    "    "
                    + "\n    ".join(t[:160] for t in log.read_text().splitlines()[-4:])
                )
    say(f"\nwork folder: {work} (delete it when done)")
    if args.record:
        scale = "" if args.scale == "full" else "_small"
        tag = "_" + args.tag if args.tag else ""
        name = f"bench_paper_profile{scale}{tag}.txt"
        target = ROOT / "benchmarks" / "results" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
        print(f"recorded in {target}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
