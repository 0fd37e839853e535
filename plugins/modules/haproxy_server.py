#!/usr/bin/python
# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_server
short_description: Take one HAProxy server out of rotation, or put it back and wait until HAProxy reports it UP
version_added: 0.1.0
description:
  - Talks to HAProxy's runtime API (C(stats socket ... level admin)) over a UNIX socket or TCP. O(state=drain) sends
    C(set server BACKEND/SERVER state drain) so no new connection goes to the server (HAProxy keeps health-checking
    it); O(state=ready) sends C(state ready) and, with O(wait), returns only once HAProxy's own health check reports
    the server UP.
  - The C(kubeguard.hardening) roles call it (through C(kubeguard_lb_drain_*)) around each kube-apiserver restart on
    a cluster with more than one control plane, so the load balancer stops sending requests to an apiserver before
    it restarts instead of noticing its failing C(/readyz) a few checks later (docs/control_plane.md, HA).
  - Refuses to drain a server when no other server of the backend is UP and in rotation.
  - Standard library only; runs on the controller (TCP) or on the load balancer's host (UNIX socket).
author: Kubeguard maintainers (@kubeguard)
extends_documentation_fragment:
  - kubeguard.hardening.role_vars
attributes:
  check_mode:
    support: full
    description: Reads the server's state and reports whether it would change it; sends no C(set) command.
  diff_mode:
    support: full
    description: The server's state before and after.
  idempotent:
    support: full
    description: A server already drained (or in rotation) is left alone.
  safe_file_operations:
    support: none
    description: Writes no file.
options:
  runtime_api:
    description: The runtime API's address, an absolute UNIX socket path or C(host:port) (C([v6]:port)).
    type: str
    required: true
  backend:
    description: The backend that holds the apiservers.
    type: str
    required: true
  server:
    description: The server's name in O(backend).
    type: str
    required: true
  state:
    description: C(drain) takes the server out of rotation, C(ready) puts it back.
    type: str
    choices: [drain, ready]
    required: true
  wait:
    description: With O(state=ready), wait until HAProxy's health check reports the server UP.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the server to be reported UP.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Take cp1 out of rotation before its apiserver restarts
  kubeguard.hardening.haproxy_server:
    runtime_api: 10.0.0.20:9999
    backend: apiservers
    server: cp1
    state: drain
  delegate_to: localhost
"""

RETURN = r"""
before:
  description: The server's state before the call (C(UP), C(DOWN), C(DRAIN (UP)), C(DRAIN (DOWN)), C(MAINT)).
  returned: always
  type: str
  sample: UP
state:
  description: The server's state after the call (in check mode, as before).
  returned: always
  type: str
  sample: DRAIN (UP)
others_in_rotation:
  description: With O(state=drain), the backend's other servers that are UP and in rotation.
  returned: state is drain
  type: list
  elements: str
  sample: [cp2, cp3]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import ROLE_VARS_SPEC, run_module
from ansible_collections.kubeguard.hardening.plugins.module_utils._lb import haproxy


def main():
    module = AnsibleModule(
        argument_spec={
            **ROLE_VARS_SPEC,
            "runtime_api": {"type": "str", "required": True},
            "backend": {"type": "str", "required": True},
            "server": {"type": "str", "required": True},
            "state": {"type": "str", "required": True, "choices": ["drain", "ready"]},
            "wait": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    run_module(module, haproxy.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
