"""The one cipher-suite catalogue: Go's secure and insecure lists, refusals naming the variable."""

import re

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import ciphers
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

OPTION = "control_plane_tls_cipher_suites"


def test_catalogue_shape():
    assert len(ciphers.SECURE) == 13 and len(ciphers.INSECURE) == 12
    assert not set(ciphers.SECURE) & set(ciphers.INSECURE)
    assert set(ciphers.ALIASES.values()) <= set(ciphers.SECURE)
    # Every RC4, 3DES, CBC-SHA256 and RSA key-exchange suite is insecure.
    for name in ciphers.SECURE:
        assert not re.search(r"RC4|3DES|CBC_SHA256|^TLS_RSA_", name), name


@pytest.mark.parametrize(
    ("names", "preferred", "insecure", "words"),
    [
        (["TLS_RSA_WITH_RC4_128_SHA"], (), (), "RC4"),
        (["TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"], (), (), "3DES"),
        (["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"], (), (), "CBC-SHA256"),
        (["TLS_RSA_WITH_AES_128_GCM_SHA256"], (), (), "RSA key exchange"),
        (["TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"], (), (), "insecure"),
        (["TLS_BOGUS"], (), (), "unknown cipher suite(s) TLS_BOGUS"),
        (["tls_aes_128_gcm_sha256"], (), (), "unknown"),  # Go's names are case-sensitive
        # A binary that lists fewer names than the catalogue: its list wins.
        (["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], ["TLS_AES_128_GCM_SHA256"], (), "unknown"),
        # A binary that calls a suite insecure that the catalogue does not: refused too.
        (
            ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
            ["TLS_AES_128_GCM_SHA256"],
            ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
            "insecure",
        ),
        ("TLS_AES_128_GCM_SHA256", (), (), "must be a list"),
        ([7], (), (), "must be a list"),
    ],
)
def test_refusals_name_the_variable(names, preferred, insecure, words):
    with pytest.raises(KubeguardError) as err:
        ciphers.check(OPTION, names, preferred, insecure)
    assert err.value.option == OPTION
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("names", "preferred"),
    [
        (list(ciphers.SECURE), ()),
        (["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"], ()),  # the alias Kubernetes and etcd accept
        (["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"], ["TLS_AES_128_GCM_SHA256"]),  # not printed, still accepted
        ([], ()),
    ],
)
def test_accepted(names, preferred):
    assert ciphers.check(OPTION, names, preferred) == names


def test_drift_against_a_help_listing():
    drift = ciphers.catalogue_drift(
        ["TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"], ["TLS_RSA_WITH_RC4_128_SHA"]
    )
    assert drift["preferred_not_secure"] == ["TLS_RSA_WITH_AES_128_CBC_SHA"]
    assert drift["insecure_not_insecure"] == []
    assert "TLS_AES_256_GCM_SHA384" in drift["secure_not_listed"]
