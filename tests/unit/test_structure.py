"""The book's structure, in scanpy's spirit: what a chapter calls is easy to call.

* Every ``helpers`` function a chapter (``notebooks/*.ipynb``) calls takes at most
  three positional parameters (the rest keyword-only, after ``*``) and has a
  docstring that names each of its parameters.
* Every ``raise SomeError(...)`` in ``helpers/`` carries a message.
* The book's own errors: every class named ``*Error`` in ``helpers`` derives from
  :class:`helpers.errors.BookError`, and no module raises a bare built-in
  ``ValueError`` / ``RuntimeError`` (``InputError`` / ``EnvironmentProblem`` instead).

The oracle is the source itself: the calls are found by parsing the chapters' code
cells with :mod:`ast` and the parameters read with :func:`inspect.signature`; each
offender gets one line.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

from helpers.errors import BookError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HELPERS = ROOT / "helpers"
MAX_POSITIONAL = 3
BUILTIN_RAISES = {"ValueError", "RuntimeError"}


# ----------------------------------------------------------------- what chapters call


def _code(notebook: Path) -> str:
    """The code cells of one notebook, IPython magics and shell lines removed."""
    cells = json.loads(notebook.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            magic = line.lstrip().startswith(("%", "!"))
            lines.append("" if magic else line)
        lines.append("")
    return "\n".join(lines)


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a Name / Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def called_helpers(source: str) -> set[str]:
    """Dotted names (``helpers.module.function``) of the helpers a source calls.

    Parameters
    ----------
    source
        Python source code (a chapter's code cells).
    """
    tree = ast.parse(source)
    names: dict[str, str] = {}  # local name -> dotted helpers path
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "helpers":
                    local = alias.asname or alias.name.split(".")[0]
                    names[local] = alias.name if alias.asname else "helpers"
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "helpers" and node.level == 0:
                for alias in node.names:
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = _dotted(node.func)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head in names:
            found.add(names[head] + ("." + rest if rest else ""))
    return found


def _resolve(dotted: str):
    """The object behind ``helpers.a.b.f`` (modules imported as needed), or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def chapter_functions() -> dict[str, list[str]]:
    """Every helpers function (not class) the chapters call -> the chapters calling
    it."""
    calls: dict[str, list[str]] = {}
    for notebook in NOTEBOOKS:
        for dotted in called_helpers(_code(notebook)):
            calls.setdefault(dotted, []).append(notebook.stem)
    functions = {}
    for dotted, chapters in sorted(calls.items()):
        obj = _resolve(dotted)
        if inspect.isfunction(obj) and obj.__module__.startswith("helpers"):
            functions[f"{obj.__module__}.{obj.__qualname__}"] = chapters
    return functions


def _names_in_docstring(doc: str, name: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", doc) is not None


def signature_problems(function) -> list[str]:
    """What breaks the house rule in one function's signature and docstring.

    Parameters
    ----------
    function
        The function to check.
    """
    params = list(inspect.signature(function).parameters.values())
    positional = [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    problems = []
    if len(positional) > MAX_POSITIONAL:
        problems.append(
            f"{len(positional)} positional parameters ({', '.join(positional)}); "
            f"make those after the first {MAX_POSITIONAL} keyword-only (after *)"
        )
    doc = inspect.getdoc(function) or ""
    if not doc:
        problems.append("no docstring")
    else:
        missing = [
            p.name
            for p in params
            if p.name not in ("self", "cls") and not _names_in_docstring(doc, p.name)
        ]
        if missing:
            problems.append(f"docstring does not name {', '.join(missing)}")
    return problems


def test_the_finder_resolves_every_import_style():
    source = (
        "import helpers\nimport helpers.linear as lin\nfrom helpers import plotting\n"
        "from helpers.metrics import paper as pm\nfrom helpers.splits import "
        "holdout_split\n"
        "from helpers.noise import l2_noise_floor as floor\n"
        "helpers.data.fetch('x')\nlin.fit(1)\nplotting.forest(2)\npm.l2(3)\n"
        "holdout_split(4)\nfloor(5)\nprint(6)\nx = lin.fit\n"
    )
    assert called_helpers(source) == {
        "helpers.data.fetch",
        "helpers.linear.fit",
        "helpers.plotting.forest",
        "helpers.metrics.paper.l2",
        "helpers.splits.holdout_split",
        "helpers.noise.l2_noise_floor",
    }


def test_the_rule_flags_what_it_should():
    def fine(a, b, c, *, d=1):
        """Uses a, b, c and d."""

    def too_many(a, b, c, d):
        """Uses a, b, c and d."""

    def undocumented_param(a, *, dd=1):
        """Uses a and d (not the other)."""

    assert signature_problems(fine) == []
    assert signature_problems(too_many)[0].startswith("4 positional parameters")
    assert signature_problems(undocumented_param) == ["docstring does not name dd"]
    assert signature_problems(lambda x: x) == ["no docstring"]


def test_chapters_call_helpers_with_at_most_three_positional_parameters_and_docs():
    functions = chapter_functions()
    assert len(functions) > 20, "the chapters' helpers calls were not found"
    offenders = []
    for name, chapters in functions.items():
        obj = _resolve(name)
        for problem in signature_problems(obj):
            offenders.append(f"{name} (called in {', '.join(chapters)}): {problem}")
    print("\n".join(offenders))
    assert not offenders, (
        f"{len(offenders)} helpers functions the chapters call break the house rule "
        "(at most 3 positional parameters, a docstring naming every parameter):\n"
        + "\n".join(offenders)
    )


# ----------------------------------------------------------------- raising and errors


def _raises() -> list[tuple[Path, ast.Raise]]:
    found = []
    for path in sorted(HELPERS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                found.append((path, node))
    return sorted(found, key=lambda item: (item[0], item[1].lineno))


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return _dotted(exc)


def test_every_raise_in_helpers_carries_a_message():
    offenders = []
    for path, node in _raises():
        name = _raised_name(node)
        if name is None or not name[:1].isupper() and "." not in name:
            continue  # `raise err` re-raises an exception object
        call = node.exc if isinstance(node.exc, ast.Call) else None
        if call is None or not (call.args or call.keywords):
            rel = path.relative_to(ROOT)
            offenders.append(f"{rel}:{node.lineno}: raise {name} without a message")
    assert not offenders, "\n".join(
        ["every raise names the problem and the fix in one line:", *offenders]
    )


def _error_classes() -> list[type]:
    classes = []
    for path in sorted(HELPERS.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        names = [
            node.name
            for node in tree.body
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
        ]
        if names:
            loaded = importlib.import_module(module)
            classes.extend(getattr(loaded, name) for name in names)
    return classes


def test_every_error_class_of_the_book_derives_from_book_error():
    classes = _error_classes()
    assert classes, "no *Error class found in helpers/"
    offenders = [
        f"{cls.__module__}.{cls.__qualname__} derives from "
        f"{', '.join(base.__name__ for base in cls.__bases__)}, not BookError"
        for cls in classes
        if not issubclass(cls, BookError)
    ]
    assert not offenders, "\n".join(
        ["the book's own errors derive from helpers.errors.BookError:", *offenders]
    )


def builtin_raises() -> list[str]:
    """``raise ValueError(...)`` / ``raise RuntimeError(...)`` left in helpers/."""
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: raise {_raised_name(node)}"
        for path, node in _raises()
        if _raised_name(node) in BUILTIN_RAISES
    ]


def test_no_bare_builtin_value_or_runtime_errors_are_raised():
    offenders = builtin_raises()
    print("\n".join(offenders))
    assert not offenders, (
        f"{len(offenders)} raises of a built-in ValueError/RuntimeError in helpers/; "
        "module owners: raise helpers.errors.InputError (a ValueError) or "
        "EnvironmentProblem (a RuntimeError) with the same message instead:\n"
        + "\n".join(offenders)
    )
