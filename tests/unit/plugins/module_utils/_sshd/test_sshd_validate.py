import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import validate


@pytest.mark.parametrize(
    ("settings", "option", "text"),
    [
        ({"Port": [22, 70000]}, "ssh_hardening_ports", "70000 is not a TCP port"),
        ({"Port": [0]}, "ssh_hardening_ports", "0 is not a TCP port"),
        ({"Port": ["ssh"]}, "ssh_hardening_ports", "'ssh' is not a TCP port"),
        ({"ListenAddress": ["999.1.1.1"]}, "ssh_hardening_listen_addresses", "'999.1.1.1' is not an IP address"),
        ({"ListenAddress": ["bad host"]}, "ssh_hardening_listen_addresses", "not an IP address or host name"),
        ({"ListenAddress": ["-lead.example"]}, "ssh_hardening_listen_addresses", "not an IP address"),
        ({"MaxAuthTries": 0}, "ssh_hardening_max_auth_tries", "0 must be a whole number of at least 1"),
        ({"MaxAuthTries": -2}, "ssh_hardening_max_auth_tries", "at least 1"),
    ],
)
def test_bad_settings_name_the_role_variable(settings, option, text):
    with pytest.raises(KubeguardError) as err:
        validate.settings(settings)
    assert err.value.option == option
    assert str(err.value).startswith(f"{option}: ")
    assert text in str(err.value)
    assert "custom_options" not in str(err.value)


@pytest.mark.parametrize(
    "settings",
    [
        {"Port": [22, 2222, 65535], "ListenAddress": ["10.0.0.1", "::1", "[fe80::1]", "node-1.example.org"]},
        {"MaxAuthTries": 1, "Port": 1, "ListenAddress": []},
        {"MaxAuthTries": "3", "PermitRootLogin": "no", "ListenAddress": None},
    ],
)
def test_good_settings_pass(settings):
    validate.settings(settings)


@pytest.mark.parametrize(
    ("ports", "addresses", "streams"),
    [
        ([22], [], ["22"]),
        ([22, 2222], [], ["22", "2222"]),
        ([2222], ["10.0.0.1", "::1"], ["10.0.0.1:2222", "[::1]:2222"]),
        (["22"], ["[fe80::1]"], ["[fe80::1]:22"]),
    ],
)
def test_listen_streams(ports, addresses, streams):
    assert validate.listen_streams(ports, addresses) == streams


@pytest.mark.parametrize(
    ("ports", "addresses", "option"),
    [
        ([70000], [], "ssh_hardening_ports"),
        ([], [], "ssh_hardening_ports"),
        ([22], ["999.1.1.1"], "ssh_hardening_listen_addresses"),
    ],
)
def test_listen_streams_refusals(ports, addresses, option):
    with pytest.raises(KubeguardError) as err:
        validate.listen_streams(ports, addresses)
    assert err.value.option == option
