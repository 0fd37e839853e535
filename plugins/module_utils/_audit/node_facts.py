# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: one gathering per node for the audit.

The processes, units, flags and CIS 1.1.x file states come from
``control_plane_facts`` and ``kubelet_facts`` (their ``gather``, called once);
this adds only what they do not read: the structured files the apiserver and
the kubelet load, parsed to the fields the benchmark needs (never a key,
token or password), and the states of the CNI, PKI and kubeconfig files.
"""

from __future__ import annotations

import glob
import json
import os

from .._control_plane import node as control_plane_node
from .._kubelet import node as kubelet_node
from .._node.files import file_state

# apiserver flags naming a structured file, and what the audit keeps of each.
STRUCTURED = (
    "authentication-config",
    "authorization-config",
    "encryption-provider-config",
    "admission-control-config-file",
    "audit-policy-file",
)
CNI_DIRS = ("/etc/cni/net.d", "/var/lib/cni/networks")


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        return exc


def parse(text):
    """YAML or JSON text -> data; raises ValueError with the reason."""
    try:
        import yaml
    except ImportError:
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("not JSON, and python3-yaml is missing on the node to read YAML") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {str(exc).splitlines()[0]}") from None


def load(path):
    """{"path", "data"} or {"path", "error"}: a structured file as the component would load it."""
    text = _read(path)
    if isinstance(text, Exception):
        return {"path": path, "error": f"cannot read: {text.strerror or text}"}
    try:
        return {"path": path, "data": parse(text) or {}}
    except ValueError as exc:
        return {"path": path, "error": str(exc)}


def _safe(kind, data):
    """Only the fields the checks read: an EncryptionConfiguration's keys never leave this function."""
    if not isinstance(data, dict):
        return {}
    if kind == "encryption-provider-config":
        return {
            "resources": [
                {
                    "resources": list(entry.get("resources") or []),
                    "providers": [next(iter(p), "?") for p in entry.get("providers") or [] if isinstance(p, dict)],
                }
                for entry in data.get("resources") or []
                if isinstance(entry, dict)
            ]
        }
    if kind == "authentication-config":
        return {
            "anonymous": data.get("anonymous"),
            "jwt_issuers": [(j.get("issuer") or {}).get("url") for j in data.get("jwt") or [] if isinstance(j, dict)],
        }
    if kind == "authorization-config":
        return {"authorizers": [a.get("type") for a in data.get("authorizers") or [] if isinstance(a, dict)]}
    if kind == "admission-control-config-file":
        return {"plugins": [p.get("name") for p in data.get("plugins") or [] if isinstance(p, dict)]}
    if kind == "audit-policy-file":
        return {"kind": data.get("kind"), "rules": [r for r in data.get("rules") or [] if isinstance(r, dict)]}
    return {}


def structured(flags):
    out = {}
    for kind in STRUCTURED:
        path = flags.get(kind)
        if not path:
            continue
        loaded = load(path)
        out[kind] = (
            {"path": path, "error": loaded["error"]}
            if "error" in loaded
            else {
                "path": path,
                **_safe(kind, loaded["data"]),
            }
        )
    return out


def states(paths, known=()):
    """``{path: file_state}``, reusing the states control_plane_facts already took."""
    seen = {f["path"]: f for f in known}
    return {p: seen.get(p) or file_state(p, follow_symlinks=True) for p in paths if p}


def cni_files():
    found = []
    for top in CNI_DIRS:
        for path in sorted(glob.glob(f"{top}/**/*", recursive=True)):
            if os.path.isfile(path):
                found.append(path)
    return found


def gather(params):
    """Everything the node checks read, gathered once."""
    kubernetes_dir = params.get("kubernetes_dir") or "/etc/kubernetes"
    control_plane = control_plane_node.gather({"kubernetes_dir": kubernetes_dir})
    kubelet = kubelet_node.gather({})
    components = control_plane["components"]
    api = components.get("kube-apiserver") or {}
    api_flags = {**(api.get("flags") or {}), **(api.get("running_flags") or {})}
    klet = kubelet.get("kubelet") or {}
    config = None
    if klet.get("config_path"):
        # kubelet_facts read the file already: parse its text, do not read it again.
        config = {"path": klet["config_path"], "error": "missing or empty"}
        if klet.get("config_text"):
            try:
                config = {"path": klet["config_path"], "data": parse(klet["config_text"]) or {}}
            except ValueError as exc:
                config = {"path": klet["config_path"], "error": str(exc)}
    return {
        "kubernetes_dir": kubernetes_dir,
        "control_plane": control_plane,
        "kubelet": kubelet,
        "apiserver_files": structured(api_flags) if api else {},
        "kubelet_config": config,
        "cni_files": cni_files() if components else [],
    }
