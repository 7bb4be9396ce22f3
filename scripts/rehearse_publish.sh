#!/usr/bin/env bash
# Rehearse the publish workflow here: the paper-profile site built from a local mirror of the publishers
# (figshare, Dataverse) on 127.0.0.1 serving stand-ins of the paper's files, with an empty cache, then the
# browser test on that site; prints time, peak memory and disk. Details: benchmarks/rehearse_publish.py.
#   bash scripts/rehearse_publish.sh                              # full-size stand-ins (long)
#   bash scripts/rehearse_publish.sh --scale small                # small stand-ins, the whole site
#   bash scripts/rehearse_publish.sh --scale small --stage data   # small stand-ins, downloads only (the test)
# Uses the environment of command 1 ($VENV, default .venv): run `bash scripts/build_book.sh` first.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "error: $VENV does not exist; run 'bash scripts/build_book.sh' first (it sets up the environment)." >&2
  exit 1
fi
exec "$VENV/bin/python" benchmarks/rehearse_publish.py "$@"
