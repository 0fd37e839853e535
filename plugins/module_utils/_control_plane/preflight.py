# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the candidate kube-apiserver command line and files, judged by the
installed kube-apiserver itself before the real one is restarted.

kube-apiserver validates every structured config while it builds its server
(AuthenticationConfiguration and AuthorizationConfiguration with their CEL
compiled by Kubernetes' own CEL environment, EncryptionConfiguration,
AdmissionConfiguration, the audit policy, every flag) before it opens a
connection to etcd. A throw-away instance started with the candidate files in
a private directory, an unreachable etcd (``https://127.0.0.1:1``) and a free
loopback port either exits with the error the real restart would have hit, or
gets past that point (it starts waiting for etcd), and is killed. Nothing of
the real apiserver is touched: it reads the node's keys and writes only under
its private directory.

Called on the node by ``apply`` (control_plane_component) through ``judge``,
for kube-apiserver only, when its command line or a file it reads would
change: after ``check_pki`` and before the first write, in check mode too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.gather import processes
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import read

UNREACHABLE_ETCD = "https://127.0.0.1:1"
# Seconds a throw-away instance gets to refuse the candidate (it takes 0.2-2 s on the lab).
TIMEOUT = 60.0
# Printed once authentication, authorization and admission are built, i.e. after every
# config was validated (kube-apiserver v1.34: it dials etcd earlier, so that is no sign).
PASSED = re.compile(r"Using reconciler: |Loaded \d+ validating admission controller")
# klog's error (one line, or a multi-line "err=<" block) and cobra's "Error:" carry the reason.
_BLOCK = re.compile(r"err=<\n(.*?)\n\s*>", re.S)
_QUOTED = re.compile(r'^[EF]\d{4} .*? err="((?:[^"\\]|\\.)*)"', re.M)
_REASON = re.compile(r"^(?:[EF]\d{4} [\d:.]+\s+\d+ \S+\] |Error: )(.*)$", re.M)
# Which role variable a refusal of each flag's file names (the file came from that role).
OWNER = {
    "authentication-config": "api_access_jwt_issuers",
    "authorization-config": "api_access_authorizers",
    "authentication-token-webhook-config-file": "api_access_webhook_token_authn",
    "encryption-provider-config": "encryption_at_rest_providers",
    "admission-control-config-file": "control_plane_event_rate_limits",
    "audit-policy-file": "control_plane_audit_policy_file",
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def throwaway_flags(flags, files, config_dir, workdir, port):
    """The candidate flags pointed at private copies of ``files`` and a harmless etcd/port/log."""
    root = config_dir.rstrip("/") + "/"
    copies = {}
    for path in files:
        if path.startswith(root):
            copies[path] = os.path.join(workdir, "config", path[len(root) :])
    fixed = {}
    for name, value in flags.items():
        value = str(value)
        for path, copy in copies.items():
            value = value.replace(path, copy)
        fixed[name] = value.replace(root, os.path.join(workdir, "config") + "/")
    fixed.update(
        {
            "etcd-servers": UNREACHABLE_ETCD,
            "secure-port": str(port),
            "bind-address": "127.0.0.1",
            "audit-log-path": os.path.join(workdir, "audit.log"),
            "cert-dir": os.path.join(workdir, "certs"),
        }
    )
    fixed.pop("audit-webhook-config-file", None)  # would send events to a real backend
    texts = {
        copy: str(files[path]).replace(root, os.path.join(workdir, "config") + "/") for path, copy in copies.items()
    }
    return fixed, texts


def reason(output):
    """The apiserver's own words for why it stopped (its last error lines)."""
    blocks = _BLOCK.findall(output)
    if blocks:
        return " ".join(blocks[-1].split())
    quoted = _QUOTED.findall(output)
    if quoted:
        return quoted[-1].replace('\\"', '"')
    found = [line.strip() for line in _REASON.findall(output) if line.strip()]
    if found:
        return "; ".join(found[-2:])
    tail = [line for line in output.strip().splitlines() if line.strip()]
    return tail[-1] if tail else "exited without a message"


# The apiserver's field paths of the api_access files, and the role variable paths they came from.
_FIELDS = (
    (
        re.compile(r"\bjwt\[(\d+)\]\.claimValidationRules\[(\d+)\]"),
        "api_access_jwt_issuers[{}].claim_validation_rules[{}]",
    ),
    (
        re.compile(r"\bjwt\[(\d+)\]\.userValidationRules\[(\d+)\]"),
        "api_access_jwt_issuers[{}].user_validation_rules[{}]",
    ),
    (re.compile(r"\bjwt\[(\d+)\]"), "api_access_jwt_issuers[{}]"),
    (
        re.compile(r"\bauthorizers\[(\d+)\](?:\.webhook)?\.matchConditions\[(\d+)\]"),
        "api_access_authorizers[{}].match_conditions[{}]",
    ),
    (re.compile(r"\bauthorizers\[(\d+)\]"), "api_access_authorizers[{}]"),
)


def owner(text, flags):
    """The role variable behind the file or flag the apiserver names in ``text``."""
    for pattern, template in _FIELDS:
        match = pattern.search(text)
        if match:
            return template.format(*match.groups())
    for name in sorted(OWNER, key=len, reverse=True):
        if name in text or (flags.get(name) and os.path.basename(flags[name]) in text):
            return OWNER[name]
    return "control_plane_apiserver_extra_flags"


def run(binary, flags, files, config_dir, timeout=TIMEOUT, workdir=None):
    """``(ok, output)`` of a throw-away kube-apiserver on the candidate ``flags``/``files``."""
    workdir = workdir or tempfile.mkdtemp(prefix="kubeguard-preflight-")
    os.chmod(workdir, 0o700)
    try:
        fixed, texts = throwaway_flags(flags, files, config_dir, workdir, free_port())
        for path, text in texts.items():
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(text)
        log = os.path.join(workdir, "apiserver.log")
        argv = [binary, *(f"--{k}={v}" for k, v in sorted(fixed.items()))]
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                time.sleep(0.2)
                with open(log, errors="replace") as handle:
                    output = handle.read()
                if PASSED.search(output):
                    return True, output  # what follows (it waits for etcd, then gives up) is no refusal
                if proc.poll() is not None:
                    return False, output
            return True, output  # still running, nothing refused: it is waiting for etcd
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check(binary, flags, files, config_dir, timeout=TIMEOUT):
    """Refuse the candidate when the installed kube-apiserver refuses it, naming the
    role variable behind the file it complains about. ``files`` maps node paths to
    contents (the ones this run writes)."""
    if not binary or not os.access(binary, os.X_OK):
        return None  # nothing to ask (facts found no binary): check_known_flags warned already
    ok, output = run(binary, flags, files, config_dir, timeout=timeout)
    if not ok:
        why = reason(output)
        raise KubeguardError(owner(why, flags), f"the installed kube-apiserver refuses the candidate: {why}")
    return output


def config_files(config_dir, writing):
    """What the candidate finds in ``config_dir``: the files there now (another role's,
    written by an earlier run and not contributed to this one, may still be named by a
    flag or by another file), overlaid with the ones this run writes (``{path: (content,
    mode)}``, as ``plan`` returns them)."""
    root = config_dir.rstrip("/") + "/"
    files = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            text = read(os.path.join(base, name))
            if text is not None:
                files[os.path.join(base, name)] = text
    files.update({path: content for path, (content, _mode) in writing.items() if path.startswith(root)})
    return files


def binary_of(conf, running=processes):
    """The binary to ask. A static pod's is its image's, which the gather named as
    ``/proc/<pid>/exe``: the pod running now (it may have been recreated since, and its
    old pid may name another process), or none."""
    path = (conf.get("binary") or {}).get("path") or ""
    if path.startswith("/proc/"):
        pod = running().get("kube-apiserver")
        return f"/proc/{pod['pid']}/exe" if pod else ""
    return path


def judge(conf, flags, writing, config_dir):
    """``check`` for one apply of kube-apiserver (``conf`` is its control_plane_facts
    entry, ``writing`` what the apply would write); the seconds it took, or None when
    the node has no binary to ask."""
    binary = binary_of(conf)
    if not binary or not os.access(binary, os.X_OK):
        return None
    started = time.monotonic()
    check(binary, flags, config_files(config_dir, writing), config_dir)
    return round(time.monotonic() - started, 1)
