"""The one copy of the RFC 1123 name shapes: labels, subdomains and host names."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import names


@pytest.mark.parametrize("value", ["a", "kube-system", "0", "a" * 63, "x1-y2"])
def test_labels(value):
    assert names.is_label(value)


@pytest.mark.parametrize("value", ["", "-a", "a-", "A", "a.b", "a_b", "a" * 64, "['x']", ["x"], None, 5, "a\n", "ns*"])
def test_not_labels(value):
    assert not names.is_label(value)


@pytest.mark.parametrize("value", ["a", "cp1.example.org", "secrets", "gadgets.example.com", "a." * 126 + "b"])
def test_subdomains(value):
    assert names.is_subdomain(value)


@pytest.mark.parametrize("value", ["", ".a", "a.", "a..b", "A.b", "a.-b", "a" * 64 + ".b", "a." * 127 + "b", ["a"]])
def test_not_subdomains(value):
    assert not names.is_subdomain(value)


@pytest.mark.parametrize("value", ["cp1", "CP1.Example.org", "node-1.lab.", "a" * 63 + ".io"])
def test_host_names(value):
    assert names.is_host_name(value)


@pytest.mark.parametrize("value", ["", ".", "a..b", "-a.b", "a-.b", "10.0.0.1", "a.123", "a_b", "a" * 64, None])
def test_not_host_names(value):
    assert not names.is_host_name(value)
