# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the proofs the firewall keeps the cluster working, run on the node.

- the kubelet's path to the apiserver: with the kubelet's own kubeconfig,
  the node's Lease is renewed after the probe started (the kubelet got through)
  and the Node is Ready;
- DNS: an A query for a cluster name, sent to the cluster DNS Service (kube-proxy
  carries it to a CoreDNS pod, possibly on another node) answers with records.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import time
import urllib.error
from datetime import datetime, timezone

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet.api import NodeAPI


def _epoch(stamp):
    # Lease renewTime carries microseconds: 2026-12-05T03:01:02.123456Z
    stamp = stamp.rstrip("Z").split(".")[0]
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def kubelet_state(api, node_name):
    """``(lease renew epoch, Ready)`` seen with the kubelet's identity."""
    lease = api.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node_name}")
    node = api.get(f"/api/v1/nodes/{node_name}")
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in node.get("status", {}).get("conditions", [])
    )
    return _epoch(lease["spec"]["renewTime"]), ready


def dns_query(name, qtype=1):
    """A DNS query packet for ``name`` (A by default), recursion desired."""
    ident = random.randint(0, 0xFFFF)  # noqa: S311 - a query id, not a secret
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.rstrip(".").split("."))
    return ident, header + labels + b"\0" + struct.pack("!HH", qtype, 1)


def dns_answers(reply, ident):
    """``(rcode, answer count)`` of a reply to query ``ident``."""
    if len(reply) < 12:
        raise ValueError("short DNS reply")
    rid, flags, _qdcount, ancount, _nscount, _arcount = struct.unpack("!HHHHHH", reply[:12])
    if rid != ident or not flags & 0x8000:
        raise ValueError("not a reply to our query")
    return flags & 0x000F, ancount


# An hour: a proof that has not passed by then will not pass.
MAX_TIMEOUT = 3600


def resolve(server, name, timeout=3):
    ident, packet = dns_query(name)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, 53))
        reply, _unused = sock.recvfrom(4096)
    return dns_answers(reply, ident)


def run(params, clock=None, sleep=None, wall=None):
    """Entry point of ``node_os_probe``: wait until both proofs pass, or fail naming the one that did not."""
    # Looked up per call, not bound at import. The deadline runs on the monotonic
    # clock; the Lease's renewTime is wall-clock time, so it is compared with ``wall``.
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    wall = wall or time.time
    if not 0 < params["timeout"] <= MAX_TIMEOUT:
        raise KubeguardError("timeout", f"must be between 1 and {MAX_TIMEOUT} seconds, got {params['timeout']}")
    result = {"changed": False}
    deadline = clock() + params["timeout"]
    kubeconfig = params["kubeconfig"]
    if kubeconfig and not os.path.exists(kubeconfig):
        # Not a Kubernetes node yet (or an etcd-only host): nothing to prove with.
        result["warnings"] = [f"{kubeconfig} does not exist: the kubelet proof was skipped"]
        kubeconfig = ""
    if kubeconfig:
        api = NodeAPI(kubeconfig)
        started, last = wall(), "no answer yet"
        while True:
            try:
                renewed, ready = kubelet_state(api, params["node_name"])
                if renewed > started - 1 and ready:
                    result["kubelet"] = {"lease_renewed_after_s": round(renewed - started, 1), "ready": True}
                    break
                last = f"lease renewed {round(started - renewed, 1)} s before the probe, Ready={ready}"
            except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
                last = str(exc)
            if clock() > deadline:
                raise KubeguardError(
                    "node_os_firewall_probe_timeout",
                    f"the kubelet of {params['node_name']} did not renew its Lease at {api.server} "
                    f"within {params['timeout']} s ({last})",
                )
            sleep(1)
    if params["dns_server"]:
        last = "no answer yet"
        while True:
            try:
                rcode, count = resolve(params["dns_server"], params["dns_name"])
                if rcode == 0 and count > 0:
                    result["dns"] = {"server": params["dns_server"], "name": params["dns_name"], "answers": count}
                    break
                last = f"rcode {rcode}, {count} answers"
            except (OSError, ValueError) as exc:
                last = str(exc)
            if clock() > deadline:
                raise KubeguardError(
                    "node_os_firewall_cluster_dns",
                    f"{params['dns_server']} did not answer {params['dns_name']} within {params['timeout']} s ({last})",
                )
            sleep(1)
    return result
