# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the API as the kubelet sees it (its own kubeconfig,
``system:node:<name>``), and the readiness a restarted kubelet must prove."""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._http import http_open
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import read


def _kubeconfig_field(text, field):
    match = re.search(rf"^\s*{re.escape(field)}:\s*(\S+)\s*$", text or "", re.M)
    return match.group(1).strip("\"'") if match else ""


class NodeAPI:
    """GETs against the API server with the kubelet's kubeconfig (``system:node:<name>``).

    Parsed line by line: a kubeconfig's fields are flat scalars, and the nodes
    need no YAML library.
    """

    def __init__(self, kubeconfig):
        text = read(kubeconfig) or ""
        self.server = _kubeconfig_field(text, "server").rstrip("/")
        if not self.server.startswith("https://"):
            raise KubeguardError("", f"{kubeconfig}: no https server to ask whether the Node is Ready")
        ca_data = _kubeconfig_field(text, "certificate-authority-data")
        if ca_data:
            self.context = ssl.create_default_context(cadata=base64.b64decode(ca_data).decode())
        else:
            self.context = ssl.create_default_context(cafile=_kubeconfig_field(text, "certificate-authority") or None)
        cert, key = _kubeconfig_field(text, "client-certificate"), _kubeconfig_field(text, "client-key")
        cert_data = _kubeconfig_field(text, "client-certificate-data")
        key_data = _kubeconfig_field(text, "client-key-data")
        if cert_data and key_data:
            # ssl loads a key only from a file: a private directory, removed at once.
            with tempfile.TemporaryDirectory(prefix="kubeguard-") as tmp:
                pem = os.path.join(tmp, "identity.pem")
                with open(os.open(pem, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
                    handle.write(base64.b64decode(cert_data) + b"\n" + base64.b64decode(key_data))
                self.context.load_cert_chain(pem)
        elif cert:
            self.context.load_cert_chain(cert, key or None)

    def get(self, path, timeout=5):
        request = urllib.request.Request(self.server + path, headers={"Accept": "application/json"})  # noqa: S310
        with http_open(request, context=self.context, timeout=timeout) as response:
            return json.loads(response.read().decode())


def _time(stamp):
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def node_status(api, node_name):
    """``(ready, heartbeat_epoch)`` of the Node's Ready condition."""
    node = api.get(f"/api/v1/nodes/{node_name}")
    for condition in node.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready":
            return condition.get("status") == "True", _time(condition["lastHeartbeatTime"])
    return False, 0.0


def running_pods(api, node_name):
    """``{uid: name}`` of the Pods bound to the node whose phase is Running."""
    pods = api.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node_name}")
    return {
        p["metadata"]["uid"]: f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in pods.get("items", [])
        if p.get("status", {}).get("phase") == "Running"
    }


def _healthz(url):
    try:
        with http_open(url, timeout=3) as response:
            return response.read().decode().strip() == "ok"
    except (OSError, ValueError):
        return False


def ready_probe(api, node_name, healthz, since, pods, seen):
    """One probe for the engine: the new kubelet answers ``healthz``, has reported the
    Node Ready after ``since``, and every pod of ``pods`` still runs. ``seen`` collects
    ``ready_false`` (a NotReady Node was seen) and ``seconds`` (until Ready)."""

    def probe(_pid):
        try:
            if not _healthz(healthz):
                return False, f"{healthz} does not answer ok"
            ready, beat = node_status(api, node_name)
            seen["ready_false"] = seen.get("ready_false", False) or not ready
            missing = sorted(set(pods.values()) - set(running_pods(api, node_name).values()))
            if not ready or beat < since - 1:
                return False, f"Node {node_name} has not reported Ready since the restart"
            if missing:
                return False, f"pods no longer Running: {', '.join(missing)}"
            seen["seconds"] = round(time.time() - since, 1)
            return True, "Ready"
        except (OSError, ValueError, KeyError, ssl.SSLError) as exc:
            return False, f"API: {exc}"

    return probe
