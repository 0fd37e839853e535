# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the hardened flags of each control-plane component (CIS
Kubernetes Benchmark v1.12) and the validation of every input against what
the installed binary supports. Pure functions, no I/O; errors name the role
variable (``control_plane_<option>``) the operator has to fix."""

from __future__ import annotations

import ipaddress
import json
import posixpath
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import duration

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# Component -> the concern name used in role variables and tags.
CONCERNS = {
    "etcd": "etcd",
    "kube-apiserver": "apiserver",
    "kube-controller-manager": "controller_manager",
    "kube-scheduler": "scheduler",
}
ALWAYS_ALLOW_FORCE = "control_plane_allow_always_allow_i_know_this_disables_authorization"
TLS_VERSIONS = ("VersionTLS12", "VersionTLS13")
ETCD_TLS_VERSIONS = {"VersionTLS12": "TLS1.2", "VersionTLS13": "TLS1.3"}
# Flags whose very presence breaks a CIS check: removed wherever they are set.
FORBIDDEN = {
    "etcd": ("auto-tls", "peer-auto-tls"),  # CIS 2.3, 2.6
    "kube-apiserver": ("token-auth-file", "insecure-port", "insecure-bind-address"),  # CIS 1.2.2
    "kube-controller-manager": (),
    "kube-scheduler": (),
}
# Flags holding a file the component reads: they must exist before a restart.
FILE_FLAGS = (
    "cert-file",
    "key-file",
    "trusted-ca-file",
    "peer-cert-file",
    "peer-key-file",
    "peer-trusted-ca-file",
    "tls-cert-file",
    "tls-private-key-file",
    "client-ca-file",
    "etcd-certfile",
    "etcd-keyfile",
    "etcd-cafile",
    "kubelet-client-certificate",
    "kubelet-client-key",
    "kubelet-certificate-authority",
    "service-account-key-file",
    "service-account-signing-key-file",
    "service-account-private-key-file",
    "root-ca-file",
    "kubeconfig",
    "authentication-kubeconfig",
    "authorization-kubeconfig",
    "cluster-signing-cert-file",
    "cluster-signing-key-file",
    "audit-policy-file",
    "admission-control-config-file",
    # kube-apiserver's structured configuration files, whichever role contributes them.
    "authentication-config",
    "authorization-config",
    "authorization-policy-file",
    "authentication-token-webhook-config-file",
    "encryption-provider-config",
    "token-auth-file",
)


# Certificate/key/CA flag triples checked before a restart: the pair matches and chains to the CA.
KEY_PAIRS = {
    "etcd": (("cert-file", "key-file", "trusted-ca-file"), ("peer-cert-file", "peer-key-file", "peer-trusted-ca-file")),
    "kube-apiserver": (
        ("tls-cert-file", "tls-private-key-file", "client-ca-file"),
        ("etcd-certfile", "etcd-keyfile", "etcd-cafile"),
        ("kubelet-client-certificate", "kubelet-client-key", "client-ca-file"),
    ),
    "kube-controller-manager": (("cluster-signing-cert-file", "cluster-signing-key-file", "root-ca-file"),),
    "kube-scheduler": (),
}


# The shared layout lives in the contract role (roles/kubeguard), not in this role.
LAYOUT = {
    "kubernetes_dir": "kubeguard_kubernetes_dir",
    "pki_dir": "kubeguard_pki_dir",
    "config_dir": "kubeguard_config_dir",
}


def var(name):
    return LAYOUT.get(name) or f"control_plane_{name}"


def _https(url):
    return re.sub(r"^http://", "https://", url)


def _url_host(host):
    return f"[{host}]" if ":" in host else host


def pki(params, name):
    return posixpath.join(params["pki_dir"], name)


def _port(urls, default):
    """The port of the first URL in a comma-separated list (the operator's ports are kept)."""
    match = re.search(r":(\d+)/?$", (urls or "").split(",")[0])
    return match.group(1) if match else default


def etcd_flags(current, params):
    """etcd: client and peer mutual TLS from the etcd CA (CIS 2.1-2.6)."""
    ip = _url_host(params["node_ip"])
    client = _port(current.get("advertise-client-urls") or current.get("listen-client-urls"), "2379")
    peer = _port(current.get("initial-advertise-peer-urls") or current.get("listen-peer-urls"), "2380")
    metrics = _port(current.get("listen-metrics-urls"), "2381")
    listen = [f"https://127.0.0.1:{client}"] + ([f"https://{ip}:{client}"] if ip != "127.0.0.1" else [])
    flags = {
        # CIS 2.1: serving certificate and key.
        "cert-file": pki(params, "etcd/server.crt"),
        "key-file": pki(params, "etcd/server.key"),
        # CIS 2.2: clients must present a certificate of the etcd CA (CIS 2.7: a CA of its own).
        "client-cert-auth": "true",
        "trusted-ca-file": pki(params, "etcd/ca.crt"),
        # CIS 2.4/2.5: peers on TLS with certificate authentication.
        "peer-cert-file": pki(params, "etcd/peer.crt"),
        "peer-key-file": pki(params, "etcd/peer.key"),
        "peer-client-cert-auth": "true",
        "peer-trusted-ca-file": pki(params, "etcd/ca.crt"),
        # Only the node IP and loopback; metrics on loopback only.
        "listen-client-urls": ",".join(listen),
        "advertise-client-urls": f"https://{ip}:{client}",
        "listen-peer-urls": f"https://{ip}:{peer}",
        "initial-advertise-peer-urls": f"https://{ip}:{peer}",
        "listen-metrics-urls": f"http://127.0.0.1:{metrics}",
        "data-dir": current.get("data-dir", params["etcd_data_dir"]),
        "name": current.get("name", params["node_name"]),
    }
    if current.get("initial-cluster"):
        flags["initial-cluster"] = ",".join(
            f"{m.split('=', 1)[0]}={_https(m.split('=', 1)[1])}" if "=" in m else m
            for m in current["initial-cluster"].split(",")
        )
    if params["tls_cipher_suites"]:
        flags["cipher-suites"] = ",".join(params["tls_cipher_suites"])
    return flags


def apiserver_flags(current, params):
    """kube-apiserver (CIS 1.2.x, 3.2.1)."""
    modes = params["authorization_modes"]
    plugins = list(params["admission_plugins"])
    if params["always_pull_images"] and "AlwaysPullImages" not in plugins:
        plugins.append("AlwaysPullImages")  # CIS 1.2.11
    flags = {
        "anonymous-auth": "false",  # CIS 1.2.1
        "kubelet-client-certificate": pki(params, "apiserver-kubelet-client.crt"),  # CIS 1.2.4
        "kubelet-client-key": pki(params, "apiserver-kubelet-client.key"),
        "kubelet-certificate-authority": pki(params, "ca.crt"),  # CIS 1.2.5
        "authorization-mode": ",".join(modes),  # CIS 1.2.6-1.2.8
        "enable-admission-plugins": ",".join(plugins),  # CIS 1.2.3, 1.2.9, 1.2.14
        "admission-control-config-file": posixpath.join(params["config_dir"], "admission.yaml"),
        "profiling": "false",  # CIS 1.2.15
        "audit-policy-file": posixpath.join(params["config_dir"], "audit-policy.yaml"),  # CIS 3.2.1
        "audit-log-path": params["audit_log_path"],  # CIS 1.2.16
        "audit-log-maxage": str(params["audit_log_maxage"]),  # CIS 1.2.17
        "audit-log-maxbackup": str(params["audit_log_maxbackup"]),  # CIS 1.2.18
        "audit-log-maxsize": str(params["audit_log_maxsize"]),  # CIS 1.2.19
        "request-timeout": params["request_timeout"],  # CIS 1.2.20
        # Without it a restart waits for open watches until --request-timeout (60 s of outage).
        "shutdown-watch-termination-grace-period": params["shutdown_watch_termination_grace_period"],
        # Behind a load balancer: from SIGTERM on /readyz fails while the apiserver keeps serving
        # this long, so the balancer's health check takes it out before it stops listening.
        # No --shutdown-send-retry-after: after the delay a refused connection is retried on
        # another server by a TCP balancer, where a 429 would reach the client.
        "shutdown-delay-duration": shutdown_delay(params),
        "service-account-lookup": "true",  # CIS 1.2.21
        "service-account-key-file": pki(params, "sa.pub"),  # CIS 1.2.22
        "service-account-signing-key-file": pki(params, "sa.key"),
        "service-account-issuer": current.get("service-account-issuer", params["service_account_issuer"]),
        "service-account-extend-token-expiration": "false",  # CIS 1.2.30
        "etcd-certfile": pki(params, "apiserver-etcd-client.crt"),  # CIS 1.2.23
        "etcd-keyfile": pki(params, "apiserver-etcd-client.key"),
        "etcd-cafile": pki(params, "etcd/ca.crt"),  # CIS 1.2.26
        "etcd-servers": ",".join(params["etcd_servers"]),
        "tls-cert-file": pki(params, "apiserver.crt"),  # CIS 1.2.24
        "tls-private-key-file": pki(params, "apiserver.key"),
        "client-ca-file": pki(params, "ca.crt"),  # CIS 1.2.25
        "service-cluster-ip-range": params["service_cidr"],
    }
    # kube-apiserver's own rule: a structured config file owns what these flags said, and
    # the binary refuses both at once (a contribution that adds the file removes the flag).
    if current.get("authentication-config"):
        del flags["anonymous-auth"]
    if current.get("authorization-config"):
        del flags["authorization-mode"]
    disabled = [p for p in (current.get("disable-admission-plugins") or "").split(",") if p]
    # CIS 1.2.12/1.2.13: ServiceAccount and NamespaceLifecycle must not be disabled.
    kept = [p for p in disabled if p not in ("ServiceAccount", "NamespaceLifecycle", *plugins)]
    flags["disable-admission-plugins"] = ",".join(kept) if kept else None
    return flags


def shutdown_delay(params):
    """--shutdown-delay-duration, or None (the flag removed) for none: 0 is kube-apiserver's default."""
    value = params.get("shutdown_delay_duration") or "0s"
    return value if seconds(value) > 0 else None


def controller_manager_flags(current, params, feature_gates_help=""):
    """kube-controller-manager (CIS 1.3.x)."""
    kubeconfig = posixpath.join(params["kubernetes_dir"], "controller-manager.conf")
    flags = {
        "kubeconfig": kubeconfig,
        "authentication-kubeconfig": kubeconfig,
        "authorization-kubeconfig": kubeconfig,
        "terminated-pod-gc-threshold": str(params["terminated_pod_gc_threshold"]),  # CIS 1.3.1
        "profiling": "false",  # CIS 1.3.2
        "use-service-account-credentials": "true",  # CIS 1.3.3
        "service-account-private-key-file": pki(params, "sa.key"),  # CIS 1.3.4
        "root-ca-file": pki(params, "ca.crt"),  # CIS 1.3.5
        "cluster-signing-cert-file": pki(params, "ca.crt"),
        "cluster-signing-key-file": pki(params, "ca.key"),
        "bind-address": "127.0.0.1",  # CIS 1.3.7
    }
    # CIS 1.3.6: only while the gate still exists (it is locked on once GA and then removed).
    if "RotateKubeletServerCertificate" in feature_gates_help:
        gates = dict(g.split("=", 1) for g in current.get("feature-gates", "").split(",") if "=" in g)
        gates["RotateKubeletServerCertificate"] = "true"
        flags["feature-gates"] = ",".join(f"{k}={v}" for k, v in sorted(gates.items()))
    return flags


def scheduler_flags(current, params):
    """kube-scheduler (CIS 1.4.x)."""
    kubeconfig = posixpath.join(params["kubernetes_dir"], "scheduler.conf")
    del current  # nothing of the current command line decides a scheduler flag
    return {
        "kubeconfig": kubeconfig,
        "authentication-kubeconfig": kubeconfig,
        "authorization-kubeconfig": kubeconfig,
        "profiling": "false",  # CIS 1.4.1
        "bind-address": "127.0.0.1",  # CIS 1.4.2
    }


def validate(component, params, binary):
    """Refuse bad input before anything is written (see ``inputs.validate``)."""
    from . import inputs  # imports this module: loaded on first use

    inputs.validate(component, params, binary)


def seconds(value):
    """A validated Go duration in seconds (the one parser: _common.duration)."""
    return duration.parse(value)


def below_cis(params):
    """Warnings for values weaker than the CIS minimums."""
    minimums = {"audit_log_maxage": 30, "audit_log_maxbackup": 10, "audit_log_maxsize": 100}
    return [
        f"{var(name)}={params[name]} is below the CIS minimum {low} (CIS 1.2.17-1.2.19)"
        for name, low in minimums.items()
        if params[name] < low
    ]


def service_ip(service_cidr):
    """The first host IP of the service CIDR: the apiserver's ClusterIP."""
    return str(next(ipaddress.ip_network(service_cidr).hosts()))


def admission_config(params):
    """The AdmissionConfiguration (JSON is YAML) with the EventRateLimit limits inline (CIS 1.2.9)."""
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {
                "name": "EventRateLimit",
                "configuration": {
                    "apiVersion": "eventratelimit.admission.k8s.io/v1alpha1",
                    "kind": "Configuration",
                    "limits": params["event_rate_limits"],
                },
            }
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def anonymous_health_authn(paths):
    """An AuthenticationConfiguration admitting anonymous requests on ``paths`` only
    (KEP-4633, stable in 1.34): CIS 1.2.1's structured option. Anything else
    unauthenticated, ``GET /api`` included, stays 401."""
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "anonymous": {"enabled": True, "conditions": [{"path": path} for path in sorted(paths)]},
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def desired_flags(component, current, params, binary):
    """The full flag set of ``component``: every current flag we do not own
    kept, ours set, forbidden ones removed, extra flags last (they win)."""
    contributed = params.get("contributed_flags") or {}
    if component == "etcd":
        ours = etcd_flags(current, params)
    elif component == "kube-apiserver":
        ours = apiserver_flags({**current, **contributed}, params)
    elif component == "kube-controller-manager":
        ours = controller_manager_flags(current, params, binary.get("feature_gates_help", ""))
    else:
        ours = scheduler_flags(current, params)
    if component != "etcd":
        ours["tls-min-version"] = params["tls_min_version"]
        if params["tls_cipher_suites"]:
            ours["tls-cipher-suites"] = ",".join(params["tls_cipher_suites"])  # CIS 1.2.29
    elif "tls-min-version" in binary.get("help_flags", []):
        ours["tls-min-version"] = ETCD_TLS_VERSIONS[params["tls_min_version"]]
        if ours["tls-min-version"] == "TLS1.3":
            ours["cipher-suites"] = None  # etcd refuses cipher suites with TLS 1.3 (they are fixed)
    flags = {k: v for k, v in current.items() if k not in FORBIDDEN[component] or _contributed_file(v, params)}
    flags.update(ours)
    flags.update({k: None if v is None else str(v) for k, v in contributed.items()})
    flags.update({k: None if v is None else str(v) for k, v in (params["extra_flags"] or {}).items()})
    return {k: v for k, v in flags.items() if v is not None}


def _contributed_file(value, params):
    """A file under the config dir was written by a contribution on purpose (an
    opt-in static token file, say), not left over: keep its flag."""
    return in_config_dir(value, params)


def in_config_dir(path, params):
    root = params["config_dir"].rstrip("/") + "/"
    return isinstance(path, str) and posixpath.isabs(path) and posixpath.normpath(path).startswith(root)


def referenced_files(flags):
    """Paths the component must be able to read."""
    return sorted({flags[name] for name in FILE_FLAGS if flags.get(name)})
