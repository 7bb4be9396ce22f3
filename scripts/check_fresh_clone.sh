#!/usr/bin/env bash
# What a new reader does, checked: clone this repository's HEAD into a new temporary folder, with `shared`
# beside the clone (so the clone's ../shared is the real data, as on a machine set up like this one), a new
# empty home folder (HOME and XDG_CACHE_HOME: no pip cache, no default data cache), an empty data cache in a
# non-default place (PERTURBBOOK_CACHE inside the temporary folder), no PERTURBBOOK_* setting of this shell
# and no virtual environment (command 1 creates the clone's own .venv), then run the README's two commands:
#     bash scripts/build_book.sh
#     bash scripts/run_tests.sh
# and print, for each, its wall time, peak memory (GNU time's maximum resident set size: the largest single
# process) and exit code, and the pytest summary line. Exits non-zero when either command fails. The logs stay
# in the temporary folder (printed at the end); delete it when done (it holds a full .venv and build).
#
# Usage: bash scripts/check_fresh_clone.sh [--dry-run]
#   --dry-run   make the clone, ../shared and the empty cache, print what would run, and run nothing else
# Settings: CHECK_FRESH_CLONE_DIR (default: a new folder under ${TMPDIR:-/tmp}).
# Takes about 45 minutes and all of a 2-core machine (command 1 ~20, command 2 ~25); commit first: only
# committed work (HEAD) is checked.
set -euo pipefail

DRY_RUN=0
case "${1:-}" in
  "") ;;
  --dry-run) DRY_RUN=1 ;;
  *) echo "usage: bash scripts/check_fresh_clone.sh [--dry-run]" >&2; exit 2 ;;
esac

REPO="$(cd "$(dirname "$0")/.." && git rev-parse --show-toplevel)"
SHA="$(git -C "$REPO" rev-parse HEAD)"
if [ -n "$(git -C "$REPO" status --porcelain)" ]; then
  echo "[fresh-clone] note: $REPO has uncommitted changes; they are NOT part of the check (only HEAD is)"
fi

WORK="${CHECK_FRESH_CLONE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/perturbbook-fresh-clone.XXXXXX")}"
mkdir -p "$WORK"
if [ -n "$(ls -A "$WORK")" ]; then
  echo "error: $WORK is not empty; give CHECK_FRESH_CLONE_DIR a new or empty folder" >&2
  exit 2
fi
CLONE="$WORK/$(basename "$REPO")"
LOGS="$WORK/logs"
mkdir -p "$LOGS" "$WORK/cache"

echo "[fresh-clone] cloning $REPO at $SHA into $CLONE"
git clone --quiet "$REPO" "$CLONE"
if [ "$(git -C "$CLONE" rev-parse HEAD)" != "$SHA" ]; then  # e.g. a detached HEAD in the source
  git -C "$CLONE" fetch --quiet "$REPO" "$SHA"
  git -C "$CLONE" checkout --quiet --detach "$SHA"
fi

if [ -d "$REPO/../shared" ]; then
  ln -s "$(cd "$REPO/../shared" && pwd -P)" "$WORK/shared"
  echo "[fresh-clone] ../shared beside the clone -> $(readlink "$WORK/shared")"
else
  echo "[fresh-clone] no ../shared beside $REPO: command 1 will download the data from the registry's URLs"
fi

# A new reader's environment: a new, empty home folder (HOME, XDG_CACHE_HOME: no pip cache and no
# default data cache from earlier work), an empty data cache in a non-default place, and none of this
# shell's book settings. The same scripts/fresh_home.sh that .ci/run sources (issue 32).
unset VENV PYTHONPATH PROFILE PYTHON VIRTUAL_ENV 2>/dev/null || true
for name in $(compgen -e | grep '^PERTURBBOOK_' || true); do unset "$name"; done
export PERTURBBOOK_CACHE="$WORK/cache"
FRESH_HOME_DIR="$WORK/fresh" source "$CLONE/scripts/fresh_home.sh"
echo "[fresh-clone] HOME=$HOME (empty), PERTURBBOOK_CACHE=$PERTURBBOOK_CACHE (empty); the clone has" \
  "no .venv yet: $([ -e "$CLONE/.venv" ] && echo "ERROR, it has one" || echo "ok")"

TIMER=()
if [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then
  TIMER=(/usr/bin/time -v -o)
fi

# run_step NAME COMMAND...: run in the clone, log to $LOGS/NAME.log, record wall time, peak memory, exit code
declare -A WALL RC PEAK
run_step() {
  local name="$1"; shift
  local log="$LOGS/$name.log" timing="$LOGS/$name.time" start end rc
  echo "[fresh-clone] running: $* (log: $log)"
  start=$(date +%s)
  set +e
  if [ "$DRY_RUN" = 1 ]; then
    (cd "$CLONE" && echo "dry run: would run '$*' in $CLONE") >"$log" 2>&1
  elif [ ${#TIMER[@]} -gt 0 ]; then
    (cd "$CLONE" && "${TIMER[@]}" "$timing" "$@") >"$log" 2>&1
  else
    (cd "$CLONE" && "$@") >"$log" 2>&1
  fi
  rc=$?
  set -e
  end=$(date +%s)
  WALL[$name]=$((end - start))
  RC[$name]=$rc
  PEAK[$name]="n/a"
  if [ -s "$timing" ]; then
    local kb
    kb=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$timing")
    [ -n "$kb" ] && PEAK[$name]="$(awk -v kb="$kb" 'BEGIN { printf "%.2f GB", kb / 1024 / 1024 }')"
  fi
  echo "[fresh-clone] $name: exit code $rc, wall time $((WALL[$name] / 60)) min $((WALL[$name] % 60)) s"
}

run_step build_book bash scripts/build_book.sh
run_step run_tests bash scripts/run_tests.sh

SUMMARY="$(grep -E '^=+ .*[0-9]+ (passed|failed|errors?|skipped).* in [0-9.]+s.* =+$' "$LOGS/run_tests.log" \
  | tail -n 1 || true)"
[ -n "$SUMMARY" ] || SUMMARY="(no pytest summary line in $LOGS/run_tests.log)"

echo
echo "================ fresh clone check: $SHA ================"
[ "$DRY_RUN" = 1 ] && echo "DRY RUN: nothing was built or tested"
printf '%-34s %8s %12s %10s\n' "command" "exit" "wall time" "peak RSS"
for name in build_book run_tests; do
  printf '%-34s %8s %12s %10s\n' "bash scripts/$name.sh" "${RC[$name]}" \
    "$((WALL[$name] / 60))m$(printf '%02d' $((WALL[$name] % 60)))s" "${PEAK[$name]}"
done
echo "pytest: $SUMMARY"
echo "home:   $HOME (new and empty at the start); data cache: $PERTURBBOOK_CACHE"
echo "default cache $XDG_CACHE_HOME/perturbbook: $([ -e "$XDG_CACHE_HOME/perturbbook" ] \
  && echo "EXISTS (something used it)" || echo "never created")"
echo "clone:  $CLONE"
echo "logs:   $LOGS (build_book.log, run_tests.log, *.time)"
echo "size:   $(du -sh "$WORK" 2>/dev/null | cut -f1) in $WORK (delete it when done)"

if [ "$DRY_RUN" = 1 ]; then
  echo "RESULT: dry run only (run without --dry-run for the real check)"
  exit 0
fi
if [ "${RC[build_book]}" != 0 ] || [ "${RC[run_tests]}" != 0 ]; then
  echo "RESULT: FAILED (see the logs above)"
  exit 1
fi
echo "RESULT: both README commands passed"
