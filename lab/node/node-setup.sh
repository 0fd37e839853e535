#!/bin/bash
# Runs inside every lab node: makes it a Kubernetes node in the deliberately
# weak state of a hand-built cluster. The kubelet allows anonymous requests
# with AlwaysAllow, serves the read-only port 10255 and a self-signed
# certificate; the collection's kubelet role hardens it.
#   node-setup.sh runtime  containerd (Debian's), CNI bridge + host-local,
#                          routes to the other nodes' pod CIDRs, the lab images
#                          imported, kubelet/kube-proxy/kube-router units written
#   node-setup.sh start    installs the kubelet's kubeconfig lab-up placed in
#                          /opt/kubeguard/lab/credentials and starts the kubelet;
#                          kube-proxy and kube-router start once the collection's
#                          cluster_pki role gave them their identities (lab-up)
# Env: NODE_NAME, NODE_IP, POD_CIDR, CLUSTER_CIDR, POD_ROUTES ("cidr=via ..."),
#      CLUSTER_DNS, SERVICE_CIDR, PAUSE_IMAGE, IMAGE_TARS (space-separated).
# KUBEADM_NODE=1 (LAYOUT=kubeadm-ha): kubeadm init/join writes the kubelet's
# configuration and starts it (kubeadm's unit layout), kube-proxy is kubeadm's
# DaemonSet, and `start` starts nothing.
set -euo pipefail
BIN=/usr/local/bin
source "$(dirname "$0")/lib.sh"

runtime() {
  : "${NODE_NAME:?}" "${NODE_IP:?}" "${POD_CIDR:?}" "${PAUSE_IMAGE:?}" "${CLUSTER_DNS:?}"
  # Routes are lost when a node restarts: a unit puts them back at boot.
  local routes="sysctl -qw net.ipv4.ip_forward=1; sysctl -qw net.bridge.bridge-nf-call-iptables=1 || true"
  local route
  for route in ${POD_ROUTES:-}; do routes+="; ip route replace ${route%%=*} via ${route#*=}"; done
  cat >/etc/systemd/system/lab-pod-routes.service <<UNIT
[Unit]
Description=Lab: forwarding and routes to the other nodes' pod CIDRs
After=network.target
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c '$routes'

[Install]
WantedBy=multi-user.target
UNIT

  mkdir -p /etc/containerd /etc/cni/net.d
  # restrict_oom_score_adj: root in the node may not lower oom_score_adj here.
  cat >/etc/containerd/config.toml <<TOML
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
TOML
  cat >/etc/cni/net.d/10-lab-bridge.conflist <<JSON
{
  "cniVersion": "1.0.0",
  "name": "lab",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  echo "runtime-endpoint: unix:///run/containerd/containerd.sock" >/etc/crictl.yaml

  mkdir -p /var/lib/kubelet /etc/kubernetes /var/lib/kube-proxy /var/lib/kube-router
  local proxy_unit=kube-proxy.service
  if [ "${KUBEADM_NODE:-}" = 1 ]; then
    kubeadm_kubelet
    proxy_unit=""
  else
    cat >/var/lib/kubelet/config.yaml <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The weak starting state the kubelet role hardens.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
readOnlyPort: 10255
# What works in a podman node on a cgroup v1 host (docs/lab.md).
cgroupDriver: cgroupfs
cgroupRoot: /kubelet
failCgroupV1: false
failSwapOn: false
evictionHard: {memory.available: "0%", nodefs.available: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
staticPodPath: /etc/kubernetes/manifests
clusterDNS: [$CLUSTER_DNS]
clusterDomain: cluster.local
YAML
  unit kubelet "Kubernetes node agent" "containerd.service lab-pod-routes.service" \
    "$BIN/kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf --node-ip=$NODE_IP" \
    "ExecStartPre=/usr/local/sbin/lab-kubelet-cgroups"
  unit kube-proxy "Kubernetes service proxy (nftables)" "lab-pod-routes.service" \
    "$BIN/kube-proxy --kubeconfig=/var/lib/kube-proxy/kubeconfig --proxy-mode=nftables \
 --hostname-override=$NODE_NAME --bind-address=$NODE_IP --cluster-cidr=$CLUSTER_CIDR --conntrack-max-per-core=0"
  fi
  unit kube-router "NetworkPolicy enforcer (kube-router, firewall only)" "lab-pod-routes.service" \
    "$BIN/kube-router --kubeconfig=/var/lib/kube-router/kubeconfig --hostname-override=$NODE_NAME \
 --run-firewall=true --run-router=false --run-service-proxy=false --enable-ipv6=false \
 --service-cluster-ip-range=$SERVICE_CIDR --metrics-port=0"
  # The kubelet's cgroupRoot must exist in every v1 hierarchy, and a new
  # cpuset child starts empty on v1: copy the parent's CPUs and memory nodes.
  cat >/usr/local/sbin/lab-kubelet-cgroups <<'SH'
#!/bin/sh
for hierarchy in /sys/fs/cgroup/*/; do
  [ -L "${hierarchy%/}" ] || mkdir -p "${hierarchy}kubelet"
done
for file in cpuset.cpus cpuset.mems; do
  cat "/sys/fs/cgroup/cpuset/$file" >"/sys/fs/cgroup/cpuset/kubelet/$file"
done
SH
  chmod 0755 /usr/local/sbin/lab-kubelet-cgroups
  systemctl daemon-reload
  systemctl enable --now lab-pod-routes.service containerd.service >/dev/null 2>&1
  systemctl enable kubelet.service $proxy_unit kube-router.service >/dev/null 2>&1
  for _ in $(seq 1 50); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
  local tar
  for tar in ${IMAGE_TARS:-}; do ctr -n k8s.io images import "$tar" >/dev/null; done
  if [ "${KUBEADM_NODE:-}" = 1 ]; then
    # kubeadm's preflight looks for the sandbox image under its own pause tag.
    local pause_tag
    pause_tag=$(kubeadm config images list --kubernetes-version "$(kubeadm version -o short)" |
      awk -F: '/\/pause:/ {print $NF}')
    ctr -n k8s.io images tag --force "$PAUSE_IMAGE" "${PAUSE_IMAGE%:*}:$pause_tag" >/dev/null
    # kubeadm's kube-proxy DaemonSet mounts it (the kernel's modules are built in here).
    mkdir -p /lib/modules
  fi
}

# kubeadm's kubelet unit: bootstrap kubeconfig for `kubeadm join`, the
# per-node flags kubeadm writes, and its config file.
kubeadm_kubelet() {
  unit kubelet "Kubernetes node agent (kubeadm)" "containerd.service lab-pod-routes.service" \
    "$BIN/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
 --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \$KUBELET_KUBEADM_ARGS" \
    "ExecStartPre=/usr/local/sbin/lab-kubelet-cgroups
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env"
}

start() {
  local credentials=/opt/kubeguard/lab/credentials
  if [ "${KUBEADM_NODE:-}" = 1 ]; then
    rm -rf "$credentials"
    return
  fi
  # kubeadm already gave the control-plane node its kubelet.conf.
  [ -s /etc/kubernetes/kubelet.conf ] || install -m 0600 "$credentials/kubelet.conf" /etc/kubernetes/kubelet.conf
  rm -rf "$credentials"
  systemctl start kubelet.service
}

case "${1:-}" in
  runtime) runtime ;;
  start) start ;;
  *) echo "usage: node-setup.sh runtime|start" >&2; exit 2 ;;
esac
