#!/usr/bin/env bash
# Lynis hardening index of lab nodes (issue #21's yardstick: Lynis 3.0.8
# `lynis audit system --quick`, goal >= 80 on the Debian 12 node).
#
#   LAB_ID=N bench/lynis.sh [node...]        (default: every node of the lab)
#   LAB_ID=N bench/lynis.sh --site [node...] the index, then site.yml, then the index again
#
# Prints per node: the index, the points (scored/possible) and the tests that
# lost points. Runs lynis inside the running node containers (kg<N>-<node>);
# --site needs the lab's inventory (make lab) and changes the lab like make demo.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=$REPO/lab/containers.conf ANSIBLE_CONFIG=$REPO/ansible.cfg
LAB_ID=${LAB_ID:-0}
PREFIX=kg$LAB_ID-
[ "$LAB_ID" != 0 ] || PREFIX=kg-
site=0
[ "${1:-}" != --site ] || { site=1; shift; }
nodes=("$@")
[ ${#nodes[@]} -gt 0 ] || mapfile -t nodes < <(awk '!/^#/ && NF {print $1}' "$REPO/lab/nodes.conf")

score() { # node label
  podman exec "$PREFIX$1" lynis audit system --quick --no-colors >/dev/null 2>&1 ||
    { echo "lynis failed on $1" >&2; return 1; }
  podman exec "$PREFIX$1" cat /var/log/lynis.log | awk -v node="$1" -v label="$2" '
    /Performing test ID/ { test = $0; sub(/.*test ID /, "", test); sub(/ .*/, "", test) }
    /Hardening: assigned partial/ { s = $0; sub(/.*hardening points \(/, "", s); split(s, a, " "); lost[test] += a[3] - a[1] }
    /Currently having/ { s = $0; sub(/.*Currently having /, "", s); split(s, a, " "); points = a[1]; total = a[5] + 0 }
    END {
      printf "%s %s: hardening index %d (%d/%d points)\n", node, label, int(points * 100 / total), points, total
      line = "  lost:"; for (t in lost) if (lost[t] > 0) line = line " " t "=" lost[t]; print line
    }'
}

for node in "${nodes[@]}"; do score "$node" "now"; done
if [ "$site" = 1 ]; then
  "$REPO/.venv/bin/ansible-playbook" -i "$REPO/.lab/inventory.yml" "$REPO/playbooks/site.yml" >/tmp/lynis-bench-site.log 2>&1 ||
    { tail -n 30 /tmp/lynis-bench-site.log; exit 1; }
  grep -A10 'PLAY RECAP' /tmp/lynis-bench-site.log
  for node in "${nodes[@]}"; do score "$node" "after site.yml"; done
fi
