"""The one certificate reader (_node/x509.py) reports what cryptography built."""

import datetime

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import x509 as _x509lite
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _model

NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    ("item", "days"),
    [
        (_model.Item("pki/ca", "ca", cn="kubernetes", dns=("kubernetes",)), 3650),
        (_model.Item("x", "leaf", cn="system:node:w1", orgs=("system:nodes",), eku=("clientAuth",)), 365),
        (
            _model.Item("y", "leaf", cn="kube-apiserver", eku=("serverAuth",), dns=("a" * 200,)),
            20000,
        ),  # GeneralizedTime, long DER
    ],
)
def test_matches_cryptography(item, days):
    key = _crypto.load_der(_crypto.generate_der("ECDSA-P256"))
    cert = _crypto.build_cert(item, key, NOW, NOW + datetime.timedelta(days=days))
    lite = _x509lite.load_pem(b"junk before\n" + _crypto.cert_pem(cert))
    assert lite.not_valid_after_utc == cert.not_valid_after_utc
    assert lite.not_valid_before_utc == cert.not_valid_before_utc
    assert lite.subject_text == cert.subject.rfc4514_string()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----",
    ],
)
def test_rejects_garbage(data):
    with pytest.raises(ValueError):
        _x509lite.load_pem(data)
