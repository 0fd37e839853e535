# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: restart the components whose PKI files
changed on a node, one at a time, each waiting for real health; on failure
put the previous files back (from the backups ``_install`` kept), restart
what was restarted, and fail naming the component.

Healthy means: the systemd unit is active and one of the component's health
URLs answers 200 (or 401/403, or demands a client certificate: the server is
up and serving TLS, only this probe is not authenticated). A component
without health URLs must stay active for ``settle`` seconds.
"""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._http import http_open
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _install, _model

# Dependencies first: etcd before the apiserver before its clients.
ORDER = (_model.ETCD, _model.APISERVER, _model.CONTROLLER_MANAGER, _model.SCHEDULER, _model.KUBELET)
_ALIVE_STATUSES = (200, 401, 403)


def systemctl(*argv):
    """Run systemctl; (returncode, stdout). A node without systemd has no units."""
    try:
        run = subprocess.run(["systemctl", *argv], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return run.returncode, run.stdout.strip()


def answers(url, timeout=2.0):
    """Whether the health URL says the component is up (see the module docstring)."""
    context = ssl.create_default_context()
    # A loopback liveness probe that sends no credentials: the serving
    # certificate is not what is being tested here.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with http_open(url, timeout=timeout, context=context) as response:
            return response.status in _ALIVE_STATUSES
    except urllib.error.HTTPError as exc:
        return exc.code in _ALIVE_STATUSES
    except urllib.error.URLError as exc:
        return "CERTIFICATE_REQUIRED" in str(exc.reason)
    except (OSError, ssl.SSLError) as exc:
        return "CERTIFICATE_REQUIRED" in str(exc)


class Restarter:
    """One node's restart sequence; the callables are injectable for unit tests."""

    def __init__(self, params, command=systemctl, probe=answers, sleep=time.sleep, clock=time.monotonic):
        self.services = params["services"]
        self.health = params.get("health_checks") or {}
        self.timeout = params["timeout"]
        self.settle = params.get("settle", 3)
        self.command, self.probe, self.sleep, self.clock = command, probe, sleep, clock

    def unit(self, component):
        name = self.services.get(component)
        return f"{name}.service" if name else None

    def exists(self, unit):
        code, out = self.command("show", "-p", "LoadState", "--value", unit)
        return code == 0 and out == "loaded"

    def wait_healthy(self, component, unit):
        """None when healthy within the timeout, else the last reason."""
        deadline = self.clock() + self.timeout
        urls = self.health.get(component) or []
        active_since = None
        while True:
            _unused, state = self.command("show", "-p", "ActiveState", "--value", unit)
            if state != "active":
                reason, active_since = f"the unit is {state or 'unknown'}", None
            elif urls:
                if any(self.probe(url) for url in urls):
                    return None
                reason = f"no health URL answered ({', '.join(urls)})"
            else:
                active_since = self.clock() if active_since is None else active_since
                if self.clock() - active_since >= self.settle:
                    return None
                reason = "the unit has not stayed active yet"
            if self.clock() >= deadline:
                return reason
            self.sleep(1)

    def restart(self, unit):
        code, out = self.command("restart", unit)
        return None if code == 0 else f"systemctl restart failed ({out})"


def run(params, check_mode=False, restarter=None):
    """The cluster_pki_restart module."""
    restarter = restarter or Restarter(params)
    backup_dir = params.get("backup_dir") or ""
    wanted = set(params["components"]) | set(_install.read_manifest(backup_dir)["components"])
    unknown = sorted(wanted - set(ORDER))
    if unknown:
        raise KubeguardError("components", f"unknown components {unknown}; known: {', '.join(ORDER)}")
    plan = [(c, restarter.unit(c)) for c in ORDER if c in wanted and restarter.unit(c)]
    plan = [(c, u) for c, u in plan if restarter.exists(u)]
    if check_mode:
        return {"changed": bool(plan), "restarted": [c for c, _unused in plan]}
    done = []
    for component, unit in plan:
        reason = restarter.restart(unit) or restarter.wait_healthy(component, unit)
        done.append((component, unit))
        if reason:
            _roll_back(backup_dir, restarter, done, component, unit, reason)
    if backup_dir:
        _install.clear(backup_dir)
    return {"changed": bool(done), "restarted": [c for c, _unused in done]}


def _roll_back(backup_dir, restarter, done, component, unit, reason):
    restored = _install.restore(backup_dir) if backup_dir else []
    after = []
    for other, other_unit in done:
        again = restarter.restart(other_unit) or restarter.wait_healthy(other, other_unit)
        after.append(f"{other} {'healthy' if again is None else 'STILL UNHEALTHY: ' + again}")
    if backup_dir:
        _install.clear(backup_dir)
    files = (
        f"restored the {len(restored)} previous file(s) ({', '.join(restored)})"
        if restored
        else "had no backup to restore"
    )
    raise KubeguardError(
        "components",
        f"{component} ({unit}) did not become healthy within {restarter.timeout} s after its certificates or "
        f"kubeconfigs changed: {reason}. Rolled back: {files}, then restarted {'; '.join(after)}. Fix what the new "
        "files break (see the unit's journal) before running again.",
    )
