# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the pure planning logic of the cluster PKI.

Given what is on disk (an ``Observed``, already reduced to plain facts) and
what is wanted (a ``_model.Item``), decide what to do and why. No I/O, no
cryptography, no clock: ``now`` is passed in, so check mode and the real run
take the very same decisions and the tables in the unit tests can pin them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

CREATED = "created"
OK = "ok"
DAY = datetime.timedelta(days=1)


@dataclass
class Observed:
    """Facts about one artefact on disk.

    ``files`` maps each file of the item to True (exists) / False (missing).
    ``meta`` is ``_crypto.describe()`` of the certificate when readable.
    """

    files: dict = field(default_factory=dict)
    readable: bool = True
    key_matches: bool = True
    key_algorithm: str = ""
    signed_by_ca: bool = True
    ca_data_matches: bool = True  # kubeconfigs: embedded CA == current CA
    server: str = ""  # kubeconfigs: server URL
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: str  # created | renewed: ... | reissued: ... | ok
    new_key: bool = False

    @property
    def changed(self):
        return self.action != OK


def _days(delta):
    return int(delta.total_seconds() // 86400)


def expiry_phrase(not_after, now):
    left = not_after - now
    if left.total_seconds() < 0:
        return f"expired {_days(-left)} d ago"
    return f"expires in {_days(left)} d"


def wanted_meta(item):
    """The comparable metadata a certificate for ``item`` must carry."""
    return {
        "cn": item.cn,
        "orgs": tuple(sorted(item.orgs)),
        "dns": tuple(sorted(item.dns)),
        "ips": tuple(sorted(item.ips)),
        "eku": tuple(sorted(item.eku)),
        "key_usage": tuple(item.key_usage),
        "is_ca": item.kind == "ca",
    }


def drift(item, meta):
    """The first attribute in which ``meta`` differs from what ``item`` wants, or ''."""
    want = wanted_meta(item)
    if (meta.get("cn"), meta.get("orgs")) != (want["cn"], want["orgs"]):
        return "subject drift"
    if (meta.get("dns"), meta.get("ips")) != (want["dns"], want["ips"]):
        return "SAN drift"
    if meta.get("eku") != want["eku"]:
        return "EKU drift"
    if meta.get("key_usage") != want["key_usage"] or meta.get("is_ca") != want["is_ca"]:
        return "key usage drift"
    return ""


def decide_leaf(item, obs, algorithm, now, renew_before, new_not_after, ca_replaced=False):
    """Decide for a leaf certificate or a kubeconfig's client certificate.

    ``new_not_after`` is the not-after a reissue would get (already capped to
    the CA's not-after); ``ca_replaced`` says the signing CA is created in this
    run, so nothing on disk can be signed by it yet.
    """
    present = [f for f, exists in obs.files.items() if exists]
    if not present:
        return Decision(CREATED, new_key=True)
    missing = [f for f, exists in obs.files.items() if not exists]
    if missing:
        what = "key" if any(f.endswith(".key") for f in missing) else "certificate"
        return Decision(f"reissued: {what} missing", new_key=what == "key")
    if not obs.readable:
        return Decision("reissued: unreadable", new_key=True)
    if not obs.key_matches:
        return Decision("reissued: key mismatch", new_key=True)
    if obs.key_algorithm != algorithm:
        return Decision("reissued: algorithm drift", new_key=True)
    if ca_replaced or not obs.signed_by_ca:
        return Decision("reissued: not signed by current CA")
    if item.kind == "kubeconfig":
        if not obs.ca_data_matches:
            return Decision("reissued: CA data drift")
        if obs.server != item.server:
            return Decision("reissued: server drift")
    reason = drift(item, obs.meta)
    if reason:
        return Decision(f"reissued: {reason}")
    current = obs.meta["not_after"]
    # Renew only when a new certificate would actually live longer; otherwise a
    # leaf capped by an expiring CA would be renewed on every run.
    if current - now <= renew_before and new_not_after - current >= DAY:
        return Decision(f"renewed: {expiry_phrase(current, now)}")
    return Decision(OK)


def decide_ca(item, obs, now, renew_before):
    """Decide for a CA. Returns (Decision, mode, warnings); mode is 'own' or 'external'.

    A CA is created when absent, and never replaced: every other problem is an
    error or a warning.
    """
    crt, key = (obs.files.get(f"{item.path}.crt"), obs.files.get(f"{item.path}.key"))
    if not crt and not key:
        return Decision(CREATED, new_key=True), "own", []
    if not crt:
        raise KubeguardError(
            "output_dir",
            f"{item.path}.key exists without {item.path}.crt; "
            "restore the certificate or remove the key to create a new CA",
        )
    if not obs.readable:
        raise KubeguardError(
            "output_dir", f"{item.path} is unreadable; a CA is never replaced silently, restore or remove it"
        )
    warnings = []
    if key and not obs.key_matches:
        raise KubeguardError(
            "output_dir", f"{item.path}.key does not match {item.path}.crt; a CA is never replaced silently"
        )
    if not obs.meta.get("is_ca"):
        raise KubeguardError("output_dir", f"{item.path}.crt is not a CA certificate (basicConstraints CA:FALSE)")
    left = obs.meta["not_after"] - now
    if left <= renew_before:
        warnings.append(f"{item.path}.crt {expiry_phrase(obs.meta['not_after'], now)}; CA rotation is manual")
    return Decision(OK), ("own" if key else "external"), warnings


def external_status(decision):
    """Translate a decision for a leaf under an external CA into a report line."""
    if decision.action == CREATED or decision.action.endswith(" missing"):
        return "missing (external CA)"
    if decision.action.startswith("renewed: "):
        return "expiring: " + decision.action[len("renewed: ") :] + " (external CA)"
    if decision.action == OK:
        return OK
    return "invalid: " + decision.action.split(": ", 1)[-1] + " (external CA)"


def decide_sa(obs):
    """Decide for the service-account key pair (never replaced silently either)."""
    key, pub = obs.files.get("pki/sa.key"), obs.files.get("pki/sa.pub")
    if not key and not pub:
        return Decision(CREATED, new_key=True)
    if not key:
        raise KubeguardError(
            "output_dir", "pki/sa.pub exists without pki/sa.key; restore the key or remove sa.pub to create a new pair"
        )
    if not obs.readable:
        raise KubeguardError(
            "output_dir",
            "pki/sa.key is unreadable; it signs every service-account token and is never replaced silently",
        )
    if not pub:
        return Decision("reissued: public key missing")
    if not obs.key_matches:
        return Decision("reissued: public key mismatch")
    return Decision(OK)
