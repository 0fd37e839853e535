#!/bin/sh
# kind's own CNI (kindnetd) comes from a registry. This is the lab's pod
# network instead (docs/lab.md): a bridge with a /24 per node, 10.244.<last
# octet of the node IP>.0/24, and a static route to every other node's /24.
# The node list is /etc/hosts, which kind-up's podman shim fills in.
set -eu
own_ip=$(awk -v n="$(hostname)" '$2 == n {print $1; exit}' /etc/hosts)
# Not started by kind-up (no fixed addresses): leave networking alone.
[ -n "$own_ip" ] || exit 0
cat >/etc/cni/net.d/10-kgkind.conflist <<CONF
{
  "cniVersion": "1.0.0",
  "name": "kgkind",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.${own_ip##*.}.0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
awk '$2 ~ /^kgkind/ {print $1}' /etc/hosts | sort -u | while read -r ip; do
  [ "$ip" = "$own_ip" ] || ip route replace "10.244.${ip##*.}.0/24" via "$ip"
done
