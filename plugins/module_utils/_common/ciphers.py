# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the one TLS cipher-suite catalogue (Go crypto/tls names).

``SECURE`` is Go's ``tls.CipherSuites()`` and ``INSECURE`` its
``tls.InsecureCipherSuites()``, as go1.26.8 (the toolchain the lab builds
Kubernetes and etcd with) prints them; since Go 1.22 the RSA key-exchange
suites are insecure too. ``ALIASES`` are the two pre-RFC ChaCha20 names that
Kubernetes (component-base) and etcd (client/pkg/tlsutil) still accept.

Kubernetes binaries print their own lists (``--tls-cipher-suites``: "Preferred
values" and "Insecure values"); when a binary's ``--help`` was read, a name it
does not list is unknown to it, and a name it or Go calls insecure is refused.
etcd's ``--help`` lists none and etcd accepts only ``tls.CipherSuites()``.
"""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
SECURE = (
    *TLS13,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
)
# Why each is refused: RC4 is broken, 3DES has 64-bit blocks (Sweet32), CBC-SHA256
# is Lucky13-prone in Go, RSA key exchange has no forward secrecy.
INSECURE = {
    "TLS_RSA_WITH_RC4_128_SHA": "RC4",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "3DES",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "RSA key exchange",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "RSA key exchange",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "RSA key exchange, CBC-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "RSA key exchange",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "RSA key exchange",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "RC4",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "RC4",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "3DES",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "CBC-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "CBC-SHA256",
}
ALIASES = {
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
ACCEPTED = frozenset(SECURE) | frozenset(ALIASES)


def check(option, names, preferred=(), insecure=(), who="Go"):
    """Refuse insecure and unknown suite names, naming ``option``; returns them.

    ``preferred``/``insecure`` are what a binary's ``--help`` lists (empty when
    it prints none, as etcd's): then a name it does not list is unknown to it,
    and a name it or Go calls insecure is refused.
    """
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise KubeguardError(option, f"{names!r} must be a list of cipher suite names")
    flagged = set(insecure)
    bad = [n for n in names if n in INSECURE or n in flagged]
    if bad:
        reasons = ", ".join(f"{n} ({INSECURE.get(n, 'insecure to ' + who)})" for n in bad)
        raise KubeguardError(option, f"insecure cipher suite(s) refused: {reasons}; use ECDHE with AES-GCM or ChaCha20")
    known = (set(preferred) | set(ALIASES)) if preferred else set(ACCEPTED)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KubeguardError(
            option, f"unknown cipher suite(s) {', '.join(unknown)}: {who} knows {', '.join(sorted(known))}"
        )
    return list(names)


def catalogue_drift(preferred, insecure):
    """Names a binary's ``--help`` classifies differently from this catalogue (tests and reports)."""
    preferred, flagged = set(preferred), set(insecure)
    return {
        "preferred_not_secure": sorted(preferred - ACCEPTED),
        "insecure_not_insecure": sorted(flagged - set(INSECURE)),
        "secure_not_listed": sorted(set(SECURE) - preferred) if preferred else [],
    }
