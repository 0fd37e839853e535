"""Node helpers: authorized keys, host key sizes, the SSH connection, moduli."""

import base64
import struct

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import moduli, node


def rsa_pub(bits):
    def s(b):
        return struct.pack(">I", len(b)) + b

    n = (1 << (bits - 1)) | 1
    blob = s(b"ssh-rsa") + s(b"\x01\x00\x01") + s(b"\x00" + n.to_bytes(bits // 8, "big"))
    return "ssh-rsa " + base64.b64encode(blob).decode() + " host"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (rsa_pub(2048), ("ssh-rsa", 2048)),
        (rsa_pub(4096), ("ssh-rsa", 4096)),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG host", ("ssh-ed25519", 256)),
        ("ecdsa-sha2-nistp256 AAAA host", ("ecdsa-sha2-nistp256", 256)),
        ("garbage", (None, 0)),
    ],
)
def test_public_key_info(line, expected):
    assert node.public_key_info(line) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG me\n", ["ssh-ed25519"]),
        ('from="10.0.0.0/8",no-pty ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB me\n', ["ssh-rsa"]),
        ("# only a comment\n\n", []),
        ("cert-authority ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG ca\n", ["ssh-ed25519"]),
    ],
)
def test_key_types(text, expected):
    assert node.key_types(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            ".ssh/authorized_keys .ssh/authorized_keys2",
            ["/home/op/.ssh/authorized_keys", "/home/op/.ssh/authorized_keys2"],
        ),
        ("/etc/ssh/authorized_keys/%u", ["/etc/ssh/authorized_keys/op"]),
        ("%h/keys/%U %%h", ["/home/op/keys/1000", "/home/op/%h"]),
        ("none", []),
    ],
)
def test_expand_authorized_keys_files(value, expected):
    assert node.expand_authorized_keys_files(value, "op", "/home/op", 1000) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.88.0.1 51234 10.88.0.5 22", {"addr": "10.88.0.1", "lport": "22"}),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_ssh_connection(value, expected):
    assert node.parse_ssh_connection(value) == expected


TCP = """  sl  local_address rem_address   st tx_queue rx_queue
   0: 00000000:0016 00000000:0000 0A 00000000:00000000
   1: 0500580A:0016 0100580A:C8A2 01 00000000:00000000
   2: 0500580A:0016 0100580A:C8A4 01 00000000:00000000
   3: 0500580A:A000 0100580A:1F90 01 00000000:00000000
"""
TCP6_OTHER = """  sl  local_address remote_address st
   0: 0000000000000000FFFF00000500580A:0016 0000000000000000FFFF00000700580A:D000 01 0
"""


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        ([TCP], {"addr": "10.88.0.1", "lport": "22"}),
        ([TCP, TCP6_OTHER], {"lport": "22"}),  # two client addresses: address unknown
        ([""], {}),
    ],
)
def test_connection_from_sockets(tables, expected):
    assert node.connection_from_sockets(tables, ["22"]) == expected


@pytest.mark.parametrize(
    ("shadow", "expected"),
    [
        ("root:!$y$j9T$x:20000:0:99999:7:::\n", True),
        ("root:*:20000:0:99999:7:::\n", True),
        ("root:$y$j9T$x:20000:0:99999:7:::\n", False),
        ("daemon:*:1::::::\n", None),
    ],
)
def test_shadow_password_locked(shadow, expected):
    assert node.shadow_password_locked(shadow) is expected


MODULI = """# Time Type Tests Tries Size Generator Modulus
20240828044144 2 6 100 2047 5 C2CE
20240828044144 2 6 100 3071 2 D3DF
20240828044144 2 6 100 4095 5 E4E0
"""


@pytest.mark.parametrize(("min_bits", "kept", "removed"), [(2048, 3, 0), (3072, 2, 1), (4096, 1, 2)])
def test_filter_moduli(min_bits, kept, removed):
    text, k, r = moduli.filter_moduli(MODULI, min_bits)
    assert (k, r) == (kept, removed)
    assert text.startswith("# Time")


@pytest.mark.parametrize(
    ("text", "min_bits", "option"),
    [
        (MODULI, 8192, "ssh_hardening_moduli_min_bits"),
        ("1 2 3\n", 3072, "ssh_hardening_moduli_enabled"),
    ],
)
def test_filter_moduli_refusals(text, min_bits, option):
    with pytest.raises(KubeguardError) as err:
        moduli.filter_moduli(text, min_bits)
    assert err.value.option == option


@pytest.mark.parametrize(("min_bits", "weak"), [(2048, 0), (3072, 1), (4096, 2)])
def test_count_weak_uses_the_filter_rule(min_bits, weak):
    assert moduli.count_weak(MODULI + "not a moduli line\n", min_bits) == weak
    assert moduli.filter_moduli(MODULI, min_bits)[2] == weak


@pytest.mark.parametrize(("line", "bits"), [("# c", None), ("", None), ("1 2 6 100 2047 5 C2", 2048)])
def test_prime_bits(line, bits):
    assert moduli.prime_bits(line) == bits
