#!/usr/bin/env bash
# Command 2 of the README: run the test suite in the environment made by scripts/build_book.sh.
# The tests run in PYTEST_WORKERS processes (pytest-xdist; default 2, one per core of CI's machine),
# each test file in one process (--dist loadfile: a file's module fixtures, e.g. one peer run or the
# Colab-like run of every chapter, are made once). PYTEST_WORKERS=0 runs everything in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "error: $VENV does not exist; run 'bash scripts/build_book.sh' first (it sets up the environment)." >&2
  exit 1
fi
WORKERS="${PYTEST_WORKERS:-2}"
if [ "$WORKERS" = 0 ]; then
  exec "$VENV/bin/python" -m pytest "$@"
fi
exec "$VENV/bin/python" -m pytest -n "$WORKERS" --dist loadfile "$@"
