# Sourced by the lab's node scripts: systemd units, certificates issued from a
# lab CA, kubeconfigs. Never executed.
# shellcheck shell=bash

# issue CA_DIR OUT_BASE SUBJECT EXTENSIONS: OUT_BASE.{crt,key} signed by CA_DIR/ca.*
issue() {
  openssl req -new -newkey rsa:2048 -nodes -keyout "$2.key" -subj "$3" -out "$2.csr" 2>/dev/null
  printf '%s\n' "$4" >"$2.ext"
  # A random serial: no ca.srl left beside the CA (kubeadm's pki/ stays kubeadm's).
  openssl x509 -req -in "$2.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -set_serial "0x$(openssl rand -hex 16)" -days 365 \
    -extfile "$2.ext" -out "$2.crt" 2>/dev/null
  rm -f "$2.csr" "$2.ext"
  chmod 0600 "$2.key"
}

CLIENT_EXT="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

# kubeconfig FILE SERVER CA_CRT USER CERT_BASE: a kubeconfig with everything embedded.
kubeconfig() {
  KUBECONFIG=$1 kubectl config set-cluster lab --server="$2" --certificate-authority="$3" --embed-certs >/dev/null
  KUBECONFIG=$1 kubectl config set-credentials "$4" --client-certificate="$5.crt" \
    --client-key="$5.key" --embed-certs >/dev/null
  KUBECONFIG=$1 kubectl config set-context default --cluster=lab --user="$4" >/dev/null
  KUBECONFIG=$1 kubectl config use-context default >/dev/null
  chmod 0600 "$1"
}

# unit NAME DESCRIPTION AFTER EXEC [SERVICE_LINE]: a restarting service,
# enabled for boot. The node's hard nofile limit is 1024 (lab/containers.conf).
unit() {
  cat >"/etc/systemd/system/$1.service" <<UNIT
[Unit]
Description=$2
After=network-online.target $3
Wants=$3

[Service]
${5:-}
ExecStart=$4
Restart=always
RestartSec=2
LimitNOFILE=1024

[Install]
WantedBy=multi-user.target
UNIT
}
