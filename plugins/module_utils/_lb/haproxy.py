# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: one server of an HAProxy backend, taken out
of rotation (``drain``) or put back (``ready``) through the runtime API.

``drain`` stops new connections at once (the health check keeps running, so
HAProxy still knows whether the server is up); ``ready`` puts the server back
and, with ``wait``, returns once HAProxy's own check reports it UP, so the
caller restarts the next apiserver only when this one takes traffic again.

A drain we make leaves a marker (one file per server under ``marker_dir``,
written before the ``set`` command, removed once ``ready`` saw the server UP),
so a run killed in between can be told from an operator's deliberate drain:
``heal`` puts back every marked server whose health check passes and refuses,
naming it, one whose check fails. With ``only_marked`` (the roles' calls),
``ready`` leaves a server drained without our marker as it is: an operator's
drain outlives the restart it straddles.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import urllib.parse

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files

# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced/inherited/config/resolver/health maintenance, drain.
MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
DRAIN_BITS = 0x08 | 0x10
RUNNING = 2  # srv_op_state SRV_ST_RUNNING: the health check passes
POLL_SECONDS = 0.5
NAME = re.compile(r"[A-Za-z0-9_.:-]+")  # HAProxy's proxy and server names
DEFAULT_MARKER_DIR = "~/.local/state/kubeguard/lb-drained"


def _address(runtime_api):
    """(family, address) of ``/path/to/socket``, ``host:port`` or ``[v6]:port``."""
    if runtime_api.startswith("/"):
        return socket.AF_UNIX, runtime_api
    host, sep, port = runtime_api.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KubeguardError("runtime_api", f"{runtime_api!r} is neither an absolute socket path nor host:port")
    return None, (host, int(port))


def command(runtime_api, line, timeout=5.0):
    """One runtime API command; its whole answer (the API closes after it)."""
    family, address = _address(runtime_api)
    try:
        if family == socket.AF_UNIX:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(timeout)
            conn.connect(address)
        else:
            conn = socket.create_connection(address, timeout=timeout)
        with contextlib.closing(conn):
            conn.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise KubeguardError("runtime_api", f"cannot reach HAProxy's runtime API at {runtime_api}: {exc}") from exc
    return b"".join(chunks).decode(errors="replace")


def servers(runtime_api, backend):
    """{server name: {"op_state", "admin_state", "address"}} of ``backend`` (``show servers state``)."""
    answer = command(runtime_api, f"show servers state {backend}")
    fields, found = None, {}
    for line in answer.splitlines():
        if line.startswith("# "):
            fields = line[2:].split()
        elif fields and line.strip() and not line.startswith("#"):
            row = dict(zip(fields, line.split()))
            if row.get("be_name") == backend:
                found[row["srv_name"]] = {
                    "op_state": int(row["srv_op_state"]),
                    "admin_state": int(row["srv_admin_state"]),
                    "address": row.get("srv_addr", ""),
                }
    if not found:
        # "Can't find backend." or a backend without servers.
        detail = answer.strip().splitlines()[0] if answer.strip() else "an empty answer"
        raise KubeguardError("backend", f"HAProxy at {runtime_api} has no backend {backend!r} with servers ({detail})")
    return found


def describe(server):
    """HAProxy's word for a server's state: MAINT, DRAIN (up or down) or UP/DOWN."""
    health = "UP" if server["op_state"] == RUNNING else "DOWN"
    if server["admin_state"] & MAINT_BITS:
        return "MAINT"
    if server["admin_state"] & DRAIN_BITS:
        return f"DRAIN ({health})"
    return health


def in_rotation(server):
    return server["op_state"] == RUNNING and not server["admin_state"] & (MAINT_BITS | DRAIN_BITS)


def _server(runtime_api, backend, name):
    found = servers(runtime_api, backend)
    if name not in found:
        raise KubeguardError("server", f"HAProxy backend {backend!r} has no server {name!r} (it has {sorted(found)})")
    return found, found[name]


def drained(server):
    return bool(server["admin_state"] & (MAINT_BITS | DRAIN_BITS))


def _marker_root(params):
    """The directory holding this runtime API's and backend's markers (one file per server we drained)."""
    root = os.path.expanduser(params["marker_dir"])
    if not os.path.isabs(root):
        raise KubeguardError("marker_dir", f"{params['marker_dir']!r} is not an absolute path (or ~/...)")
    backend = params["backend"]
    if not NAME.fullmatch(backend) or backend in (".", ".."):
        raise KubeguardError("backend", f"{backend!r} is not an HAProxy backend name")
    # One controller may drive several load balancers: the runtime API's address is part of the key.
    return os.path.join(root, urllib.parse.quote(params["runtime_api"], safe=""), backend)


def marked(params):
    """The servers of ``backend`` this module drained and has not put back (their markers), sorted."""
    root = _marker_root(params)
    try:
        return sorted(n for n in os.listdir(root) if NAME.fullmatch(n) and n not in (".", ".."))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KubeguardError("marker_dir", f"cannot list the drain markers in {root}: {exc}") from exc


def _set_marker(path, present, params):
    """Write (atomically) or remove the marker that says this module drained the server."""
    content = None
    if present:
        content = json.dumps(
            {"runtime_api": params["runtime_api"], "backend": params["backend"], "drained_at": time.time()}
        )
    try:
        files.write_all({path: (content, 0o600)})
    except OSError as exc:
        raise KubeguardError(
            "marker_dir", f"cannot {'write' if present else 'remove'} the drain marker {path}: {exc}"
        ) from exc


def _lines(backend, name, state, marker):
    return f"{backend}/{name}: {state}\n" + (f"drained by kubeguard (marker {marker})\n" if marker else "")


def _ready(params, name, clock, sleep):
    """``set server ... state ready`` (when drained), then with ``wait`` poll until HAProxy reports the server UP."""
    api, backend = params["runtime_api"], params["backend"]
    _unused, server = _server(api, backend, name)
    if drained(server):
        _set_state(api, backend, name, "ready")
    if not params["wait"]:
        return server
    deadline = clock() + params["timeout"]
    while True:
        _unused, server = _server(api, backend, name)
        if in_rotation(server):
            return server
        if clock() >= deadline:
            raise KubeguardError(
                "timeout",
                f"{backend}/{name} is back in rotation but HAProxy's health check has not reported it UP "
                f"within {params['timeout']} s (it is {describe(server)})",
            )
        sleep(POLL_SECONDS)


def _set_state(api, backend, name, wanted):
    answer = command(api, f"set server {backend}/{name} state {wanted}").strip()
    if answer:
        raise KubeguardError("state", f"HAProxy refused 'set server {backend}/{name} state {wanted}': {answer}")


def run(params, check_mode, clock=time.monotonic, sleep=time.sleep):
    if params["state"] == "heal":
        return heal(params, check_mode, clock, sleep)
    api, backend, name, wanted = params["runtime_api"], params["backend"], params.get("server"), params["state"]
    if not name:
        raise KubeguardError("server", f"required with state={wanted}")
    found, server = _server(api, backend, name)
    marker = os.path.join(_marker_root(params), name)
    had_marker = os.path.exists(marker)
    before = describe(server)
    # only_marked: a drain without our marker is someone else's, and ready leaves it in place.
    theirs = wanted == "ready" and params.get("only_marked") and drained(server) and not had_marker
    changed = drained(server) != (wanted == "drain") and not theirs
    # A drain marks only the drain it makes (an operator's drain stays the operator's); ready clears it.
    wants_marker = had_marker if wanted == "drain" and not changed else wanted == "drain"
    result = {"changed": changed or had_marker != wants_marker, "server": name, "backend": backend}
    result.update(before=before, state=before, marker=marker if wants_marker else "")
    after = ("DRAIN" if wanted == "drain" else "READY") if changed else before
    result["diff"] = {
        "before": _lines(backend, name, before, marker if had_marker else ""),
        "after": _lines(backend, name, after, marker if wants_marker else ""),
    }
    if wanted == "drain":
        others = sorted(n for n, s in found.items() if n != name and in_rotation(s))
        result["others_in_rotation"] = others
        if changed and not others:
            # Draining the last server in rotation is the outage the drain exists to avoid.
            raise KubeguardError(
                "server", f"refusing to drain {backend}/{name}: no other server of {backend!r} is UP and in rotation"
            )
    if theirs:
        result["warnings"] = [f"{backend}/{name} is {before} without kubeguard's drain marker: left drained"]
    if check_mode:
        return result
    if theirs:
        server = _await_check(params, name, server, clock, sleep)
    elif wanted == "drain":
        if changed:
            # The marker first: a run killed between the two leaves a marker on a server in
            # rotation (the next heal drops it), never our drain without its marker.
            _set_marker(marker, True, params)
            _set_state(api, backend, name, "drain")
        server = _server(api, backend, name)[1]
    else:
        server = _ready(params, name, clock, sleep)
        if had_marker:
            _set_marker(marker, False, params)
    result["state"] = describe(server)
    return result


def _await_check(params, name, server, clock, sleep):
    """With ``wait``, until HAProxy's health check passes on ``name``, which stays drained: the caller's
    next restart waits for this apiserver even while it takes no traffic. HAProxy does not check a
    server in maintenance, so that one is not waited for."""
    if not params["wait"] or server["admin_state"] & MAINT_BITS:
        return server
    checked = _healthy(params, name, server, False, clock, sleep)
    if checked is None:
        raise KubeguardError(
            "timeout",
            f"{params['backend']}/{name} stays drained (not by kubeguard) and HAProxy's health check has not "
            f"reported it UP within {params['timeout']} s",
        )
    return checked


def _healthy(params, name, server, check_mode, clock, sleep):
    """The drained ``name`` as last read once HAProxy's health check passes on it, waiting up to ``timeout``
    (a restart the killed run left under way) unless in check mode; None if it does not pass. The server
    stays drained meanwhile."""
    deadline = clock() + params["timeout"]
    while server["op_state"] != RUNNING:
        if check_mode or not params["wait"] or clock() >= deadline:
            return None
        sleep(POLL_SECONDS)
        server = _server(params["runtime_api"], params["backend"], name)[1]
    return server


def heal(params, check_mode, clock=time.monotonic, sleep=time.sleep):
    """Put back every server of ``backend`` a killed run left drained (its marker), waiting until each is UP.

    A marked server whose health check fails (``DRAIN (DOWN)``: its apiserver's /readyz) stays drained
    and the call fails naming it, after healing the others; a server without a marker is not looked at.
    """
    api, backend = params["runtime_api"], params["backend"]
    names = marked(params)
    result = {"changed": bool(names), "backend": backend, "marked": names, "healed": [], "warnings": []}
    result["diff"] = {"before": "", "after": ""}
    if not names:
        return result  # nothing of ours is drained: HAProxy is not even asked
    found, root, broken = servers(api, backend), _marker_root(params), []
    for name in names:
        marker, server = os.path.join(root, name), found.get(name)
        state = describe(server) if server else "absent"
        after = state
        if server is None or server["admin_state"] & MAINT_BITS:
            # Gone from the backend, or the operator put it in maintenance since: theirs now.
            result["warnings"].append(f"{backend}/{name} is {state}: dropping kubeguard's drain marker {marker}")
        elif server["admin_state"] & DRAIN_BITS and _healthy(params, name, server, check_mode, clock, sleep) is None:
            broken.append(f"{backend}/{name}")
            continue
        elif server["admin_state"] & DRAIN_BITS:
            after = "READY"
            result["healed"].append(name)
        result["diff"]["before"] += _lines(backend, name, state, marker)
        result["diff"]["after"] += _lines(backend, name, after, "")
        if not check_mode:
            if name in result["healed"]:
                _ready(params, name, clock, sleep)  # the marker goes only once HAProxy reports it UP
            _set_marker(marker, False, params)
    if broken:
        healed = f" (put back: {', '.join(result['healed'])})" if result["healed"] else ""
        raise KubeguardError(
            "server",
            f"{', '.join(broken)} left drained by an interrupted kubeguard run, but HAProxy's health check reports "
            f"it DOWN (waited {params['timeout']} s): not putting a broken apiserver back in rotation; repair it and "
            f"rerun{healed}",
        )
    return result
