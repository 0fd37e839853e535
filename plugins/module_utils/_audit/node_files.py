# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the file checks of sections 1.1 and 4.1 (modes and owners), over gathered facts.

Where kubeadm has a static-pod manifest, the hard-way layout has a systemd
unit and its drop-ins: those stand in for the "pod specification file"
(1.1.1-1.1.8) and each one is evidence. Kubeconfigs and the data directory
are the ones the running flags name, not fixed paths.
"""

from __future__ import annotations

import os

from .effective import Flags
from .node_facts import states

CREDENTIALS = "/run/credentials/"  # systemd's private copies (LoadCredential=): their sources are checked


def mode_ok(have, want):
    """No permission bit beyond ``want`` (a stricter mode is compliant)."""
    return int(have, 8) & ~int(want, 8) == 0


def short(items, keep=4):
    """At most ``keep`` evidence lines, the rest counted."""
    items = list(items)
    return items if len(items) <= keep else [*items[:keep], f"... and {len(items) - keep} more"]


def _mode_check(found, want):
    if not found:
        return None
    bad = [f"{s['path']} {s['mode']}" for s in found if not mode_ok(s["mode"], want)]
    good = [f"{s['path']} {s['mode']}" for s in found if mode_ok(s["mode"], want)]
    if bad:
        return "fail", short([*(f"{b} (wants {want} or stricter)" for b in bad), *good], 8)
    return "pass", short(good)


def _owner_check(found, owner="root", group="root"):
    if not found:
        return None
    bad = [f"{s['path']} {s['owner']}:{s['group']}" for s in found if (s["owner"], s["group"]) != (owner, group)]
    good = [f"{s['path']} {s['owner']}:{s['group']}" for s in found if (s["owner"], s["group"]) == (owner, group)]
    if bad:
        return "fail", short([*(f"{b} (wants {owner}:{group})" for b in bad), *good], 8)
    return "pass", short(good)


def _existing(table):
    return [s for s in table.values() if s and s.get("exists")]


def spec_files(component, known):
    """The manifest, or the unit file and its drop-ins, of a control-plane component."""
    if not component:
        return {}
    if component.get("layout") == "static-pod":
        return states([component["source"]], known)
    if component.get("layout") == "systemd":
        return states([component.get("unit_file"), *(component.get("dropins") or [])], known)
    return {}


def pair(mode_id, owner_id, table, want_mode, missing, owner=("root", "root")):
    """Results for a mode check and an owner check over the same files."""
    found = _existing(table)
    out = {}
    for check_id, outcome in ((mode_id, _mode_check(found, want_mode)), (owner_id, _owner_check(found, *owner))):
        if check_id:
            out[check_id] = outcome or ("not_applicable", [missing])
    return out


def _pki_paths(facts):
    """The control-plane PKI: the kubernetes_dir/pki tree and every certificate or key a flag names."""
    pki = os.path.join(facts["kubernetes_dir"], "pki")
    paths = [pki] if os.path.isdir(pki) else []
    for root, dirs, files in os.walk(pki):
        paths += [os.path.join(root, d) for d in sorted(dirs)] + [os.path.join(root, f) for f in sorted(files)]
    for component in facts["control_plane"]["components"].values():
        flags = {**(component.get("flags") or {}), **(component.get("running_flags") or {})}
        for name, value in sorted(flags.items()):
            named = any(part in name for part in ("cert", "key", "ca-file", "cafile", "trusted-ca"))
            if named and value.startswith("/") and not value.startswith(CREDENTIALS) and value not in paths:
                paths.append(value)
    return paths


def control_plane(facts):
    """1.1.1-1.1.21 where control-plane components run."""
    cp = facts["control_plane"]
    components, known = cp["components"], cp["files"]
    out = {}
    for mode_id, owner_id, name in (
        ("1.1.1", "1.1.2", "kube-apiserver"),
        ("1.1.3", "1.1.4", "kube-controller-manager"),
        ("1.1.5", "1.1.6", "kube-scheduler"),
        ("1.1.7", "1.1.8", "etcd"),
    ):
        if name in components:
            missing = f"{name} runs without a manifest or systemd unit (layout {components[name].get('layout')})"
            out.update(pair(mode_id, owner_id, spec_files(components[name], known), "0600", missing))
            if components[name].get("layout") not in ("static-pod", "systemd"):
                out[mode_id] = out[owner_id] = ("warn", [missing])
    cni = states(facts["cni_files"])
    out.update(pair("1.1.9", "1.1.10", cni, "0600", "no CNI files in /etc/cni/net.d or /var/lib/cni/networks"))
    if "etcd" in components:
        data_dir = Flags("etcd", components["etcd"]).value("data-dir") or "/var/lib/etcd"
        table = states([data_dir], known)
        out.update(pair("1.1.11", None, table, "0700", f"{data_dir} does not exist"))
        out.update(pair(None, "1.1.12", table, "0700", f"{data_dir} does not exist", owner=("etcd", "etcd")))
    kdir = facts["kubernetes_dir"]
    admin = states([os.path.join(kdir, "admin.conf"), os.path.join(kdir, "super-admin.conf")], known)
    out.update(pair("1.1.13", "1.1.14", admin, "0600", f"no admin.conf or super-admin.conf in {kdir}"))
    for mode_id, owner_id, name, default in (
        ("1.1.15", "1.1.16", "kube-scheduler", "scheduler.conf"),
        ("1.1.17", "1.1.18", "kube-controller-manager", "controller-manager.conf"),
    ):
        if name in components:
            path = Flags(name, components[name]).value("kubeconfig") or os.path.join(kdir, default)
            out.update(pair(mode_id, owner_id, states([path], known), "0600", f"{path} does not exist"))
    pki = states(_pki_paths(facts), known)
    found = _existing(pki)
    out["1.1.19"] = _owner_check(found) or ("not_applicable", [f"no PKI files in {kdir}/pki"])
    certs = {p: s for p, s in pki.items() if not s.get("dir") and p.endswith((".crt", ".pem", ".pub"))}
    keys = {p: s for p, s in pki.items() if not s.get("dir") and p.endswith(".key")}
    out.update(pair("1.1.20", None, certs, "0644", "no certificates found"))
    out.update(pair("1.1.21", None, keys, "0600", "no keys found"))
    return out


def kubelet(facts, settings):
    """4.1.1-4.1.10 (4.1.3/4.1.4 where kube-proxy runs)."""
    gathered = facts["kubelet"]
    klet = gathered.get("kubelet") or {}
    out = {}
    unit = klet.get("unit") or {}
    service = states([unit.get("fragment"), *(unit.get("dropins") or [])])
    out.update(pair("4.1.1", "4.1.2", service, "0600", "the kubelet runs without a systemd unit"))
    proxy = gathered.get("kube_proxy")
    if proxy:
        flags = {**(proxy.get("flags") or {}), **(proxy.get("running_flags") or {})}
        path = flags.get("kubeconfig")
        if not path and flags.get("config"):
            path = _kubeconfig_of_proxy_config(flags["config"])
        table = states([path]) if path else {}
        out.update(pair("4.1.3", "4.1.4", table, "0600", "kube-proxy names no kubeconfig file"))
    kubeconfig = klet.get("kubeconfig")
    out.update(pair("4.1.5", "4.1.6", states([kubeconfig]) if kubeconfig else {}, "0600", "no --kubeconfig"))
    ca, _unused = settings.get("client-ca-file")
    out.update(pair("4.1.7", "4.1.8", states([ca]) if ca else {}, "0644", "no client CA file configured"))
    path = klet.get("config_path")
    out.update(pair("4.1.9", "4.1.10", states([path]) if path else {}, "0600", "the kubelet uses no config file"))
    return out


def _kubeconfig_of_proxy_config(path):
    from .node_facts import load

    loaded = load(path)
    connection = (loaded.get("data") or {}).get("clientConnection") or {}
    return connection.get("kubeconfig") if isinstance(connection, dict) else None
