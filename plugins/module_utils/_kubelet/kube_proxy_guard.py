# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the systemd drop-in that guards kube-proxy's restart in nftables mode.

kube-proxy's nftables mode (Kubernetes 1.33 and later) trusts the endpoint chains it
finds when it starts. One its previous process had emptied (the endpoint went away and
came back at the same address before that process caught up) stays empty, and the
Service is dropped on this node until the next full sync, up to an hour later. Before
each start, a kube-proxy table that holds an empty endpoint chain is deleted, so the new
process writes it whole; a table without one keeps the fast restart.
"""

from __future__ import annotations

DROPIN = "80-kubeguard-nftables-guard.conf"
_EMPTY_ENDPOINT_CHAIN = (
    "awk '/^[[:space:]]*chain endpoint-/ {open = 1; next} open && /^[[:space:]]*}/ {empty = 1} "
    "{open = 0} END {exit !empty}'"
)
TEXT = (
    "\n".join(
        [
            "# Managed by kubeguard.hardening.kubelet: before kube-proxy starts, delete a kube-proxy",
            "# nftables table that holds an empty endpoint chain (the new process would trust it).",
            "[Service]",
            *(
                f'ExecStartPre=-/bin/sh -c "nft list table {family} kube-proxy 2>/dev/null | {_EMPTY_ENDPOINT_CHAIN}'
                f' && nft delete table {family} kube-proxy || true"'
                for family in ("ip", "ip6")
            ),
        ]
    )
    + "\n"
)
