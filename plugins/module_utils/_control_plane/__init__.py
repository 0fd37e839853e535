# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection (no stable API): the control
plane hardening logic behind the ``control_plane_facts`` and
``control_plane_component`` modules.

- ``flags``: parsing and rendering of command lines, systemd ExecStart
  values and ``--help`` texts (pure);
- ``desired``: the hardened flags of etcd, kube-apiserver,
  kube-controller-manager and kube-scheduler (CIS v1.12) and the validation
  of every input against what the installed binary supports (pure);
- ``manifest``: structural edits of kubeadm static-pod manifests and their
  validation as Pod objects (pure);
- ``node``: everything that touches the node: gathering, files, restarts,
  health checks and rollback.
"""
