# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation of the cluster PKI modules."""

from __future__ import annotations


class ModuleDocFragment:
    # kubeguard.hardening.pki: shared by cluster_pki and cluster_pki_info.
    DOCUMENTATION = r"""
options:
  renew_before_days:
    description:
      - Renewal window in days. A leaf certificate or kubeconfig expiring within it is due for renewal
        (C(cluster_pki) renews it; C(cluster_pki_info) flags it with C(expiring=true)).
    type: int
    default: 30
notes:
  - The file layout and the certificate profiles follow kubeadm v1.34 (see docs/cluster_pki.md in the collection).
"""

    # kubeguard.hardening.pki.node_dirs: where a node's kubeadm files are.
    NODE_DIRS = r"""
options:
  kubernetes_dir:
    description: kubeadm's configuration directory (C(pki/) below it), the C(kubernetes) root of distribution entries.
    type: path
    default: /etc/kubernetes
  kubelet_pki_dir:
    description: Directory of the kubelet serving certificate C(kubelet.crt) (the C(kubelet) root of entries).
    type: path
    default: /var/lib/kubelet/pki
"""
