"""The one certificate reader against certificates cryptography built (the lab
tests read the real cluster's)."""

import datetime

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import x509
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _model

NOW = datetime.datetime.now(datetime.timezone.utc)


def issue(tmp_path, name, item, signer=None, days=30, algorithm="ECDSA-P256"):
    key = _crypto.load_der(_crypto.generate_der(algorithm))
    cert = _crypto.build_cert(item, key, NOW, NOW + datetime.timedelta(days=days), signer)
    (tmp_path / f"{name}.crt").write_bytes(_crypto.cert_pem(cert))
    (tmp_path / f"{name}.key").write_bytes(_crypto.key_pem(key))
    (tmp_path / f"{name}.pub").write_bytes(_crypto.public_pem(key))
    return cert, key, str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key")


@pytest.mark.parametrize("algorithm", ["ECDSA-P256", "ECDSA-P384", "RSA-2048"])
def test_a_leaf_matches_its_key_chains_to_its_ca_and_names_its_addresses(tmp_path, algorithm):
    ca_cert, ca_key, ca, _ = issue(tmp_path, "ca", _model.Item("ca", "ca", cn="kubernetes"), algorithm=algorithm)
    server = _model.Item("s", "leaf", cn="kube-apiserver", eku=("serverAuth",), ips=("127.0.0.1", "10.0.0.5"))
    _, _, cert, key = issue(tmp_path, "server", server, (ca_cert, ca_key), algorithm=algorithm)
    assert x509.matches_key(cert, key)
    assert x509.matches_key(str(tmp_path / "server.pub"), key)  # sa.pub against sa.key
    assert not x509.matches_key(cert, str(tmp_path / "ca.key"))
    assert x509.chain_problem(cert, ca) == ""
    assert x509.chain_problem(cert, ca, server=True) == ""
    assert x509.ip_sans(cert) == ["127.0.0.1", "10.0.0.5"]
    assert x509.sans_text(cert) == "IP Address:127.0.0.1, IP Address:10.0.0.5"


def test_chain_problems_are_named(tmp_path):
    ca_cert, ca_key, ca, _ = issue(tmp_path, "ca", _model.Item("ca", "ca", cn="kubernetes"))
    other_cert, other_key, other, _ = issue(tmp_path, "other", _model.Item("ca", "ca", cn="kubernetes"))
    client = _model.Item("c", "leaf", cn="admin", eku=("clientAuth",))
    _, _, cert, _ = issue(tmp_path, "client", client, (ca_cert, ca_key))
    assert "not for TLS servers" in x509.chain_problem(cert, ca, server=True)
    # Same subject, another key: the signature is what tells them apart.
    assert "signature does not verify" in x509.chain_problem(cert, other)
    stranger = _model.Item("x", "ca", cn="someone-else")
    _, _, foreign, _ = issue(tmp_path, "foreign", stranger)
    assert "is not in" in x509.chain_problem(foreign, ca)
    later = NOW + datetime.timedelta(days=400)
    assert "has expired" in x509.chain_problem(cert, ca, now=later)
    assert "cannot read it" in x509.chain_problem(str(tmp_path / "missing.crt"), ca)
    # A bundle: the right CA is found among several.
    (tmp_path / "bundle.crt").write_bytes((tmp_path / "other.crt").read_bytes() + (tmp_path / "ca.crt").read_bytes())
    assert x509.chain_problem(cert, str(tmp_path / "bundle.crt")) == ""
    del other_cert, other_key


def test_unreadable_inputs_are_none_or_empty(tmp_path):
    (tmp_path / "junk").write_text("not a key")
    assert x509.public_key_der(str(tmp_path / "junk")) is None
    assert x509.public_key_der(str(tmp_path / "missing")) is None
    assert not x509.matches_key(str(tmp_path / "junk"), str(tmp_path / "junk"))
    assert x509.ip_sans(str(tmp_path / "junk")) == []
