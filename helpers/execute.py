"""Execute the chapters with papermill and stage the executed copies for the book build.

``python -m helpers.execute --profile quick`` runs every notebook listed in ``_toc.yml`` (in
order) with ``profile`` injected into its ``parameters`` cell, writes the executed copies next to
copies of the book's pages in ``_build/book_src/`` (which ``jupyter-book build`` then renders
with execution switched off), and records each chapter's run time and status in
``_build/results/status.csv`` and the package versions in ``_build/results/versions.csv``.
It exits non-zero if any notebook fails; the other notebooks still run.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from .results import book_root

__all__ = ["toc_files", "stage_book", "execute_notebooks", "main"]

PAGE_SUFFIXES = (".md", ".ipynb")
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib", "logo.png")
VERSION_PACKAGES = (
    "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn", "torch", "matplotlib",
    "papermill", "jupyter-book", "pooch", "h5py", "cell-gears", "torch-geometric", "sentence-transformers",
)


def toc_files(root: Path) -> list[str]:
    """The page paths (without suffix) listed in ``_toc.yml``, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("parts", []) or []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []) or []:
        walk(part.get("chapters"))
    return pages


def _resolve(root: Path, page: str) -> Path:
    for suffix in PAGE_SUFFIXES:
        path = root / f"{page}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"_toc.yml lists {page!r} but neither {page}.md nor {page}.ipynb exists.")


def _hide_injected_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(nb, indent=1))


def stage_book(root: Path, out: Path) -> list[Path]:
    """Copy the book's configuration and Markdown pages to ``out``; return the notebooks to execute."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in BOOK_FILES:
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    # the chapters show the tested source with {literalinclude} ../helpers/...: the staged book needs it
    shutil.copytree(root / "helpers", out / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    notebooks = []
    for page in toc_files(root):
        source = _resolve(root, page)
        target = out / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".ipynb":
            notebooks.append(source)
        else:
            shutil.copy2(source, target)
    return notebooks


def execute_notebooks(root: Path, out: Path, profile: str, only: list[str] | None = None) -> pd.DataFrame:
    """Run each notebook with papermill into ``out`` (same relative path); return the status table."""
    import papermill as pm

    notebooks = stage_book(root, out)
    if only:
        notebooks = [nb for nb in notebooks if nb.stem in only]
    rows = []
    for source in notebooks:
        target = out / source.relative_to(root)
        start = time.perf_counter()
        status, error = "ok", ""
        print(f"[execute] {source.relative_to(root)} (profile={profile})", flush=True)
        try:
            pm.execute_notebook(
                str(source),
                str(target),
                parameters={"profile": profile},
                cwd=str(source.parent),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
            )
        except Exception as err:  # papermill re-raises cell errors; record them and go on
            status, error = "failed", f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
            print(f"[execute] FAILED {source.name}: {err}", file=sys.stderr, flush=True)
        if target.exists():
            _hide_injected_parameters(target)
        seconds = round(time.perf_counter() - start, 1)
        print(f"[execute] {source.name}: {status} in {seconds} s", flush=True)
        rows.append({"notebook": source.stem, "profile": profile, "status": status, "seconds": seconds, "error": error})
    return pd.DataFrame(rows, columns=["notebook", "profile", "status", "seconds", "error"])


def package_versions() -> pd.DataFrame:
    rows = [{"package": "python", "version": platform.python_version()}]
    for name in VERSION_PACKAGES:
        try:
            rows.append({"package": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"package": name, "version": "not installed"})
    return pd.DataFrame(rows)


def status_page(status: pd.DataFrame, versions: pd.DataFrame) -> str:
    """Markdown of the book's status page: each chapter's execution time and the package versions."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = ["# Status of this build", "",
             f"Every chapter was executed from scratch with papermill when this book was built ({when}), on the "
             f"`{status['profile'].iloc[0] if len(status) else '?'}` data profile. Run times and the versions of the key "
             "packages:", "", "| chapter | status | seconds |", "|---|---|---|"]
    lines += [f"| {row.notebook} | {row.status} | {row.seconds} |" for row in status.itertuples()]
    lines += ["", "| package | version |", "|---|---|"]
    lines += [f"| {row.package} | {row.version} |" for row in versions.itertuples()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.execute", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick", choices=["quick", "paper"])
    parser.add_argument("--out", default="_build/book_src", help="staging folder for the book build")
    parser.add_argument("--only", nargs="*", help="notebook names (e.g. 01_data) to run; default: all")
    args = parser.parse_args(argv)
    root = book_root()
    out = (root / args.out).resolve()
    status = execute_notebooks(root, out, args.profile, args.only)
    results = root / "_build" / "results"
    results.mkdir(parents=True, exist_ok=True)
    status.to_csv(results / "status.csv", index=False)
    versions = package_versions()
    versions.to_csv(results / "versions.csv", index=False)
    (out / "status.md").write_text(status_page(status, versions))
    print(status.to_string(index=False))
    failed = status[status["status"] != "ok"]
    if len(failed):
        print(f"[execute] {len(failed)} notebook(s) failed: {', '.join(failed['notebook'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
