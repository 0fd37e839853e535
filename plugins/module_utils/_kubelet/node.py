# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: everything that touches the node. ``gather`` (one call per node),
``apply_config`` (validate, write, restart, wait for the Node to be Ready with
its pods, roll back), ``fix_files`` (CIS 4.1.x) and ``apply_kube_proxy``
(CIS 4.3.1) are the Ansible-free entry points of the modules."""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._files import atomic_write, file_mode, file_state
from ansible_collections.kubeguard.hardening.plugins.module_utils._http import http_open
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import config as cfg

SYSTEMD_DIR = "/etc/systemd/system"
SYSCTL_FILE = "/etc/sysctl.d/90-kubeguard-kubelet.conf"
DEFAULT_CONFIG = "/var/lib/kubelet/config.yaml"


def _run(argv, timeout=60):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


# ---------------------------------------------------------------- gathering


def process(name, proc="/proc"):
    """``{"pid": n, "argv": [...]}`` of the oldest process running ``name``, or None."""
    found = None
    for path in glob.glob(f"{proc}/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        if not raw:
            continue
        argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
        if os.path.basename(argv[0]) != name:
            continue
        pid = int(path.split("/")[-2])
        if found is None or pid < found["pid"]:
            found = {"pid": pid, "argv": argv}
    return found


def unit(name):
    """Where systemd reads ``name``.service from, its effective command line and environment."""
    rc, out, _unused = _run(["systemctl", "show", "--property=LoadState,FragmentPath,DropInPaths", f"{name}.service"])
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}
    if props.get("LoadState") != "loaded" or not props.get("FragmentPath"):
        return None
    paths = [props["FragmentPath"], *props.get("DropInPaths", "").split()]
    service = cfg.unit_service([_read(p) or "" for p in paths])
    env, origin = {}, {}
    for spec in service["environment_files"]:
        path = spec.lstrip("-")
        for key, value in cfg.parse_env_file(_read(path)).items():
            env[key], origin[key] = value, path
    for key, value in service["environment"].items():
        # systemd applies Environment= before EnvironmentFile=: a file wins.
        if key not in env:
            env[key], origin[key] = value, "unit"
    words = cfg.expand(service["exec_start"], env)
    return {
        "fragment": paths[0],
        "dropins": paths[1:],
        "exec_start": service["exec_start"],
        "environment": env,
        "env_origin": origin,
        "words": [w for w, _unused in words],
        "sources": [s for _unused, s in words],
    }


def in_container():
    """Whether the node shares its kernel with a host (its global sysctls are the host's)."""
    rc, out, _unused = _run(["systemd-detect-virt", "--container"])
    if rc == 0 and out.strip() not in ("", "none"):
        return True
    return os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv")


def sysctls():
    values = {}
    for name in cfg.KERNEL_DEFAULTS:
        text = _read("/proc/sys/" + name.replace(".", "/"))
        values[name] = text.strip() if text is not None else None
    return values


def binary_facts(path):
    if not path or not os.access(path, os.X_OK):
        return {"path": path, "version": "", "cipher_suites": [], "reloads_serving_cert": None}
    _unused, out, err = _run([path, "--version"])
    _unused, help_out, help_err = _run([path, "--help"])
    text = help_out + help_err
    entry = re.search(r"--tls-cipher-suites.*?(?=\n\s+--[a-z])", text, re.S)
    gate = re.search(r"ReloadKubeletServerCertificateFile=true\|false \((\w+) - default=(\w+)\)", text)
    return {
        "path": path,
        "version": (out or err).strip(),
        "cipher_suites": sorted(set(re.findall(r"TLS_[A-Z0-9_]+", entry.group(0)))) if entry else [],
        # Kubernetes >= 1.31 reloads tlsCertFile/tlsPrivateKeyFile when they change on disk.
        "reloads_serving_cert": (gate.group(2) == "true") if gate else None,
    }


def component(name):
    """One node daemon: its process, unit, configured and running flags."""
    proc = process(name)
    service = unit(name)
    if proc is None and service is None:
        return None
    words = service["words"] if service else proc["argv"]
    return {
        "running": proc is not None,
        "pid": proc["pid"] if proc else None,
        "argv": proc["argv"] if proc else [],
        "unit": service,
        "flags": cfg.flag_dict(words[1:]),
        "running_flags": cfg.flag_dict(proc["argv"][1:]) if proc else {},
    }


def gather(params):
    kubelet = component("kubelet")
    result = {"changed": False, "kubelet": kubelet, "kube_proxy": component("kube-proxy")}
    result["sysctls"] = {"values": sysctls(), "in_container": in_container()}
    if kubelet is None:
        return result
    flags = kubelet["running_flags"] or kubelet["flags"]
    path = flags.get("config") or kubelet["flags"].get("config") or ""
    kubelet["config_path"] = path
    kubelet["config_text"] = (_read(path) if path else None) or ""
    kubelet["kubeconfig"] = flags.get("kubeconfig", "")
    exe = (kubelet["argv"] or (kubelet["unit"] or {}).get("words") or [""])[0]
    if not os.path.isabs(exe):
        exe = shutil.which(exe) or ""
    kubelet["binary"] = binary_facts(exe)
    kubelet["flag_sources"] = _flag_sources(kubelet["unit"]) if kubelet["unit"] else {}
    return result


def _flag_sources(service):
    """``{flag: "unit" | env file path | "unit-env:VAR"}``: where each configured flag is written."""
    found = {}
    for name, _unused, indices in cfg.parse_flags(service["words"]):
        source = service["sources"][indices[0]]
        if not source:
            found[name] = "unit"
        elif service["env_origin"].get(source) == "unit":
            found[name] = f"unit-env:{source}"
        else:
            found[name] = f"{service['env_origin'].get(source, '')}:{source}"
    return found


# ---------------------------------------------------------------- the API, with the kubelet's own identity


def _kubeconfig_field(text, field):
    match = re.search(rf"^\s*{re.escape(field)}:\s*(\S+)\s*$", text or "", re.M)
    return match.group(1).strip("\"'") if match else ""


class NodeAPI:
    """GETs against the API server with the kubelet's kubeconfig (``system:node:<name>``).

    Parsed line by line: a kubeconfig's fields are flat scalars, and the nodes
    need no YAML library.
    """

    def __init__(self, kubeconfig):
        text = _read(kubeconfig) or ""
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


def wait_ready(api, node_name, healthz, since, old_pid, pods, timeout):
    """Wait for a new kubelet process that is healthy and has reported the Node Ready
    after ``since``, with every pod that ran before still Running.

    Returns ``(ok, detail, seconds_until_ready, ready_false_seen)``.
    """
    deadline = time.monotonic() + timeout
    detail, false_seen = "not checked", False
    while time.monotonic() < deadline:
        proc = process("kubelet")
        try:
            if proc is None or proc["pid"] == old_pid:
                detail = "the kubelet has not restarted yet"
            elif not _healthz(healthz):
                detail = f"{healthz} does not answer ok"
            else:
                ready, beat = node_status(api, node_name)
                false_seen = false_seen or not ready
                missing = sorted(set(pods.values()) - set(running_pods(api, node_name).values()))
                if not ready or beat < since - 1:
                    detail = f"Node {node_name} has not reported Ready since the restart"
                elif missing:
                    detail = f"pods no longer Running: {', '.join(missing)}"
                else:
                    return True, "Ready", round(time.time() - since, 1), false_seen
        except (OSError, ValueError, KeyError, ssl.SSLError) as exc:
            detail = f"API: {exc}"
        time.sleep(0.5)
    return False, detail, None, false_seen


# ---------------------------------------------------------------- checks before writing


def _openssl(*args):
    return _run(["openssl", *args])


def check_serving_cert(params):
    """The serving cert exists, matches its key, chains to the client CA and names the node IP."""
    option = cfg.var("tls_cert_file")
    cert, key, ca = params["tls_cert_file"], params["tls_private_key_file"], params["client_ca_file"]
    for opt, path in (("client_ca_file", ca), ("tls_cert_file", cert), ("tls_private_key_file", key)):
        if not os.access(path, os.R_OK):
            raise KubeguardError(cfg.var(opt), f"{path} is missing or unreadable (run cluster_pki first)")
    _unused, cert_pub, _unused = _openssl("x509", "-noout", "-pubkey", "-in", cert)
    _unused, key_pub, _unused = _openssl("pkey", "-pubout", "-in", key)
    if not cert_pub or cert_pub != key_pub:
        raise KubeguardError(cfg.var("tls_private_key_file"), f"{key} is not the key of {cert}")
    rc, out, err = _openssl("verify", "-CAfile", ca, "-purpose", "sslserver", cert)
    if rc != 0:
        raise KubeguardError(option, f"{cert} does not chain to the cluster CA {ca}: {(err or out).strip()}")
    _unused, sans, _unused = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", cert)
    problem = cfg.sans_problem(sans, params["node_ip"])
    if problem:
        raise KubeguardError(
            option, f"{cert} {problem}: the apiserver verifies it by the node IP (kubeguard_node_ip); reissue it"
        )


# ---------------------------------------------------------------- writing, restarting, rolling back


def _write_all(files):
    for path, (content, mode) in files.items():
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        atomic_write(path, content.encode(), mode)


def _systemctl(*args):
    rc, out, err = _run(["systemctl", *args], timeout=120)
    if rc != 0:
        raise KubeguardError("", f"systemctl {' '.join(args)} failed: {(err or out).strip()}")


def plan_flags(kubelet, config_path):
    """``({path: (content, mode)}, removed flags)`` that take the duplicating flags off the
    command line, wherever they are written; adds ``--config`` when there is none."""
    service = kubelet["unit"]
    if service is None:
        raise KubeguardError("", "the kubelet runs without a systemd unit: its command line cannot be edited")
    removed = cfg.duplicating(kubelet["flags"])
    files = {}
    literal = [n for n in removed if kubelet["flag_sources"].get(n) == "unit"]
    ours = os.path.join(SYSTEMD_DIR, "kubelet.service.d", cfg.DROPIN)
    env_overrides = {}
    for name in removed:
        source = kubelet["flag_sources"].get(name, "unit")
        if source.startswith("unit-env:"):
            variable = source.split(":", 1)[1]
            env_overrides[variable] = " ".join(
                cfg.without(service["environment"].get(variable, "").split(), set(removed))
            )
        elif source != "unit":
            path, variable = source.rsplit(":", 1)
            text = files.get(path, (_read(path), None))[0]
            files[path] = (cfg.rewrite_env_file(text, variable, set(removed)), file_mode(path) or 0o644)
    needs_config = "config" not in kubelet["flags"]
    if literal or env_overrides or needs_config or ours in service["dropins"]:
        words = cfg.without(service["exec_start"], set(literal))
        if needs_config:
            words.append(f"--config={config_path}")
        text = cfg.render_dropin(words)
        if env_overrides:
            text += "".join(f'Environment="{k}={v}"\n' for k, v in sorted(env_overrides.items()))
        files[ours] = (text, 0o600)
    return files, removed


def protect_kernel_defaults(params, facts, check_mode):
    """``(enabled, sysctl_files, warnings)``: set the sysctls kubelet expects, then turn
    protectKernelDefaults on only if the live values match (else kubelet would not start)."""
    if not params["protect_kernel_defaults"]:
        return False, {}, []
    wanted = cfg.KERNEL_DEFAULTS
    live = facts["sysctls"]["values"]
    if facts["sysctls"]["in_container"]:
        # A container's global sysctls are its host's: never change the host's kernel from a node.
        bad = sorted(k for k, v in wanted.items() if live.get(k) != v)
        if bad:
            return (
                False,
                {},
                [
                    f"{cfg.var('protect_kernel_defaults')}: left off: this node is a container and its kernel's "
                    f"{', '.join(bad)} differ from what kubelet expects; they are the host's to set"
                ],
            )
        return True, {}, []
    text = "# Managed by kubeguard.hardening.kubelet: what kubelet's protectKernelDefaults expects.\n"
    text += "".join(f"{k} = {v}\n" for k, v in wanted.items())
    return True, {SYSCTL_FILE: (text, 0o644)}, []


def _apply_sysctls(sysctl_files):
    for path in sysctl_files:
        rc, out, err = _run(["sysctl", "-q", "-p", path])
        if rc != 0:
            raise KubeguardError(cfg.var("protect_kernel_defaults"), f"sysctl -p {path}: {(err or out).strip()}")
    live = sysctls()
    bad = sorted(k for k, v in cfg.KERNEL_DEFAULTS.items() if live.get(k) != v)
    if bad:
        raise KubeguardError(cfg.var("protect_kernel_defaults"), f"{', '.join(bad)} did not take their values")


def _state_path(params, name):
    return os.path.join(params["state_dir"], f"{name}.rollback.json")


def _remember(params, name, files):
    """The files' contents before this run; an interrupted earlier run's record wins (last known good)."""
    path = _state_path(params, name)
    text = _read(path)
    if text:
        return {k: tuple(v) for k, v in json.loads(text).items()}
    before = {p: (_read(p), file_mode(p) or mode) for p, (_unused, mode) in files.items()}
    os.makedirs(params["state_dir"], mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps(before).encode(), 0o600)
    return before


def _forget(params, name):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_state_path(params, name))


def _healthz_url(config):
    port = config.get("healthzPort", 10248)
    address = config.get("healthzBindAddress", "127.0.0.1")
    if address in ("0.0.0.0", "::", ""):  # noqa: S104 - reached on loopback
        address = "127.0.0.1"
    return f"http://{address}:{port}/healthz"


def apply_config(params, check_mode):
    facts = params["facts"]
    kubelet = facts.get("kubelet")
    if not kubelet:
        return {"changed": False, "skipped_reason": "no kubelet on this node"}
    warnings = cfg.validate(params, kubelet["binary"].get("cipher_suites") or ())
    flags = {**kubelet["flags"], **kubelet["running_flags"]}
    if "hostname-override" in flags and not params["hostname_override_allowed"]:
        raise KubeguardError(
            cfg.var("hostname_override_allowed"),
            f"the kubelet runs with --hostname-override={flags['hostname-override']} (CIS 4.2.7); remove it, "
            "or set this to true where the cloud provider needs it (the documented exception)",
        )
    check_serving_cert(params)
    config_path = kubelet["config_path"] or DEFAULT_CONFIG
    protect, sysctl_files, pkd_warnings = protect_kernel_defaults(params, facts, check_mode)
    warnings += pkd_warnings
    current = params.get("current_config") or {}
    wanted = cfg.desired(current, params, protect)
    text = cfg.render(wanted)
    files = {config_path: (text, 0o600)}  # CIS 4.1.9
    flag_files, removed = plan_flags(kubelet, config_path)
    files.update(flag_files)
    files.update(sysctl_files)
    before = {p: _read(p) for p in files}
    changed_files = sorted(p for p, (content, _unused) in files.items() if before[p] != content)
    modes_fixed = sorted(p for p, (_unused, mode) in files.items() if before[p] is not None and file_mode(p) != mode)
    new_flags = {k: v for k, v in kubelet["flags"].items() if k not in removed}
    new_flags.setdefault("config", config_path)
    pending = kubelet["running"] and kubelet["running_flags"] != new_flags
    restart = bool(set(changed_files) - set(sysctl_files)) or pending
    result = {
        "changed": bool(changed_files or modes_fixed or pending),
        "config_path": config_path,
        "changed_files": changed_files,
        "modes_fixed": modes_fixed,
        "removed_flags": removed,
        "config_changes": cfg.changes(current, wanted),
        "protect_kernel_defaults": protect,
        "restarted": False,
        "warnings": warnings,
        "diff": {
            "before": kubelet["config_text"] + "".join(f"# flag --{n}={flags.get(n)}\n" for n in removed),
            "after": text,
            "before_header": config_path,
            "after_header": f"{config_path} ({', '.join(changed_files) or 'unchanged'})",
        },
    }
    if not result["changed"] or check_mode:
        return result
    rollback = _remember(params, "kubelet", files)
    api = NodeAPI(kubelet["kubeconfig"]) if restart else None
    pods = running_pods(api, params["node_name"]) if restart else {}
    _write_all(files)
    _apply_sysctls(sysctl_files)
    if restart:
        since = time.time()
        if set(changed_files) & set(flag_files):
            _systemctl("daemon-reload")
        # Queued: wait_ready judges it, so a Type=notify kubelet that dies still rolls back.
        _systemctl("restart", "--no-block", "kubelet.service")
        result["restarted"] = True
        ok, detail, seconds, false_seen = wait_ready(
            api, params["node_name"], _healthz_url(wanted), since, kubelet["pid"], pods, params["restart_timeout"]
        )
        result["seconds_until_ready"] = seconds
        result["ready_false_seen"] = false_seen
        if not ok:
            pid = (process("kubelet") or {}).get("pid")
            _write_all({p: v for p, v in rollback.items() if p not in sysctl_files})
            _systemctl("daemon-reload")
            _systemctl("restart", "--no-block", "kubelet.service")
            back = wait_ready(api, params["node_name"], _healthz_url(current), time.time(), pid, {}, 120)[0]
            _forget(params, "kubelet")
            raise KubeguardError(
                cfg.var("restart_timeout"),
                f"the kubelet was not Ready with its pods within {params['restart_timeout']} s ({detail}); "
                f"the previous configuration was restored and {'is Ready' if back else 'is NOT Ready'}",
            )
    _forget(params, "kubelet")
    return result


# ---------------------------------------------------------------- CIS 4.1.x files


def cis_files(params):
    """The files CIS 4.1.x looks at, with the mode and owner each must have."""
    facts = params["facts"]
    kubelet = facts.get("kubelet") or {}
    wanted = []
    service = kubelet.get("unit") or {}
    for path in [service.get("fragment"), *service.get("dropins", [])]:
        if path:
            wanted.append((path, "0600", "CIS 4.1.1/4.1.2"))
    if kubelet.get("kubeconfig"):
        wanted.append((kubelet["kubeconfig"], "0600", "CIS 4.1.5/4.1.6"))
    wanted.append((params["client_ca_file"], params["client_ca_mode"], "CIS 4.1.7/4.1.8"))
    if kubelet.get("config_path"):
        wanted.append((kubelet["config_path"], "0600", "CIS 4.1.9/4.1.10"))
    proxy = facts.get("kube_proxy") or {}
    proxy_flags = {**proxy.get("flags", {}), **proxy.get("running_flags", {})}
    if proxy_flags.get("kubeconfig"):
        wanted.append((proxy_flags["kubeconfig"], "0600", "CIS 4.1.3/4.1.4"))
    return wanted


def _mode_ok(have, want):
    """No permission bit beyond ``want`` (a stricter mode is compliant)."""
    return int(have, 8) & ~int(want, 8) == 0


def fix_files(params, check_mode):
    if not re.fullmatch(r"0?[0-7]{3}", str(params["client_ca_mode"])):
        raise KubeguardError("client_ca_mode", f"{params['client_ca_mode']!r} is not an octal mode like 0644")
    fixed = []
    for path, want_mode, cis in cis_files(params):
        state = file_state(path, follow_symlinks=True)
        if not state["exists"]:
            continue
        mode_bad = not _mode_ok(state["mode"], want_mode)
        owner_bad = state["owner"] != "root" or state["group"] != "root"
        if not (mode_bad or owner_bad):
            continue
        fixed.append({"path": path, "mode": state["mode"], "owner": f"{state['owner']}:{state['group']}", "cis": cis})
        if check_mode:
            continue
        if mode_bad:
            os.chmod(path, int(want_mode, 8))
        if owner_bad:
            os.chown(path, 0, 0)
    return {"changed": bool(fixed), "fixed": fixed}


# ---------------------------------------------------------------- CIS 4.3.1 kube-proxy metrics


def _metrics_ok(address):
    try:
        with http_open(f"http://{address}/metrics", timeout=3) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def apply_kube_proxy(params, check_mode):
    proxy = params["facts"].get("kube_proxy")
    address = params["metrics_bind_address"]
    if not re.match(r"^127\.[0-9.]+:[0-9]+$", address):
        raise KubeguardError(cfg.var("kube_proxy_metrics_bind_address"), f"{address!r} is not a 127.x address:port")
    if not proxy or not proxy["running"]:
        return {"changed": False, "skipped_reason": "kube-proxy does not run on this node"}
    flags = {**proxy["flags"], **proxy["running_flags"]}
    if flags.get("config"):
        # kube-proxy ignores its flags when --config is given: edit the file's top-level field.
        path = flags["config"]
        before = _read(path)
        if before is None:
            raise KubeguardError("", f"kube-proxy's --config file {path} is unreadable")
        text = cfg.set_top_level(before, "metricsBindAddress", address)
        mode = file_mode(path) or 0o600
        current = cfg.top_level(before, "metricsBindAddress") or "<default>"
        pending = False
    else:
        service = proxy["unit"]
        if service is None:
            return {
                "changed": False,
                "warnings": [
                    "kube-proxy runs without a systemd unit here (a DaemonSet?): set metricsBindAddress: "
                    f"{address} in its configuration (CIS 4.3.1)"
                ],
            }
        words = cfg.without(service["exec_start"], {"metrics-bind-address"})
        words.append(f"--metrics-bind-address={address}")
        path = os.path.join(SYSTEMD_DIR, "kube-proxy.service.d", cfg.DROPIN)
        text = cfg.render_dropin(words).replace("kubelet's command line", "kube-proxy's command line", 1)
        before, mode = _read(path), 0o600
        current = proxy["running_flags"].get("metrics-bind-address", "<default>")
        pending = current != address
    result = {
        "changed": before != text or pending,
        "metrics_bind_address": address,
        "diff": {
            "before": f"metricsBindAddress: {current}\n",
            "after": f"metricsBindAddress: {address}\n",
            "before_header": path,
            "after_header": path,
        },
    }
    if not result["changed"] or check_mode:
        return result
    rollback = _remember(params, "kube-proxy", {path: (text, mode)})
    _write_all({path: (text, mode)})
    _systemctl("daemon-reload")
    _systemctl("restart", "kube-proxy.service")
    deadline = time.monotonic() + params["restart_timeout"]
    while time.monotonic() < deadline:
        proc = process("kube-proxy")
        if proc and proc["pid"] != proxy["pid"] and _metrics_ok(address):
            _forget(params, "kube-proxy")
            result["restarted"] = True
            return result
        time.sleep(0.5)
    _write_all(rollback)
    _systemctl("daemon-reload")
    _systemctl("restart", "kube-proxy.service")
    _forget(params, "kube-proxy")
    raise KubeguardError(
        cfg.var("restart_timeout"),
        f"kube-proxy did not serve metrics on {address} within {params['restart_timeout']} s; its unit was restored",
    )
