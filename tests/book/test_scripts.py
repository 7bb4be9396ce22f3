"""Every script of the project runs under the book's interpreter: benchmarks/ and
scripts/.

Python scripts are compiled with the interpreter that runs the tests (the book's Python
3.11, made by ``bash scripts/build_book.sh``), so syntax only newer Pythons accept (e.g.
PEP 701 f-strings that nest the same quotes) fails here; bash scripts are parsed with
``bash -n``. Every benchmark answers ``--help`` (which names its ``--small`` mode) and
runs its ``--small`` mode to the end: a quick run of every code path whose figures say
nothing about the targets (the full runs are the benchmarks' business, not the tests').
"""

from __future__ import annotations

import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
FOLDERS = ("benchmarks", "scripts", ".ci")


def _kind(path: Path) -> str:
    first = path.read_text(errors="replace").split("\n", 1)[0]
    if path.suffix == ".py" or (first.startswith("#!") and "python" in first):
        return "python"
    if path.suffix == ".sh" or (first.startswith("#!") and "bash" in first):
        return "bash"
    return "unknown"


SCRIPTS = sorted(
    p for folder in FOLDERS for p in (ROOT / folder).glob("*") if p.is_file()
)
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def _id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _env() -> dict:
    """The tested tree's helpers first (a script in benchmarks/ does not see the
    repository root by itself).
    """
    path = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")


def test_the_book_interpreter_runs_the_tests():
    assert sys.version_info[:2] == (3, 11), (
        f"these tests compile the scripts with {sys.executable} (Python "
        f"{sys.version.split()[0]}), not the book's Python 3.11: run them with "
        "'bash scripts/run_tests.sh' (the .venv that scripts/build_book.sh makes)"
    )


def test_scripts_are_found():
    assert len(BENCHMARKS) >= 5 and any(p.suffix == ".sh" for p in SCRIPTS), [
        _id(p) for p in SCRIPTS
    ]
    unknown = [_id(p) for p in SCRIPTS if _kind(p) == "unknown"]
    assert not unknown, (
        f"scripts of no known kind (neither Python nor bash): nothing checks {unknown}"
    )


@pytest.mark.parametrize("path", [p for p in SCRIPTS if _kind(p) == "python"], ids=_id)
def test_python_script_compiles(path, tmp_path):
    try:
        py_compile.compile(
            str(path), cfile=str(tmp_path / "compiled.pyc"), doraise=True
        )
    except py_compile.PyCompileError as error:
        pytest.fail(
            f"{_id(path)} does not compile on Python {sys.version.split()[0]}:\n"
            f"{error.msg}"
        )


@pytest.mark.parametrize("path", [p for p in SCRIPTS if _kind(p) == "bash"], ids=_id)
def test_bash_script_parses(path):
    bash = shutil.which("bash")
    assert bash, "bash not found"
    result = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, f"bash -n {_id(path)}:\n{result.stderr}"


def test_the_compile_check_fails_on_311_incompatible_syntax(tmp_path):
    # the error this file was written for: an f-string nesting its own quotes
    # (valid from Python 3.12 only)
    script = tmp_path / "nested_quotes.py"
    script.write_text(
        'from importlib.metadata import version\nprint(f"scanpy {version("scanpy")}")\n'
    )
    with pytest.raises(py_compile.PyCompileError):
        py_compile.compile(str(script), cfile=str(tmp_path / "x.pyc"), doraise=True)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=timeout,
    )


@pytest.mark.parametrize("path", BENCHMARKS, ids=_id)
def test_benchmark_help(path):
    result = _run([str(path), "--help"], timeout=120)
    assert result.returncode == 0, (
        f"{_id(path)} --help failed:\n{result.stdout}\n{result.stderr}"
    )
    assert result.stdout.startswith("usage:"), result.stdout
    assert "--small" in result.stdout, (
        f"{_id(path)} has no --small mode for the tests to run"
    )


# extra arguments of each benchmark's small mode: its temporary files go to pytest's
# folder
SMALL_ARGS = {
    "bench_load_pseudobulk.py": lambda tmp: ["--workdir", str(tmp)],
    "bench_paper_profile.py": lambda tmp: ["--workdir", str(tmp)],
    "compare_locfdr.py": lambda tmp: ["--shared", str(SHARED)],
}


@pytest.mark.parametrize("path", BENCHMARKS, ids=_id)
def test_benchmark_small_mode_runs(path, tmp_path):
    extra = SMALL_ARGS.get(path.name, lambda tmp: [])(tmp_path)
    result = _run([str(path), "--small", *extra], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"{_id(path)} --small failed (exit {result.returncode}):\n{output[-3000:]}"
    )
    assert "SMALL MODE" in result.stdout, (
        f"{_id(path)} --small does not say that it ran small:\n{output[-2000:]}"
    )
    assert "Traceback" not in output, output[-3000:]
    assert "FAILED" not in result.stdout and "KILLED" not in result.stdout, (
        result.stdout[-3000:]
    )
