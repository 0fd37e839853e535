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

# Several labs can run side by side: LAB_ID=N (0-99) shifts every name,
# address and port so instances never collide. LAB_ID=0 keeps the historical
# names (kg-<node>, kubeguard-lab, 10.123.0.0/24, SSH 22221-22223, API 16443).
LAB_ID=${LAB_ID:-0}
[[ "$LAB_ID" =~ ^[0-9]{1,2}$ ]] || die "LAB_ID must be a number from 0 to 99, not '$LAB_ID'"
LAB_ID=$((10#$LAB_ID))
if [ "$LAB_ID" -eq 0 ]; then
  LAB_CONTAINER_PREFIX=kg-
  LAB_NETWORK=kubeguard-lab
  LAB_LABEL=io.kubeguard.lab=1
else
  LAB_CONTAINER_PREFIX=kg$LAB_ID-
  LAB_NETWORK=kubeguard-lab$LAB_ID
  # Never "=1" here: older lab-down scripts remove every container labelled so.
  LAB_LABEL=io.kubeguard.lab=instance-$LAB_ID
fi
LAB_SUBNET=10.$((123 + LAB_ID)).0.0/24
LAB_API_PORT=${LAB_API_PORT:-$((16443 + 100 * LAB_ID))}

# LAYOUT=kubeadm-ha has its own node list (three control planes).
LAB_NODES_CONF=$LAB_DIR/nodes.conf
[ "${LAYOUT:-}" != kubeadm-ha ] || LAB_NODES_CONF=$LAB_DIR/nodes-kubeadm-ha.conf
# The one reader of the node list: prints "name release ip groups ssh_port"
# per node, shifted for this LAB_ID (cp1 first).
lab_nodes() {
  awk -v id="$LAB_ID" '!/^#/ && NF {
    split($3, ip, ".")
    printf "%s %s %s.%d.%s.%s %s %d\n", $1, $2, ip[1], ip[2] + id, ip[3], ip[4], $4, $5 + 100 * id
  }' "$LAB_NODES_CONF"
}

# True when nothing listens on 127.0.0.1:PORT.
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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
