# Sourced (not run) by .ci/run and scripts/check_fresh_clone.sh: the environment of a new reader's
# machine (issue 32), so that nothing earlier work left on this machine can help the two commands.
#   HOME, XDG_CACHE_HOME  a new, empty home folder: no pip cache, no default data cache
#                         (~/.cache/perturbbook), no npm cache, no browser profile
#   PERTURBBOOK_CACHE     the data cache, in a non-default place (a new empty folder); kept where the
#                         caller set it (GitHub's workflow points it at the folder actions/cache keeps)
#   PYENV_ROOT            kept pointing at the old home's pyenv, so python3.11 (pyenv's shims) is found
# FRESH_HOME_DIR names the folder to use (default: a new folder under ${TMPDIR:-/tmp}); it must be empty.
if [ -n "${FRESH_HOME_DIR:-}" ]; then
  _fresh_dir="$FRESH_HOME_DIR"
else  # a folder of our own: removed when the caller's shell exits (pip's cache and the data fill GBs)
  _fresh_dir="$(mktemp -d "${TMPDIR:-/tmp}/perturbbook-home.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$_fresh_dir'" EXIT
fi
mkdir -p "$_fresh_dir"
if [ -n "$(ls -A "$_fresh_dir")" ]; then
  echo "error: FRESH_HOME_DIR=$_fresh_dir is not empty; give a new or empty folder" >&2
  return 2 2>/dev/null || exit 2
fi
if [ -z "${PYENV_ROOT:-}" ] && [ -d "$HOME/.pyenv" ]; then
  export PYENV_ROOT="$HOME/.pyenv"
fi
export HOME="$_fresh_dir/home"
export XDG_CACHE_HOME="$HOME/.cache"
mkdir -p "$XDG_CACHE_HOME"
export PERTURBBOOK_CACHE="${PERTURBBOOK_CACHE:-$_fresh_dir/data-cache}"
mkdir -p "$PERTURBBOOK_CACHE"
echo "[fresh-home] HOME=$HOME (new, empty); PERTURBBOOK_CACHE=$PERTURBBOOK_CACHE" \
     "(the default cache $XDG_CACHE_HOME/perturbbook must stay untouched)"
unset _fresh_dir
