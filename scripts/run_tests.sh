#!/usr/bin/env bash
# Command 2 of the README: run the test suite in the environment made by scripts/build_book.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "error: $VENV does not exist; run 'bash scripts/build_book.sh' first (it sets up the environment)." >&2
  exit 1
fi
exec "$VENV/bin/python" -m pytest "$@"
