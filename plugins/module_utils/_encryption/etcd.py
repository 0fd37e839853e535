# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the proof in etcd, through etcd's v3 API (the JSON gateway every
etcd serves on its client URL), with the apiserver's own etcd client
certificate, so no etcdctl is needed on the node.

``scan`` reads every value under the encrypted resources' prefixes, page by
page, and counts them by encryption prefix (``k8s:enc:aescbc:v1:gen2-aescbc``
or ``plaintext``). Values never leave this module: only counts and key names
of stale objects do.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.request

from .._errors import KubeguardError
from .._http import http_open

PAGE = 500
ENC = re.compile(rb"^k8s:enc:([a-z0-9]+):v1:([^:]+):")


def _b64(raw):
    return base64.b64encode(raw).decode()


def _range_end(prefix):
    raw = bytearray(prefix)
    raw[-1] += 1
    return bytes(raw)


def label(value):
    match = ENC.match(value)
    if match:
        return f"k8s:enc:{match.group(1).decode()}:v1:{match.group(2).decode()}:"
    return "plaintext"


class Etcd:
    def __init__(self, endpoint, cafile, certfile, keyfile, timeout=15):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.requests = 0
        self.context = None
        if self.endpoint.startswith("https://"):
            self.context = ssl.create_default_context(cafile=cafile)
            self.context.check_hostname = False  # etcd's cert names the node; the CA pins who answers
            if certfile:
                self.context.load_cert_chain(certfile, keyfile)

    def range(self, key, range_end, limit):
        body = json.dumps({"key": _b64(key), "range_end": _b64(range_end), "limit": limit}).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the apiserver's own --etcd-servers
            self.endpoint + "/v3/kv/range", data=body, headers={"Content-Type": "application/json"}
        )
        self.requests += 1
        try:
            with http_open(request, timeout=self.timeout, context=self.context) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise KubeguardError("etcd_servers", f"cannot read etcd at {self.endpoint}: {exc}") from None


def scan(etcd, prefixes, page=PAGE):
    """{prefix: {label: count}} and up to 20 stale keys per label, reading values page by page."""
    counts, samples = {}, {}
    for prefix in prefixes:
        start, end = prefix.encode(), _range_end(prefix.encode())
        tally = counts.setdefault(prefix, {})
        while True:
            answer = etcd.range(start, end, page)
            kvs = answer.get("kvs") or []
            for kv in kvs:
                key = base64.b64decode(kv["key"])
                which = label(base64.b64decode(kv.get("value", "")))
                tally[which] = tally.get(which, 0) + 1
                sample = samples.setdefault(which, [])
                if len(sample) < 20:
                    sample.append(key.decode(errors="replace"))
            if not answer.get("more") or not kvs:
                break
            start = base64.b64decode(kvs[-1]["key"]) + b"\0"
    return counts, samples


def run(params, check_mode=False, etcd=None):
    servers = [s for s in (params.get("etcd_servers") or "").split(",") if s]
    if etcd is None:
        if not servers:
            raise KubeguardError("etcd_servers", "the apiserver's --etcd-servers is unknown")
        etcd = Etcd(servers[0], params.get("etcd_cafile"), params.get("etcd_certfile"), params.get("etcd_keyfile"))
    prefixes = dict(params["prefixes"])  # {resource: etcd prefix}
    for resource, prefix in prefixes.items():
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise KubeguardError(
                "prefixes", f"{resource}: {prefix!r} is not an etcd key prefix like /registry/secrets/"
            )
    if not isinstance(params.get("expected_prefix"), str) or not params["expected_prefix"]:
        raise KubeguardError("expected_prefix", "must be the value prefix of the current key, like k8s:enc:aescbc:v1:")
    counts, samples = scan(etcd, sorted(set(prefixes.values())))
    expected = params["expected_prefix"]
    totals = {}
    for tally in counts.values():
        for which, n in tally.items():
            totals[which] = totals.get(which, 0) + n
    stale = sum(n for which, n in totals.items() if which != expected)
    return {
        "changed": False,
        "expected_prefix": expected,
        "resources": sorted(prefixes),
        "checked": sum(totals.values()),
        "stale": stale,
        "counts": totals,
        "stale_keys": {which: keys for which, keys in samples.items() if which != expected},
        "etcd_requests": etcd.requests,
    }
