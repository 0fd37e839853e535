#!/bin/bash
# LAYOUT=kubeadm-ha, run inside a node: kubeadm as users run it for an HA
# cluster with stacked etcd (one member per control plane), behind the API
# load balancer (CONTROL_PLANE_ENDPOINT, health-checked on /readyz).
#   control-plane-kubeadm-ha.sh init                on cp1: kubeadm init --upload-certs;
#                                                   writes /etc/kubernetes/lab/join.env
#   control-plane-kubeadm-ha.sh join-control-plane  kubeadm join --control-plane --certificate-key
#   control-plane-kubeadm-ha.sh join-worker         kubeadm join with the bootstrap token
# Env: NODE_NAME, NODE_IP, CONTROL_PLANE_ENDPOINT (ip:port); init: API_SANS,
#      CLUSTER_CIDR, SERVICE_CIDR; joins: TOKEN, CA_HASH (and CERT_KEY for control planes).
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_IP:?}" "${CONTROL_PLANE_ENDPOINT:?}"
# Every kubeadm phase runs, preflight included, with no check ignored: in the
# node containers they all pass (SystemVerification only warns that cgroup v1
# is in maintenance mode).

init() {
  : "${CLUSTER_CIDR:?}" "${SERVICE_CIDR:?}"
  local version etcd_tag sans="" san
  version=$(/usr/local/bin/kube-apiserver --version | awk '{print $2}')
  etcd_tag=$(awk '$1 == "etcd" {sub(/.*:/, "", $2); print $2}' /opt/kubeguard/bin/images.txt)
  for san in ${API_SANS//,/ } localhost; do sans+="    - $san"$'\n'; done
  mkdir -p -m 0700 /etc/kubernetes/lab
  # The bootstrap token and the key of the uploaded certificates are chosen
  # here so that lab-up can hand them to the joining nodes.
  local token cert_key
  token=$(kubeadm token generate)
  cert_key=$(kubeadm certs certificate-key)
  cat >/etc/kubernetes/lab/kubeadm.yaml <<CFG
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
  - token: $token
    description: lab-up joins the other nodes with it
localAPIEndpoint:
  advertiseAddress: $NODE_IP
  bindPort: 6443
certificateKey: $cert_key
nodeRegistration:
  name: $NODE_NAME
  criSocket: unix:///run/containerd/containerd.sock
  kubeletExtraArgs:
    - {name: node-ip, value: $NODE_IP}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $version
clusterName: kubeguard-lab
imageRepository: localhost/kubeguard
etcd:
  local:
    imageTag: $etcd_tag
controlPlaneEndpoint: "$CONTROL_PLANE_ENDPOINT"
networking:
  serviceSubnet: $SERVICE_CIDR
  dnsDomain: cluster.local
apiServer:
  certSANs:
$sans  extraArgs:
    - {name: kubelet-preferred-address-types, value: InternalIP}
---
# What a kubelet needs in a podman node on a cgroup v1 host (docs/lab.md);
# kubeadm stores it in the kubelet-config ConfigMap, so joining nodes get it too.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /kubelet
failCgroupV1: false
failSwapOn: false
evictionHard: {memory.available: "0%", nodefs.available: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
---
# nftables mode; the node may not resize the host's conntrack table.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clusterCIDR: $CLUSTER_CIDR
conntrack:
  maxPerCore: 0
CFG
  kubeadm init --config /etc/kubernetes/lab/kubeadm.yaml --upload-certs
  local ca_hash
  ca_hash=sha256:$(openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt |
    openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
  (
    umask 077
    printf 'TOKEN=%s\nCA_HASH=%s\nCERT_KEY=%s\n' "$token" "$ca_hash" "$cert_key" >/etc/kubernetes/lab/join.env
  )
}

join() {
  : "${TOKEN:?}" "${CA_HASH:?}"
  local extra=()
  if [ "$1" = control-plane ]; then
    : "${CERT_KEY:?}"
    extra=(--control-plane --certificate-key "$CERT_KEY" --apiserver-advertise-address "$NODE_IP")
  fi
  kubeadm join "$CONTROL_PLANE_ENDPOINT" --token "$TOKEN" --discovery-token-ca-cert-hash "$CA_HASH" \
    --node-name "$NODE_NAME" --cri-socket unix:///run/containerd/containerd.sock "${extra[@]}"
}

case "${1:-}" in
  init) init ;;
  join-control-plane) join control-plane ;;
  join-worker) join worker ;;
  *) echo "usage: control-plane-kubeadm-ha.sh init|join-control-plane|join-worker" >&2; exit 2 ;;
esac
