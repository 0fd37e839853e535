# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection (no stable API): the node
operating system hardening behind the ``node_os_*`` modules.

- ``firewall``: the node firewall's inputs, validation and nftables rendering
  from the node's Kubernetes role (pure);
- ``nft``: applying it: candidate check (``nft -c``), atomic file, one
  ``nft -f`` transaction on our own table, the dead-man rollback;
- ``probe``: the kubelet -> apiserver proof (the node's Lease renewed after
  a moment) and a DNS query to the cluster DNS service;
- ``kernel``: the sysctl table (CIS Debian / Lynis IDs), kernel module
  blacklist, what a container node cannot set and why;
- ``audit``: auditd watch rules, their syntax check and loading.
"""
