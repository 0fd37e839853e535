#!/bin/bash
# Runs inside the control-plane node: brings up etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler as systemd services, the
# "Kubernetes the hard way" layout, in the deliberately weak state of a
# freshly hand-built cluster (etcd without TLS, anonymous auth on,
# AlwaysAllow, profiling on, no audit log). The collection's roles harden it.
# Env: NODE_NAME, NODE_IP, API_SANS (extra comma-separated IP SANs).
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_IP:?}"
# The lab's own leaf certificates and kubeconfigs (the weak before-state).
PKI=/var/lib/kubernetes-lab
BIN=/usr/local/bin
source "$(dirname "$0")/lib.sh"
mkdir -p "$PKI" /var/lib/etcd
chmod 0700 /var/lib/etcd
cd "$PKI"

# The cluster CA and the service-account key pair sit where operators keep
# them (kubeadm's paths), so the cluster_pki role adopts them instead of
# replacing them: kube-proxy, kube-router, the lab admin and every issued
# service-account token stay valid through the hardening.
$BIN/kubeadm init phase certs ca --cert-dir /etc/kubernetes/pki >/dev/null
$BIN/kubeadm init phase certs sa --cert-dir /etc/kubernetes/pki >/dev/null
cp /etc/kubernetes/pki/ca.crt /etc/kubernetes/pki/ca.key /etc/kubernetes/pki/sa.key /etc/kubernetes/pki/sa.pub .
ip_sans="IP:$NODE_IP,IP:10.96.0.1"
for ip in ${API_SANS//,/ }; do ip_sans+=",IP:$ip"; done
issue "$PKI" apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$NODE_NAME,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,$ip_sans"
issue "$PKI" admin "/O=system:masters/CN=lab-admin" "$CLIENT_EXT"
issue "$PKI" controller-manager "/CN=system:kube-controller-manager" "$CLIENT_EXT"
issue "$PKI" scheduler "/CN=system:kube-scheduler" "$CLIENT_EXT"
# For logs/exec/port-forward: the apiserver's client identity at the kubelets.
issue "$PKI" apiserver-kubelet-client "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" "$CLIENT_EXT"
chmod 0600 ./*.key

for user in admin controller-manager scheduler; do
  kubeconfig "$PKI/$user.kubeconfig" "https://$NODE_IP:6443" ca.crt "$user" "$user"
done

unit etcd "etcd (lab: plain HTTP, no client auth)" "" "$BIN/etcd --name=$NODE_NAME --data-dir=/var/lib/etcd \
 --listen-client-urls=http://127.0.0.1:2379,http://$NODE_IP:2379 --advertise-client-urls=http://$NODE_IP:2379 \
 --listen-peer-urls=http://$NODE_IP:2380 --initial-advertise-peer-urls=http://$NODE_IP:2380 \
 --initial-cluster=$NODE_NAME=http://$NODE_IP:2380"
unit kube-apiserver "Kubernetes API server (lab: weak before-state)" etcd.service "$BIN/kube-apiserver \
 --advertise-address=$NODE_IP --secure-port=6443 --etcd-servers=http://127.0.0.1:2379 \
 --anonymous-auth=true --authorization-mode=AlwaysAllow --profiling=true --allow-privileged=true \
 --client-ca-file=$PKI/ca.crt --tls-cert-file=$PKI/apiserver.crt --tls-private-key-file=$PKI/apiserver.key \
 --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file=$PKI/sa.pub \
 --service-account-signing-key-file=$PKI/sa.key --service-cluster-ip-range=10.96.0.0/12 \
 --kubelet-client-certificate=$PKI/apiserver-kubelet-client.crt --kubelet-client-key=$PKI/apiserver-kubelet-client.key \
 --kubelet-preferred-address-types=InternalIP"
unit kube-controller-manager "Kubernetes controller manager" kube-apiserver.service "$BIN/kube-controller-manager \
 --kubeconfig=$PKI/controller-manager.kubeconfig --authentication-kubeconfig=$PKI/controller-manager.kubeconfig \
 --authorization-kubeconfig=$PKI/controller-manager.kubeconfig --root-ca-file=$PKI/ca.crt \
 --service-account-private-key-file=$PKI/sa.key --cluster-signing-cert-file=$PKI/ca.crt \
 --cluster-signing-key-file=$PKI/ca.key --use-service-account-credentials=true --controllers=*,-nodeipam"
unit kube-scheduler "Kubernetes scheduler" kube-apiserver.service "$BIN/kube-scheduler \
 --kubeconfig=$PKI/scheduler.kubeconfig --authentication-kubeconfig=$PKI/scheduler.kubeconfig \
 --authorization-kubeconfig=$PKI/scheduler.kubeconfig"
systemctl daemon-reload
systemctl enable --now etcd kube-apiserver kube-controller-manager kube-scheduler >/dev/null 2>&1

for _ in $(seq 1 90); do
  if $BIN/kubectl --kubeconfig "$PKI/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "kube-apiserver did not become ready; see journalctl -u kube-apiserver" >&2
exit 1
