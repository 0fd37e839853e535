# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the kernel settings a Kubernetes node needs at one value, and
the kernel modules it loads.

``node_os_kernel`` refuses any other value for them, and a blacklist that
names such a module, before it writes anything; ``kubelet`` sets and checks
``KUBELET_PROTECTED``.
"""

from __future__ import annotations

# The sysctls kubelet checks with protectKernelDefaults (pkg/kubelet/cm:
# setupKernelTunables): a kubelet started with another value exits.
KUBELET_PROTECTED = {
    "vm.overcommit_memory": "1",
    "vm.panic_on_oom": "0",
    "kernel.panic": "10",
    "kernel.panic_on_oops": "1",
    "kernel.keys.root_maxkeys": "1000000",
    "kernel.keys.root_maxbytes": "25000000",
}

# Pod traffic is routed through the node and bridged pod traffic must pass
# netfilter for Services (kubeadm's preflight checks all three).
POD_NETWORK = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}

# Kernel modules a node's container runtime, kube-proxy or CNI loads: never
# blacklisted (exact names, then name prefixes; "-" and "_" are the same).
MODULES = ("overlay", "br_netfilter", "bridge", "veth", "vxlan", "ipip", "dummy", "ip_set", "x_tables",
           "ip_tables", "ip6_tables", "nfnetlink")  # fmt: skip
MODULE_PREFIXES = ("nf_", "nft_", "xt_", "iptable_", "ip6table_", "ip_vs", "ip_set_")


def module_needed(name):
    """Whether the module ``name`` is one a Kubernetes node loads (containerd, kube-proxy, CNIs)."""
    name = name.replace("-", "_")
    return name in MODULES or name.startswith(MODULE_PREFIXES)


# Why each table's values are fixed, in the refusal that names the setting.
WHY = (
    (POD_NETWORK, "Kubernetes routes and bridges pod traffic through the node (kubeadm's preflight checks it)"),
    (
        KUBELET_PROTECTED,
        "the kubelet sets it at start, and with protectKernelDefaults (CIS 4.2.6) exits when it differs",
    ),
)


def need(name):
    """``(value, why)`` when ``name`` must take one value on a Kubernetes node, else None."""
    return next(((table[name], why) for table, why in WHY if name in table), None)
