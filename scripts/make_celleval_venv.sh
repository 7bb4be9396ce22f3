#!/usr/bin/env bash
# A separate virtual environment for the cell-eval cross-check (tests/test_beyond_celleval.py).
# cell-eval 0.8.2 needs numpy>=2.4 and scipy>=1.17, newer than the book's pins (numpy, scipy in
# requirements.txt), so it must not go into the book's .venv. The test calls it by subprocess.
#   scripts/make_celleval_venv.sh [VENV_DIR]   (default: .venv-celleval in the repository root)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-celleval}"
PYTHON="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/cell-eval" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "cell-eval==0.8.2"
fi
"$VENV/bin/python" -c "import cell_eval, importlib.metadata as m; print('cell-eval', m.version('cell-eval'))"
