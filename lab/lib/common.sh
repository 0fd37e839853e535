# Shared helpers for the lab scripts. Sourced, never executed.
# shellcheck shell=bash
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$LAB_DIR/.." && pwd)
# Caches live outside the checkout so a fresh clone (CI) reuses what an
# earlier run on the same machine built; they are keyed by recipe hashes.
KUBEGUARD_CACHE=${KUBEGUARD_CACHE:-/var/cache/kubeguard}
LAB_STATE=${LAB_STATE:-$REPO_DIR/.lab}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$LAB_DIR/containers.conf}

log() { printf '\033[1m[lab]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[lab] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# Lab commands take their settings from the environment; a stray argument is
# a mistake (or a tool probing executables, as Ansible's inventory loader does
# with --list) and must not trigger a build or a teardown.
no_arguments() {
  [ $# -eq 0 ] || die "$(basename "$0") takes no arguments (got: $*); settings come from the environment"
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "the lab must run as root (podman, debootstrap); re-run with sudo"
}

# Run a long step with its output in a log file; on failure, show the tail
# and name the log so the operator knows where to look.
run_logged() {
  local logfile=$1; shift
  mkdir -p "$(dirname "$logfile")"
  if ! "$@" >"$logfile" 2>&1; then
    tail -n 25 "$logfile" >&2 || true
    die "'$*' failed; full log: $logfile"
  fi
}
