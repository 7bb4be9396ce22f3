#!/usr/bin/env bash
# A separate virtual environment for the scPertEval cross-check
# (tests/parity/test_parity_scperteval.py). scperteval 0.2.0 (Schaefer et al. 2026) needs
# numpy>=2 and anndata>=0.12.7 and pulls illico (its Mann-Whitney backend), newer than
# the book's pins in requirements.txt, so it must not go into the book's .venv. The test
# calls it by subprocess. Installs from PyPI only (pip's configured index).
#   scripts/make_scperteval_venv.sh [VENV_DIR]   (default: .venv-scperteval in the root)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-scperteval}"
PYTHON="${PYTHON:-python3.11}"
CHECK="import importlib.metadata as m; assert m.version('scperteval') == '0.2.0'"
if ! "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "scperteval==0.2.0"
fi
"$VENV/bin/python" -c "import scperteval, illico, importlib.metadata as m; \
print('scperteval', m.version('scperteval'), 'illico', m.version('illico'))"
