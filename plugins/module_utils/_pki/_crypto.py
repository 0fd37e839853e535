# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: key generation, certificate signing and
certificate inspection on top of the ``cryptography`` library.

The caller imports this module inside try/except to report a missing
``cryptography`` through Ansible's ``missing_required_lib``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MIN_CRYPTOGRAPHY_VERSION = "42.0"
BACKDATE = datetime.timedelta(minutes=5)  # like kubeadm, tolerate small clock skew
_EKU = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}
_EKU_NAMES = {v.dotted_string: k for k, v in _EKU.items()}
_CURVES = {"ECDSA-P256": ec.SECP256R1, "ECDSA-P384": ec.SECP384R1}
_KU_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)
# Below this many RSA keys a process pool costs more than it saves.
POOL_THRESHOLD = 4


def generate_der(algorithm):
    """Generate one private key; return it as unencrypted PKCS#8 DER (picklable)."""
    if algorithm.startswith("RSA-"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[4:]))
    else:
        key = ec.generate_private_key(_CURVES[algorithm]())
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_der(der):
    return serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)


def generate_keys(algorithms, workers=0):
    """Generate one key per entry of ``algorithms``; RSA keys in a process pool.

    ``workers`` <= 0 means one process per CPU. ECDSA keys are cheap and
    made in-process.
    """
    algorithms = list(algorithms)
    workers = workers if workers > 0 else (os.cpu_count() or 1)
    rsa_count = sum(1 for a in algorithms if a.startswith("RSA-"))
    if workers < 2 or rsa_count < POOL_THRESHOLD or "fork" not in multiprocessing.get_all_start_methods():
        return [load_der(generate_der(a)) for a in algorithms]
    results = [None] * len(algorithms)
    rsa_idx = [i for i, a in enumerate(algorithms) if a.startswith("RSA-")]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(workers, rsa_count), mp_context=ctx) as pool:
        chunk = max(1, rsa_count // (workers * 4))
        ders = pool.map(generate_der, [algorithms[i] for i in rsa_idx], chunksize=chunk)
        for i, a in enumerate(algorithms):
            if not a.startswith("RSA-"):
                results[i] = load_der(generate_der(a))
        for i, der in zip(rsa_idx, ders):
            results[i] = load_der(der)
    return results


def key_algorithm(key):
    """Our algorithm name for a private or public key, or a description."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(pub, rsa.RSAPublicKey):
        return f"RSA-{pub.key_size}"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ECDSA-P256", "secp384r1": "ECDSA-P384"}.get(pub.curve.name, f"EC-{pub.curve.name}")
    return type(pub).__name__


def public_der(key):
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key):
    """The ``kid`` Kubernetes puts in the tokens this key signs: base64url (no padding) of the SHA-256 of the
    public key's DER."""
    return base64.urlsafe_b64encode(hashlib.sha256(public_der(key)).digest()).decode("ascii").rstrip("=")


def _hash_for(key):
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def _name(cn, orgs=()):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def build_cert(item, key, now, not_after, signer=None):
    """Sign a certificate for ``item`` (a _model.Item) with ``key``.

    ``signer`` is (ca_cert, ca_key) for leaves, None for self-signed CAs.
    """
    subject = _name(item.cn, item.orgs)
    is_ca = item.kind == "ca"
    issuer_name, issuer_key = (signer[0].subject, signer[1]) if signer else (subject, key)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    if signer:
        try:
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                signer[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            )
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer[1].public_key())
    else:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    ku = {flag: flag in item.key_usage for flag in _KU_FLAGS}
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.KeyUsage(encipher_only=False, decipher_only=False, **ku), critical=True)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    if item.eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([_EKU[e] for e in item.eku]), critical=False)
    sans = [x509.DNSName(d) for d in item.dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in item.ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, _hash_for(issuer_key))


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_cert(data):
    return x509.load_pem_x509_certificate(data)


def load_key(data):
    return serialization.load_pem_private_key(data, None, unsafe_skip_rsa_key_validation=True)


def load_public(data):
    return serialization.load_pem_public_key(data)


def not_after(cert):
    return cert.not_valid_after_utc


def fingerprint(cert):
    return "SHA256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def signed_by(cert, ca_cert):
    """True when ``cert`` was issued and signed by ``ca_cert``."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def describe(cert):
    """Comparable metadata of a certificate (no secrets)."""
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    ext = cert.extensions
    try:
        san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    try:
        eku = [
            _EKU_NAMES.get(o.dotted_string, o.dotted_string)
            for o in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
        ]
    except x509.ExtensionNotFound:
        eku = []
    try:
        ku_ext = ext.get_extension_for_class(x509.KeyUsage)
        ku = tuple(f for f in _KU_FLAGS if getattr(ku_ext.value, f)) if ku_ext.critical else ("not-critical",)
    except x509.ExtensionNotFound:
        ku = ()
    try:
        bc = ext.get_extension_for_class(x509.BasicConstraints).value
        is_ca = bc.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return {
        "cn": cn[0] if cn else "",
        "orgs": tuple(sorted(orgs)),
        "dns": tuple(sorted(dns)),
        "ips": tuple(sorted(ips)),
        "eku": tuple(sorted(eku)),
        "key_usage": ku,
        "is_ca": is_ca,
        "algorithm": key_algorithm(cert.public_key()),
        "not_after": cert.not_valid_after_utc,
    }
