"""The DNS proof's packets and the Lease timestamps (pure)."""

import struct

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import probe


def test_a_query_names_the_host_and_asks_for_an_a_record():
    ident, packet = probe.dns_query("kubernetes.default.svc.cluster.local")
    assert struct.unpack("!H", packet[:2])[0] == ident
    assert b"\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01" in packet


def test_answers_are_read_from_the_reply_header():
    reply = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
    assert probe.dns_answers(reply, 7) == (0, 1)
    nxdomain = struct.pack("!HHHHHH", 7, 0x8183, 1, 0, 0, 0)
    assert probe.dns_answers(nxdomain, 7) == (3, 0)
    with pytest.raises(ValueError):
        probe.dns_answers(reply, 8)


def test_lease_times_with_and_without_microseconds():
    assert probe._epoch("2026-12-05T03:01:02.123456Z") == probe._epoch("2026-12-05T03:01:02Z")
