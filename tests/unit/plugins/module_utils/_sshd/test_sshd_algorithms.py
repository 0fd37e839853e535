"""Algorithm selection from what the node's OpenSSH supports (ssh -Q), never from version numbers."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import algorithms

KEX_PREF = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "diffie-hellman-group16-sha512",
]
OPENSSH_10 = ["curve25519-sha256", "sntrup761x25519-sha512", "mlkem768x25519-sha256", "diffie-hellman-group14-sha1"]
OPENSSH_92 = ["curve25519-sha256", "sntrup761x25519-sha512@openssh.com", "diffie-hellman-group16-sha512"]
OPENSSH_80 = ["curve25519-sha256", "diffie-hellman-group16-sha512", "ecdh-sha2-nistp256"]


@pytest.mark.parametrize(
    ("supported", "pq_only", "expected"),
    [
        (OPENSSH_10, True, ["mlkem768x25519-sha256", "sntrup761x25519-sha512"]),
        (OPENSSH_10, False, ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "curve25519-sha256"]),
        (OPENSSH_92, True, ["sntrup761x25519-sha512@openssh.com"]),
        (
            OPENSSH_92,
            False,
            ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "diffie-hellman-group16-sha512"],
        ),
        # No post-quantum hybrid at all: fall back to the classical part of the preference.
        (OPENSSH_80, True, ["curve25519-sha256", "diffie-hellman-group16-sha512"]),
    ],
)
def test_select_kex(supported, pq_only, expected):
    assert algorithms.select_kex(KEX_PREF, supported, pq_only) == expected


@pytest.mark.parametrize(
    ("preference", "supported", "expected"),
    [
        (["a", "b", "c"], ["c", "b"], ["b", "c"]),  # preference order wins
        (["a", "a", "b"], ["a", "b"], ["a", "b"]),  # no duplicates
        (["x"], ["a"], []),
        ([], ["a"], []),
    ],
)
def test_select_keeps_preference_order(preference, supported, expected):
    assert algorithms.select(preference, supported) == expected


def test_select_all_maps_keywords():
    result = algorithms.select_all(
        {"kex": KEX_PREF, "macs": ["hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"]},
        {"kex": OPENSSH_92, "mac": ["umac-128-etm@openssh.com", "hmac-sha1"]},
    )
    assert result == {"KexAlgorithms": ["sntrup761x25519-sha512@openssh.com"], "MACs": ["umac-128-etm@openssh.com"]}


@pytest.mark.parametrize(
    ("category", "query", "variable"),
    [
        ("kex", "kex", "ssh_hardening_kex_preference"),
        ("ciphers", "cipher", "ssh_hardening_cipher_preference"),
        ("macs", "mac", "ssh_hardening_mac_preference"),
        ("host_key_algorithms", "key-sig", "ssh_hardening_host_key_algorithm_preference"),
        ("pubkey_accepted_algorithms", "key-sig", "ssh_hardening_pubkey_algorithm_preference"),
    ],
)
def test_nothing_supported_names_the_variable(category, query, variable):
    with pytest.raises(KubeguardError, match=variable) as err:
        algorithms.select_all({category: ["made-up-algorithm"]}, {query: ["aes128-ctr"]})
    assert err.value.option == variable


@pytest.mark.parametrize(
    ("key_type", "accepted", "expected"),
    [
        ("ssh-ed25519", ["ssh-ed25519"], True),
        ("ssh-ed25519", ["rsa-sha2-512"], False),
        ("ssh-rsa", ["rsa-sha2-512"], True),  # an RSA key signs with rsa-sha2-*
        ("ssh-rsa", ["ssh-ed25519"], False),
        ("ssh-rsa-cert-v01@openssh.com", ["rsa-sha2-256-cert-v01@openssh.com"], True),
        ("ecdsa-sha2-nistp256", ["ssh-ed25519", "rsa-sha2-512"], False),
    ],
)
def test_key_type_accepted(key_type, accepted, expected):
    assert algorithms.key_type_accepted(key_type, accepted) is expected


def test_parse_query():
    assert algorithms.parse_query("aes128-ctr\n\naes256-ctr\n") == ["aes128-ctr", "aes256-ctr"]
