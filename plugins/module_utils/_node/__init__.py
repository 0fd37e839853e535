# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the one node engine every node-side package
(``_pki``, ``_control_plane``, ``_kubelet``, ``_sshd``) uses.

- ``files``: reads, the one atomic write path, modes and owners.
- ``system``: the command runner, systemctl and unit state, /proc processes.
- ``state``: the rollback record an interrupted run leaves (last known good).
- ``restart``: the one restart -> health -> rollback engine (queued restart,
  health proven on a new process, bounded drain of an old apiserver, the
  previous files restored and restarted on failure).
- ``x509``: the one certificate reader (``cryptography``).
"""
