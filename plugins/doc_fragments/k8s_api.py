# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared documentation of the modules that talk to the Kubernetes API."""

from __future__ import annotations


class ModuleDocFragment:
    # Shared by k8s_bulk_apply, rbac_audit, network_policy_audit and network_policy_truth_table.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to connect with, or the kubeconfig itself as a dict.
      - An inline kubeconfig's tokens, keys and passwords are never logged or returned.
      - Defaults to kubectl's default, C(KUBECONFIG) (its files merged, the first to set a value wins),
        then C(~/.kube/config).
      - Read as kubectl reads it (server, TLS, tokens, client certificates, exec credential plugins),
        without the C(kubernetes) library; only a user with an C(auth-provider) plugin (or a SOCKS C(proxy-url))
        goes through that library.
    type: raw
  context:
    description: Context of the kubeconfig to use; its current context when omitted.
    type: str
  request_timeout:
    description: Seconds to wait for each API request.
    type: int
    default: 30
requirements:
  - PyYAML (Python library) on the host the module runs on, normally the controller.
  - The kubernetes Python library there too, only for a kubeconfig user with an C(auth-provider) plugin or a SOCKS
    C(proxy-url).
notes:
  - Runs against the API server, normally on the controller (C(delegate_to=localhost), C(run_once=true)).
"""
