#!/usr/bin/env bash
# Command 1 of the README: set up everything from nothing and build the book.
#   1. a virtual environment in .venv (Python 3.11) with the exact pins of requirements.txt + the helpers
#   2. seed the data cache from $PERTURBBOOK_SEED_DIR (default: ../shared beside the checkout, if it exists),
#      with the same checks as a download; anything not seeded is downloaded from the registry's URL
#   3. execute every chapter with papermill on the profile $PROFILE (default: quick)
#   4. build the book from the executed copies with warnings as errors -> _build/html/index.html
# PROFILE=paper builds the published site: the paper's data are downloaded through the registry first, and each
# page says in its first lines which profile and data it was executed on (helpers.execute). Also read:
#   PERTURBBOOK_MIRROR             a local mirror of the publishers (helpers.data; scripts/rehearse_publish.sh)
#   PERTURBBOOK_SCGPT_CHECKPOINT   the released scGPT_human folder (paper profile of chapters 4 and 5)
#   PERTURBBOOK_EXECUTED_DIR       chapters executed elsewhere (the publish workflow's GPU job), taken as they are
#   CHAPTERS                       only execute these chapters (e.g. "04_foundation_models"), then stop
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-quick}"
VENV="${VENV:-.venv}"
# A configured cache is the only cache: every step (the chapters' kernels included) that lost the
# setting stops with one line instead of reading or filling the default one (helpers.data).
if [ -n "${PERTURBBOOK_CACHE:-}" ]; then
  export PERTURBBOOK_NO_DEFAULT_CACHE=1
fi

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY="$(find_python)"
  echo "[setup] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
echo "[setup] installing requirements.txt and the helpers package"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.txt
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
# cell-eval (the peer evaluator that command 2 cross-checks the metrics against) needs newer numpy / scipy
# than the book's pins, so it gets its own environment (.venv-celleval), made once.
echo "[setup] the cell-eval environment for the cross-check test"
bash scripts/make_celleval_venv.sh
# scPertEval (the peer whose own code the calibrated metrics of chapter 9 are checked against) needs numpy >= 2
# and anndata >= 0.12.7: its own environment too (.venv-scperteval), made once.
echo "[setup] the scPertEval environment for the parity test"
bash scripts/make_scperteval_venv.sh
# The real cpa-tools 0.8.1 (the paper's CPA) needs Python 3.10 and the paper's old pins (torch 2.0.0, ...): its
# own environment (.venv-cpa, ~5 GB), made once where a Python 3.10 exists; the live CPA parity tests of command 2
# run it (the stored oracle of tests/data/cpa is checked either way).
echo "[setup] the cpa-tools environment for the CPA parity test"
bash scripts/make_cpa_venv.sh
# ruff (tests/book/test_lint.py), check-jsonschema and zizmor (tests/book/test_workflows.py) lint in command 2;
# their own environment (.venv-lint), made once.
echo "[setup] the lint environment (ruff, check-jsonschema, zizmor)"
bash scripts/make_lint_venv.sh

# Chromium and its WebDriver (Debian keeps chromium-driver at the same version as chromium) for the browser
# test of command 2, driven by Selenium. Installed (or brought to Debian's current, matching versions) where
# apt-get runs as root, whatever the machine had before.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing chromium and chromium-driver from Debian for the browser test"
  apt-get update -qq >/dev/null 2>&1 || echo "[setup] apt-get update failed; installing from the current lists"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
    || echo "[setup] could not install chromium and chromium-driver; the browser test will fail and say so"
  if ! command -v npm >/dev/null 2>&1; then  # a bare Debian image (CI's python:3.11-bookworm) has no npm
    echo "[setup] installing npm from Debian (the book vendors MathJax from the npm registry)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null 2>&1 || echo "[setup] could not install npm"
  fi
fi

SEED_DIR="${PERTURBBOOK_SEED_DIR:-../shared}"
if [ -d "$SEED_DIR" ]; then
  echo "[data] seeding the cache from $SEED_DIR"
  "$VENV/bin/python" -m helpers.data seed "$SEED_DIR"
else
  echo "[data] no seed folder ($SEED_DIR); data will be downloaded from the registry's URLs"
fi

# The gene annotation databases (Bioconductor org.Hs.eg.db and GO.db, packaged by Debian) come through Debian's
# own client where there is one; elsewhere helpers.data downloads them from the Debian pool URLs in the registry.
for entry in org_hs_eg_db:r-bioc-org.hs.eg.db go_db:r-bioc-go.db; do
  name="${entry%%:*}"; package="${entry#*:}"
  if [ -z "${PERTURBBOOK_MIRROR:-}" ] \
     && ! "$VENV/bin/python" -c "from helpers.data import fetch; fetch('$name', download=False)" >/dev/null 2>&1 \
     && command -v apt-get >/dev/null 2>&1; then
    echo "[data] fetching the annotation package $package with apt-get download"
    mkdir -p _build/debs
    (cd _build/debs && { apt-get download "$package=3.16.0-1" >/dev/null 2>&1 \
       || { apt-get update -qq >/dev/null 2>&1 && apt-get download "$package=3.16.0-1"; }; }) \
       && "$VENV/bin/python" -m helpers.data seed _build/debs \
       || echo "[data] apt-get could not provide $package; the notebooks will download it from the registry URL"
  fi
done

if [ "$PROFILE" = paper ]; then
  echo "[data] downloading the paper profile's datasets through the registry (verified; kept in the cache)"
  # shellcheck disable=SC2046
  "$VENV/bin/python" -m helpers.data fetch $("$VENV/bin/python" -c \
    'from helpers.profiles import PROFILES; print(*PROFILES["paper"]["downloads"])')
fi

echo "[execute] running the chapters (profile=$PROFILE)"
EXECUTE_ARGS=(--profile "$PROFILE" --out _build/book_src)
if [ -n "${CHAPTERS:-}" ]; then
  # shellcheck disable=SC2206
  EXECUTE_ARGS+=(--only $CHAPTERS)
fi
if [ -n "${PERTURBBOOK_EXECUTED_DIR:-}" ] && [ -d "$PERTURBBOOK_EXECUTED_DIR" ]; then
  EXECUTE_ARGS+=(--executed-dir "$PERTURBBOOK_EXECUTED_DIR")
fi
"$VENV/bin/python" -m helpers.execute "${EXECUTE_ARGS[@]}"
if [ -n "${CHAPTERS:-}" ]; then
  echo "[execute] done: $CHAPTERS in _build/book_src/notebooks (CHAPTERS is set: no book build)"
  exit 0
fi

echo "[book] vendoring MathJax 3.2.2 from the npm registry, so that math renders without a CDN"
if [ ! -f _build/vendor/mathjax/es5/tex-chtml.js ]; then
  rm -rf _build/vendor && mkdir -p _build/vendor
  (cd _build/vendor && npm pack mathjax@3.2.2 --silent >/dev/null && tar xzf mathjax-3.2.2.tgz && mv package mathjax)
fi
# A static folder that Jupyter Book does not scan: every .js file under a source _static/ folder would be added
# to every page (MathJax's many files, loaded dozens of times), so the book's static files live in _vendor/.
mkdir -p _build/book_src/_vendor
cp -r _build/vendor/mathjax/es5 _build/book_src/_vendor/mathjax
cp assets/book.css _build/book_src/_vendor/book.css

echo "[book] building the book from the executed notebooks (warnings are errors)"
rm -rf _build/html
"$VENV/bin/jupyter-book" build _build/book_src -W -n --keep-going --path-output _build/jb
cp -r _build/jb/_build/html _build/html
echo "[book] done: $(pwd)/_build/html/index.html"
