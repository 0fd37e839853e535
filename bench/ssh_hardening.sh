#!/usr/bin/env bash
# Benchmark the ssh_hardening role against lab node containers over real SSH.
#
#   bench/ssh_hardening.sh [bookworm|trixie]
#
# Reports wall times and ratios against a baseline measured in the same run:
# a bare `ansible -m ping` round against the same node (one module over an
# established multiplexed connection, plus ansible's own start-up).
#   1 node : first run, idempotent rerun
#   3 nodes: first run, idempotent rerun (three fresh nodes, forks=10)
# Uses ports 22330-22333 and containers ssh-bench-*; removes them on exit.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DIST=${1:-bookworm}
IMAGE=localhost/kubeguard-node:$DIST
export CONTAINERS_CONF=$REPO/lab/containers.conf ANSIBLE_CONFIG=$REPO/ansible.cfg PATH=$REPO/.venv/bin:$PATH
WORK=$(mktemp -d /tmp/ssh-bench.XXXXXX)
NODES=(ssh-bench-1 ssh-bench-2 ssh-bench-3 ssh-bench-4)

cleanup() {
  podman rm -f "${NODES[@]}" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -C bench -f "$WORK/id_ed25519"
{
  echo "all:"
  echo "  vars: {ansible_user: operator, ansible_host: 127.0.0.1, ansible_become: true, ansible_ssh_private_key_file: $WORK/id_ed25519}"
  echo "  children:"
  echo "    k8s_cluster:"
  echo "      hosts:"
  for i in "${!NODES[@]}"; do
    echo "        ${NODES[$i]}: {ansible_port: $((22330 + i))}"
  done
} >"$WORK/inventory.yml"

for i in "${!NODES[@]}"; do
  podman run -d --name "${NODES[$i]}" --systemd=always -p "127.0.0.1:$((22330 + i)):22" "$IMAGE" /sbin/init >/dev/null
done
for node in "${NODES[@]}"; do
  podman exec "$node" systemctl is-system-running --wait >/dev/null || true
  podman exec -i "$node" sh -c 'install -d -m 700 -o operator -g operator ~operator/.ssh &&
    cat > ~operator/.ssh/authorized_keys && chown operator:operator ~operator/.ssh/authorized_keys' <"$WORK/id_ed25519.pub"
done

now() { date +%s.%N; }
# run LABEL LIMIT COMMAND...: time a command, keep its recap
run() {
  local label=$1 start end
  shift
  start=$(now)
  "$@" >"$WORK/$label.log" 2>&1 || { cat "$WORK/$label.log"; echo "FAILED: $label" >&2; exit 1; }
  end=$(now)
  echo "$end - $start" | bc -l >"$WORK/$label.time"
}
secs() { printf '%.2f' "$(cat "$WORK/$1.time")"; }
ratio() { printf '%.1f' "$(echo "$(cat "$WORK/$1.time") / $(cat "$WORK/baseline.time")" | bc -l)"; }
recap() { grep -E '^ssh-bench' "$WORK/$1.log" | sed 's/  */ /g' | awk '{print "      " $0}'; }

PLAY=(ansible-playbook -i "$WORK/inventory.yml" "$REPO/playbooks/ssh_hardening.yml")
# Warm up: the first connection to each node pays for the SSH handshake and
# interpreter discovery; the baseline is a steady-state module round.
ansible -i "$WORK/inventory.yml" k8s_cluster -m ansible.builtin.ping >/dev/null
run baseline ansible -i "$WORK/inventory.yml" ssh-bench-1 -m ansible.builtin.ping
run first1 "${PLAY[@]}" --limit ssh-bench-1
run rerun1 "${PLAY[@]}" --limit ssh-bench-1
run first3 "${PLAY[@]}" --limit 'ssh-bench-2,ssh-bench-3,ssh-bench-4'
run rerun3 "${PLAY[@]}" --limit 'ssh-bench-2,ssh-bench-3,ssh-bench-4'

cat <<REPORT
ssh_hardening benchmark ($DIST, $(ssh -V 2>&1 | cut -d, -f1) client, $(nproc) cores)
  baseline  ansible -m ping, 1 node          $(secs baseline) s   1.0x
  1 node    first run                        $(secs first1) s   $(ratio first1)x
$(recap first1)
  1 node    idempotent rerun                 $(secs rerun1) s   $(ratio rerun1)x
$(recap rerun1)
  3 nodes   first run                        $(secs first3) s   $(ratio first3)x
$(recap first3)
  3 nodes   idempotent rerun                 $(secs rerun3) s   $(ratio rerun3)x
$(recap rerun3)
REPORT
