# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: expiry report of a node's certificates and
kubeconfigs, the structured equivalent of ``kubeadm certs check-expiration``.

Certificates are read with the collection's one reader (_node/x509.py), so
the node needs python3-cryptography.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import x509
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _files, _kubeconfig, _model


def _file(layout):
    return layout.dest if layout.kind == "kubeconfig" else f"{layout.dest}.crt"


# Derived from _model.LAYOUT, in kubeadm's (alphabetical) order:
# (report name, root, path relative to the root, CA name).
CERTIFICATES = tuple(
    (entry.name, entry.root, _file(entry), entry.signer)
    for entry in sorted(_model.LAYOUT, key=lambda e: (e.root != "kubernetes", e.name))
    if entry.kind in ("leaf", "kubeconfig")
)
AUTHORITIES = tuple(sorted((e.name, e.dest) for e in _model.LAYOUT if e.kind == "ca"))


def _record(name, path, cert, now, renew_before, **extra):
    record = {"name": name, "path": path, "missing": cert is None, **extra}
    if cert is not None:
        left = cert.not_valid_after_utc - now
        record.update(
            expiration_date=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            residual_days=int(left.total_seconds() // 86400),
            residual_seconds=int(left.total_seconds()),
            expiring=left <= renew_before,
            subject=cert.subject_text,
        )
    return record


def _load_cert(path):
    data = _files.read(path)
    if data is None:
        return None
    if path.endswith(".conf"):
        parsed = _kubeconfig.parse(data)
        if parsed is None:
            raise ValueError(f"{path} is not a kubeconfig with embedded client certificate")
        data = parsed["cert"]
    return x509.load_pem(data)


def _load_or_flag(path, unreadable):
    """The certificate at ``path``; None when absent, or when unreadable (then listed in ``unreadable``)."""
    try:
        return _load_cert(path)
    except ValueError:
        unreadable.append(path)
        return None


# 100 years: beyond it no certificate lasts, and datetime cannot count much further
MAX_DAYS = 36500


def check_expiration(kubernetes_dir, kubelet_pki_dir, renew_before_days=30, now=None):
    """Return {'certificates': [...], 'certificate_authorities': [...], 'unreadable': [...]}.

    Only files present on the node are listed (a worker has no apiserver
    certificate), except that missing CAs with a present leaf are flagged.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    renew = datetime.timedelta(days=renew_before_days)
    certs, cas, unreadable = [], [], []
    roots = {"kubernetes": kubernetes_dir, "kubelet": kubelet_pki_dir}
    for name, root, rel, ca in CERTIFICATES:
        path = os.path.join(roots[root], rel)
        cert = _load_or_flag(path, unreadable)
        if cert is None:
            continue
        external = not os.path.exists(os.path.join(kubernetes_dir, dict(AUTHORITIES)[ca] + ".key"))
        certs.append(_record(name, path, cert, now, renew, ca_name=ca, externally_managed=external))
    for name, base in AUTHORITIES:
        path = os.path.join(kubernetes_dir, base + ".crt")
        cert = _load_or_flag(path, unreadable)
        if cert is None:
            continue
        external = not os.path.exists(os.path.join(kubernetes_dir, base + ".key"))
        cas.append(_record(name, path, cert, now, renew, externally_managed=external))
    return {"certificates": certs, "certificate_authorities": cas, "unreadable": unreadable}


def run(params, check_mode=False):
    """The cluster_pki_info module: read-only, so check mode changes nothing."""
    del check_mode
    if not 0 <= params["renew_before_days"] <= MAX_DAYS:
        raise KubeguardError("renew_before_days", f"must be a number of days from 0 to {MAX_DAYS}")
    report = check_expiration(params["kubernetes_dir"], params["kubelet_pki_dir"], params["renew_before_days"])
    return {"changed": False, **report}
