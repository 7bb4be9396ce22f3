#!/usr/bin/env bash
# A separate virtual environment for the cross-checks against cell-eval2, the Virtual Cell
# Challenge's evaluation package (tests/parity/test_beyond_celleval.py, tests/parity/test_parity_celleval2.py).
# cell-eval2 0.20.0 needs newer numpy/scipy than the book's pins (numpy, scipy in
# requirements.txt), so it must not go into the book's .venv; the tests call it by subprocess.
# cell-eval2 covers everything the earlier cell-eval 0.8.2 cross-check used (mse,
# pearson_delta, the refusal of negative values), so 0.8.2 is no longer installed.
#   scripts/make_celleval_venv.sh [VENV_DIR]   (default: .venv-celleval in the repository root)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-celleval}"
PYTHON="${PYTHON:-python3.11}"
PIN="cell-eval2==0.20.0"
have() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('cell-eval2') != '${PIN#*==}')" \
    2>/dev/null
}
if ! have; then
  rm -rf "$VENV"  # an older environment (e.g. cell-eval 0.8.2) is replaced, not patched
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "$PIN"
fi
"$VENV/bin/python" -c "import cell_eval2, importlib.metadata as m; print('cell-eval2', m.version('cell-eval2'))"
