# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection (no stable API): the SSH hardening area.

Owns every decision behind the ``sshd_*`` modules and the ``ssh_hardening`` role,
with no Ansible imports, so each piece is unit-tested without Ansible:

- ``config``: the SSH constants (listen drop-in path, ``sshd -T -C`` connection
  spec, drop-in discovery), rendering sshd_config, parsing ``sshd -T``;
- ``validate``: role inputs refused up front (ports, listen addresses, limits);
- ``algorithms``: algorithm lists chosen from the node's ``ssh -Q`` output;
- ``access``: whether the connecting account keeps access under a candidate;
- ``node``: read-only facts about accounts, keys and the SSH connection;
- ``moduli``: the weak-moduli rule and the moduli filter;
- ``facts``: the one gather call per node (``sshd_facts``);
- ``apply``: candidate check, atomic write and dead-man rollback (``sshd_config``, ``sshd_moduli``);
- ``hostcert``: host certificate decisions (principals, ``ssh-keygen -L`` parsing, renewal, known_hosts);
- ``certificates``: the node side of host certificates (``sshd_host_certificate``);
- ``hostca``: the controller's host CA store, signing and ssh_known_hosts (``sshd_host_ca``).

Errors are :class:`~..._errors.KubeguardError` naming the role variable to fix.
"""
