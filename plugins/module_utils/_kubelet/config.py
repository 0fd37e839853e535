# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the hardened KubeletConfiguration (CIS 4.2.x) and where the
kubelet's flags come from. Pure functions, no I/O.

The config file is the one source of truth: every command-line flag that
duplicates a field this role owns is removed, because a flag overrides the
file. The file is edited structurally (fields the role does not own are
kept) and rendered as YAML by :func:`render_yaml`, so the nodes need no YAML
library: the controller parses the current file, the node only renders.
"""

from __future__ import annotations

import copy
import json
import re
import shlex

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import ciphers, duration, kernel_needs
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.flags import logical_lines
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"
DROPIN = "90-kubeguard.conf"
DROPIN_HEADER = (
    "# Managed by kubeguard.hardening.kubelet: the kubelet's command line without the flags\n"
    "# that duplicate its config file (the file is the source of truth)."
)

# Flags that duplicate a field the role owns, and that field (a path in the file).
FLAG_FIELDS = {
    "anonymous-auth": ("authentication", "anonymous", "enabled"),
    "authentication-token-webhook": ("authentication", "webhook", "enabled"),
    "authentication-token-webhook-cache-ttl": ("authentication", "webhook", "cacheTTL"),
    "client-ca-file": ("authentication", "x509", "clientCAFile"),
    "authorization-mode": ("authorization", "mode"),
    "read-only-port": ("readOnlyPort",),
    "streaming-connection-idle-timeout": ("streamingConnectionIdleTimeout",),
    "make-iptables-util-chains": ("makeIPTablesUtilChains",),
    "event-qps": ("eventRecordQPS",),
    "tls-cert-file": ("tlsCertFile",),
    "tls-private-key-file": ("tlsPrivateKeyFile",),
    "tls-cipher-suites": ("tlsCipherSuites",),
    "tls-min-version": ("tlsMinVersion",),
    "rotate-certificates": ("rotateCertificates",),
    "rotate-server-certificates": ("serverTLSBootstrap",),
    "pod-max-pids": ("podPidsLimit",),
    "seccomp-default": ("seccompDefault",),
    "protect-kernel-defaults": ("protectKernelDefaults",),
    "config": None,  # never removed: it names the file
}
# The sysctls kubelet checks with protectKernelDefaults (one source: _common.kernel_needs).
KERNEL_DEFAULTS = kernel_needs.KUBELET_PROTECTED
TLS_VERSIONS = ("VersionTLS12", "VersionTLS13")


def var(name):
    """The role variable behind module option ``name`` (errors name what the operator sets)."""
    return f"kubelet_{name}"


# ---------------------------------------------------------------- systemd units


def unit_service(texts):
    """The effective ``[Service]`` ExecStart words, Environment and EnvironmentFiles of
    a unit and its drop-ins (``texts`` in the order systemd reads them).

    An empty ``ExecStart=`` resets the list; ``$VAR``/``${VAR}`` stay unexpanded.
    """
    words, environment, env_files = [], {}, []
    for text in texts:
        for line in logical_lines(text):
            key, sep, value = line.partition("=")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            if key == "ExecStart":
                words = [w.replace("%%", "%") for w in shlex.split(value.lstrip("-@:+!"))] if value else []
            elif key == "Environment":
                for assignment in shlex.split(value):
                    name, _unused, val = assignment.partition("=")
                    environment[name] = val
            elif key == "EnvironmentFile":
                env_files.append(value)
    return {"exec_start": words, "environment": environment, "environment_files": env_files}


def parse_env_file(text):
    """``{VAR: value}`` of a systemd EnvironmentFile (``KEY=value``, quotes removed)."""
    found = {}
    for line in logical_lines(text or ""):
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        name, _unused, value = line.partition("=")
        words = shlex.split(value, comments=False, posix=True)
        found[name.strip()] = " ".join(words)
    return found


_REF = re.compile(r"^\$(?:\{(\w+)\}|(\w+))$")


def expand(words, env):
    """ExecStart words with ``$VAR`` (split into words) and ``${VAR}`` (one word) expanded.

    Returns ``[(word, source)]``: ``source`` is ``""`` for a literal word of the
    unit, else the variable it came from.
    """
    out = []
    for word in words:
        match = _REF.match(word)
        if not match:
            out.append((word.replace("$$", "$"), ""))
            continue
        name = match.group(1) or match.group(2)
        value = env.get(name, "")
        parts = [value] if match.group(1) else value.split()
        out.extend((part, name) for part in parts if part)
    return out


def parse_flags(words):
    """``[--a=1, --b, 2, --c]`` -> ``[(name, value, [indices])]`` (a bare flag followed by a
    non-flag word takes it as its value, as pflag does for non-boolean flags)."""
    flags, i = [], 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or word in ("-", "--"):
            i += 1
            continue
        name = word.lstrip("-")
        indices = [i]
        if "=" in name:
            name, value = name.split("=", 1)
        elif i + 1 < len(words) and not words[i + 1].startswith("-"):
            value = words[i + 1]
            indices.append(i + 1)
        else:
            value = "true"
        flags.append((name, value, indices))
        i = indices[-1] + 1
    return flags


def flag_dict(words):
    return {name: value for name, value, _unused in parse_flags(words)}


def duplicating(flags):
    """Names of the flags that duplicate a field the role owns (to be removed)."""
    return sorted(name for name in flags if FLAG_FIELDS.get(name))


def without(words, names):
    """``words`` with every flag in ``names`` (and its separate value word) removed."""
    drop = {i for name, _unused, indices in parse_flags(words) if name in names for i in indices}
    return [w for i, w in enumerate(words) if i not in drop]


def render_dropin(words):
    """A drop-in that resets ExecStart and sets ``words`` (``$VAR`` references kept)."""

    def quote(word):
        if _REF.match(word):
            return word
        return shlex.quote(word.replace("%", "%%").replace("$", "$$"))

    lines = [DROPIN_HEADER, "[Service]", "ExecStart=", f"ExecStart={quote(words[0])} \\"]
    for index, word in enumerate(words[1:], 1):
        lines.append(f"  {quote(word)}" + (" \\" if index < len(words) - 1 else ""))
    if len(words) == 1:
        lines[-1] = lines[-1][:-2]
    return "\n".join(lines) + "\n"


def rewrite_env_file(text, variable, names):
    """The EnvironmentFile ``text`` with the flags ``names`` removed from ``variable``."""
    out = []
    for raw in (text or "").splitlines():
        name, sep, value = raw.partition("=")
        if sep and name.strip() == variable:
            # The value is one quoted string that systemd splits into words at $VAR.
            words = without(" ".join(shlex.split(value)).split(), names)
            raw = f'{name.strip()}="{" ".join(words)}"'
        out.append(raw)
    return "\n".join(out) + "\n"


def top_level(text, key):
    """The value of a top-level scalar ``key:`` in a YAML text (quotes removed), or ""."""
    match = re.search(rf"^{re.escape(key)}:[ \t]*(.*?)[ \t]*$", text or "", re.M)
    return match.group(1).strip("\"'") if match else ""


def set_top_level(text, key, value):
    """``text`` with the top-level scalar ``key`` set to ``value`` (replaced in place, else appended)."""
    line = f"{key}: {_scalar(value)}"
    pattern = re.compile(rf"^{re.escape(key)}:.*$", re.M)
    if pattern.search(text or ""):
        return pattern.sub(line, text, count=1)
    return (text or "").rstrip("\n") + ("\n" if text else "") + line + "\n"


# ---------------------------------------------------------------- validation


def validate(params, cipher_names=()):
    """Refuse bad input before anything is written; errors name the role variable.
    Returns warnings for accepted but weak choices."""
    warnings = []
    for option in ("read_only_port", "event_record_qps", "pod_pids_limit"):
        params[option] = _integer(params[option])
    port = params["read_only_port"]
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise KubeguardError(var("read_only_port"), f"{port!r} is not a port number from 0 to 65535 (0 disables it)")
    if port != 0:
        warnings.append(
            f"{var('read_only_port')}: {port} serves /pods and /stats without authentication (CIS 4.2.4 wants 0)"
        )
    timeout = str(params["streaming_connection_idle_timeout"])
    if not duration.seconds(var("streaming_connection_idle_timeout"), timeout, example="5m or 4h"):
        raise KubeguardError(
            var("streaming_connection_idle_timeout"), "a zero duration keeps idle streams open forever (CIS 4.2.5)"
        )
    for option, low in (("event_record_qps", 0), ("pod_pids_limit", 1)):
        value = params[option]
        if not isinstance(value, int) or value < low:
            raise KubeguardError(var(option), f"{value!r} must be an integer of at least {low}")
    suites = params["tls_cipher_suites"]
    if not suites:
        raise KubeguardError(var("tls_cipher_suites"), "an empty list means Go's defaults (CIS 4.2.12 wants a list)")
    # The kubelet's --help lists preferred and insecure names in one paragraph: the
    # catalogue says which are insecure, the binary which it knows.
    ciphers.check(var("tls_cipher_suites"), suites, preferred=cipher_names, who="the installed kubelet")
    if params["tls_min_version"] not in TLS_VERSIONS:
        raise KubeguardError(var("tls_min_version"), f"must be one of {', '.join(TLS_VERSIONS)}")
    for option in ("client_ca_file", "tls_cert_file", "tls_private_key_file"):
        if not str(params[option]).startswith("/"):
            raise KubeguardError(var(option), f"{params[option]!r} is not an absolute path")
    return warnings


def _integer(value):
    """An int, or a string of digits (``-e name=7`` passes strings) as an int; anything else as is."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None if isinstance(value, bool) else value


def sans_problem(sans_text, node_ip):
    """Why an ``openssl x509 -ext subjectAltName`` output does not cover ``node_ip`` (or "")."""
    ips = set(re.findall(r"IP Address:([0-9A-Fa-f.:]+)", sans_text or ""))
    if node_ip not in ips:
        return f"has no IP SAN {node_ip} (IP SANs: {', '.join(sorted(ips)) or 'none'})"
    return ""


# ---------------------------------------------------------------- the file


def _set(config, path, value):
    node = config
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def desired(current, params, protect_kernel_defaults):
    """The hardened configuration: ``current`` with every owned field set, the rest kept."""
    config = copy.deepcopy(current) if isinstance(current, dict) else {}
    # Fields of another version or kind would be kept under ours: the kubelet refuses the
    # file only at its restart. A file without them (kubelet defaults) is fine.
    found = (config.get("apiVersion", API_VERSION), config.get("kind", KIND))
    if found != (API_VERSION, KIND):
        raise KubeguardError(
            var("config_enabled"),
            f"the kubelet's config file is {found[1]} {found[0]}, not {KIND} {API_VERSION} that this role writes; "
            "convert it first, or set this to false",
        )
    config["apiVersion"] = API_VERSION
    config["kind"] = KIND
    settings = (
        (("authentication", "anonymous", "enabled"), False),  # CIS 4.2.1
        (("authentication", "webhook", "enabled"), True),  # CIS 4.2.2
        (("authentication", "x509", "clientCAFile"), params["client_ca_file"]),  # CIS 4.2.3
        (("authorization", "mode"), "Webhook"),  # CIS 4.2.2
        (("readOnlyPort",), params["read_only_port"]),  # CIS 4.2.4
        (("streamingConnectionIdleTimeout",), str(params["streaming_connection_idle_timeout"])),  # CIS 4.2.5
        (("makeIPTablesUtilChains",), True),  # CIS 4.2.6
        (("eventRecordQPS",), params["event_record_qps"]),  # CIS 4.2.8
        (("tlsCertFile",), params["tls_cert_file"]),  # CIS 4.2.9
        (("tlsPrivateKeyFile",), params["tls_private_key_file"]),  # CIS 4.2.9
        (("serverTLSBootstrap",), False),  # CIS 4.2.11: cluster_pki renews it, no CSR approver
        (("rotateCertificates",), True),  # CIS 4.2.10
        (("tlsCipherSuites",), list(params["tls_cipher_suites"])),  # CIS 4.2.12
        (("tlsMinVersion",), params["tls_min_version"]),
        (("podPidsLimit",), params["pod_pids_limit"]),  # CIS 4.2.13
        (("seccompDefault",), bool(params["seccomp_default"])),  # CIS 4.2.14
        (("protectKernelDefaults",), bool(protect_kernel_defaults)),
    )
    for path, value in settings:
        _set(config, path, value)
    for key, value in (params.get("extra_config") or {}).items():
        config[key] = value
    return config


# A plain scalar that YAML reads back as the same string.
_PLAIN = re.compile(r"^[A-Za-z/_][A-Za-z0-9_./:@+-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


def render_yaml(value, indent=0):
    """Block-style YAML of dicts, lists and scalars, in the dicts' order; reads back equal."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = []
        for key, item in value.items():
            label = f"{pad}{_scalar(str(key))}:"
            if isinstance(item, (dict, list)) and item:
                out.append(f"{label}\n{render_yaml(item, indent + 2)}")
            else:
                out.append(f"{label} {render_yaml(item, 0).strip()}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                body = render_yaml(item, indent + 2)
                out.append(f"{pad}- {body.lstrip()}")
            else:
                out.append(f"{pad}- {render_yaml(item, 0).strip()}\n")
        return "".join(out)
    return _scalar(value) + "\n"


HEADER = "# Managed by kubeguard.hardening.kubelet (CIS 4.2.x); fields it does not own are kept.\n"


def render(config):
    return HEADER + render_yaml(config)


def changes(before, after, prefix=""):
    """A readable list of field changes between two configurations."""
    lines = []
    for key in list(before) + [k for k in after if k not in before]:
        path = f"{prefix}{key}"
        old, new = before.get(key, "<unset>"), after.get(key, "<unset>")
        if isinstance(old, dict) and isinstance(new, dict):
            lines.extend(changes(old, new, path + "."))
        elif old != new:
            lines.append(f"{path}: {json.dumps(old)} -> {json.dumps(new)}")
    return lines
