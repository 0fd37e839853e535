# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection (no stable API): the kubelet
hardening logic behind the ``kubelet_facts``, ``kubelet_config``,
``kubelet_files`` and ``kubelet_kube_proxy`` modules.

- ``config``: the hardened KubeletConfiguration (CIS 4.2.x), the flags that
  duplicate its fields, systemd ExecStart/Environment parsing, the YAML
  rendering of the file and the validation of every input (pure);
- ``node``: everything that touches the node: gathering, writes, the
  restart, the wait for the Node to be Ready with its pods, and rollback.
"""
