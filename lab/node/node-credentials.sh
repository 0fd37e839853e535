#!/bin/bash
# Runs inside the control-plane node once the API is up: issues, from the CA
# the apiserver trusts, a kubelet client certificate per node (system:node:<name>),
# as kubeconfigs under OUT:
#   OUT/<node>/kubelet.conf
# kube-proxy's and kube-router's identities are not the lab's: lab-up has the
# collection's cluster_pki role issue them (cluster_pki_node_agents).
# Env: CA_DIR, API_SERVER (https://ip:port), NODE_NAMES (space-separated), OUT.
set -euo pipefail
: "${CA_DIR:?}" "${API_SERVER:?}" "${NODE_NAMES:?}" "${OUT:?}"
source "$(dirname "$0")/lib.sh"
rm -rf "$OUT"
mkdir -p -m 0700 "$OUT"
cd "$OUT"
for node in $NODE_NAMES; do
  mkdir -p "$node"
  issue "$CA_DIR" "$node/kubelet" "/O=system:nodes/CN=system:node:$node" "$CLIENT_EXT"
  kubeconfig "$node/kubelet.conf" "$API_SERVER" "$CA_DIR/ca.crt" "system:node:$node" "$node/kubelet"
  rm -f "$node/kubelet.crt" "$node/kubelet.key"
done
