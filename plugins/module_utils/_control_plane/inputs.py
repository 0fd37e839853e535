# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: every control-plane input refused before anything is written or
restarted, each error naming the role variable (``control_plane_<option>``).

What a component would refuse at start-up (an insecure or unknown cipher, an
``http://`` etcd server, an unknown flag or admission plugin, a bad duration)
costs a restart, a health timeout and a rollback when it is found there; here it
costs nothing. Pure functions; ``binary`` is the component's entry of
``control_plane_facts`` (its ``--help`` read on the node).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import ciphers, duration
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.desired import (
    ALWAYS_ALLOW_FORCE,
    CONCERNS,
    TLS_VERSIONS,
    in_config_dir,
    var,
)
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError


def validate(component, params, binary):
    """Refuse bad input before anything is written. ``binary`` is the
    component's entry of ``control_plane_facts``: ``help_flags``,
    ``admission_plugins``, ``cipher_suites``."""
    listed = binary.get("cipher_suites") or {}
    version = binary.get("version")
    who = f"the installed {component} ({version})" if version else f"the installed {component}"
    ciphers.check(
        var("tls_cipher_suites"),
        params["tls_cipher_suites"],
        listed.get("preferred") or (),
        listed.get("insecure") or (),
        who,
    )
    if params["tls_min_version"] not in TLS_VERSIONS:
        raise KubeguardError(var("tls_min_version"), f"{params['tls_min_version']!r} is not one of {TLS_VERSIONS}")
    if component == "kube-apiserver":
        _validate_apiserver(params, binary)
    extra = params["extra_flags"] or {}
    unknown = sorted(set(extra) - set(binary.get("help_flags", [])))
    if unknown and binary.get("help_flags"):
        raise KubeguardError(
            var(f"{CONCERNS[component]}_extra_flags"), f"{', '.join(unknown)} unknown to the installed {component}"
        )
    _validate_contributions(component, params, binary)


def _validate_contributions(component, params, binary):
    """What the contributions of this run (merged by the role) add to kube-apiserver:
    flags the binary knows, files under the config dir. Who contributed them is not
    this module's business."""
    flags = params.get("contributed_flags") or {}
    files = params.get("contributed_files") or {}
    if (flags or files) and component != "kube-apiserver":
        raise KubeguardError(
            var("apiserver_contributed_flags"), f"only kube-apiserver takes contributions, not {component}"
        )
    unknown = sorted(set(flags) - set(binary.get("help_flags", [])))
    if unknown and binary.get("help_flags"):
        raise KubeguardError(
            var("apiserver_contributed_flags"), f"{', '.join(unknown)} unknown to the installed {component}"
        )
    for path in sorted(files):
        if not in_config_dir(path, params):
            raise KubeguardError(
                var("apiserver_contributed_files"),
                f"{path} is outside {params['config_dir']}, the only directory mounted into a kubeadm apiserver pod",
            )


def _validate_apiserver(params, binary):
    modes = params["authorization_modes"]
    if "AlwaysAllow" in modes and not params["allow_always_allow"]:
        raise KubeguardError(
            var("authorization_modes"),
            f"AlwaysAllow lets every request through (CIS 1.2.6); set {ALWAYS_ALLOW_FORCE}: true to force it",
        )
    known = {"AlwaysAllow", "AlwaysDeny", "ABAC", "Webhook", "RBAC", "Node"}
    if not modes or set(modes) - known:
        raise KubeguardError(var("authorization_modes"), f"{modes} must be a non-empty subset of {sorted(known)}")
    plugins = set(binary.get("admission_plugins", []))
    unknown = sorted(set(params["admission_plugins"]) - plugins) if plugins else []
    if unknown:
        raise KubeguardError(var("admission_plugins"), f"{', '.join(unknown)} unknown to the installed kube-apiserver")
    if "AlwaysAdmit" in params["admission_plugins"]:
        raise KubeguardError(var("admission_plugins"), "AlwaysAdmit admits every request (CIS 1.2.10)")
    for name in ("audit_log_maxage", "audit_log_maxbackup", "audit_log_maxsize"):
        if params[name] < 0:
            raise KubeguardError(var(name), f"{params[name]} must not be negative")
    etcd_servers(params["etcd_servers"])
    try:
        cidr = ipaddress.ip_network(params["service_cidr"])
    except ValueError as exc:
        raise KubeguardError(var("service_cidr"), str(exc)) from None
    for name in ("request_timeout", "shutdown_watch_termination_grace_period", "shutdown_delay_duration"):
        duration.seconds(var(name), params[name], example="60s or 1m30s")
    return cidr


def etcd_servers(urls, members=()):
    """Refuse etcd client URLs the apiserver would fail on after its restart: not
    https (etcd serves client TLS only, CIS 1.2.23-1.2.26), no host or port,
    a member listed twice, or one of ``members`` (inventory IPs) left out."""
    option = var("etcd_servers")
    if not isinstance(urls, (list, tuple)) or not urls:
        raise KubeguardError(option, f"{urls!r} must be a non-empty list of https:// etcd client URLs")
    seen = {}
    for url in urls:
        match = re.fullmatch(
            r"([a-zA-Z][a-zA-Z0-9+.-]*)://(\[[0-9A-Fa-f:.]+\]|[^/:\[\]\s]+)(?::(\d{1,5}))?/?", str(url)
        )
        if not match:
            raise KubeguardError(option, f"{url!r} is not a URL like https://10.0.0.1:2379")
        scheme, host, port = match.group(1).lower(), match.group(2).strip("[]").lower(), match.group(3)
        if scheme != "https":
            raise KubeguardError(option, f"{url}: {scheme}:// is refused; etcd serves clients on https:// only")
        if not port or not 1 <= int(port) <= 65535:
            raise KubeguardError(option, f"{url}: needs a port from 1 to 65535 (2379 is etcd's)")
        with contextlib.suppress(ValueError):
            host = str(ipaddress.ip_address(host))
        if (host, port) in seen:
            raise KubeguardError(option, f"{url} and {seen[(host, port)]} name the same member")
        seen[(host, port)] = url
    hosts = {host for host, _unused in seen}
    missing = [m for m in members if str(m).strip("[]").lower() not in hosts]
    if missing:
        raise KubeguardError(option, f"leaves out the inventory etcd member(s) {', '.join(missing)}")
    return list(urls)
