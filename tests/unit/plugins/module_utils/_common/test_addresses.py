"""The node's own addresses from ``ip -o addr``, and refusing one it does not have."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import addresses
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

IP_ADDR = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: eth0@if7    inet 10.123.0.10/24 brd 10.123.0.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0@if7    inet6 fd00:123::a/64 scope global \\       valid_lft forever preferred_lft forever
2: eth0@if7    inet6 fe80::1c2a:ff:fe00:1/64 scope link \\       valid_lft forever preferred_lft forever
"""


def test_parse_ip_addr():
    assert addresses.parse_ip_addr(IP_ADDR) == {
        "127.0.0.1": "lo",
        "::1": "lo",
        "10.123.0.10": "eth0",
        "fd00:123::a": "eth0",
        "fe80::1c2a:ff:fe00:1": "eth0",
    }


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (["10.9.9.9"], "10.9.9.9 is not an address of the node"),
        (["10.123.0.10", "10.123.0.11"], "10.123.0.11 is not an address"),
        (["0.0.0.0"], "not an address"),  # noqa: S104 - wildcard only where allowed
        (["host.example"], "is not an IP address"),
    ],
)
def test_require_local_refuses(values, words):
    with pytest.raises(KubeguardError) as err:
        addresses.require_local("kubeguard_node_ip", values, addresses.parse_ip_addr(IP_ADDR))
    assert err.value.option == "kubeguard_node_ip"
    assert words in str(err.value)


def test_require_local_accepts_canonical_forms():
    local = addresses.parse_ip_addr(IP_ADDR)
    assert addresses.require_local("x", ["10.123.0.10", "[fd00:123:0::a]", "FD00:123::A"], local) == [
        "10.123.0.10",
        "fd00:123::a",
        "fd00:123::a",
    ]
    wildcards = list(addresses.WILDCARDS)
    assert addresses.require_local("x", wildcards[::-1], local, allow_wildcard=True) == wildcards[::-1]


FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.123.0.0/24 2 0 2
        |-- 10.123.0.0
           /24 link UNICAST
        |-- 10.123.0.10
           /32 host LOCAL
Local:
  +-- 127.0.0.0/8 2 0 2
     |-- 127.0.0.1
        /32 host LOCAL
"""
IF_INET6 = """00000000000000000000000000000001 01 80 10 80       lo
fd00012300000000000000000000000a 02 40 00 80     eth0
fe800000000000001c2aff00fe000001 02 40 20 80     eth0
"""


def test_parse_proc_where_iproute2_is_missing():
    found = addresses.parse_proc(FIB_TRIE, IF_INET6)
    assert set(found) == {"10.123.0.10", "127.0.0.1", "::1", "fd00:123::a", "fe80::1c2a:ff00:fe00:1"}
    assert found["::1"] == "lo"
