#!/usr/bin/env python3
"""API availability while a command runs: polls a URL (``/readyz``) every
``--interval`` seconds with one short GET (no retry) and, when the command
ends, prints how many requests were made, how many failed, and the longest
gap between two successful answers (the start and end of the run count as
edges, so an API that never answered shows the whole run as its gap).

A request succeeds when it gets HTTP 200 (or one of ``--accept``: an
anonymous poll of a hardened apiserver gets 401, which still proves it
serves). With ``--kubeconfig`` it presents
that kubeconfig's client certificate (re-read whenever the file changes, since
a hardening run may rewrite it); without, it asks anonymously. The server's
certificate is not verified: this measures liveness, not trust. The loop is
bounded by ``--max-seconds`` and stops by itself when the command ends.

With ``--write-interval`` a second thread creates one small ConfigMap per
interval (no retry) in ``--write-namespace`` (an existing one) and, after the command, lists
them: every write the API acknowledged (201) must still be there (lost writes).
With ``--get-url`` a third thread GETs that URL (an API read) the same way.
With ``--kubectl`` the lab's shop/batch client logs over the run are counted
(lines that are not ``200 OK`` are failed requests).

Usage: .venv/bin/python bench/availability.py --url https://127.0.0.1:17543/readyz \
           --kubeconfig .lab/admin.kubeconfig -- ansible-playbook -i .lab/inventory.yml playbooks/site.yml
       (HA lab) ... --write-interval 0.1 --kubectl <lab binaries>/kubectl -- ansible-playbook ...
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def _field(text, name):
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == name and value.strip():
            return value.strip().strip("\"'")
    return ""


class Client:
    """One TLS context from a kubeconfig (or anonymous), rebuilt when the file changes."""

    def __init__(self, kubeconfig):
        self.kubeconfig, self.stamp, self.context = kubeconfig, None, None
        self.refresh()

    def refresh(self):
        stamp = os.stat(self.kubeconfig).st_mtime_ns if self.kubeconfig else 0
        if self.context is not None and stamp == self.stamp:
            return
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if self.kubeconfig:
            with open(self.kubeconfig) as handle:
                text = handle.read()
            cert, key = _field(text, "client-certificate-data"), _field(text, "client-key-data")
            if cert and key:
                with tempfile.TemporaryDirectory() as tmp:
                    pem = os.path.join(tmp, "identity.pem")
                    with open(os.open(pem, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
                        handle.write(base64.b64decode(cert) + b"\n" + base64.b64decode(key))
                    context.load_cert_chain(pem)
            elif _field(text, "client-certificate"):
                context.load_cert_chain(_field(text, "client-certificate"), _field(text, "client-key") or None)
        self.context, self.stamp = context, stamp

    def call(self, method, url, timeout, body=None):
        """HTTP status of one request (0: no answer) and its JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            self.refresh()
            with urllib.request.urlopen(request, timeout=timeout, context=self.context) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read(4096) or b"{}")  # a Status: its message says why
            except (OSError, ValueError):
                return exc.code, {}
        except (OSError, ValueError, ssl.SSLError, urllib.error.URLError) as exc:
            return _kind(exc), {}

    def ok(self, url, timeout, accept=(200,)):
        """``(ok, what, why)``: whether the GET succeeded, its HTTP status or error kind, and for an HTTP
        error the checks its body names as failed (/readyz: "etcd-readiness"), else ``""``."""
        try:
            self.refresh()
            with urllib.request.urlopen(url, timeout=timeout, context=self.context) as response:  # noqa: S310
                return response.status in accept, response.status, ""
        except urllib.error.HTTPError as exc:
            return exc.code in accept, exc.code, failed_checks(exc)
        except (OSError, ValueError, ssl.SSLError, urllib.error.URLError) as exc:
            return False, _kind(exc), ""


def failed_checks(error):
    """The checks a health endpoint's error body names ("[-]etcd-readiness failed: reason withheld"),
    comma-separated; else the body's first line (an API error's message)."""
    try:
        text = error.read(4096).decode(errors="replace")
    except (OSError, ValueError):
        return ""
    checks = [line[3:].split(" failed", 1)[0] for line in text.splitlines() if line.startswith("[-]")]
    return ",".join(checks) or text.strip().split("\n", 1)[0][:120]


def _kind(exc):
    """A failed request without an HTTP answer, named: "timeout", "ConnectionRefusedError", ..."""
    reason = getattr(exc, "reason", exc)
    return "timeout" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else type(reason).__name__


def poll(client, url, interval, timeout, stop, deadline, record, accept):
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        record.append((started, *client.ok(url, timeout, accept)))
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


# This run's label: its ConfigMaps are listed and deleted by it.
RUN = f"{os.getpid()}-{int(time.time())}"
SELECTOR = f"labelSelector=kubeguard-bench%3D{RUN}"


def write(client, api, namespace, interval, timeout, stop, deadline, acked, tried):
    """One small ConfigMap created per ``interval`` (no retry); ``acked`` keeps the
    numbers the API answered 201 for: each must still exist after the run."""
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        n += 1
        meta = {"name": f"kubeguard-bench-{RUN}-{n}", "namespace": namespace, "labels": {"kubeguard-bench": RUN}}
        body = {"metadata": meta, "data": {"n": str(n)}}
        status, reply = client.call("POST", f"{api}/api/v1/namespaces/{namespace}/configmaps", timeout, body)
        why = "" if status == 201 or not isinstance(reply, dict) else str(reply.get("message", ""))[:120]
        tried.append((started, status == 201, status, why))
        if status == 201:
            acked.append(n)
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def lost_writes(client, api, namespace, acked):
    """Acknowledged writes missing after the run (None: the list itself failed)."""
    status, body = client.call("GET", f"{api}/api/v1/namespaces/{namespace}/configmaps?{SELECTOR}", 30)
    if status != 200:
        return None
    present = {int(item["data"]["n"]) for item in body.get("items", []) if (item.get("data") or {}).get("n")}
    return sorted(set(acked) - present)


REQUEST_LINE = re.compile(r"\d\d:\d\d:\d\d ")


def parse_client_log(lines):
    """``(requests, failed)`` of a lab client's log: a request is a line that starts with its time
    (``HH:MM:SS <status line> <pod>``); what nc printed on stderr before it (``nc: can't connect ...``) is
    not a request but the reason, shown after the failed request's time."""
    requests, failed, reasons = 0, [], []
    for line in lines:
        if not REQUEST_LINE.match(line):
            reasons.append(line.strip())
            continue
        requests += 1
        if " 200 OK " not in line + " ":
            failed.append(" ".join([line.strip(), *(f"({reason})" for reason in reasons if reason)]))
        reasons = []
    return requests, failed


def client_failures(kubectl, kubeconfig, seconds, failed_lines=None):
    """{namespace: [logged requests, not 200]} of the lab workloads' clients over the run.

    ``failed_lines``, a dict, receives each namespace's failed requests as the client logged them
    ("12:04:31" alone is a request nc got no answer to within 3 s; nc's own message follows in
    parentheses), to place them in the run's log.
    """
    counts = {}
    for namespace in ("shop", "batch"):
        out = subprocess.run(
            [kubectl, "--kubeconfig", kubeconfig, "-n", namespace, "logs", "deployment/client", f"--since={seconds}s"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
        requests, failed = parse_client_log(out)
        counts[namespace] = [requests, len(failed)]
        if failed_lines is not None:
            failed_lines[namespace] = failed[:50]
    return counts


def _counts(items):
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def summary(record, start, end):
    """Requests, failures, the longest gap between successes (and where it began)."""
    edges = [start] + [t for t, ok, *_ in record if ok] + [end]
    gaps = [(b - a, a) for a, b in zip(edges, edges[1:])]
    longest, at = max(gaps) if gaps else (0.0, start)
    return {
        "requests": len(record),
        "failures": sum(1 for _, ok, *_ in record if not ok),
        # What each failure got: an HTTP status or an error kind ("timeout", "ConnectionRefusedError").
        "failure_kinds": _counts(str(what[0]) if what else "?" for _, ok, *what in record if not ok),
        # Why, where the answer said: "500 etcd-readiness" (the checks a /readyz body names as failed).
        "failure_reasons": _counts(f"{what[0]} {what[1]}" for _, ok, *what in record if not ok and what[1:2] != [""]),
        "longest_gap_seconds": round(longest, 1),
        "longest_gap_starts_after_seconds": round(at - start, 1),
        "seconds": round(end - start, 1),
        # Every gap of 2 s or more: (seconds into the run, length), to match against the run's log.
        "gaps_over_2s": [(round(at - start, 1), round(gap, 1)) for gap, at in gaps if gap >= 2],
        # Every failed request, seconds into the run (add started_at for the wall clock).
        "failures_at": [round(t - start, 1) for t, ok, *_ in record if not ok],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the URL to GET, e.g. https://127.0.0.1:PORT/readyz")
    parser.add_argument("--kubeconfig", help="present this kubeconfig's client certificate (else anonymous)")
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=1.0, help="per request, seconds")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop polling (and the command) after this")
    parser.add_argument("--accept", default="200", help="HTTP statuses that count as up, comma-separated")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--write-interval",
        type=float,
        default=0,
        help="also create a ConfigMap per this many seconds through the URL's server (needs --kubeconfig) "
        "and count acknowledged ones missing afterwards (0: no writer)",
    )
    parser.add_argument(
        "--write-namespace",
        default="default",
        help="an existing namespace (a new one would be a change for the hardening run); "
        "the writer's ConfigMaps are deleted afterwards",
    )
    parser.add_argument(
        "--get-url",
        help="also GET this URL every --interval (an API read such as /api/v1/namespaces/default: /readyz "
        'fails on purpose while an apiserver drains, a read does not); reported under "get"',
    )
    parser.add_argument("--kubectl", help="read the shop/batch clients' logs over the run with this kubectl")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run while polling")
    opts = parser.parse_args()
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    if not command:
        parser.error("give the command to run after --")
    client = Client(opts.kubeconfig)
    accept = tuple(int(code) for code in opts.accept.split(","))
    record, stop = [], threading.Event()
    start, started_at = time.monotonic(), time.time()
    deadline = start + opts.max_seconds
    thread = threading.Thread(
        target=poll,
        args=(client, opts.url, opts.interval, opts.timeout, stop, deadline, record, accept),
        daemon=True,
    )
    thread.start()
    api = "/".join(opts.url.split("/")[:3])
    reads, reader = [], None
    if opts.get_url:
        args = (Client(opts.kubeconfig), opts.get_url, opts.interval, opts.timeout, stop, deadline, reads, accept)
        reader = threading.Thread(target=poll, args=args, daemon=True)
        reader.start()
    acked, tried, writer = [], [], None
    if opts.write_interval:
        args = (Client(opts.kubeconfig), api, opts.write_namespace, opts.write_interval, opts.timeout)
        writer = threading.Thread(target=write, args=(*args, stop, deadline, acked, tried), daemon=True)
        writer.start()
    proc = subprocess.Popen(command)
    try:
        rc = proc.wait(timeout=opts.max_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    end = time.monotonic()
    stop.set()
    thread.join()
    result = {"command_rc": rc, "started_at": round(started_at, 1), **summary(record, start, end)}
    if reader is not None:
        reader.join()
        result["get"] = {k: v for k, v in summary(reads, start, end).items() if "starts_after" not in k}
    if writer is not None:
        writer.join()
        lost = lost_writes(client, api, opts.write_namespace, acked)
        written = summary(tried, start, end)
        result["writes"] = {
            "tried": len(tried),
            "acknowledged": len(acked),
            "lost": lost,
            "longest_gap_seconds": written["longest_gap_seconds"],
            "gaps_over_2s": written["gaps_over_2s"],
            "failures_at": written["failures_at"],
            "failure_kinds": written["failure_kinds"],
            "failure_reasons": written["failure_reasons"],
        }
        if lost is not None:
            client.call("DELETE", f"{api}/api/v1/namespaces/{opts.write_namespace}/configmaps?{SELECTOR}", 60)
    if opts.kubectl:
        result["clients_failed_lines"] = {}
        result["clients"] = client_failures(
            opts.kubectl, opts.kubeconfig, int(end - start) + 5, result["clients_failed_lines"]
        )
    if opts.json:
        print(json.dumps(result))
    else:
        print(
            f"requests={result['requests']} failures={result['failures']} "
            f"longest_gap={result['longest_gap_seconds']}s (starting {result['longest_gap_starts_after_seconds']}s "
            f"into the run) run={result['seconds']}s rc={rc}"
        )
        print("gaps >= 2 s (start, seconds):", result["gaps_over_2s"])
        if "get" in result:
            g = result["get"]
            print(f"get requests={g['requests']} failures={g['failures']} longest_gap={g['longest_gap_seconds']}s")
        if "writes" in result:
            w = result["writes"]
            lost = "unknown (list failed)" if w["lost"] is None else len(w["lost"])
            print(
                f"writes tried={w['tried']} acknowledged={w['acknowledged']} lost={lost} "
                f"longest_write_gap={w['longest_gap_seconds']}s gaps={w['gaps_over_2s']}"
            )
        if "clients" in result:
            print("clients [logged requests, failed]:", result["clients"])
            for namespace, lines in result["clients_failed_lines"].items():
                for line in lines:
                    print(f"  {namespace} client failed: {line!r}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
