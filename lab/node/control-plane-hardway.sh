#!/bin/bash
# Runs inside the control-plane node: brings up etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler as systemd services, the
# "Kubernetes the hard way" layout, in the deliberately weak state of a
# freshly hand-built cluster (etcd without TLS, anonymous auth on,
# AlwaysAllow, profiling on, no audit log). The collection's roles harden it.
# Env: NODE_NAME, NODE_IP, API_SANS (extra comma-separated IP SANs).
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_IP:?}"
# Bootstrap PKI of the lab, kept apart from /etc/kubernetes/pki which the
# cluster_pki role owns.
PKI=/var/lib/kubernetes-lab
BIN=/usr/local/bin
mkdir -p "$PKI" /var/lib/etcd
chmod 0700 /var/lib/etcd
cd "$PKI"

issue() { # name, subject, extensions
  openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
  -subj "/CN=kubeguard-lab-ca" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
ip_sans="IP:$NODE_IP,IP:10.96.0.1"
for ip in ${API_SANS//,/ }; do ip_sans+=",IP:$ip"; done
issue apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$NODE_NAME,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,$ip_sans"
issue admin "/O=system:masters/CN=lab-admin" "$client_ext"
issue controller-manager "/CN=system:kube-controller-manager" "$client_ext"
issue scheduler "/CN=system:kube-scheduler" "$client_ext"
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
chmod 0600 ./*.key

kubeconfig() { # name, cert
  local file=$PKI/$1.kubeconfig
  KUBECONFIG=$file $BIN/kubectl config set-cluster lab --server="https://$NODE_IP:6443" \
    --certificate-authority=ca.crt --embed-certs >/dev/null
  KUBECONFIG=$file $BIN/kubectl config set-credentials "$1" --client-certificate="$2.crt" \
    --client-key="$2.key" --embed-certs >/dev/null
  KUBECONFIG=$file $BIN/kubectl config set-context default --cluster=lab --user="$1" >/dev/null
  KUBECONFIG=$file $BIN/kubectl config use-context default >/dev/null
  chmod 0600 "$file"
}
kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler

unit() { # name, description, after, exec
  cat > "/etc/systemd/system/$1.service" <<UNIT
[Unit]
Description=$2
After=network-online.target $3
Wants=$3

[Service]
ExecStart=$4
Restart=always
RestartSec=2
LimitNOFILE=1024

[Install]
WantedBy=multi-user.target
UNIT
}
unit etcd "etcd (lab: plain HTTP, no client auth)" "" "$BIN/etcd --name=$NODE_NAME --data-dir=/var/lib/etcd \
 --listen-client-urls=http://127.0.0.1:2379,http://$NODE_IP:2379 --advertise-client-urls=http://$NODE_IP:2379 \
 --listen-peer-urls=http://$NODE_IP:2380 --initial-advertise-peer-urls=http://$NODE_IP:2380 \
 --initial-cluster=$NODE_NAME=http://$NODE_IP:2380"
unit kube-apiserver "Kubernetes API server (lab: weak before-state)" etcd.service "$BIN/kube-apiserver \
 --advertise-address=$NODE_IP --secure-port=6443 --etcd-servers=http://127.0.0.1:2379 \
 --anonymous-auth=true --authorization-mode=AlwaysAllow --profiling=true --allow-privileged=true \
 --client-ca-file=$PKI/ca.crt --tls-cert-file=$PKI/apiserver.crt --tls-private-key-file=$PKI/apiserver.key \
 --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file=$PKI/sa.pub \
 --service-account-signing-key-file=$PKI/sa.key --service-cluster-ip-range=10.96.0.0/12"
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
