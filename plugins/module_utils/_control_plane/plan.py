# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what ``apply`` would write for one component (its flags, unit
drop-in or manifest, the apiserver's config files), and whom etcd runs as."""

from __future__ import annotations

import hashlib
import json
import math
import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired, manifest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags as flaglib
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.gather import (
    DROPIN_HEADER,
    ETCD_CREDENTIAL_FLAGS,
    ETCD_USER,
    _load_yaml,
    unit_state,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import read


def plan(component, params):
    """What ``apply`` would write: ``(conf, new_flags, files)`` with ``files``
    ``{path: (content, mode)}``, after every input check."""
    conf = params["facts"]["components"][component]
    binary = conf["binary"]
    desired.validate(component, params, binary)
    current = dict(conf["flags"])
    new_flags = desired.desired_flags(component, current, params, binary)
    service_lines, sources = [], {}
    if component == "etcd" and conf["layout"] == "systemd" and params.get("etcd_user"):
        new_flags, sources, service_lines = etcd_credentials(new_flags, params["etcd_user"])
    if component == "kube-apiserver" and conf["layout"] == "systemd" and stop_seconds(new_flags) > SYSTEMD_STOP_SECONDS:
        service_lines = [f"TimeoutStopSec={stop_seconds(new_flags)}"]
    argv = flaglib.render_argv(conf["argv"][0], new_flags)
    files = {}
    if conf["layout"] == "systemd":
        files[conf["source"]] = (flaglib.render_dropin(argv, DROPIN_HEADER, service_lines), 0o600)
    elif conf["layout"] == "static-pod":
        import yaml  # present: gather parsed the manifest with it

        pod = _load_yaml(read(conf["source"]) or "", conf["source"])
        host_dirs = {}
        if component == "kube-apiserver":
            host_dirs = {
                "kubeguard-config": (params["config_dir"], True),
                "kubeguard-audit-log": (os.path.dirname(params["audit_log_path"]), False),
            }
        config_hash = ""
        if component == "kube-apiserver":
            config_hash = _config_hash(new_flags, params)
        new_pod = manifest.edit(pod, component, argv, host_dirs, config_hash)
        if component == "kube-apiserver":
            new_pod = manifest.with_grace(new_pod, stop_seconds(new_flags))
        manifest.validate_pod(new_pod, conf["source"])
        text = yaml.safe_dump(new_pod, default_flow_style=False, sort_keys=False)
        files[conf["source"]] = (text if new_pod != pod else read(conf["source"]), 0o600)
    else:
        raise KubeguardError("", f"{component} runs but neither a unit nor a manifest configures it")
    if component == "kube-apiserver":
        # Not secret, and readable like the rest of /etc/kubernetes outside keys and kubeconfigs.
        files[new_flags["audit-policy-file"]] = (params["audit_policy"], 0o644)
        files[new_flags["admission-control-config-file"]] = (desired.admission_config(params), 0o644)
        # Contributed files can hold tokens and keys: root-only, like kubeadm's keys.
        files.update({path: (text, 0o600) for path, text in (params.get("contributed_files") or {}).items()})
    return conf, new_flags, files, sources


# After its shutdown delay and watch drain an apiserver still finishes in-flight requests and exits.
STOP_MARGIN_SECONDS = 10
SYSTEMD_STOP_SECONDS = 90  # systemd's DefaultTimeoutStopSec


def stop_seconds(flags):
    """How long a kube-apiserver running with ``flags`` may take to stop on SIGTERM:
    its --shutdown-delay-duration, its watch drain and a margin. Whatever kills it
    (the kubelet's terminationGracePeriodSeconds, systemd's TimeoutStopSec) must wait that long."""
    delay = desired.seconds(flags.get("shutdown-delay-duration") or "0s")
    watches = desired.seconds(flags.get("shutdown-watch-termination-grace-period") or "0s")
    return math.ceil(delay + watches + STOP_MARGIN_SECONDS)


def credentials_dir(component):
    return f"/run/credentials/{component}.service"


def etcd_credentials(flags, user):
    """etcd as ``user`` with its keys still root:root 0600 (CIS 1.1.21): systemd, as
    root, copies each TLS file into the service's private credentials directory
    (``LoadCredential=``), and the flags point there. Returns ``(flags, sources,
    service_lines)`` with ``sources`` mapping each credential path back to its file."""
    flags, sources = dict(flags), {}
    lines = [f"User={user}", f"Group={user}"]
    for name in ETCD_CREDENTIAL_FLAGS:
        source = flags.get(name)
        if not source:
            continue
        if any(c.isspace() for c in source) or ":" in source:
            raise KubeguardError(
                desired.var("pki_dir"), f"--{name}={source}: systemd cannot load a path with spaces or colons"
            )
        flags[name] = f"{credentials_dir('etcd')}/{name}"
        sources[flags[name]] = source
        lines.append(f"LoadCredential={name}:{source}")
    return flags, sources, lines


def etcd_user(conf, params):
    """``(user or None, warning)``: whom etcd runs as. A non-root etcd needs systemd
    to hand it its keys; where that cannot work (no systemd credentials, or a
    credentials mount that does not reach services, as in a container whose ``/``
    is not a shared mount), etcd stays root and the warning says why."""
    if not params.get("etcd_non_root") or conf["layout"] != "systemd":
        return None, ""
    if any(v.startswith(credentials_dir("etcd") + "/") for v in conf["running_flags"].values()):
        return ETCD_USER, ""  # it already runs that way
    # A throwaway service of its own shows whether this systemd can do it.
    rc, out, err = system.run(
        [
            "systemd-run",
            "--wait",
            "--quiet",
            "--collect",
            "--property=DynamicUser=yes",
            "--property=SetCredential=probe:ok",
            "--",
            "/bin/sh",
            "-c",
            'test -r "$CREDENTIALS_DIRECTORY/probe"',
        ]
    )
    if rc == 0:
        return ETCD_USER, ""
    said = (err or out).strip()
    return None, (
        f"etcd keeps running as root ({desired.var('etcd_non_root')}): systemd could not hand a credential "
        f"to a non-root service (systemd-run probe exited {rc}{': ' + said if said else ''}); "
        "in a container, / must be a shared mount (mount --make-rshared /)"
    )


def _config_hash(flags, params):
    """The hash of every config-dir file the apiserver's flags point to, whoever wrote it,
    so a change of any of them (and only that) recreates a kubeadm static pod."""
    contributed = params.get("contributed_files") or {}
    text = params["audit_policy"] + desired.admission_config(params)
    for path in sorted({v for v in flags.values() if desired.in_config_dir(v, params)}):
        if path in (flags["audit-policy-file"], flags["admission-control-config-file"]):
            continue
        text += contributed[path] if path in contributed else read(path) or ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def probe_anonymous(params):
    """kubeadm's kube-apiserver pod is probed by the kubelet with anonymous HTTPS GETs
    (/livez, /readyz): under --anonymous-auth=false they get 401 and the kubelet kills
    the apiserver minutes later. Unless another role already owns authentication
    (--authentication-config), anonymous requests stay allowed on exactly the probed
    paths through a structured config file, the same way api_access contributes one."""
    conf = params["facts"]["components"].get("kube-apiserver")
    contributed = dict(params.get("contributed_flags") or {})
    if params["component"] != "kube-apiserver" or conf.get("layout") != "static-pod":
        return params
    paths = manifest.anonymous_probe_paths(_load_yaml(read(conf["source"]) or "", conf["source"]), "kube-apiserver")
    if not paths:
        return params
    owned = contributed.get("authentication-config")
    if owned and owned in (params.get("contributed_files") or {}):
        return _admit_probes(params, owned, paths)
    if conf["flags"].get("authentication-config") or "authentication-config" in contributed:
        return params
    path = os.path.join(params["config_dir"], "authentication.yaml")
    contributed.update({"authentication-config": path, "anonymous-auth": None})
    files = {**(params.get("contributed_files") or {}), path: desired.anonymous_health_authn(paths)}
    return {**params, "contributed_flags": contributed, "contributed_files": files}


def _admit_probes(params, path, paths):
    """Another role's authentication config on a kubeadm node: its anonymous section
    must still admit the kubelet's probes, or the kubelet kills the apiserver."""
    text = params["contributed_files"][path]
    doc = _load_yaml(text, path) or {}
    anonymous = doc.get("anonymous") or {}
    if anonymous.get("enabled") and not anonymous.get("conditions"):
        return params  # anonymous is admitted everywhere already
    have = {c.get("path") for c in anonymous.get("conditions") or []} if anonymous.get("enabled") else set()
    if set(paths) <= have:
        return params
    doc["anonymous"] = {"enabled": True, "conditions": [{"path": p} for p in sorted(have | set(paths))]}
    warning = (
        f"kube-apiserver runs as a kubeadm static pod whose kubelet probes {', '.join(paths)} anonymously: "
        f"{path} admits anonymous requests on those paths too (all else stays 401)"
    )
    return {
        **params,
        "contributed_files": {**params["contributed_files"], path: json.dumps(doc, indent=2, sort_keys=True) + "\n"},
        "probe_warnings": [warning],
    }


def _flags_of_files(component, conf, files):
    """The flags the restored files configure (what the rolled-back process runs with)."""
    content = (files.get(conf["source"]) or (None,))[0]
    if conf["layout"] == "static-pod" and content:
        return manifest.flags_of(_load_yaml(content, conf["source"]), component)
    if conf["layout"] == "systemd":
        unit = unit_state(component) or {}
        sources = [unit.get("FragmentPath", conf["unit_file"]), *unit.get("DropInPaths", "").split()]
        return flaglib.parse_argv(flaglib.exec_start("\n".join(read(p) or "" for p in sources)))[1]
    return conf["flags"]
