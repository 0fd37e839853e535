# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: one server of an HAProxy backend, taken out
of rotation (``drain``) or put back (``ready``) through the runtime API.

``drain`` stops new connections at once (the health check keeps running, so
HAProxy still knows whether the server is up); ``ready`` puts the server back
and, with ``wait``, returns once HAProxy's own check reports it UP, so the
caller restarts the next apiserver only when this one takes traffic again.
"""

from __future__ import annotations

import contextlib
import socket
import time

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced/inherited/config/resolver/health maintenance, drain.
MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
DRAIN_BITS = 0x08 | 0x10
RUNNING = 2  # srv_op_state SRV_ST_RUNNING: the health check passes
POLL_SECONDS = 0.5


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


def run(params, check_mode, clock=time.monotonic, sleep=time.sleep):
    api, backend, name, wanted = params["runtime_api"], params["backend"], params["server"], params["state"]
    found, server = _server(api, backend, name)
    before = describe(server)
    drained = bool(server["admin_state"] & (MAINT_BITS | DRAIN_BITS))
    changed = drained != (wanted == "drain")
    result = {"changed": changed, "server": name, "backend": backend, "before": before, "state": before}
    result["diff"] = {"before": f"{backend}/{name}: {before}\n", "after": f"{backend}/{name}: {before}\n"}
    if wanted == "drain":
        others = sorted(n for n, s in found.items() if n != name and in_rotation(s))
        result["others_in_rotation"] = others
        if changed and not others:
            # Draining the last server in rotation is the outage the drain exists to avoid.
            raise KubeguardError(
                "server", f"refusing to drain {backend}/{name}: no other server of {backend!r} is UP and in rotation"
            )
    if changed:
        result["diff"]["after"] = f"{backend}/{name}: {'DRAIN' if wanted == 'drain' else 'READY'}\n"
        if check_mode:
            return result
        answer = command(api, f"set server {backend}/{name} state {wanted}").strip()
        if answer:
            raise KubeguardError("state", f"HAProxy refused 'set server {backend}/{name} state {wanted}': {answer}")
    if wanted == "ready" and params["wait"] and not check_mode:
        deadline = clock() + params["timeout"]
        while True:
            _unused, server = _server(api, backend, name)
            if in_rotation(server):
                break
            if clock() >= deadline:
                raise KubeguardError(
                    "timeout",
                    f"{backend}/{name} is back in rotation but HAProxy's health check has not reported it UP "
                    f"within {params['timeout']} s (it is {describe(server)})",
                )
            sleep(POLL_SECONDS)
    if not check_mode:
        result["state"] = describe(_server(api, backend, name)[1])
    return result
