# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a component's real health as its own flags configure it, what an
old apiserver's drain needs, and etcd's client API (reachability, member update)."""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import urllib.error
import urllib.request

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags as flaglib
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane.gather import processes
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._http import http_open
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import restart

HEALTH_PORTS = {"kube-controller-manager": 10257, "kube-scheduler": 10259}


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


def _etcd_client(flags, params):
    """This member's local client URL and the TLS context its healthcheck client dials with."""
    url = _local_url(flags.get("listen-client-urls", "http://127.0.0.1:2379"))
    context = ssl.create_default_context(cafile=f"{params['pki_dir']}/etcd/ca.crt") if url.startswith("https") else None
    if context:
        context.check_hostname = False  # members are dialled by IP; the etcd CA is what is checked
        context.load_cert_chain(
            f"{params['pki_dir']}/etcd/healthcheck-client.crt", f"{params['pki_dir']}/etcd/healthcheck-client.key"
        )
    return url, context


def _member_healthy(member, context):
    for url in member.get("clientURLs") or []:
        with contextlib.suppress(OSError, ValueError, ssl.SSLError):
            if '"health":"true"' in _request(url.rstrip("/") + "/health", context, timeout=3).replace(" ", ""):
                return True
    return False


def _etcd_members(flags, params):
    """``(members, down, need)`` as this member's client API lists them: every member, the names of those
    that do not answer /health, and how many members a quorum needs. Raises OSError/ValueError/ssl.SSLError
    when this member does not answer."""
    url, context = _etcd_client(flags, params)
    members = json.loads(_request(url + "/v3/cluster/member/list", context, {})).get("members", [])
    down = sorted(m.get("name") or str(m.get("ID")) for m in members if not _member_healthy(m, context))
    return members, down, len(members) // 2 + 1


def etcd_quorum_without_me(flags, params):
    """``(ok, detail)`` before this member restarts: whether enough of the other members answer
    /health to keep the cluster's quorum while it is down. A single member, or one that does not
    answer itself (its restart takes nothing more away), has nothing to keep."""
    try:
        members, down, need = _etcd_members(flags, params)
    except (OSError, ValueError, ssl.SSLError) as exc:
        return True, f"this member does not answer ({exc})"
    if len(members) < 2:
        return True, "a single member"
    others = [m for m in members if m.get("name") != flags.get("name")]
    down = [name for name in down if name != flags.get("name")]
    detail = (
        f"{len(others) - len(down)} of the other {len(others)} etcd members answer /health"
        f"{' (down: ' + ', '.join(down) + ')' if down else ''}; {need} of {len(members)} keep the quorum"
    )
    return len(others) - len(down) >= need, detail


def etcd_quorum(flags, params):
    """``(ok, detail)`` after this member restarted: it answers the member list, and at least a quorum
    of the members (itself included) answer /health."""
    try:
        members, down, need = _etcd_members(flags, params)
    except (OSError, ValueError, ssl.SSLError) as exc:
        return False, f"this etcd member does not answer its member list ({exc})"
    up = len(members) - len(down)
    detail = f"{up} of {len(members)} etcd members answer /health{' (down: ' + ', '.join(down) + ')' if down else ''}"
    return up >= need, f"{detail}; {need} keep the quorum"


def etcd_peer_urls(before, after, params, clock=None, sleep=None):
    """Move this member's registered peer URL to ``after``'s scheme before the restart
    (``member update`` through the client API), so peers dial it the new way.

    The update is a raft proposal: on a loaded cluster it can outlast one request's timeout and still
    be applied. A request that fails to connect or times out is retried, the member list read again
    first, until ``health_timeout``; True when this call moved the URL."""
    want = after.get("initial-advertise-peer-urls")
    if not want or before.get("initial-advertise-peer-urls") == want:
        return False
    clock, sleep = clock or time.monotonic, sleep or time.sleep
    url, context = _etcd_client(before, params)
    urls = want.split(",")
    timeout = params.get("health_timeout", 120)
    deadline = clock() + timeout

    def post(path, body):
        return json.loads(_request(url + path, context, body))

    asked = False
    while True:
        try:
            members = post("/v3/cluster/member/list", {}).get("members", [])
            me = [m for m in members if m.get("name") == after.get("name")]
            if not me or me[0].get("peerURLs") == urls:
                return asked
            asked = True
            post("/v3/cluster/member/update", {"ID": me[0]["ID"], "peerURLs": urls})
            return True
        except (ValueError, KeyError) as exc:
            raise KubeguardError("", f"etcd member update to {want} failed: {exc}") from None
        except OSError as exc:
            if clock() > deadline:
                raise KubeguardError(
                    desired.var("health_timeout"),
                    f"etcd member update to {want} did not complete within {timeout} s ({exc}); etcd was not restarted",
                ) from None
            sleep(2)


def drain_bound(params):
    """The running apiserver's drain bound for this restart (see _node.restart.DrainBound):
    the drain the new --shutdown-watch-termination-grace-period gives, plus 2 s."""
    grace = desired.seconds(params["shutdown_watch_termination_grace_period"]) + restart.IN_FLIGHT_SECONDS
    return restart.DrainBound.for_apiserver(processes().get("kube-apiserver"), grace)
