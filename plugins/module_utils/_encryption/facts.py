# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what one control-plane node's kube-apiserver is configured with.

Reads the apiserver's configured flags (systemd unit or static-pod manifest,
through ``_control_plane.node``; the running process when neither exists),
and the EncryptionConfiguration its ``--encryption-provider-config`` names.
Key bytes are returned only with ``include_secrets`` (adoption), for a task
that is ``no_log``; otherwise each key is a name and a fingerprint.
"""

from __future__ import annotations

from .._control_plane import flags as flaglib
from .._control_plane import node
from .._errors import KubeguardError
from . import config

APISERVER = "kube-apiserver"
ETCD_FLAGS = ("etcd-servers", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "etcd-prefix")


def apiserver_flags(kubernetes_dir):
    conf = node.configured(APISERVER, kubernetes_dir)
    if conf is not None:
        return flaglib.parse_argv(conf["argv"])[1]
    running = node.processes().get(APISERVER)
    if running is None:
        raise KubeguardError(
            "encryption_at_rest_control_plane_group", "no kube-apiserver is configured or running here"
        )
    return flaglib.parse_argv(running["argv"])[1]


def read_config(path, include_secrets=False):
    """The public view of the config at ``path`` (plus its keys with ``include_secrets``)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        raise KubeguardError(
            "encryption_at_rest_adopt", f"the apiserver names {path} as its encryption config, but it is missing"
        ) from None
    parsed = config.parse(text, path)
    out = config.public_view(parsed)
    out.update(present=True, path=path)
    if include_secrets:
        out["secrets"] = {s["name"]: s["secret"] for s in parsed["slots"] + parsed["other_keys"] if s.get("secret")}
    return out


def gather(params, check_mode=False, flags=None):
    flags = flags if flags is not None else apiserver_flags(params["kubernetes_dir"])
    path = flags.get("encryption-provider-config")
    facts = (
        read_config(path, params.get("include_secrets"))
        if path
        else {"present": False, "path": "", "resources": [], "slots": [], "other_keys": [], "unsupported": []}
    )
    facts["automatic_reload"] = flags.get("encryption-provider-config-automatic-reload", "false") == "true"
    facts["etcd"] = {name: flags.get(name, "") for name in ETCD_FLAGS}
    return {"changed": False, "encryption": facts}
