#!/usr/bin/env bash
# A separate virtual environment with the real cpa-tools, for the CPA parity oracle
# (tests/parity/cpa_oracle.py, run by tests/parity/test_cpa.py through subprocess).
# cpa-tools needs Python 3.10 and the paper's pins (torch 2.0.0, scvi-tools 0.20.3,
# pytorch-lightning 1.9.5, numpy 1.23.5, ...), far older than the book's, so it must not
# go into the book's .venv. cpa-tools 0.8.1 declares torch<2.0 and pip's resolver
# backtracks for many minutes, so every package is installed pinned with --no-deps from
# tests/parity/cpa_env_pins.txt. Made once: skipped when cpa already imports. About 5 GB
# (torch 2.0.0 from the registry is the CUDA 11 build and needs the nvidia-* wheels even
# on a CPU). Installs from PyPI only (pip's configured index).
#   scripts/make_cpa_venv.sh [VENV_DIR]   (default: .venv-cpa in the root)
#   PYTHON=/path/to/python3.10 scripts/make_cpa_venv.sh   (default: python3.10 on PATH,
#   else pyenv's 3.10.13)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-cpa}"
PINS="$ROOT/tests/parity/cpa_env_pins.txt"
if [ -z "${PYTHON:-}" ]; then
  if python3.10 -c "" >/dev/null 2>&1; then
    PYTHON=python3.10
  else
    # pyenv's own 3.10 (its shim needs a pyenv version set to run it)
    PYTHON="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10 2>/dev/null \
      | sort -V | tail -1)"
    PYTHON="${PYTHON:-python3.10}"
  fi
fi
if ! "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
  echo "[setup] no Python 3.10 (tried $PYTHON; set PYTHON=/path/to/python3.10): .venv-cpa not" \
    "made; the live CPA parity tests will skip and say so (the stored oracle is still checked)"
  exit 0
fi
CHECK="import importlib.metadata as m, cpa; assert m.version('cpa-tools') == '0.8.1'"
if ! "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade "pip==24.0"
  "$VENV/bin/pip" install --quiet --no-deps -r "$PINS"
fi
"$VENV/bin/python" -c "import cpa, torch, scvi, anndata, importlib.metadata as m; \
print('cpa-tools', m.version('cpa-tools'), 'torch', torch.__version__, \
'scvi-tools', scvi.__version__, 'anndata', anndata.__version__)"
