# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the flag and configuration checks of sections 1.2-1.4, 2 and 3.

Each check is a predicate over one command line (:class:`effective.View`);
it runs over the running process's and, where it differs, the configured
one, and fails if either fails. Structured files count as the apiserver
reads them: with ``--authorization-config`` its authorizers decide 1.2.6-1.2.8
(``--authorization-mode`` cannot be set beside it), with
``--authentication-config`` its ``anonymous`` block decides 1.2.1.
"""

from __future__ import annotations

from .effective import Flags, list_value

HEALTH_PATHS = {"/healthz", "/livez", "/readyz"}
# kubeadm's exception to 1.2.1: token discovery (kubeadm join) is an anonymous GET of
# cluster-info, and the kubelet probes the apiserver pod anonymously (api_access role).
KUBEADM_ANONYMOUS_PATHS = HEALTH_PATHS | {"/api/v1/namespaces/kube-public/configmaps/cluster-info"}
# CIS 1.2.29 (and the TLS 1.3 suites Go always uses).
STRONG_CIPHERS = frozenset(
    [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ]
)
GOOD_PROVIDERS = ("aescbc", "kms", "secretbox")  # CIS 1.2.28


def over(flags, predicate):
    """(outcome, evidence) of ``predicate(view) -> (True | False | None, [lines])`` over every view."""
    outcome, evidence = "pass", []
    for view in flags.views:
        ok, lines = predicate(view)
        evidence += [f"{line} ({view.where})" for line in lines]
        if ok is False:
            outcome = "fail"
        elif ok is None and outcome == "pass":
            outcome = "warn"
    return outcome, evidence


def equals(flag, want):
    return lambda v: (v.get(flag) == want, [v.show(flag)])


def is_set(*names):
    return lambda v: (all(v.get(n) for n in names), [v.show(n) for n in names])


def not_true(flag):
    return lambda v: (v.get(flag) != "true", [v.show(flag)])


def at_least(flag, low):
    def check(v):
        try:
            return int(v.get(flag)) >= low, [v.show(flag) + f" (wants >= {low})"]
        except (TypeError, ValueError):
            return False, [v.show(flag) + f" (wants >= {low})"]

    return check


def plugin_on(name):
    def check(v):
        on = name in list_value(v.get("enable-admission-plugins"))
        off = name in list_value(v.get("disable-admission-plugins"))
        return on and not off, [v.show("enable-admission-plugins")]

    return check


def not_disabled(name):
    return lambda v: (
        name not in list_value(v.get("disable-admission-plugins")),
        [v.show("disable-admission-plugins")],
    )


def gate_not_false(gate):
    def check(v):
        items = dict(i.partition("=")[::2] for i in list_value(v.get("feature-gates")))
        return items.get(gate, "").lower() != "false", [v.show("feature-gates")]

    return check


def authorizers(v, files):
    """(the authorizer types, evidence) as the apiserver builds its chain."""
    if v.has("authorization-config"):
        conf = files.get("authorization-config") or {}
        if conf.get("error"):
            return None, [f"--authorization-config={v.get('authorization-config')}: {conf['error']}"]
        types = conf.get("authorizers") or []
        return types, [f"--authorization-config={v.get('authorization-config')}: authorizers {', '.join(types)}"]
    return list_value(v.get("authorization-mode")), [v.show("authorization-mode")]


def authz(files, test):
    def check(v):
        types, lines = authorizers(v, files)
        return (None if types is None else test(types)), lines

    return check


def anonymous(files, layout=None):
    """1.2.1. With --authentication-config: off passes; on a kubeadm apiserver (a static pod),
    anonymous limited to kubeadm's discovery and health paths passes, naming the exception."""

    def check(v):
        if v.has("authentication-config"):
            path = v.get("authentication-config")
            conf = files.get("authentication-config") or {}
            if conf.get("error"):
                return None, [f"--authentication-config={path}: {conf['error']}"]
            anon = conf.get("anonymous")
            if isinstance(anon, dict):
                if not anon.get("enabled"):
                    return True, [f"--authentication-config={path}: anonymous.enabled: false"]
                paths = [c.get("path") for c in anon.get("conditions") or [] if isinstance(c, dict)]
                if paths and layout == "static-pod" and set(paths) <= KUBEADM_ANONYMOUS_PATHS:
                    return True, [
                        f"--authentication-config={path}: anonymous only for {', '.join(paths)}",
                        "kubeadm exception (api_access_anonymous_kubeadm_discovery_enabled): kubeadm join's token "
                        "discovery and the kubelet's probes of the apiserver pod; every other path answers 401",
                    ]
                if paths and set(paths) <= HEALTH_PATHS:
                    # Health probes only: the user's choice (api_access_anonymous: health), see docs/audit.md.
                    return None, [f"--authentication-config={path}: anonymous only for {', '.join(paths)}"]
                return False, [f"--authentication-config={path}: anonymous.enabled: true, conditions {paths or 'none'}"]
        return v.get("anonymous-auth") == "false", [v.show("anonymous-auth")]

    return check


def encryption(files):
    def check(v):
        path = v.get("encryption-provider-config")
        if not path:
            return False, [v.show("encryption-provider-config")]
        conf = files.get("encryption-provider-config") or {}
        if conf.get("error"):
            return None, [f"--encryption-provider-config={path}: {conf['error']}"]
        lines, ok = [], False
        for entry in conf.get("resources") or []:
            first = (entry.get("providers") or ["identity"])[0]
            lines.append(f"{path}: {','.join(entry['resources'])} -> {' > '.join(entry['providers'])}")
            if {"secrets", "*.", "*.*"} & set(entry["resources"]):
                ok = first in GOOD_PROVIDERS
        return ok, lines or [f"{path}: no resources"]

    return check


def ciphers(v):
    listed = list_value(v.get("tls-cipher-suites"))
    weak = [c for c in listed if c not in STRONG_CIPHERS]
    if not listed:
        return False, [v.show("tls-cipher-suites") + " (Go's defaults include CBC suites)"]
    return not weak, [f"--tls-cipher-suites: {len(listed)} suites" + (f", weak: {', '.join(weak)}" if weak else "")]


def _audit_level(rules, group, resource):
    """The level of the first rule an ordinary request for ``group/resource`` matches."""
    for rule in rules:
        if any(rule.get(k) for k in ("users", "userGroups", "verbs", "namespaces", "nonResourceURLs")):
            continue
        scopes = rule.get("resources")
        if not scopes:
            return rule.get("level")
        for scope in scopes:
            if (scope.get("group") or "") == group and (
                not scope.get("resources") or resource in scope["resources"] or "*" in scope["resources"]
            ):
                return rule.get("level")
    return "None"


def audit_policy(files, minimal):
    def check(v):
        path = v.get("audit-policy-file")
        if not path:
            return False, [v.show("audit-policy-file")]
        conf = files.get("audit-policy-file") or {}
        if conf.get("error"):
            return False, [f"--audit-policy-file={path}: {conf['error']}"]
        rules = conf.get("rules") or []
        if minimal:
            return bool(rules) and conf.get("kind") == "Policy", [f"{path}: {conf.get('kind')}, {len(rules)} rules"]
        levels = {
            "secrets": _audit_level(rules, "", "secrets"),
            "configmaps": _audit_level(rules, "", "configmaps"),
            "tokenreviews": _audit_level(rules, "authentication.k8s.io", "tokenreviews"),
            "pods/exec": _audit_level(rules, "", "pods/exec"),
            "pods": _audit_level(rules, "", "pods"),
        }
        lines = [f"{path}: " + ", ".join(f"{k} at {lvl}" for k, lvl in levels.items())]
        if any(levels[k] in ("Request", "RequestResponse") for k in ("secrets", "configmaps", "tokenreviews")):
            return False, [*lines, "secrets, configmaps or tokenreviews logged with their bodies"]
        return (None if "None" in levels.values() else True), lines

    return check


def unique_etcd_ca(etcd, api_ca, read):
    def check(v):
        ca = v.get("trusted-ca-file")
        if not ca:
            return False, [v.show("trusted-ca-file")]
        if not api_ca:
            return None, [f"--trusted-ca-file={ca}; no kube-apiserver --client-ca-file here to compare"]
        etcd_ca, cluster_ca = read(ca), read(api_ca)
        if etcd_ca is None or cluster_ca is None:
            return None, [f"cannot read --trusted-ca-file={ca} or --client-ca-file={api_ca} to compare them"]
        same = etcd_ca == cluster_ca
        return not same, [f"--trusted-ca-file={ca} is {'the same as' if same else 'not'} --client-ca-file={api_ca}"]

    return check


def control_plane(facts, read):
    """{check id: (outcome, evidence)} for the components running on this node."""
    components = facts["control_plane"]["components"]
    files = facts["apiserver_files"]
    out = {}
    if "kube-apiserver" in components:
        api = Flags("kube-apiserver", components["kube-apiserver"])
        table = {
            "1.2.1": anonymous(files, components["kube-apiserver"].get("layout")),
            "1.2.2": lambda v: (not v.get("token-auth-file"), [v.show("token-auth-file")]),
            "1.2.3": plugin_on("DenyServiceExternalIPs"),
            "1.2.4": is_set("kubelet-client-certificate", "kubelet-client-key"),
            "1.2.5": is_set("kubelet-certificate-authority"),
            "1.2.6": authz(files, lambda t: "AlwaysAllow" not in t),
            "1.2.7": authz(files, lambda t: "Node" in t),
            "1.2.8": authz(files, lambda t: "RBAC" in t),
            "1.2.9": plugin_on("EventRateLimit"),
            "1.2.10": lambda v: (
                "AlwaysAdmit" not in list_value(v.get("enable-admission-plugins")),
                [v.show("enable-admission-plugins")],
            ),
            "1.2.11": plugin_on("AlwaysPullImages"),
            "1.2.12": not_disabled("ServiceAccount"),
            "1.2.13": not_disabled("NamespaceLifecycle"),
            "1.2.14": plugin_on("NodeRestriction"),
            "1.2.15": equals("profiling", "false"),
            "1.2.16": is_set("audit-log-path"),
            "1.2.17": at_least("audit-log-maxage", 30),
            "1.2.18": at_least("audit-log-maxbackup", 10),
            "1.2.19": at_least("audit-log-maxsize", 100),
            "1.2.20": lambda v: (True if v.has("request-timeout") else None, [v.show("request-timeout")]),
            "1.2.21": equals("service-account-lookup", "true"),
            "1.2.22": is_set("service-account-key-file"),
            "1.2.23": is_set("etcd-certfile", "etcd-keyfile"),
            "1.2.24": is_set("tls-cert-file", "tls-private-key-file"),
            "1.2.25": is_set("client-ca-file"),
            "1.2.26": is_set("etcd-cafile"),
            "1.2.27": is_set("encryption-provider-config"),
            "1.2.28": encryption(files),
            "1.2.29": ciphers,
            "1.2.30": equals("service-account-extend-token-expiration", "false"),
            "3.1.1": lambda v: (
                None,
                [v.show("client-ca-file") + ": client certificates authenticate whoever holds one"],
            ),
            "3.1.2": lambda v: (None, ["service account tokens authenticate; which users hold one is not on the node"]),
            "3.1.3": lambda v: (
                None if v.get("enable-bootstrap-token-auth") == "true" else True,
                [v.show("enable-bootstrap-token-auth")],
            ),
            "3.2.1": audit_policy(files, minimal=True),
            "3.2.2": audit_policy(files, minimal=False),
        }
        out.update({check_id: over(api, predicate) for check_id, predicate in table.items()})
    if "kube-controller-manager" in components:
        kcm = Flags("kube-controller-manager", components["kube-controller-manager"])
        table = {
            "1.3.1": lambda v: (
                True if v.has("terminated-pod-gc-threshold") else None,
                [v.show("terminated-pod-gc-threshold")],
            ),
            "1.3.2": equals("profiling", "false"),
            "1.3.3": equals("use-service-account-credentials", "true"),
            "1.3.4": is_set("service-account-private-key-file"),
            "1.3.5": is_set("root-ca-file"),
            "1.3.6": gate_not_false("RotateKubeletServerCertificate"),
            "1.3.7": equals("bind-address", "127.0.0.1"),
        }
        out.update({check_id: over(kcm, predicate) for check_id, predicate in table.items()})
    if "kube-scheduler" in components:
        sched = Flags("kube-scheduler", components["kube-scheduler"])
        out["1.4.1"] = over(sched, equals("profiling", "false"))
        out["1.4.2"] = over(sched, equals("bind-address", "127.0.0.1"))
    if "etcd" in components:
        etcd = Flags("etcd", components["etcd"])
        api_ca = (
            Flags("kube-apiserver", components["kube-apiserver"]).value("client-ca-file")
            if ("kube-apiserver" in components)
            else None
        )
        table = {
            "2.1": is_set("cert-file", "key-file"),
            "2.2": equals("client-cert-auth", "true"),
            "2.3": not_true("auto-tls"),
            "2.4": is_set("peer-cert-file", "peer-key-file"),
            "2.5": equals("peer-client-cert-auth", "true"),
            "2.6": not_true("peer-auto-tls"),
            "2.7": unique_etcd_ca(etcd, api_ca, read),
        }
        out.update({check_id: over(etcd, predicate) for check_id, predicate in table.items()})
        urls = [u for v in etcd.views for u in list_value(v.get("listen-client-urls")) if u.startswith("http://")]
        if urls:  # what plain HTTP means for 2.1/2.2: evidence an auditor looks for
            out["2.1"][1].append(f"clients served over plain HTTP: {', '.join(sorted(set(urls)))}")
    return out
