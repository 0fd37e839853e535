#!/bin/bash
# Runs inside the control-plane node once the API is up: issues, from the CA
# the apiserver trusts, a kubelet client certificate per node (system:node:<name>)
# and the kube-proxy and kube-router identities, as kubeconfigs under OUT:
#   OUT/<node>/{kubelet,kube-proxy,kube-router}.conf
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
for user in kube-proxy kube-router; do
  issue "$CA_DIR" "$user" "/CN=system:$user" "$CLIENT_EXT"
  kubeconfig "$user.conf" "$API_SERVER" "$CA_DIR/ca.crt" "system:$user" "$user"
  for node in $NODE_NAMES; do cp -p "$user.conf" "$node/"; done
  rm -f "$user.crt" "$user.key" "$user.conf"
done
