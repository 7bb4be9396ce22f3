"""Packaging: environment.yml and requirements.txt agree; pyproject declares what
helpers/ imports, and only that."""

from __future__ import annotations

import ast
import os
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge names that differ from the PyPI name
USED_WITHOUT_IMPORT = {
    "openpyxl"
}  # the engine of pandas.read_excel (helpers.published)


def _name(requirement: str) -> str:
    return (
        re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0]
        .lower()
        .replace("_", "-")
    )


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt pins exactly: {line!r}"
            pins[_name(name)] = version
    return pins


def test_environment_yml_and_requirements_txt_agree():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = _pins()
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-r requirements.txt"]
    assert "python=3.11" in conda
    checked = 0
    for dep in conda:
        name, _, rest = dep.partition("=")
        if name in ("python", "pip"):
            continue
        version = rest.split("=")[0]
        pip_name = CONDA_TO_PIP.get(name, name)
        assert pip_name in pins, (
            f"environment.yml installs {name} but requirements.txt does not pin it"
        )
        assert version == pins[pip_name], (
            f"{name}: environment.yml {version} != requirements.txt {pins[pip_name]}"
        )
        checked += 1
    assert (
        checked >= 8
    )  # numpy, scipy, pandas, h5py, anndata, scikit-learn, matplotlib, torch, ...


def _helpers_imports() -> set[str]:
    modules = set()
    for path in (ROOT / "helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "helpers"}


def test_pyproject_declares_every_import_and_no_unused_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # helpers.data uses tomllib
    core = {_name(r) for r in project["dependencies"]}
    extras = {
        _name(r) for reqs in project["optional-dependencies"].values() for r in reqs
    }
    distributions = packages_distributions()
    imported = set()
    for module in _helpers_imports():
        names = {_name(d) for d in distributions.get(module, [])}
        assert names, f"helpers imports {module!r}, which is not installed"
        assert names & (core | extras), (
            f"helpers imports {module!r} ({names}) but pyproject.toml does not "
            "declare it"
        )
        imported |= names
    assert USED_WITHOUT_IMPORT <= core, (
        f"not declared: {sorted(USED_WITHOUT_IMPORT - core)}"
    )
    assert core <= imported | USED_WITHOUT_IMPORT, (
        f"declared but never imported by helpers: {sorted(core - imported)}"
    )
    pins = _pins()
    assert (core | extras) - {"jupyter-book"} <= set(pins), (
        "every declared package has an exact pin in requirements.txt"
    )


def test_text_model_leaves_hub_offline_mode_as_it_found_it(monkeypatch):
    pytest.importorskip("sentence_transformers")
    import huggingface_hub.constants as hub_constants

    from helpers import embeddings

    for before in (None, "0"):
        if before is None:
            monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        else:
            monkeypatch.setenv("HF_HUB_OFFLINE", before)
        flag = hub_constants.HF_HUB_OFFLINE
        with embeddings._hub_offline():
            assert (
                os.environ["HF_HUB_OFFLINE"] == "1"
                and hub_constants.HF_HUB_OFFLINE is True
            )
        assert (
            os.environ.get("HF_HUB_OFFLINE") == before
            and hub_constants.HF_HUB_OFFLINE is flag
        )
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    flag = hub_constants.HF_HUB_OFFLINE
    model = embeddings.text_model()
    assert model.encode(["a gene"]).shape == (1, 384)
    assert "HF_HUB_OFFLINE" not in os.environ and hub_constants.HF_HUB_OFFLINE is flag
