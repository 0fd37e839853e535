# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""Write sshd_config and the moduli file behind their checks, with the dead-man rollback.

The entry points take the module's parameters, check mode and a ``node``
object with the four things they need from the node (an AnsibleModule has
them all): ``run_command(argv) -> (rc, out, err)``, ``backup_local(path)``,
``atomic_move(src, dest)`` and ``tmpdir``. The unit tests pass a fake.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import restart, system

from . import access, algorithms, config, moduli, node, validate

ROLLBACK_UNIT = "kubeguard-ssh-rollback"

# How sshd picks up a new config: with socket activation the socket owns the
# ports and starts sshd on demand, so restarting it applies listen changes
# (running sessions survive); otherwise reload (or start) the service.
RELOAD = """systemctl daemon-reload
if systemctl is-enabled --quiet '{service}.socket' 2>/dev/null || systemctl is-active --quiet '{service}.socket'; then
  systemctl stop '{service}.service'
  systemctl restart '{service}.socket'
else
  systemctl reload-or-restart '{service}.service'
fi
"""

RESTORE = """#!/bin/sh
# kubeguard.hardening ssh_hardening dead-man rollback: restores {path} and reloads sshd.
systemctl stop '{unit}.timer' 2>/dev/null
cp -p '{previous}' '{path}'
if [ -f '{state_dir}/socket-dropin.previous' ]; then
  cp -p '{state_dir}/socket-dropin.previous' '{dropin}'
elif [ -f '{state_dir}/socket-dropin.absent' ]; then
  rm -f '{dropin}'
fi
{reload}echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) restored {path} from {previous}" >> '{state_dir}/rollback.log'
logger -t {unit} "restored {path} from {previous}" || true
"""


def rollback_script(path, previous, service, state_dir, dropin):
    """The shell script the armed timer runs: restore the previous files, reload sshd, log."""
    return RESTORE.format(
        path=path,
        previous=previous,
        service=service,
        state_dir=state_dir,
        unit=ROLLBACK_UNIT,
        dropin=dropin,
        reload=RELOAD.format(service=service),
    )


def _sshd(node, args):
    rc, out, err = node.run_command(["sshd", *args])
    if rc != 0:
        detail = " ".join(err.split())
        raise KubeguardError(
            config.option_for_error(err), f"the candidate sshd_config is invalid (sshd {args[0]}): {detail}"
        )
    return out


def candidate_effective(node, content, account, connection):
    """Validate the candidate with ``sshd -t`` and return its effective config for the connection."""
    fd, tmp = tempfile.mkstemp(prefix="sshd_config.", dir=node.tmpdir)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    spec = config.connection_spec(
        account["name"], connection.get("host"), connection.get("addr"), connection.get("lport")
    )
    _sshd(node, ["-t", "-f", tmp])
    return config.parse_effective(_sshd(node, ["-T", "-f", tmp, "-C", spec]))


def check_access(effective, account, connection):
    """Refuse a candidate under which the connecting account would lose access."""
    acct = dict(account)
    files = node.expand_authorized_keys_files(
        config.first(effective, "authorizedkeysfile"), acct["name"], acct["home"], acct["uid"]
    )
    acct["key_types"] = node.read_key_types(files)
    problems = access.check(effective, acct, connection)
    if problems:
        reasons = [msg if var in msg else f"{msg} (set {var})" for msg, var in problems]
        raise KubeguardError(problems[0][1], "refusing to change sshd: " + "; ".join(reasons))


def arm_rollback(node, params, current):
    """Keep the previous files in ``state_dir`` and start the timer that restores them."""
    state_dir = params["state_dir"]
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    previous = os.path.join(state_dir, "sshd_config.previous")
    _files.atomic_write(previous, current.encode(), 0o600)
    dropin = params.get("socket_dropin") or config.socket_dropin(params["service"])
    for name in ("socket-dropin.previous", "socket-dropin.absent"):
        if os.path.exists(os.path.join(state_dir, name)):
            os.unlink(os.path.join(state_dir, name))
    if os.path.exists(dropin):
        shutil.copy2(dropin, os.path.join(state_dir, "socket-dropin.previous"))
    else:
        open(os.path.join(state_dir, "socket-dropin.absent"), "w").close()
    script = os.path.join(state_dir, "rollback.sh")
    content = rollback_script(params["path"], previous, params["service"], state_dir, dropin)
    _files.atomic_write(script, content.encode(), 0o700)
    # Through the node engine's systemctl, on the module's runner; a timer that is not there is fine.
    engine = restart.Engine(system.systemctl_with(node.run_command))
    engine.command("stop", f"{ROLLBACK_UNIT}.timer", f"{ROLLBACK_UNIT}.service")
    engine.command("reset-failed", f"{ROLLBACK_UNIT}.timer", f"{ROLLBACK_UNIT}.service")
    rc, _unused, err = node.run_command(
        [
            "systemd-run",
            f"--unit={ROLLBACK_UNIT}",
            "--description=kubeguard ssh_hardening dead-man rollback",
            f"--on-active={params['rollback_timeout']}s",
            "--timer-property=AccuracySec=1s",
            "/bin/sh",
            script,
        ]
    )
    if rc != 0:
        raise KubeguardError("ssh_hardening_rollback_timeout", f"cannot arm the rollback timer: {err.strip()}")
    return {"armed": True, "unit": ROLLBACK_UNIT, "timeout": params["rollback_timeout"], "script": script,
            "previous": previous}  # fmt: skip


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def sshd_config(params, check_mode, node):
    """Entry point of ``sshd_config``: render, validate, access-check, write, arm the rollback."""
    p = params
    if not shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        raise KubeguardError(None, "sshd not found; install openssh-server")
    validate.settings(p["settings"])
    selected = algorithms.select_all(p["algorithm_preferences"], p["supported_algorithms"], p["post_quantum_only"])
    settings, skipped = config.drop_unsupported(p["settings"], set(p["keywords"]))
    settings.update(selected)
    content = config.render(settings, p["header"], p["include"] or None, p["match_blocks"])
    current = _read(p["path"])

    effective = candidate_effective(node, content, p["account"], p["connection"])
    if p["access_check"]:
        check_access(effective, p["account"], p["connection"])

    dropins = config.discover_dropins([p["include"]] if p["include"] else [])
    result = {
        "changed": content != current,
        "algorithms": selected,
        "skipped_keywords": skipped,
        "shadowed": config.shadowed(dropins, settings),
        "effective": effective,
        "rollback": {"armed": False, "unit": ROLLBACK_UNIT, "timeout": p["rollback_timeout"]},
        "diff": {"before": current, "after": content, "before_header": p["path"], "after_header": p["path"]},
    }
    if result["changed"] and not check_mode:
        if p["backup"] and current:
            result["backup_file"] = node.backup_local(p["path"])
        if p["rollback_timeout"] > 0 and current:
            result["rollback"] = arm_rollback(node, p, current)
        _files.atomic_write(p["path"], content.encode(), 0o600, replace=node.atomic_move)
    return result


def sshd_moduli(params, check_mode, node):
    """Entry point of ``sshd_moduli``: keep only primes of at least ``min_bits``."""
    path, min_bits = params["path"], params["min_bits"]
    try:
        with open(path) as handle:
            current = handle.read()
    except OSError as exc:
        raise KubeguardError(
            "path", f"cannot read {path}: {exc}; set path or disable ssh_hardening_moduli_enabled"
        ) from exc
    wanted, kept, removed = moduli.filter_moduli(current, min_bits)
    result = {
        "changed": removed > 0,
        "kept": kept,
        "removed": removed,
        "diff": {"before": f"{kept + removed} moduli\n", "after": f"{kept} moduli (>= {min_bits} bits)\n"},
    }
    if result["changed"] and not check_mode:
        if params["backup"]:
            result["backup_file"] = node.backup_local(path)
        _files.atomic_write(path, wanted.encode(), 0o644, replace=node.atomic_move)
    return result
