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
  - A drain it makes leaves a marker, one file per server under O(marker_dir) on the host the module runs on, written
    before the drain and removed once O(state=ready) has seen the server UP. A run killed in between leaves the
    marker; O(state=heal) (the roles call it first in every run that can drain) puts every marked server back and
    waits until it is UP, and refuses, naming it, one whose health check fails. A server drained by someone else has
    no marker and is left alone.
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
    support: full
    description: The drain markers are written atomically (temporary file, mode 0600, rename).
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
    description: The server's name in O(backend). Required with O(state=drain) and O(state=ready).
    type: str
  state:
    description:
      - C(drain) takes the server out of rotation (and marks it), C(ready) puts it back (and drops the mark).
      - C(heal) puts back every server of O(backend) marked by a drain that was never followed by its C(ready).
    type: str
    choices: [drain, ready, heal]
    required: true
  marker_dir:
    description:
      - Where the drain markers live, on the host the module runs on (the O(runtime_api)'s address and O(backend)
        name a directory below it). C(~) is the connecting user's home, so it works without privilege escalation.
      - Every run that drives the same load balancer must use the same host, user and directory.
    type: path
    default: ~/.local/state/kubeguard/lb-drained
  wait:
    description: With O(state=ready), wait until HAProxy's health check reports the server UP.
    type: bool
    default: true
  only_marked:
    description:
      - With O(state=ready), put the server back only if it carries this module's drain marker. A server drained
        by someone else (no marker) stays drained, with a warning; with O(wait) the call still waits until
        HAProxy's health check reports it UP (not in maintenance, which HAProxy does not check).
      - The roles set it, so an operator's drain outlives the apiserver restart it straddles.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each server to be reported UP.
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

- name: Put back every server a killed run left drained
  kubeguard.hardening.haproxy_server:
    runtime_api: 10.0.0.20:9999
    backend: apiservers
    state: heal
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
marker:
  description: The server's drain marker after the call, empty when it has none.
  returned: state is drain or ready
  type: str
  sample: /home/operator/.local/state/kubeguard/lb-drained/10.0.0.20%3A9999/apiservers/cp1
marked:
  description: With O(state=heal), the servers that had a marker.
  returned: state is heal
  type: list
  elements: str
  sample: [cp2]
healed:
  description: With O(state=heal), the marked servers put back in rotation and reported UP.
  returned: state is heal
  type: list
  elements: str
  sample: [cp2]
before:
  description: The server's state before the call (C(UP), C(DOWN), C(DRAIN (UP)), C(DRAIN (DOWN)), C(MAINT)).
  returned: state is drain or ready
  type: str
  sample: UP
state:
  description: The server's state after the call (in check mode, as before).
  returned: state is drain or ready
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
            "server": {"type": "str"},
            "state": {"type": "str", "required": True, "choices": ["drain", "ready", "heal"]},
            "marker_dir": {"type": "path", "default": haproxy.DEFAULT_MARKER_DIR},
            "wait": {"type": "bool", "default": True},
            "only_marked": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 60},
        },
        required_if=[("state", "drain", ["server"]), ("state", "ready", ["server"])],
        supports_check_mode=True,
    )
    run_module(module, haproxy.run, module.params, check_mode=module.check_mode)


if __name__ == "__main__":
    main()
