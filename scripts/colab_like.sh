#!/usr/bin/env bash
# Colab-like run of every chapter: Python 3.12 with CURRENT, unpinned packages (as Colab has them), a stub
# `google.colab` module so that each chapter's setup cell takes its Colab branch, and each chapter's own setup
# cell doing the installs. Every chapter is executed with papermill (quick profile) in a fresh copy of the
# "Colab image" venv, as each Colab notebook gets a fresh runtime. Exits non-zero when a chapter fails.
#
#   bash scripts/colab_like.sh [CHAPTER ...]      e.g. bash scripts/colab_like.sh 01_data 07_your_model
#
# Environment (all optional):
#   COLAB_PYTHON        interpreter (default: python3.12, else pyenv's 3.12); COLAB_PY_VERSION (default 3.12)
#   COLAB_LIKE_DIR      work folder (default _build/colab_like); the image venv is kept there between runs and
#                       rebuilt when the interpreter, the package list or the day changes (current packages)
#   PERTURBBOOK_CACHE   data cache, seeded by scripts/build_book.sh (the quick profile reads only the cache)
#
# What is and is not like Colab:
# - The clone: the setup cell runs `git clone <URL from _config.yml>` exactly as on Colab, but GitHub is not
#   reachable here, so git is told (GIT_CONFIG_* url.insteadOf, for the chapter processes only) to fetch that
#   URL from a snapshot of this checkout (its committed HEAD plus uncommitted changes to tracked files).
#   PERTURBBOOK_COLAB_REPO moves the clone from /content/perturbation-book into the work folder.
# - torch: Colab ships a CUDA torch. Here the chapters that list "torch" among their needs run only if a CPU
#   wheel of torch==2.13.0 (the book's pin) installs for this Python; otherwise they are SKIPPED and the
#   summary says why (pip's default Linux torch wheel pulls the CUDA libraries: gigabytes, no GPU here).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
VERSION="${COLAB_PY_VERSION:-3.12}"
WORK="${COLAB_LIKE_DIR:-$ROOT/_build/colab_like}"
TORCH_PIN="torch==2.13.0"
# Colab's image, as far as the chapters touch it: the scientific stack (unpinned: whatever is current), Jupyter
# for papermill, and the small packages Colab has always shipped. Not openpyxl, anndata, pooch, h5py: the setup
# cells must install those.
IMAGE_PACKAGES="numpy pandas scipy scikit-learn matplotlib papermill ipykernel requests pyyaml tqdm packaging"

find_python() {
  for candidate in "${COLAB_PYTHON:-}" "python$VERSION"; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$VERSION' else 1)" \
        >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/"$VERSION"*/bin/python"$VERSION"; do
      [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
  fi
  echo "error: Python $VERSION is required for the Colab-like run and was not found (tried \$COLAB_PYTHON," \
       "python$VERSION and pyenv's versions). Install it (e.g. 'pyenv install $VERSION') or set COLAB_PYTHON." >&2
  return 1
}

PY="$(find_python)"
IMAGE="$WORK/image-py$VERSION"
KEY="$("$PY" --version 2>&1) | $IMAGE_PACKAGES | $TORCH_PIN | $(date -u +%F)"
mkdir -p "$WORK"
if [ ! -f "$IMAGE/key" ] || [ "$(cat "$IMAGE/key")" != "$KEY" ]; then
  echo "[colab-like] building the image venv with $("$PY" --version 2>&1) and current: $IMAGE_PACKAGES"
  rm -rf "$IMAGE"
  "$PY" -m venv "$IMAGE"
  "$IMAGE/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$IMAGE/bin/python" -m pip install --quiet $IMAGE_PACKAGES 2>&1 | grep -v "^WARNING: Location" || true
  "$IMAGE/bin/python" -c "import numpy, pandas, scipy, sklearn, matplotlib, papermill, ipykernel"
  # torch: only a CPU build. A resolution that pulls nvidia-* packages is the CUDA build: not installed.
  "$IMAGE/bin/python" -m pip install --quiet --dry-run --ignore-installed --report "$WORK/torch.json" \
      "$TORCH_PIN" >/dev/null 2>&1 || true
  TORCH_NOTE="$("$IMAGE/bin/python" - "$WORK/torch.json" <<'EOF'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("pip cannot resolve torch==2.13.0 for this Python"); sys.exit()
names = [i["metadata"]["name"] for i in report["install"]]
cuda = sorted(n for n in names if n.lower().startswith("nvidia"))
torch = next(i for i in report["install"] if i["metadata"]["name"] == "torch")
if cuda:
    print(f"the only torch==2.13.0 wheel for this Python is the CUDA build ({torch['download_info']['url'].split('/')[-1]},"
          f" needs {len(cuda)} nvidia-* packages); no CPU wheel installs here")
EOF
)"
  if [ -z "$TORCH_NOTE" ]; then
    "$IMAGE/bin/python" -m pip install --quiet "$TORCH_PIN" 2>&1 | grep -v "^WARNING: Location" || true
    "$IMAGE/bin/python" -c "import torch" || TORCH_NOTE="torch==2.13.0 (CPU) did not install"
  fi
  echo "$TORCH_NOTE" > "$IMAGE/torch_note"
  echo "$KEY" > "$IMAGE/key"
else
  echo "[colab-like] reusing the image venv built today ($IMAGE)"
fi
TORCH_NOTE="$(cat "$IMAGE/torch_note")"
"$IMAGE/bin/python" - <<'EOF'
import sys
from importlib import metadata
names = ["numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "torch"]
found = []
for n in names:
    try:
        found.append(f"{n} {metadata.version(n)}")
    except metadata.PackageNotFoundError:
        found.append(f"{n} -")
print(f"[colab-like] image: Python {sys.version.split()[0]}; " + ", ".join(found))
EOF

# The "GitHub" the setup cells clone from: a bare snapshot of this checkout.
URL="$("$IMAGE/bin/python" -c "import sys; sys.path.insert(0, '.'); from helpers.colab import repository_url; print(repository_url())")"
rm -rf "$WORK/origin.git" && git init --quiet --bare "$WORK/origin.git"
SNAPSHOT="$(git stash create 2>/dev/null || true)"; SNAPSHOT="${SNAPSHOT:-HEAD}"
git push --quiet "$WORK/origin.git" "$SNAPSHOT:refs/heads/main"
git --git-dir="$WORK/origin.git" symbolic-ref HEAD refs/heads/main

# The google.colab stub, imported when the kernel starts (as Colab's kernel does) via an IPython profile.
mkdir -p "$WORK/stub/google/colab" "$WORK/ipython/profile_default/startup"
echo '"""Stub of Colab'"'"'s google.colab package for scripts/colab_like.sh (presence only)."""' \
  > "$WORK/stub/google/colab/__init__.py"
echo "import google.colab  # noqa: F401  (scripts/colab_like.sh: a Colab-like kernel)" \
  > "$WORK/ipython/profile_default/startup/00-colab.py"

if [ "$#" -gt 0 ]; then CHAPTERS=("$@"); else
  mapfile -t CHAPTERS < <(cd notebooks && ls *.ipynb | sed 's/\.ipynb$//')
fi
SUMMARY="$WORK/summary.tsv"
printf "chapter\tstatus\tseconds\tnote\n" > "$SUMMARY"
failed=0
for chapter in "${CHAPTERS[@]}"; do
  nb="notebooks/$chapter.ipynb"
  [ -f "$nb" ] || { echo "error: no $nb" >&2; exit 2; }
  needs="$("$IMAGE/bin/python" -c "import sys; sys.path.insert(0, '.'); from helpers.colab import cell_needs; print(' '.join(cell_needs('$nb')))")"
  if [[ " $needs " == *" torch "* ]] && [ -n "$TORCH_NOTE" ]; then
    echo "[colab-like] SKIPPED $chapter: it needs torch, and $TORCH_NOTE (the same run on Python 3.11, where" \
         "a CPU wheel exists: COLAB_PY_VERSION=3.11 bash scripts/colab_like.sh $chapter)"
    printf "%s\tskipped\t0\tneeds torch; %s\n" "$chapter" "$TORCH_NOTE" >> "$SUMMARY"
    continue
  fi
  run="$WORK/run/$chapter"
  rm -rf "$run" && mkdir -p "$run"
  cp -a "$IMAGE" "$run/venv"   # a fresh runtime per chapter, as on Colab
  start=$(date +%s)
  echo "[colab-like] $chapter (needs: ${needs:-base only})"
  set +e
  (
    cd "$ROOT/notebooks"
    env -u PYTHONPATH -u VIRTUAL_ENV \
      PYTHONPATH="$WORK/stub" IPYTHONDIR="$WORK/ipython" PATH="$run/venv/bin:$PATH" \
      PERTURBBOOK_COLAB_REPO="$run/content/perturbation-book" \
      GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="url.file://$WORK/origin.git.insteadOf" GIT_CONFIG_VALUE_0="$URL" \
      "$run/venv/bin/python" -m papermill "$ROOT/$nb" "$run/$chapter.ipynb" -p profile quick -k python3 \
        --cwd "$ROOT/notebooks" --log-output --no-progress-bar
  ) > "$run/log.txt" 2>&1
  rc=$?
  set -e
  seconds=$(( $(date +%s) - start ))
  grep -h "\[setup\]" "$run/log.txt" | sed 's/^/    /' | head -20 || true
  if [ "$rc" = 0 ]; then
    echo "[colab-like] ok $chapter in ${seconds} s"
    printf "%s\tok\t%s\t\n" "$chapter" "$seconds" >> "$SUMMARY"
  else
    failed=1
    echo "[colab-like] FAILED $chapter after ${seconds} s; the end of its log ($run/log.txt):"
    tail -40 "$run/log.txt" | sed 's/^/    /'
    err="$(grep -E "^[A-Za-z_.]+(Error|Exception|Required)" "$run/log.txt" | tail -1 | cut -c1-300)"
    printf "%s\tfailed\t%s\t%s\n" "$chapter" "$seconds" "${err:-see $run/log.txt}" >> "$SUMMARY"
  fi
  rm -rf "$run/venv"   # keep the log and the executed notebook, not 600 MB per chapter
done
echo "[colab-like] summary ($SUMMARY):"
column -t -s $'\t' "$SUMMARY" | sed 's/^/    /'
exit "$failed"
