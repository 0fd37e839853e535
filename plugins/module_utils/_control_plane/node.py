# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: everything that touches the node. ``gather`` (one call per node)
and ``apply`` (one component: validate, write, restart, wait for health,
roll back) are the Ansible-free entry points of the two modules."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired, manifest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags as flaglib
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError, require_facts
from ansible_collections.kubeguard.hardening.plugins.module_utils._files import atomic_write, file_mode, file_state
from ansible_collections.kubeguard.hardening.plugins.module_utils._http import http_open

DROPIN = "50-kubeguard.conf"
DROPIN_HEADER = "# Managed by kubeguard.hardening.control_plane: the hardened flags of this unit, one a line."
HEALTH_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259}
ETCD_USER = "etcd"  # the owner CIS 1.1.12 names for the data directory, and the user etcd runs as
# The files etcd reads from pki/etcd (0700 root), its key pairs and CAs: systemd hands them
# to the etcd user's service.
ETCD_CREDENTIAL_FLAGS = tuple(flag for triple in desired.KEY_PAIRS["etcd"] for flag in triple)


def _run(argv, timeout=60):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def _read(path, binary=False):
    try:
        with open(path, "rb" if binary else "r") as handle:
            return handle.read()
    except OSError:
        return None


# ---------------------------------------------------------------- gathering


def processes(proc="/proc"):
    """``{component: {"pid": n, "argv": [...]}}`` of the running control-plane processes."""
    found = {}
    for path in glob.glob(f"{proc}/[0-9]*/cmdline"):
        raw = _read(path, binary=True)
        if not raw:
            continue
        argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
        name = os.path.basename(argv[0])
        if name in desired.COMPONENTS:
            pid = int(path.split("/")[-2])
            # The oldest process wins: a restart's new process is what we wait for separately.
            if name not in found or pid < found[name]["pid"]:
                found[name] = {"pid": pid, "argv": argv}
    return found


def process_user(pid):
    """The name (or uid) of the real user a process runs as."""
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return str(uid)
    return None


def unit_state(component):
    rc, out, _unused = _run(
        ["systemctl", "show", "--property=LoadState,FragmentPath,DropInPaths,ActiveState", f"{component}.service"]
    )
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}
    return props if props.get("LoadState") == "loaded" and props.get("FragmentPath") else None


def configured(component, kubernetes_dir):
    """Where ``component`` is configured and its configured argv, or None."""
    path = os.path.join(kubernetes_dir, "manifests", f"{component}.yaml")
    text = _read(path)
    if text is not None:
        pod = _load_yaml(text, path)
        return {"layout": "static-pod", "source": path, "argv": manifest.current_argv(pod, component)}
    unit = unit_state(component)
    if unit is None:
        return None
    dropin = os.path.join("/etc/systemd/system", f"{component}.service.d", DROPIN)
    sources = [unit["FragmentPath"], *unit.get("DropInPaths", "").split()]
    text = "\n".join(_read(p) or "" for p in sources)
    return {
        "layout": "systemd",
        "source": dropin,
        "unit_file": unit["FragmentPath"],
        "dropins": sources[1:],
        "argv": flaglib.exec_start(text),
    }


def _load_yaml(text, path):
    try:
        import yaml  # only the kubeadm layout needs PyYAML on the node
    except ImportError:
        raise KubeguardError("manifest", f"{path}: python3-yaml is needed on the node to edit manifests") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KubeguardError("manifest", f"{path} is not valid YAML: {exc}") from None


def binary_path(component, argv, running):
    for candidate in (argv[0] if argv else "", f"/usr/local/bin/{component}", shutil.which(component) or ""):
        if candidate and os.path.isabs(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if running:
        with contextlib.suppress(OSError):
            return os.readlink(f"/proc/{running['pid']}/exe")
    return ""


def binary_facts(component, path):
    if not path:
        return {"version": "", "help_flags": []}
    _unused, out, err = _run([path, "--version"])
    version = (out or err).strip().splitlines()[0] if (out or err).strip() else ""
    _unused, out, err = _run([path, "--help"])
    text = out + err
    facts = {"path": path, "version": version, "help_flags": flaglib.help_flags(text)}
    if component != "etcd":
        facts["cipher_suites"] = flaglib.cipher_suites(text)
        facts["feature_gates_help"] = flaglib._help_entry(text, "feature-gates")
    if component == "kube-apiserver":
        facts["admission_plugins"] = flaglib.admission_plugins(text)
    return facts


def cis_files(kubernetes_dir, components):
    """The files CIS 1.1.x looks at, with the mode and owner each must have."""
    wanted = []
    for name, comp in components.items():
        if comp.get("layout") == "static-pod":
            wanted.append((comp["source"], "0600", "root", "CIS 1.1.1-1.1.8"))
        elif comp.get("layout") == "systemd":
            for path in (comp["unit_file"], comp["source"]):
                wanted.append((path, "0600", "root", "CIS 1.1.1-1.1.8 (unit files)"))
        if name == "etcd" and comp.get("flags", {}).get("data-dir"):
            wanted.append((comp["flags"]["data-dir"], "0700", ETCD_USER, "CIS 1.1.11/1.1.12"))
    for conf, cis in (
        ("admin.conf", "CIS 1.1.13"),
        ("super-admin.conf", "CIS 1.1.14"),
        ("scheduler.conf", "CIS 1.1.15/1.1.16"),
        ("controller-manager.conf", "CIS 1.1.17/1.1.18"),
    ):
        wanted.append((os.path.join(kubernetes_dir, conf), "0600", "root", cis))
    pki = os.path.join(kubernetes_dir, "pki")
    wanted.append((pki, None, "root", "CIS 1.1.19"))
    for path in sorted(glob.glob(f"{pki}/**/*", recursive=True)):
        if path.endswith(".crt"):
            wanted.append((path, "0644", "root", "CIS 1.1.20"))
        elif path.endswith(".key"):
            wanted.append((path, "0600", "root", "CIS 1.1.21"))
        elif os.path.isdir(path):
            wanted.append((path, None, "root", "CIS 1.1.19"))
    files = []
    for path, mode, owner, cis in wanted:
        state = file_state(path)
        if state["exists"]:
            state.update(want_mode=mode, want_owner=owner, cis=cis)
            state["compliant"] = (mode is None or _mode_ok(state["mode"], mode)) and state["owner"] == owner
            files.append(state)
    return files


def _mode_ok(have, want):
    """No permission bit beyond ``want`` (a stricter mode is compliant)."""
    return int(have, 8) & ~int(want, 8) == 0


def gather(params):
    kubernetes_dir = params["kubernetes_dir"]
    running = processes()
    components = {}
    for name in desired.COMPONENTS:
        conf = configured(name, kubernetes_dir)
        proc = running.get(name)
        if conf is None and proc is None:
            continue
        conf = conf or {"layout": "unknown", "argv": proc["argv"]}
        conf["flags"] = flaglib.parse_argv(conf["argv"])[1]
        conf["running"] = bool(proc)
        conf["pid"] = proc["pid"] if proc else None
        conf["user"] = process_user(proc["pid"]) if proc else None
        conf["running_flags"] = flaglib.parse_argv(proc["argv"])[1] if proc else {}
        conf["binary"] = binary_facts(name, binary_path(name, conf["argv"], proc))
        components[name] = conf
    layouts = sorted({c["layout"] for c in components.values()})
    return {
        "changed": False,
        "layout": layouts[0] if len(layouts) == 1 else ("mixed" if layouts else "none"),
        "components": components,
        "files": cis_files(kubernetes_dir, components),
    }


# ---------------------------------------------------------------- validation


def _openssl(*args):
    rc, out, err = _run(["openssl", *args])
    return rc, out, err


def check_pki(component, flags, params, writing=()):
    """Every referenced file readable (but the ones this run writes), each cert matches
    its key and chains to its CA, SANs cover the addresses."""
    option = desired.var("pki_dir")
    for path in sorted(set(desired.referenced_files(flags)) - set(writing)):
        if not os.access(path, os.R_OK):
            raise KubeguardError(option, f"{component} needs {path}, which is missing or unreadable")
    for cert_flag, key_flag, ca_flag in desired.KEY_PAIRS[component]:
        cert, key, ca = flags.get(cert_flag), flags.get(key_flag), flags.get(ca_flag)
        if not (cert and key and ca):
            continue
        _unused, cert_pub, _unused = _openssl("x509", "-noout", "-pubkey", "-in", cert)
        _unused, key_pub, _unused = _openssl("pkey", "-pubout", "-in", key)
        if not cert_pub or cert_pub != key_pub:
            raise KubeguardError(option, f"{cert} does not match its key {key}")
        rc, out, err = _openssl("verify", "-CAfile", ca, cert)
        if rc != 0:
            raise KubeguardError(option, f"{cert} does not chain to {ca}: {(err or out).strip()}")
    if component == "etcd":
        _require_sans(flags["cert-file"], ["127.0.0.1", params["node_ip"]], option)
    elif component == "kube-apiserver":
        _require_sans(flags["tls-cert-file"], ["127.0.0.1", params["node_ip"]], option)
        _require_sans(flags["tls-cert-file"], [desired.service_ip(params["service_cidr"])], desired.var("service_cidr"))
        for pub, priv in ((flags.get("service-account-key-file"), flags.get("service-account-signing-key-file")),):
            if pub and priv:
                _unused, want, _unused = _openssl("pkey", "-pubout", "-in", priv)
                _unused, have, _unused = _openssl("pkey", "-pubin", "-pubout", "-in", pub)
                if not want or want != have:
                    raise KubeguardError(option, f"{pub} is not the public key of {priv}")


def _require_sans(cert, addresses, option):
    _unused, out, _unused = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", cert)
    have = set(re.findall(r"IP Address:([0-9A-Fa-f.:]+)", out))
    missing = [a for a in addresses if a not in have]
    if missing:
        raise KubeguardError(option, f"{cert} has no SAN for {', '.join(missing)} (SANs: {', '.join(sorted(have))})")


def check_known_flags(component, flags, binary, params):
    known = set(binary.get("help_flags") or [])
    if not known:
        return
    unknown = sorted(set(flags) - known)
    if unknown:
        raise KubeguardError(
            desired.var(f"{desired.CONCERNS[component]}_extra_flags"),
            f"the installed {component} ({binary.get('version')}) does not know --{', --'.join(unknown)}",
        )


# ---------------------------------------------------------------- health


def _https_get(url, cert=None, key=None, timeout=3):
    context = ssl.create_default_context()
    # Loopback liveness of the process we just restarted: who serves is not in question.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert and key:
        context.load_cert_chain(cert, key)
    try:
        return 200, _request(url, context, timeout=timeout)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _request(url, context, body=None, timeout=10):
    """GET (or POST ``body`` as JSON) an http(s) URL built from a component's own flags."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url}: not an http(s) URL")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with http_open(request, timeout=timeout, context=context) as response:
        return response.read().decode(errors="replace")


def health(component, flags, params, serving_only=False):
    """``(ok, detail)``: one real health probe of ``component`` as ``flags`` configure it.

    ``serving_only`` (after a rollback) accepts any HTTP answer from kube-apiserver:
    the restored configuration may not trust the client certificate we probe with.
    """
    pki = params["pki_dir"]
    try:
        if component == "etcd":
            url = _local_url(flags.get("listen-client-urls", "http://127.0.0.1:2379")) + "/health"
            cert = key = None
            if url.startswith("https"):
                cert, key = f"{pki}/etcd/healthcheck-client.crt", f"{pki}/etcd/healthcheck-client.key"
            status, body = _https_get(url, cert, key)
            return status == 200 and '"health":"true"' in body.replace(" ", ""), f"etcd {url}: {status} {body[:120]}"
        if component == "kube-apiserver":
            port = flags.get("secure-port", "6443")
            status, body = _https_get(
                f"https://127.0.0.1:{port}/readyz",
                f"{pki}/apiserver-kubelet-client.crt",
                f"{pki}/apiserver-kubelet-client.key",
            )
            ok = status == 200 or (serving_only and status in (401, 403))
            return ok, f"kube-apiserver /readyz: {status} {body[:120]}"
        port = flags.get("secure-port", str(HEALTH_PORTS[component]))
        status, body = _https_get(f"https://127.0.0.1:{port}/healthz")
        return status == 200 and body.strip() == "ok", f"{component} /healthz: {status} {body[:120]}"
    except (OSError, ssl.SSLError, ValueError) as exc:
        return False, f"{component}: {exc}"


def _local_url(urls):
    candidates = urls.split(",")
    for url in candidates:
        if "127.0.0.1" in url or "localhost" in url:
            return url.rstrip("/")
    return candidates[0].rstrip("/")


def wait_healthy(component, flags, params, timeout, serving_only=False, tick=None, replaced_pid=None):
    """Wait until a process other than ``replaced_pid`` runs with ``flags`` and answers
    healthy twice, 2 s apart; ``tick()`` runs on every round."""
    deadline = time.monotonic() + timeout
    detail, passes = "not checked", 0
    while time.monotonic() < deadline:
        if tick:
            tick()
        proc = processes().get(component)
        if proc is None or proc["pid"] == replaced_pid:
            detail, passes = f"{component} has not been restarted yet", 0
        elif flaglib.parse_argv(proc["argv"])[1] != flags:
            detail, passes = f"{component} is not running with the new flags yet", 0
        else:
            ok, detail = health(component, flags, params, serving_only)
            passes = passes + 1 if ok else 0
            if passes >= 2:
                return True, detail
        time.sleep(2 if passes else 1)
    return False, detail


# ---------------------------------------------------------------- applying


def _systemctl(*args):
    rc, out, err = _run(["systemctl", *args], timeout=120)
    if rc != 0:
        raise KubeguardError("", f"systemctl {' '.join(args)} failed: {(err or out).strip()}")


def _restart(component, layout):
    """systemd: queue the unit's restart and return. The caller's health wait decides
    whether it worked: a blocking restart of a Type=notify unit whose new process
    dies fails the systemctl call itself, before any rollback could run, and it
    would also leave no room to bound an old apiserver's drain. Static pods: the
    kubelet recreates the pod when its manifest changes."""
    if layout != "systemd":
        return
    _systemctl("daemon-reload")
    running = processes().get(component)
    if component == "kube-apiserver" and running and not etcd_reachable(running["argv"]):
        # Cut off from etcd (it just moved to TLS), the old process can finish no request:
        # a graceful stop would hold the API down for up to --request-timeout while it drains.
        _systemctl("kill", "--signal=SIGKILL", f"{component}.service")
    # A unit that was crash-looping (an operator's rerun to fix it) may have hit its start
    # limit, and systemd would refuse this start too.
    _systemctl("reset-failed", f"{component}.service")
    _systemctl("restart", "--no-block", f"{component}.service")


class DrainBound:
    """A kube-apiserver started without --shutdown-watch-termination-grace-period
    holds its open watches on SIGTERM until it is killed: systemd's TimeoutStopSec
    (90 s) or, for a kubeadm static pod, the pod's terminationGracePeriodSeconds
    (30 s), and the API is down all that time. Once the old process has stopped
    listening (it got SIGTERM), it gets the drain the new flag gives, plus 2 s for
    in-flight requests, then SIGKILL."""

    def __init__(self, pid, argv, port, grace):
        self.pid, self.argv, self.port, self.grace = pid, argv, int(port), grace
        self.since = None
        self.killed_after = None

    @classmethod
    def for_restart(cls, params):
        running = processes().get("kube-apiserver")
        if not running:
            return None
        old_flags = flaglib.parse_argv(running["argv"])[1]
        if "shutdown-watch-termination-grace-period" in old_flags:
            return None  # it bounds its own drain
        port = int(old_flags.get("secure-port", "6443"))
        if not _listening(port):
            return None  # not reachable on loopback: "stopped listening" could not be told apart
        grace = desired.seconds(params["shutdown_watch_termination_grace_period"]) + 2
        return cls(running["pid"], running["argv"], port, grace)

    def __call__(self):
        if self.pid is None:
            return
        raw = _read(f"/proc/{self.pid}/cmdline", binary=True)
        if raw == b"":
            return  # a zombie, or a process between fork and exec: look again next round
        if raw is None or raw.rstrip(b"\0").split(b"\0") != [a.encode() for a in self.argv]:
            self.pid = None  # gone (or the pid was reused): nothing to bound
            return
        if _listening(self.port):
            return  # not told to stop yet
        self.since = self.since or time.monotonic()
        if time.monotonic() - self.since >= self.grace:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.killed_after, self.pid = round(time.monotonic() - self.since, 1), None


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def etcd_reachable(argv):
    """Whether any of a running kube-apiserver's --etcd-servers answers /health the way
    that process dials it (its own client certificate for https://)."""
    flags = flaglib.parse_argv(argv)[1]
    context = None
    if "https://" in flags.get("etcd-servers", ""):
        try:
            context = ssl.create_default_context(cafile=flags.get("etcd-cafile"))
            context.load_cert_chain(flags.get("etcd-certfile"), flags.get("etcd-keyfile"))
        except (OSError, TypeError, ValueError, ssl.SSLError):
            return True  # unknown: keep the graceful stop
    for url in filter(None, flags.get("etcd-servers", "").split(",")):
        with contextlib.suppress(OSError, ValueError, ssl.SSLError):
            _request(url.rstrip("/") + "/health", context if url.startswith("https") else None, timeout=2)
            return True
    return False


def _write_all(files):
    for path, (content, mode) in files.items():
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            atomic_write(path, content.encode(), mode)


def _state_path(params, component):
    return os.path.join(params["state_dir"], f"{component}.rollback.json")


def _load_rollback(params, component):
    text = _read(_state_path(params, component))
    return {k: tuple(v) for k, v in json.loads(text).items()} if text else None


def etcd_peer_urls(before, after, params):
    """Move this member's registered peer URL to ``after``'s scheme before the restart
    (``member update`` through the client API), so peers dial it the new way."""
    want = after.get("initial-advertise-peer-urls")
    if not want or before.get("initial-advertise-peer-urls") == want:
        return False
    url = _local_url(before.get("listen-client-urls", "http://127.0.0.1:2379"))
    context = ssl.create_default_context(cafile=f"{params['pki_dir']}/etcd/ca.crt") if url.startswith("https") else None
    if context:
        context.check_hostname = False
        context.load_cert_chain(
            f"{params['pki_dir']}/etcd/healthcheck-client.crt", f"{params['pki_dir']}/etcd/healthcheck-client.key"
        )

    def post(path, body):
        return json.loads(_request(url + path, context, body))

    try:
        members = post("/v3/cluster/member/list", {}).get("members", [])
        me = [m for m in members if m.get("name") == after.get("name")]
        if not me or me[0].get("peerURLs") == want.split(","):
            return False
        post("/v3/cluster/member/update", {"ID": me[0]["ID"], "peerURLs": want.split(",")})
    except (OSError, ValueError, KeyError) as exc:
        raise KubeguardError("", f"etcd member update to {want} failed: {exc}") from None
    return True


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
    argv = flaglib.render_argv(conf["argv"][0], new_flags)
    files = {}
    if conf["layout"] == "systemd":
        files[conf["source"]] = (flaglib.render_dropin(argv, DROPIN_HEADER, service_lines), 0o600)
    elif conf["layout"] == "static-pod":
        import yaml  # present: gather parsed the manifest with it

        pod = _load_yaml(_read(conf["source"]) or "", conf["source"])
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
        manifest.validate_pod(new_pod, conf["source"])
        text = yaml.safe_dump(new_pod, default_flow_style=False, sort_keys=False)
        files[conf["source"]] = (text if new_pod != pod else _read(conf["source"]), 0o600)
    else:
        raise KubeguardError("", f"{component} runs but neither a unit nor a manifest configures it")
    if component == "kube-apiserver":
        # Not secret, and readable like the rest of /etc/kubernetes outside keys and kubeconfigs.
        files[new_flags["audit-policy-file"]] = (params["audit_policy"], 0o644)
        files[new_flags["admission-control-config-file"]] = (desired.admission_config(params), 0o644)
        # Contributed files can hold tokens and keys: root-only, like kubeadm's keys.
        files.update({path: (text, 0o600) for path, text in (params.get("contributed_files") or {}).items()})
    return conf, new_flags, files, sources


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
    rc, out, err = _run(
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
        text += contributed[path] if path in contributed else _read(path) or ""
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
    paths = manifest.anonymous_probe_paths(_load_yaml(_read(conf["source"]) or "", conf["source"]), "kube-apiserver")
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


def apply(params, check_mode):
    component = params["component"]
    conf = require_facts(params["facts"], "control_plane_facts", components=dict)["components"].get(component)
    if conf is None:
        return {"changed": False, "skipped_reason": f"{component} does not run on this node"}
    params = probe_anonymous(params)
    user, user_warning = etcd_user(conf, params) if component == "etcd" else (None, "")
    params = {**params, "etcd_user": user}
    conf, new_flags, files, sources = plan(component, params)
    data_dirs = _etcd_data_dirs(new_flags) if user else []
    unowned = _unowned(data_dirs, user) if user else []
    before = {path: _read(path) for path in files}
    changed_files = sorted(p for p, (content, _unused) in files.items() if before[p] != content)
    modes_fixed = sorted(p for p, (_unused, mode) in files.items() if before[p] is not None and file_mode(p) != mode)
    pending = conf["running_flags"] != new_flags
    result = {
        "changed": bool(changed_files or pending or modes_fixed or unowned),
        "component": component,
        "layout": conf["layout"],
        "changed_files": changed_files,
        "modes_fixed": modes_fixed,
        "flag_changes": flaglib.diff_lines(conf["running_flags"] or conf["flags"], new_flags),
        "restarted": False,
        "warnings": (desired.below_cis(params) + params.get("probe_warnings", []))
        if component == "kube-apiserver"
        else [w for w in [user_warning] if w],
    }
    if component == "etcd":
        result["user"] = user or "root"
        result["data_dir_entries_chowned"] = len(unowned)
    result["diff"] = {
        "before": "\n".join(f"--{k}={v}" for k, v in sorted((conf["running_flags"] or conf["flags"]).items())) + "\n",
        "after": "\n".join(f"--{k}={v}" for k, v in sorted(new_flags.items())) + "\n",
        "before_header": f"{component} flags",
        "after_header": f"{component} flags ({', '.join(changed_files) or 'restart only'})",
    }
    if not result["changed"]:
        return result
    check_known_flags(component, new_flags, conf["binary"], params)
    check_pki(component, {k: sources.get(v, v) for k, v in new_flags.items()}, params, writing=files)
    if check_mode:
        return result
    rollback = _load_rollback(params, component)
    if rollback is None:
        # An interrupted earlier run left its "before" here; that one is the last known good.
        rollback = {p: (before[p], mode) for p, (_unused, mode) in files.items()}
        os.makedirs(params["state_dir"], mode=0o700, exist_ok=True)
        atomic_write(_state_path(params, component), json.dumps(rollback).encode(), 0o600)
    if component == "etcd":
        etcd_peer_urls(conf["flags"], new_flags, params)
    if component == "kube-apiserver":
        os.makedirs(os.path.dirname(params["audit_log_path"]), mode=0o700, exist_ok=True)
    if user:
        ensure_etcd_user(check_mode=False)
        if unowned:
            _own_trees(data_dirs, user)
    drain = DrainBound.for_restart(params) if component == "kube-apiserver" else None
    start = time.monotonic()
    _write_all(files)
    replaced_pid = None
    if changed_files or pending:
        replaced_pid = (processes().get(component) or {}).get("pid")
        _restart(component, conf["layout"])
        result["restarted"] = True
    ok, detail = wait_healthy(
        component, new_flags, params, params["health_timeout"], tick=drain, replaced_pid=replaced_pid
    )
    if drain and drain.killed_after is not None:
        result["old_process_killed_after_drain_seconds"] = drain.killed_after
    result["restart_seconds"] = round(time.monotonic() - start, 1)
    if not ok:
        _write_all(rollback)
        _restart(component, conf["layout"])
        old_flags = _flags_of_files(component, conf, rollback)
        back, back_detail = wait_healthy(component, old_flags, params, params["health_timeout"], serving_only=True)
        _clear_rollback(params, component)
        raise KubeguardError(
            desired.var("health_timeout"),
            f"{component} did not become healthy within {params['health_timeout']} s ({detail}); "
            f"the previous configuration was restored and {'is healthy' if back else 'is NOT healthy: ' + back_detail}",
        )
    _clear_rollback(params, component)
    return result


def _clear_rollback(params, component):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_state_path(params, component))


def _flags_of_files(component, conf, files):
    """The flags the restored files configure (what the rolled-back process runs with)."""
    content = (files.get(conf["source"]) or (None,))[0]
    if conf["layout"] == "static-pod" and content:
        return manifest.flags_of(_load_yaml(content, conf["source"]), component)
    if conf["layout"] == "systemd":
        unit = unit_state(component) or {}
        sources = [unit.get("FragmentPath", conf["unit_file"]), *unit.get("DropInPaths", "").split()]
        return flaglib.parse_argv(flaglib.exec_start("\n".join(_read(p) or "" for p in sources)))[1]
    return conf["flags"]


# ---------------------------------------------------------------- CIS 1.1 files


def fix_files(params, check_mode):
    """Bring the CIS 1.1.x files to their modes and owners; create the etcd user if needed."""
    fixed = []
    require_facts(params["facts"], "control_plane_facts", files=list)
    needs_etcd = any(f["want_owner"] == ETCD_USER for f in params["facts"]["files"])
    created_user = ensure_etcd_user(check_mode) if needs_etcd else False
    for entry in params["facts"]["files"]:
        state = file_state(entry["path"])
        if not state["exists"]:
            continue
        want_mode = entry["want_mode"]
        mode_bad = want_mode is not None and not _mode_ok(state["mode"], want_mode)
        owner_bad = state["owner"] != entry["want_owner"]
        if not (mode_bad or owner_bad):
            continue
        fixed.append({"path": entry["path"], "mode": state["mode"], "owner": state["owner"], "cis": entry["cis"]})
        if check_mode:
            continue
        user = pwd.getpwnam(entry["want_owner"])
        if mode_bad:
            os.chmod(entry["path"], int(want_mode, 8))
        if owner_bad:
            _chown_tree(entry["path"], user.pw_uid, user.pw_gid, recursive=entry["want_owner"] == ETCD_USER)
    return {"changed": bool(fixed or created_user), "fixed": fixed, "created_etcd_user": created_user}


def _chown_tree(path, uid, gid, recursive):
    os.chown(path, uid, gid, follow_symlinks=False)
    if recursive and os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            for name in dirs + names:
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def ensure_etcd_user(check_mode):
    """Create the ``etcd`` system user when missing; whether it was (or would be) created."""
    try:
        pwd.getpwnam(ETCD_USER)
        return False
    except KeyError:
        pass
    if not check_mode:
        rc, out, err = _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ETCD_USER])
        if rc != 0:
            raise KubeguardError("", f"useradd {ETCD_USER} failed: {(err or out).strip()}") from None
    return True


def _etcd_data_dirs(flags):
    return [flags[name] for name in ("data-dir", "wal-dir") if flags.get(name)]


def _unowned(paths, user):
    """Entries of the trees at ``paths`` not owned by ``user`` (a missing user owns nothing;
    a missing tree is one entry: it is created for ``user``)."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        uid = None
    found = []
    for top in paths:
        if not os.path.lexists(top):
            found.append(top)
            continue
        for root, _dirs, names in os.walk(top):
            found.extend(p for p in [root, *(os.path.join(root, n) for n in names)] if os.lstat(p).st_uid != uid)
    return found


def _own_trees(paths, user):
    """Give ``user`` the data trees etcd as root wrote, before it restarts as ``user``."""
    entry = pwd.getpwnam(user)
    for top in paths:
        if not os.path.lexists(top):
            os.makedirs(top, mode=0o700)
        _chown_tree(top, entry.pw_uid, entry.pw_gid, recursive=True)
