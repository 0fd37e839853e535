# One lab node: its container and its runtime, for lab-up (every node of the
# layout) and lab-add-worker (one more worker). Sourced after common.sh.
# The caller sets: nodes (lab_nodes lines), bindir, images_out, apt_out,
# ha_images_dir (kubeadm-ha), cp_name, pubkey, images, setup_log.
# shellcheck shell=bash
SERVICE_CIDR=10.96.0.0/12
CLUSTER_DNS=10.96.0.10
CLUSTER_CIDR=10.244.0.0/16

# lab_node_container NAME RELEASE IP PORT: the node container mode that runs
# a kubelet on this kind of host (docs/lab.md): privileged, private cgroup
# namespace, systemd as a plain init, containerd's state on a volume (overlay
# on overlay fails).
lab_node_container() {
  local name=$1 release=$2 ip=$3 port=$4
  local publish=(-p "127.0.0.1:$port:22") volume=$LAB_CONTAINER_PREFIX$1-containerd
  [ "$name" = "$cp_name" ] && [ "$LAYOUT" != kubeadm-ha ] && publish+=(-p "127.0.0.1:$LAB_API_PORT:6443")
  [ "$LAYOUT" != kubeadm-ha ] || publish+=(-v "$ha_images_dir:/opt/kubeguard/ha:ro")
  podman volume create --label "$LAB_LABEL" "$volume" >/dev/null
  podman run -d --name "$LAB_CONTAINER_PREFIX$name" --hostname "$name" --network "$LAB_NETWORK" --ip "$ip" \
    --privileged --cgroupns=private --systemd=false -e container=podman --stop-signal=SIGRTMIN+3 \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp -v "$volume:/var/lib/containerd" \
    "${publish[@]}" -v "$bindir:/opt/kubeguard/bin:ro" \
    -v "$(awk -v r="$release" '$1 == r {print $2}' <<<"$apt_out"):/opt/kubeguard/apt:ro" \
    --label "$LAB_LABEL" "$(grep -- ":$release-" <<<"$images_out")" /sbin/init >/dev/null
  # A host's systemd makes / a shared mount; podman leaves it private. Without it,
  # services' credential mounts (LoadCredential=, etcd as its own user) stay empty.
  podman exec "$LAB_CONTAINER_PREFIX$name" mount --make-rshared /
}

# lab_node_runtime INDEX: accounts, the lab's binaries and apt source, then
# node-setup.sh runtime for nodes[INDEX]: containerd, the pod network (its
# pod CIDR is 10.244.INDEX.0/24, routes to every other node's) and the images.
lab_node_runtime() {
  local index=$1 name ip groups container kubeadm_node=0 routes="" other=0 tars="" image m
  read -r name _ ip groups _ <<<"${nodes[$index]}"
  container=$LAB_CONTAINER_PREFIX$name
  [ "$LAYOUT" != kubeadm-ha ] || kubeadm_node=1
  for m in "${nodes[@]}"; do
    [ "$other" = "$index" ] || routes+="10.244.$other.0/24=$(echo "$m" | awk '{print $3}') "
    other=$((other + 1))
  done
  for image in pause agnhost coredns; do tars+="/opt/kubeguard/bin/images/$image.tar "; done
  [ "$LAYOUT" != kubeadm-ha ] || tars+="/opt/kubeguard/ha/kube-proxy.tar /opt/kubeguard/ha/kubectl.tar "
  if { [ "$LAYOUT" = kubeadm ] && [ "$name" = "$cp_name" ]; } ||
    { [ "$LAYOUT" = kubeadm-ha ] && [[ "$groups" == *control_plane* ]]; }; then
    for image in etcd kube-apiserver kube-controller-manager kube-scheduler; do
      tars+="/opt/kubeguard/bin/images/$image.tar "
    done
  fi
  podman exec "$container" timeout 60 systemctl is-system-running --wait >/dev/null || true
  # The operator key works for operator and, weakly, for root too.
  podman exec "$container" sh -c "
    for home in /home/operator /root; do
      install -d -m 0700 \$home/.ssh && echo '$pubkey' > \$home/.ssh/authorized_keys
      chmod 0600 \$home/.ssh/authorized_keys
    done
    chown -R operator:operator /home/operator/.ssh
    for b in /opt/kubeguard/bin/*; do [ -f \"\$b\" ] && ln -sf \"\$b\" /usr/local/bin/; done
    # The only apt source the lab network can reach (lab/bin/build-apt-repo).
    echo 'deb [trusted=yes] file:/opt/kubeguard/apt ./' > /etc/apt/sources.list
    mkdir -p /opt/kubeguard/lab"
  podman cp "$LAB_DIR/node/." "$container:/opt/kubeguard/lab/"
  run_logged "$setup_log-$name.log" podman exec -e NODE_NAME="$name" -e NODE_IP="$ip" \
    -e POD_CIDR="10.244.$index.0/24" -e CLUSTER_CIDR="$CLUSTER_CIDR" -e POD_ROUTES="$routes" \
    -e CLUSTER_DNS="$CLUSTER_DNS" -e SERVICE_CIDR="$SERVICE_CIDR" -e IMAGE_TARS="$tars" \
    -e PAUSE_IMAGE="$(awk '$1 == "pause" {print $2}' "$images")" -e KUBEADM_NODE="$kubeadm_node" \
    "$container" /opt/kubeguard/lab/node-setup.sh runtime
}
