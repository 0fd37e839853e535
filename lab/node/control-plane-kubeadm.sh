#!/bin/bash
# Runs inside the control-plane node: writes kubeadm's layout
# (/etc/kubernetes/{pki,manifests,*.conf}) with kubeadm's own init phases, and
# the node's real kubelet runs the manifests as static pods from the lab's
# local images (localhost/kubeguard/*, built from the same binaries).
# Weakened like a careless install: anonymous auth on, profiling on, no audit
# log. Authorization stays kubeadm's Node,RBAC: under AlwaysAllow the
# apiserver turns anonymous auth off, and kubeadm's own startup and liveness
# probes (anonymous HTTPS GETs of /livez) would get 401 and the kubelet would
# kill the apiserver after four minutes.
# kubeadm's upload-config and bootstrap-token phases run too, so token discovery
# (kubeadm join) works as on a real kubeadm cluster.
# Env: NODE_NAME, NODE_IP, API_SANS (extra comma-separated SANs).
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_IP:?}"
version=$(/usr/local/bin/kube-apiserver --version | awk '{print $2}')
etcd_tag=$(awk '$1 == "etcd" {sub(/.*:/, "", $2); print $2}' /opt/kubeguard/bin/images.txt)
sans=""
for san in ${API_SANS//,/ } localhost; do sans+="    - $san"$'\n'; done
mkdir -p /etc/kubernetes/lab
cat > /etc/kubernetes/lab/kubeadm.yaml <<CFG
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $NODE_IP
  bindPort: 6443
nodeRegistration:
  name: $NODE_NAME
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $version
clusterName: kubeguard-lab
imageRepository: localhost/kubeguard
etcd:
  local:
    imageTag: $etcd_tag
controlPlaneEndpoint: "$NODE_IP:6443"
networking:
  serviceSubnet: 10.96.0.0/12
  dnsDomain: cluster.local
apiServer:
  certSANs:
$sans  extraArgs:
    - {name: anonymous-auth, value: "true"}
    - {name: profiling, value: "true"}
    - {name: kubelet-preferred-address-types, value: InternalIP}
CFG
for phase in "certs all" "kubeconfig all" "control-plane all" "etcd local"; do
  # shellcheck disable=SC2086
  kubeadm init phase $phase --config /etc/kubernetes/lab/kubeadm.yaml
done

# kubeadm's kubelet.conf (system:node:$NODE_NAME) lets the kubelet register.
systemctl start kubelet.service

for _ in $(seq 1 120); do
  if kubectl --kubeconfig /etc/kubernetes/super-admin.conf get --raw /readyz >/dev/null 2>&1; then
    # As kubeadm's upload-config phase does: admin.conf's group gets cluster-admin.
    kubectl --kubeconfig /etc/kubernetes/super-admin.conf create clusterrolebinding \
      kubeadm:cluster-admins --clusterrole=cluster-admin --group=kubeadm:cluster-admins >/dev/null
    # The rest of kubeadm init that joining needs: the kubeadm-config and
    # kubelet-config ConfigMaps, a bootstrap token, the cluster-info ConfigMap in
    # kube-public with its anonymous Role, and the bootstrap RBAC (kubeadm:get-nodes,
    # kubeadm:kubelet-bootstrap, node autoapprove). A few seconds, no node patch
    # (NodeLocalCRISocket is on by default in 1.34).
    for phase in "upload-config all" "bootstrap-token --skip-token-print"; do
      # shellcheck disable=SC2086
      kubeadm init phase $phase --config /etc/kubernetes/lab/kubeadm.yaml --kubeconfig /etc/kubernetes/super-admin.conf
    done
    exit 0
  fi
  sleep 1
done
echo "kube-apiserver did not become ready; see crictl ps -a and journalctl -u kubelet" >&2
exit 1
