"""SSH host certificates: principals, ``ssh-keygen -L`` parsing, the renewal decision, the window check."""

import datetime

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import hostcert

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
# A real key pair and the fingerprints ssh-keygen -l printed for them.
CA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZOu1r4HO/qSy00ZQ8UC57JVsAOes7qtw+4YjTfO6Ud ca"
CA_FP = "SHA256:26M0Vk61A/qjq19Dv/W5cXj5DKjXbpDLgyp4TjdDACs"
HOST = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKA4/7cnJT/opRMba54rbDgTtPBmJWKJMdfO6OQk71rC"
HOST_FP = "SHA256:TsoGqKEZXfNGI3dGRMZr1DRaPd/R4OzeZB5jDjgzB6k"
SP = " "  # ssh-keygen -L ends the Principals line with a space

LISTING = f"""host-cert.pub:
        Type: ssh-ed25519-cert-v01@openssh.com host certificate
        Public key: ED25519-CERT {HOST_FP}
        Signing CA: ED25519 {CA_FP} (using ssh-ed25519)
        Key ID: "host:cp1:ssh-ed25519"
        Serial: 17
        Valid: from 2026-12-05T06:53:03 to 2027-12-05T06:58:03
        Principals:{SP}
                cp1
                10.0.0.1
        Critical Options: (none)
        Extensions: (none)
"""


def test_fingerprint_is_ssh_keygens():
    assert hostcert.fingerprint(CA) == CA_FP
    assert hostcert.fingerprint(HOST) == HOST_FP


@pytest.mark.parametrize("line", ["", "ssh-ed25519", "ssh-ed25519 !!!", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOZOu1r4HO/q"])
def test_fingerprint_refuses_what_is_no_key(line):
    with pytest.raises(KubeguardError) as err:
        hostcert.fingerprint(line, "ca_public_key")
    assert err.value.option == "ca_public_key"


@pytest.mark.parametrize(
    "names,addresses,extra,expected",
    [
        (
            ["cp1", "cp1.example.org", "cp1"],
            ["10.123.0.10", "127.0.0.1"],
            [],
            ["cp1", "cp1.example.org", "10.123.0.10"],
        ),
        # ansible_host may be a name (not an address) or loopback behind a published port
        (["Node-A."], ["node-a.example.org", "::1", "0.0.0.0", "fe80::1", "fd00::5"], [], ["node-a", "fd00::5"]),  # noqa: S104
        (["localhost", "localhost.localdomain", "w1"], [""], ["ssh.example.org"], ["w1", "ssh.example.org"]),
        (["w1"], ["[2001:db8::1]"], ["10.0.0.9", "w1"], ["w1", "2001:db8::1", "10.0.0.9"]),
        # an inventory name that is an address, without ansible_host
        (["10.0.0.5", "node5", "node5"], [""], [], ["node5", "10.0.0.5"]),
    ],
)
def test_principals(names, addresses, extra, expected):
    assert hostcert.principals(names, addresses, extra) == expected


@pytest.mark.parametrize("bad", ["*.example.org", "a,b", "a b", "", "-x", 5])
def test_a_principal_that_is_none_is_refused_naming_the_item(bad):
    with pytest.raises(KubeguardError) as err:
        hostcert.principals(["w1"], [], ["ok", bad], "ssh_hardening_host_certificate_extra_principals")
    assert err.value.option == "ssh_hardening_host_certificate_extra_principals[1]"


def test_no_principal_at_all_is_refused():
    with pytest.raises(KubeguardError, match="no usable principal"):
        hostcert.principals(["localhost"], ["127.0.0.1"], [])


def test_parse_listing():
    cert = hostcert.parse_listing(LISTING)
    assert cert == {
        "type": "ssh-ed25519-cert-v01@openssh.com",
        "kind": "host",
        "key_fingerprint": HOST_FP,
        "ca_fingerprint": CA_FP,
        "key_id": "host:cp1:ssh-ed25519",
        "serial": 17,
        "valid_from": datetime.datetime(2026, 12, 5, 6, 53, 3, tzinfo=UTC),
        "valid_to": datetime.datetime(2027, 12, 5, 6, 58, 3, tzinfo=UTC),
        "principals": ["cp1", "10.0.0.1"],
    }


@pytest.mark.parametrize(
    "valid,expected",
    [
        ("forever", (None, None)),
        ("from 2026-01-01T00:00:00 to forever", (datetime.datetime(2026, 1, 1, tzinfo=UTC), None)),
        ("after 2026-01-01T00:00:00", (datetime.datetime(2026, 1, 1, tzinfo=UTC), None)),
        ("before 2026-01-01T00:00:00", (None, datetime.datetime(2026, 1, 1, tzinfo=UTC))),
    ],
)
def test_parse_validity(valid, expected):
    assert hostcert.parse_validity(valid) == expected


def test_parse_listing_without_principals_and_of_a_user_certificate():
    text = LISTING.replace("host certificate", "user certificate").replace(
        "Principals: \n                cp1\n                10.0.0.1\n", "Principals: (none)\n"
    )
    cert = hostcert.parse_listing(text)
    assert (cert["kind"], cert["principals"]) == ("user", [])
    assert "user certificate" in hostcert.renewal_reason(cert, HOST_FP, CA_FP, ["cp1"], NOW, 30)


@pytest.mark.parametrize("text", ["", "ssh-keygen: not a certificate", LISTING.replace("Valid: from", "Valid: soon")])
def test_parse_listing_refuses_other_output(text):
    with pytest.raises(KubeguardError):
        hostcert.parse_listing(text)


def _cert(**changes):
    cert = hostcert.parse_listing(LISTING)
    cert.update(changes)
    return cert


@pytest.mark.parametrize(
    "cert,principals,renew,reason",
    [
        (_cert(), ["10.0.0.1", "cp1"], 30, None),  # order does not matter
        (None, ["cp1"], 30, "missing"),
        (_cert(key_fingerprint="SHA256:other"), ["cp1", "10.0.0.1"], 30, "another key"),
        (_cert(ca_fingerprint="SHA256:old"), ["cp1", "10.0.0.1"], 30, "another CA"),
        (_cert(), ["cp1"], 30, "principals cp1,10.0.0.1 differ from cp1"),
        (_cert(valid_to=NOW + datetime.timedelta(days=29)), ["cp1", "10.0.0.1"], 30, "within 30 days"),
        (_cert(valid_to=NOW + datetime.timedelta(days=31)), ["cp1", "10.0.0.1"], 30, None),
        (_cert(valid_to=NOW - datetime.timedelta(days=1)), ["cp1", "10.0.0.1"], 0, "within 0 days"),
        (_cert(valid_to=None), ["cp1", "10.0.0.1"], 30, "forever"),
        (_cert(valid_from=NOW + datetime.timedelta(days=2)), ["cp1", "10.0.0.1"], 30, "not valid before"),
    ],
)
def test_renewal_reason(cert, principals, renew, reason):
    got = hostcert.renewal_reason(cert, HOST_FP, CA_FP, principals, NOW, renew)
    assert got == reason if reason is None else reason in got


@pytest.mark.parametrize(
    "validity,renew,option",
    [
        (365, 365, "renew_before_days"),
        (0, 0, "validity_days"),
        (10, -1, "renew_before_days"),
        (True, 1, "validity_days"),
    ],
)
def test_windows_under_which_every_run_re_signs_are_refused(validity, renew, option):
    with pytest.raises(KubeguardError) as err:
        hostcert.check_windows(validity, renew)
    assert err.value.option == option


def test_known_hosts():
    text = hostcert.known_hosts([(CA, "kubeguard ssh host CA")], ["cp1", "10.0.0.1", "[127.0.0.1]:2222"])
    assert text.splitlines()[1] == (
        "@cert-authority cp1,10.0.0.1,[127.0.0.1]:2222 " + " ".join(CA.split()[:2]) + " kubeguard ssh host CA"
    )


@pytest.mark.parametrize("patterns", [[], ["a b"], ["a,b"], [""]])
def test_known_hosts_refuses_bad_patterns(patterns):
    with pytest.raises(KubeguardError) as err:
        hostcert.known_hosts([(CA, "")], patterns)
    assert err.value.option.startswith("known_hosts_patterns")
