"""The Python code passes ``ruff check`` with the configuration in pyproject.toml.

ruff (pinned in ``scripts/make_lint_venv.sh``) lives in the lint environment,
``.venv-lint`` (or ``$PERTURBBOOK_LINT_VENV``), next to the workflow lints of
``tests/book/test_workflows.py``; like them, a missing environment is a failure that
says how to make it. The rules (``[tool.ruff]``): pyflakes, pycodestyle at 88 columns,
pep8-naming (the papers' matrix names X, Y, G, W, P allowed) and flake8-raise.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_VENV = Path(os.environ.get("PERTURBBOOK_LINT_VENV", ROOT / ".venv-lint"))


def test_ruff_check_is_clean():
    ruff = LINT_VENV / "bin" / "ruff"
    if not ruff.exists():
        pytest.fail(
            f"{ruff} does not exist: run scripts/make_lint_venv.sh (command 1 does)"
        )
    done = subprocess.run(
        [str(ruff), "check", "--no-cache", "--output-format", "concise", "."],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    violations = [line for line in done.stdout.splitlines() if ": " in line]
    assert done.returncode == 0, (
        f"ruff check found {len(violations)} violation(s) (fix them, or run "
        "'.venv-lint/bin/ruff check --fix .' for the safe fixes):\n"
        + "\n".join(violations or [done.stdout + done.stderr])
    )
