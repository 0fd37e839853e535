# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the one certificate reader, on ``cryptography``.

Runs on the nodes too (Debian 12 ships cryptography 38, 13 ships 43), so it
uses no API newer than 38. It answers what the node-side checks ask before a
restart (does a certificate match its key, chain to its CA, name an address)
and what the expiry report needs (subject, validity).
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

try:
    from cryptography import x509 as _x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    _MISSING = None
except ImportError as exc:  # pragma: no cover - a node without python3-cryptography
    _MISSING = str(exc)

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_UTC = datetime.timezone.utc


def _require():
    if _MISSING:
        raise KubeguardError("", f"reading certificates needs python3-cryptography on this host ({_MISSING})")


class Certificate:
    """A parsed certificate: ``cert`` (cryptography's), its subject and validity in UTC."""

    def __init__(self, cert):
        self.cert = cert
        self.subject_text = cert.subject.rfc4514_string()
        self.not_valid_before_utc = _utc(cert, "not_valid_before")
        self.not_valid_after_utc = _utc(cert, "not_valid_after")


def _utc(cert, name):
    aware = getattr(cert, f"{name}_utc", None)  # cryptography >= 42
    return aware if aware is not None else getattr(cert, name).replace(tzinfo=_UTC)


def load_all(data):
    """Every PEM certificate of ``data`` (bytes); ValueError when there is none or one is malformed."""
    _require()
    blocks = _PEM.findall(data or b"")
    if not blocks:
        raise ValueError("no PEM certificate")
    return [Certificate(_x509.load_pem_x509_certificate(block)) for block in blocks]


def load_pem(data):
    """The first PEM certificate of ``data``; ValueError when there is none or it is malformed."""
    return load_all(data)[0]


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def load_file(path):
    """The first certificate of the file at ``path``; OSError or ValueError."""
    return load_pem(_read(path))


def public_key_der(path):
    """The SubjectPublicKeyInfo (DER) of a certificate, private key or public key file, or None."""
    _require()
    try:
        data = _read(path)
        if _PEM.search(data):
            key = load_pem(data).cert.public_key()
        elif b"PRIVATE KEY-----" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (OSError, ValueError, TypeError):
        return None


def matches_key(cert_path, key_path):
    """Whether the certificate (or public key) at ``cert_path`` is the public half of ``key_path``."""
    have = public_key_der(cert_path)
    return have is not None and have == public_key_der(key_path)


def _signed_by(cert, issuer):
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _expired(cert, now):
    if now < cert.not_valid_before_utc:
        return "is not yet valid"
    if now > cert.not_valid_after_utc:
        return "has expired"
    return ""


def chain_problem(cert_path, ca_path, server=False, now=None):
    """Why the certificate at ``cert_path`` does not chain to a CA of ``ca_path`` (or "").

    Like ``openssl verify -CAfile``: signed by a CA of the file whose subject is its
    issuer, both within their validity; ``server`` also wants serverAuth when the
    certificate restricts its extended key usage (``-purpose sslserver``).
    """
    _require()
    now = now or datetime.datetime.now(_UTC)
    try:
        leaf = load_file(cert_path)
        cas = load_all(_read(ca_path))
    except (OSError, ValueError) as exc:
        return f"cannot read it: {exc}"
    issuers = [ca for ca in cas if ca.cert.subject == leaf.cert.issuer]
    if not issuers:
        return f"its issuer {leaf.cert.issuer.rfc4514_string()} is not in {ca_path}"
    signer = next((ca for ca in issuers if _signed_by(leaf.cert, ca.cert)), None)
    if signer is None:
        return f"its signature does not verify with the key of {issuers[0].subject_text}"
    for who, cert in (("the certificate", leaf), ("its CA", signer)):
        problem = _expired(cert, now)
        if problem:
            window = f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
            return f"{who} {problem} ({window})"
    if server:
        try:
            usages = leaf.cert.extensions.get_extension_for_class(_x509.ExtendedKeyUsage).value
        except _x509.ExtensionNotFound:
            usages = None
        if usages is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usages:
            return "it is not for TLS servers (no serverAuth extended key usage)"
    return ""


def ip_sans(cert_path):
    """The IP addresses among the subjectAltNames of the certificate at ``cert_path`` ([] if none or unreadable)."""
    _require()
    try:
        sans = load_file(cert_path).cert.extensions.get_extension_for_class(_x509.SubjectAlternativeName).value
    except (OSError, ValueError, _x509.ExtensionNotFound):
        return []
    return [str(ip) for ip in sans.get_values_for_type(_x509.IPAddress)]


def sans_text(cert_path):
    """The IP SANs written the way ``openssl x509 -ext subjectAltName`` does (``IP Address:...``)."""
    return ", ".join(f"IP Address:{ip}" for ip in ip_sans(cert_path))
