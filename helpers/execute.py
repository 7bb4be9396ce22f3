"""Execute the chapters with papermill and stage the executed copies for the book build.

``python -m helpers.execute --profile quick`` runs every notebook listed in ``_toc.yml``
(in order) with ``profile`` injected into its ``parameters`` cell, writes the executed
copies next to copies of the book's pages in ``_build/book_src/`` (which ``jupyter-book
build`` then renders with execution switched off), and records each chapter's run time
and status in ``_build/results/status.csv`` and the package versions in
``_build/results/versions.csv``. It exits non-zero if any notebook fails; the other
notebooks still run.

Every page says, in its first lines, what it was executed on, read from the build: the
profile each chapter actually ran with (and why, where a paper build ran a chapter on
the quick profile: no paper profile yet, no GPU, no scGPT_human folder), the data it
read (each :func:`helpers.data.fetch` and the simulator log what they read to
``$PERTURBBOOK_USAGE_LOG``; name, file, sha256, address) and the commit. The front page
gets the whole build's table; the same record is kept in the notebook's metadata
(``perturbbook.build``) and in ``_build/results/executed.json``.

A paper build (``--profile paper``) plans each chapter (:func:`plan_chapters`): chapters
without a paper profile (:data:`helpers.profiles.NO_PAPER_PROFILE`), GPU chapters on a
machine without CUDA (:data:`helpers.profiles.GPU_CHAPTERS`) and chapters whose paper
profile needs the scGPT_human folder when ``$PERTURBBOOK_SCGPT_CHECKPOINT`` is unset,
and atlas-scale chapters (:data:`helpers.profiles.ATLAS_CHAPTERS`) whose file is neither
cached nor allowed to download (``$PERTURBBOOK_ATLAS=1``) run on the quick profile and
say so; ``--executed-dir`` takes chapters executed elsewhere
(the publish workflow's GPU job) with their own record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from . import frontpage
from .course import timing
from .results import book_root, results_base, results_dir

__all__ = [
    "toc_files",
    "stage_book",
    "plan_chapters",
    "execute_notebooks",
    "build_label",
    "main",
]

LABEL_KEY = "perturbbook"
CHECKPOINT_ENV = "PERTURBBOOK_SCGPT_CHECKPOINT"
#: what a local mirror serves, said on every page built from it
#: (scripts/rehearse_publish.sh: stand-ins)
MIRROR_NOTE_ENV = "PERTURBBOOK_MIRROR_NOTE"

PAGE_SUFFIXES = (".md", ".ipynb")
TIMING_PAGE = "course_timing.md"  # written by the build, included by course.md
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib", "logo.png")
VERSION_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "anndata",
    "scanpy",
    "scikit-learn",
    "torch",
    "matplotlib",
    "papermill",
    "jupyter-book",
    "pooch",
    "h5py",
    "cell-gears",
    "torch-geometric",
    "sentence-transformers",
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
    raise FileNotFoundError(
        f"_toc.yml lists {page!r} but neither {page}.md nor {page}.ipynb exists."
    )


def _hide_injected_parameters(path: Path) -> None:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(nb, indent=1))


def stage_book(root: Path, out: Path) -> list[Path]:
    """Copy the book's configuration and Markdown pages to ``out``; return the notebooks
    to execute."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in BOOK_FILES:
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    # the chapters show the tested source with {literalinclude} ../helpers/...: the
    # staged book needs it
    shutil.copytree(
        root / "helpers", out / "helpers", ignore=shutil.ignore_patterns("__pycache__")
    )
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


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _atlas_allowed(dataset: str, atlas: bool | None) -> bool:
    """Whether a paper build may run an atlas-scale chapter: its file is in the cache,
    or the download is allowed (``atlas``; default ``$PERTURBBOOK_ATLAS == "1"``)."""
    from . import data, profiles

    if atlas is None:
        atlas = os.environ.get(profiles.ATLAS_ENV, "") == "1"
    if atlas:
        return True
    entry = data.get_entry(dataset)
    return (data.cache_dir() / entry.filename).exists()


def plan_chapters(
    stems: list[str],
    profile: str,
    *,
    gpu: bool | None = None,
    checkpoint: str | None = None,
    atlas: bool | None = None,
) -> dict[str, dict]:
    """Per chapter: the profile it runs with, why (where it differs from ``profile``)
    and extra parameters.

    The quick profile runs every chapter as it is. The paper profile runs each chapter
    on the paper profile except, on the quick profile and saying why: chapters without
    one (``profiles.NO_PAPER_PROFILE``), GPU chapters where CUDA is missing (``gpu``;
    default: ask torch), chapters whose paper profile requires the scGPT_human folder
    when ``checkpoint`` (default ``$PERTURBBOOK_SCGPT_CHECKPOINT``) is not given, and
    atlas-scale chapters (``profiles.ATLAS_CHAPTERS``) unless their file is cached or
    ``atlas`` (default ``$PERTURBBOOK_ATLAS=1``) allows the download.
    """
    from . import profiles

    profiles.check_profile(profile)
    checkpoint = (
        os.environ.get(CHECKPOINT_ENV) or None if checkpoint is None else checkpoint
    )
    plans = {}
    for stem in stems:
        plan = {"profile": profile, "reason": "", "parameters": {}}
        if profile == "paper":
            need = profiles.PAPER_CHECKPOINT_PARAMETERS.get(stem)
            if stem in profiles.NO_PAPER_PROFILE:
                plan.update(profile="quick", reason=profiles.NO_PAPER_PROFILE[stem])
            elif stem in profiles.GPU_CHAPTERS and not (
                _has_cuda() if gpu is None else gpu
            ):
                plan.update(
                    profile="quick",
                    reason="its paper profile needs a GPU and this build had none "
                    "(the publish workflow runs it on the GPU runner named by the "
                    "repository variable "
                    "GPU_RUNNER)",
                )
            elif stem in profiles.ATLAS_CHAPTERS and not _atlas_allowed(
                profiles.ATLAS_CHAPTERS[stem], atlas
            ):
                plan.update(
                    profile="quick",
                    reason="its paper profile reads the 66 GB genome-wide K562 file, "
                    "more than a standard runner's disk; this build neither had it in "
                    f"the cache nor set ${profiles.ATLAS_ENV}=1 to download it",
                )
            elif need and need[1] and not checkpoint:
                plan.update(
                    profile="quick",
                    reason="its paper profile needs the released scGPT_human folder "
                    f"and this build was given none (${CHECKPOINT_ENV})",
                )
            elif need and checkpoint:
                plan["parameters"] = {need[0]: checkpoint}
        plans[stem] = plan
    return plans


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (
        out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    )


def _read_usage(log: Path) -> list[dict]:
    """The distinct records of a usage log, in first-read order."""
    seen, records = set(), []
    if log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            key = json.dumps(record, sort_keys=True)
            if key not in seen:
                seen.add(key)
                records.append(record)
    return records


def _data_lines(data: list[dict]) -> list[str]:
    from . import profiles

    lines = []
    for item in data:
        if item.get("kind") == "synthetic":
            lines.append(
                f"- {item['detail']}: **synthetic** data from the book's simulator"
            )
            continue
        label = profiles.dataset_label(item["name"])
        lines.append(
            f"- {label}: `{item['name']}` (`{item.get('filename', '')}`, sha256 "
            f"`{item.get('sha256', '')[:16]}…`, from <{item.get('url', '')}>)"
        )
    return lines or ["- no registered dataset and no simulated data"]


def build_label(record: dict, requested: str) -> str:
    """The note at the top of an executed page: profile, why (if not ``requested``),
    data, commit."""
    profile = record["profile"]
    title = f"Executed on the {profile} profile"
    kind = "note"
    if profile != requested:
        title += f", not the {requested} profile"
        kind = "warning"
    text = [
        f":::{{admonition}} {title}",
        f":class: {kind} perturbbook-build",
        "",
        f"This page was executed from scratch with papermill on the **{profile}** "
        "data profile on "
        f"{record['executed_at']} (commit `{record['commit']}`).",
    ]
    if profile != requested:
        text.append(
            f"This build used the {requested} profile, but this chapter ran on the "
            f"{profile} profile: "
            f"{record['reason']}."
        )
    if record.get("mirror"):
        text.append(
            f"Its data were downloaded from a local mirror ({record['mirror']}) "
            "standing in for the "
            "publishers, not from the publishers themselves"
            + (f": {record['mirror_note']}." if record.get("mirror_note") else ".")
        )
    text += ["", "Data it read:", "", *_data_lines(record["data"]), ":::", ""]
    return "\n".join(text)


FIGURE_MARKER = "<!-- front-page-figure: written by the build (helpers.frontpage) -->"
NOTE_MARKER = "<!-- build-provenance: written by the build (helpers.execute) -->"


def front_page_figure(results: Path, out: Path) -> str:
    """Draw the front page's figure into the staged book (``figures/figure1.png``, and a
    copy under ``_vendor/`` that the site serves at the stable address
    ``_static/figure1.png``, which the README shows) and return its Markdown block
    (helpers.frontpage)."""
    made = frontpage.write(results, out / "figures")
    (out / "_vendor").mkdir(parents=True, exist_ok=True)
    shutil.copy2(made["figure"], out / "_vendor" / made["figure"].name)
    return frontpage.markdown(made, f"figures/{made['figure'].name}")


def fill_front_page(text: str, figure: str, note: str) -> str:
    """The front page with the figure block and the build's folded note at their markers
    (the note right under the title where the page has no marker)."""
    if NOTE_MARKER in text:
        text = text.replace(NOTE_MARKER, note)
    else:
        text = _insert_after_title(text, note)
    return text.replace(FIGURE_MARKER, figure)


def _insert_after_title(text: str, label: str) -> str:
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("# ")), -1) + 1
    return "\n".join([*lines[:at], "", label, *lines[at:]])


def _label_notebook(path: Path, record: dict, requested: str) -> None:
    nb = json.loads(path.read_text())
    nb["metadata"][LABEL_KEY] = {"build": record}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            cell["source"] = _insert_after_title(source, build_label(record, requested))
            break
    path.write_text(json.dumps(nb, indent=1))


def _take_executed(source: Path, target: Path) -> dict | None:
    """A copy of a chapter executed elsewhere, if it has a build record; else None.

    The chapter's result tables come with it where the other machine saved them beside
    the notebook (``<executed_dir>/results/<chapter>/``, ``scripts/publish.sh
    gpu-chapter``): the front page's figure reads them."""
    nb = json.loads(source.read_text())
    record = nb.get("metadata", {}).get(LABEL_KEY, {}).get("build")
    if not record:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    tables = source.parent / "results" / source.stem
    if tables.is_dir():
        shutil.copytree(tables, results_dir(source.stem), dirs_exist_ok=True)
    return record


def execute_notebooks(
    root: Path,
    out: Path,
    profile: str,
    only: list[str] | None = None,
    executed_dir: Path | None = None,
    plans: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Run each notebook with papermill into ``out`` (same relative path), each
    labelled with what it ran on; return the status table. Notebooks found in
    ``executed_dir`` with a build record are taken as they are.
    """
    import papermill as pm

    notebooks = stage_book(root, out)
    if only:
        notebooks = [nb for nb in notebooks if nb.stem in only]
    plans = plans or plan_chapters([nb.stem for nb in notebooks], profile)
    commit = _commit(root)
    gpu = "CUDA GPU" if _has_cuda() else "no GPU"
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {gpu}"
    rows = []
    for source in notebooks:
        target = out / source.relative_to(root)
        plan = plans[source.stem]
        done = executed_dir / source.name if executed_dir else None
        if done is not None and done.exists():
            record = _take_executed(done, target)
            if record is not None:
                print(
                    f"[execute] {source.name}: taken from {done} ({record['profile']} "
                    "profile, "
                    f"{record['status']})",
                    flush=True,
                )
                rows.append(
                    {
                        "notebook": source.stem,
                        "profile": record["profile"],
                        "status": record["status"],
                        "seconds": record["seconds"],
                        "error": record.get("error", ""),
                        "reason": record.get("reason", ""),
                        "data": record["data"],
                    }
                )
                continue
        start = time.perf_counter()
        status, error = "ok", ""
        why = f" ({plan['reason']})" if plan["reason"] else ""
        print(
            f"[execute] {source.relative_to(root)} (profile={plan['profile']}{why})",
            flush=True,
        )
        log = Path(tempfile.mkstemp(prefix="perturbbook-usage-", suffix=".jsonl")[1])
        saved = os.environ.get("PERTURBBOOK_USAGE_LOG")
        os.environ["PERTURBBOOK_USAGE_LOG"] = str(
            log
        )  # inherited by the kernel papermill starts
        try:
            pm.execute_notebook(
                str(source),
                str(target),
                parameters={"profile": plan["profile"], **plan["parameters"]},
                cwd=str(source.parent),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
            )
        except (
            Exception
        ) as err:  # papermill re-raises cell errors; record them and go on
            status, error = (
                "failed",
                f"{type(err).__name__}: "
                f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''}",
            )
            print(f"[execute] FAILED {source.name}: {err}", file=sys.stderr, flush=True)
        finally:
            if saved is None:
                os.environ.pop("PERTURBBOOK_USAGE_LOG", None)
            else:
                os.environ["PERTURBBOOK_USAGE_LOG"] = saved
        data = _read_usage(log)
        log.unlink(missing_ok=True)
        seconds = round(time.perf_counter() - start, 1)
        if target.exists():
            _hide_injected_parameters(target)
            record = {
                "profile": plan["profile"],
                "requested_profile": profile,
                "reason": plan["reason"],
                "status": status,
                "error": error,
                "seconds": seconds,
                "data": data,
                "commit": commit,
                "executed_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "mirror": os.environ.get("PERTURBBOOK_MIRROR", ""),
                "mirror_note": os.environ.get(MIRROR_NOTE_ENV, ""),
                "machine": machine,
            }
            _label_notebook(target, record, profile)
        print(f"[execute] {source.name}: {status} in {seconds} s", flush=True)
        rows.append(
            {
                "notebook": source.stem,
                "profile": plan["profile"],
                "status": status,
                "seconds": seconds,
                "error": error,
                "reason": plan["reason"],
                "data": data,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["notebook", "profile", "status", "seconds", "error", "reason", "data"],
    )


def _data_names(data: list[dict]) -> str:
    names = [
        ("simulator (synthetic)" if d.get("kind") == "synthetic" else d["name"])
        for d in data
    ]
    return ", ".join(dict.fromkeys(names)) or "—"


def front_page_label(status: pd.DataFrame, requested: str, commit: str) -> str:
    """The front page's note: the build's profile and, per chapter, the profile and
    data it ran on."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f":::{{admonition}} How this site was built: the {requested} profile, commit "
        f"`{commit}`, {when}",
        ":class: note dropdown perturbbook-build",
        "",
        "Every chapter was executed from scratch for this site. The build used the "
        f"**{requested}** data "
        "profile; each chapter's first lines say what it ran on, with each file's "
        "checksum. In short:",
        "",
        "| chapter | profile | data read |",
        "|---|---|---|",
    ]
    for row in status.itertuples():
        profile = row.profile + (f" ({row.reason})" if row.reason else "")
        lines.append(f"| {row.notebook} | {profile} | {_data_names(row.data)} |")
    mirror = os.environ.get("PERTURBBOOK_MIRROR")
    if mirror:
        note = os.environ.get(MIRROR_NOTE_ENV)
        lines += [
            "",
            f"The data were downloaded from a local mirror ({mirror}) standing in for "
            "the publishers" + (f": {note}." if note else "."),
        ]
    return "\n".join([*lines, ":::", ""])


def package_versions() -> pd.DataFrame:
    rows = [{"package": "python", "version": platform.python_version()}]
    for name in VERSION_PACKAGES:
        try:
            rows.append({"package": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"package": name, "version": "not installed"})
    return pd.DataFrame(rows)


def status_page(status: pd.DataFrame, versions: pd.DataFrame) -> str:
    """Markdown of the book's status page: each chapter's profile, data, execution
    time and the package versions."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# Status of this build",
        "",
        "Every chapter was executed from scratch with papermill when this book was "
        f"built ({when}). "
        "Each chapter's profile, the data it read, its run time, and the versions of "
        "the key packages:",
        "",
        "| chapter | profile | data read | status | seconds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row.notebook} | {row.profile} | {_data_names(row.data)} | {row.status} | "
        f"{row.seconds} |"
        for row in status.itertuples()
    ]
    lines += ["", "| package | version |", "|---|---|"]
    lines += [f"| {row.package} | {row.version} |" for row in versions.itertuples()]
    return "\n".join(lines) + "\n"


def course_timing_page(root: Path, status: pd.DataFrame) -> str:
    """Markdown of ``course_timing.md`` (included by ``course.md``): each chapter's
    measured run time in this build (and the Colab-like runtime's, where
    ``$COLAB_LIKE_DIR/summary.tsv`` or ``_build/colab_like/summary.tsv`` exists),
    the estimated student minutes and the fit of the course's tracks."""
    colab_dir = os.environ.get("COLAB_LIKE_DIR") or root / "_build" / "colab_like"
    return timing.timing_page(
        status,
        timing.effort_table(root),
        cores=os.cpu_count(),
        colab=timing.read_colab_like(Path(colab_dir) / "summary.tsv"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.execute", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--profile", default="quick", choices=["quick", "paper"])
    parser.add_argument(
        "--out", default="_build/book_src", help="staging folder for the book build"
    )
    parser.add_argument(
        "--only", nargs="*", help="notebook names (e.g. 01_data) to run; default: all"
    )
    parser.add_argument(
        "--executed-dir",
        type=Path,
        default=None,
        help="take notebooks executed elsewhere from here (those with a build record)",
    )
    args = parser.parse_args(argv)
    root = book_root()
    out = (root / args.out).resolve()
    executed_dir = args.executed_dir.resolve() if args.executed_dir else None
    status = execute_notebooks(root, out, args.profile, args.only, executed_dir)
    results = root / "_build" / "results"
    results.mkdir(parents=True, exist_ok=True)
    status.drop(columns="data").to_csv(results / "status.csv", index=False)
    (results / "executed.json").write_text(
        json.dumps(status.to_dict(orient="records"), indent=1)
    )
    versions = package_versions()
    versions.to_csv(results / "versions.csv", index=False)
    (out / "status.md").write_text(status_page(status, versions))
    (out / TIMING_PAGE).write_text(course_timing_page(root, status))
    index = out / f"{toc_files(root)[0]}.md"
    figure_error = ""
    if index.exists():
        note = front_page_label(status, args.profile, _commit(root))
        figure = ""
        # a partial run builds no site; a front page without the marker has no figure
        if not args.only and FIGURE_MARKER in index.read_text():
            try:
                figure = front_page_figure(results_base(), out)
            except frontpage.FrontPageError as err:
                figure_error = str(err)
                figure = (
                    f":::{{error}}\nThe front page's figure could not be "
                    f"made: {err}\n:::\n"
                )
        index.write_text(fill_front_page(index.read_text(), figure, note))
    print(status.drop(columns="data").to_string(index=False))
    if figure_error:
        print(
            f"[execute] the front page's figure failed: {figure_error}", file=sys.stderr
        )
        return 1
    failed = status[status["status"] != "ok"]
    if len(failed):
        print(
            f"[execute] {len(failed)} notebook(s) failed: "
            f"{', '.join(failed['notebook'])}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
