#!/usr/bin/env bash
# The steps of the publishing workflows (.github/workflows/publish.yml, weekly.yml), one
# per argument, so that what runs on GitHub is a repository script that runs here too:
#   gpu-chapter  chapter 4 alone on the paper profile (the GPU job) -> _build/gpu/
#   site         the paper-profile site (command 1 with PROFILE=paper; chapter 4 taken
#                from _build/gpu/ if the GPU job ran), then `pdf` and `downloads`
#   paper        command 1 with PROFILE=paper (the weekly end-to-end run)
#   pdf          the book as a PDF: Jupyter Book's pdflatex builder, XeLaTeX engine
#   downloads    _build/downloads/: the PDF and the executed notebooks (zip), also
#                served at <site>/downloads/
#   linkcheck    Sphinx's linkcheck builder on the executed book: fails, listing each
#                broken external link
#   check-urls   every registry address still answers with the registered size and
#                checksum (python -m helpers.data check-urls)
#   free-disk    on a GitHub-hosted Linux runner only: removes preinstalled toolchains
#                the book never uses, then fails unless $PERTURBBOOK_DISK_NEED_GB (25)
#                are free; elsewhere it only reports and checks
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
step="${1:-}"

# apt-get as root, or through sudo without a password (GitHub's hosted runners).
apt_install() {
  local run=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      run=(sudo -n)
    else
      return 1
    fi
  fi
  "${run[@]}" apt-get update -qq >/dev/null && \
    DEBIAN_FRONTEND=noninteractive "${run[@]}" apt-get install -y -qq \
      --no-install-recommends "$@" >/dev/null
}

need_book() {
  if [ ! -d _build/book_src ]; then
    echo "error: no executed book in _build/book_src; run command 1 first" >&2
    exit 1
  fi
}

case "$step" in
  gpu-chapter)
    PROFILE=paper CHAPTERS=04_foundation_models bash scripts/build_book.sh
    rm -rf _build/gpu && mkdir -p _build/gpu
    cp _build/book_src/notebooks/04_foundation_models.ipynb _build/gpu/
    # its result tables travel with it: the front page's figure reads them (helpers.execute)
    mkdir -p _build/gpu/results
    cp -r _build/results/04_foundation_models _build/gpu/results/
    echo "[publish] chapter 4 executed: _build/gpu/04_foundation_models.ipynb"
    ;;
  site)
    PROFILE=paper PERTURBBOOK_EXECUTED_DIR=_build/gpu bash scripts/build_book.sh
    bash "$0" pdf
    bash "$0" downloads
    ;;
  paper)
    PROFILE=paper bash scripts/build_book.sh
    ;;
  pdf)
    need_book
    # Jupyter Book's pdflatex builder (Sphinx's LaTeX writer + latexmk, XeLaTeX per
    # _config.yml) needs only Debian/Ubuntu packages, installed by apt; the pdfhtml
    # builder would need pyppeteer, which downloads its own Chromium build from Google's
    # storage at first use (not pinned, not in requirements.txt).
    if ! command -v latexmk >/dev/null 2>&1 \
       || ! command -v xelatex >/dev/null 2>&1; then
      echo "[pdf] installing TeX Live (latexmk, XeLaTeX, fonts, xindy) with apt-get"
      # texlive-fonts-extra: bbm.sty, which sphinx-jupyterbook-latex loads (found by running it)
      apt_install latexmk texlive-xetex texlive-latex-recommended texlive-latex-extra \
        texlive-fonts-recommended texlive-fonts-extra texlive-plain-generic \
        fonts-freefont-otf tex-gyre xindy \
        || { echo "error: latexmk and xelatex are needed for the PDF (apt-get install" \
                  "latexmk texlive-xetex texlive-latex-extra fonts-freefont-otf" \
                  "xindy)" >&2
             exit 1; }
    fi
    rm -rf _build/jb/_build/latex
    "$VENV/bin/jupyter-book" build _build/book_src --builder pdflatex \
      --path-output _build/jb
    echo "[pdf] done: _build/jb/_build/latex/perturbation-book.pdf"
    ;;
  downloads)
    rm -rf _build/downloads && mkdir -p _build/downloads
    cp _build/jb/_build/latex/perturbation-book.pdf _build/downloads/
    "$VENV/bin/python" -c "import shutil; shutil.make_archive(
      '_build/downloads/executed-notebooks', 'zip', '_build/book_src', 'notebooks')"
    cp _build/results/status.csv _build/downloads/status.csv
    mkdir -p _build/html/downloads && cp _build/downloads/* _build/html/downloads/
    ls -l _build/downloads
    ;;
  linkcheck)
    need_book
    # Jupyter Book writes the linkcheck builder's output.json into _build/jb/_build/html
    rm -f _build/jb/_build/html/output.json
    "$VENV/bin/jupyter-book" build _build/book_src --builder linkcheck \
      --path-output _build/jb || true  # the report below decides, naming each link
    "$VENV/bin/python" -m helpers.publish linkcheck-report \
      _build/jb/_build/html/output.json
    ;;
  check-urls)
    # a small environment: helpers.data needs only these of requirements.txt's exact
    # pins
    if [ ! -x .venv-urls/bin/python ]; then
      python3.11 -m venv .venv-urls
      pins="pandas|numpy|python-dateutil|pytz|tzdata|six|requests|urllib3|idna|certifi"
      pins="$pins|charset-normalizer|pooch|platformdirs|packaging|tqdm"
      # shellcheck disable=SC2046
      .venv-urls/bin/pip install --quiet $(grep -E "^($pins)==" requirements.txt)
    fi
    .venv-urls/bin/python -m helpers.data check-urls
    ;;
  free-disk)
    # The paper profile's cache holds about 13 GB on full-size stand-ins (README,
    # "Will it fit a standard GitHub runner") and the environment several GB more; a
    # hosted ubuntu-24.04 runner has about 14 GB free. Its image carries toolchains
    # this book never uses (.NET, Android SDK, Haskell, Swift, JVMs, CodeQL); removing
    # them is the usual way to make room. Python from actions/setup-python lives in
    # /opt/hostedtoolcache/Python and is kept.
    need="${PERTURBBOOK_DISK_NEED_GB:-25}"
    case "$need" in
      ''|*[!0-9]*)
        echo "error: PERTURBBOOK_DISK_NEED_GB must be a whole number of GB, got" \
             "'$need'" >&2
        exit 2 ;;
    esac
    free_gb() { df -P --block-size=1G "$PWD" | awk 'NR == 2 {print $4}'; }
    echo "[free-disk] before: $(free_gb) GB free on $(df -P "$PWD" | awk 'NR == 2 {print $6}')"
    if [ "${GITHUB_ACTIONS:-}" = true ] \
       && [ "${RUNNER_ENVIRONMENT:-}" = github-hosted ] \
       && [ "$(uname -s)" = Linux ]; then
      for dir in /usr/share/dotnet /usr/local/lib/android /usr/local/.ghcup \
                 /opt/ghc /usr/share/swift /usr/lib/jvm /opt/hostedtoolcache/CodeQL; do
        if [ -e "$dir" ]; then
          echo "[free-disk] removing $dir"
          sudo -n rm -rf "$dir"
        fi
      done
      sudo -n docker image prune --all --force >/dev/null 2>&1 || true
    else
      echo "[free-disk] not a GitHub-hosted Linux runner: nothing removed"
    fi
    have="$(free_gb)"
    echo "[free-disk] after: ${have} GB free; the paper profile needs about ${need} GB"
    if [ "$have" -lt "$need" ]; then
      echo "error: ${have} GB free, the paper profile needs about ${need} GB (data" \
           "cache + environment); free disk or set PERTURBBOOK_CACHE to a larger" \
           "disk" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: bash scripts/publish.sh" \
         "gpu-chapter|site|paper|pdf|downloads|linkcheck|check-urls|free-disk" >&2
    exit 2
    ;;
esac
