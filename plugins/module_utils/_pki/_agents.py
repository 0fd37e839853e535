# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the client identities of node agents.

A node agent is a daemon on every node that talks to the API server with a
client certificate (kube-proxy of a hand-built cluster, a CNI or policy agent
run from a systemd unit). Each gets, per node, a kubeconfig with embedded
data signed by the cluster CA, at the path its unit reads, and is restarted
through its unit when that changes. The node side installs an agent's file
only where its unit exists: kubeadm's kube-proxy is a DaemonSet that uses its
ServiceAccount token, so it has no unit and gets nothing.

Pure Python, no Ansible and no cryptography import, so it is unit-testable.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from dataclasses import dataclass

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import names
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _model

OPTION = "node_agents"
# The install root of agent files: their ``dest`` is the absolute path without its leading "/".
ROOT = "/"
_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
# Components cluster_pki restarts already: an agent may not take their names.
_RESERVED = (_model.ETCD, _model.APISERVER, _model.CONTROLLER_MANAGER, _model.SCHEDULER, _model.KUBELET)


@dataclass(frozen=True)
class Agent:
    name: str
    common_name: str
    organizations: tuple
    kubeconfig: str
    unit: str
    health_checks: tuple = ()


def _text(value, option, what, limit=64):
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise KubeguardError(
            option, f"must be {what} (a non-empty string of at most {limit} characters), got {value!r}"
        )
    return value


def _agent(entry, where, seen, paths):
    if not isinstance(entry, dict):
        raise KubeguardError(where, "must be a dict with name, common_name, kubeconfig and unit")
    unknown = sorted(set(entry) - {"name", "common_name", "organizations", "kubeconfig", "unit", "health_checks"})
    if unknown:
        raise KubeguardError(where, f"unknown keys {unknown}")
    name = entry.get("name")
    if not names.is_label(name):
        raise KubeguardError(f"{where}.name", f"{name!r} is not a valid agent name (lowercase DNS-1123 label)")
    if name in _RESERVED:
        raise KubeguardError(f"{where}.name", f"{name!r} is a component cluster_pki already manages")
    if name in seen:
        raise KubeguardError(f"{where}.name", f"duplicate agent name {name!r}")
    seen.add(name)
    common_name = _text(entry.get("common_name"), f"{where}.common_name", "the certificate's CN")
    orgs = entry.get("organizations") or []
    if isinstance(orgs, str) or not isinstance(orgs, list):
        raise KubeguardError(f"{where}.organizations", f"must be a list of strings, got {orgs!r}")
    orgs = tuple(_text(o, f"{where}.organizations", "an organization (O)") for o in orgs)
    path = entry.get("kubeconfig")
    if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path or path == "/":
        raise KubeguardError(f"{where}.kubeconfig", f"{path!r} must be a normalised absolute file path")
    if path in paths:
        raise KubeguardError(f"{where}.kubeconfig", f"{path} is already the kubeconfig of agent {paths[path]!r}")
    paths[path] = name
    unit = entry.get("unit")
    if not isinstance(unit, str) or not _UNIT.match(unit) or unit.endswith(".service"):
        raise KubeguardError(f"{where}.unit", f"{unit!r} is not a systemd service name (without .service)")
    urls = entry.get("health_checks") or []
    if isinstance(urls, str) or not isinstance(urls, list):
        raise KubeguardError(f"{where}.health_checks", f"must be a list of http(s) URLs, got {urls!r}")
    for url in urls:
        parts = urllib.parse.urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise KubeguardError(f"{where}.health_checks", f"{url!r} is not an http(s) URL")
    return Agent(name, common_name, orgs, path, unit, tuple(urls))


def parse(raw, option=OPTION):
    """The agents of the module option, checked (every error names the entry and key)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise KubeguardError(option, f"must be a list of agents, got {type(raw).__name__}")
    seen, paths = set(), {}
    return tuple(_agent(entry, f"{option}[{index}]", seen, paths) for index, entry in enumerate(raw))


def layout(agent):
    """The agent's Layout: one per-node kubeconfig signed by the cluster CA, read by the agent's unit."""
    return _model.Layout(
        f"node-agent:{agent.name}",
        agent.kubeconfig.lstrip("/"),
        "kubeconfig",
        "ca",
        components=(agent.name,),
        root=ROOT,
        unit=agent.unit,
    )


def catalogue(cluster, agents):
    """Per node that runs a kubelet, one kubeconfig per agent (a node's own key).

    Like the kubelet's: a control-plane node's points at its local API server,
    a worker's at the cluster endpoint.
    """
    items = []
    signer = _model.LAYOUT_BY_NAME["ca"].dest
    for node in cluster.nodes:
        if not node.kubelet:
            continue
        if node.control_plane:
            server, option = _model._url(node.advertise_ip, cluster.api_port), "api_port"
        else:
            server, option = cluster.endpoint_url, "control_plane_endpoint"
        for agent in agents:
            items.append(
                _model.Item(
                    f"nodes/{node.name}/node-agents/{agent.name}.conf",
                    "kubeconfig",
                    cn=agent.common_name,
                    orgs=agent.organizations,
                    eku=(_model.CLIENT_AUTH,),
                    signer=signer,
                    node=node.name,
                    server=server,
                    server_option=option,
                    layout=layout(agent),
                )
            )
    return items
