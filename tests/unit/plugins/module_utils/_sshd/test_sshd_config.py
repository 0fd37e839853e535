"""Rendering sshd_config, parsing sshd -T and drop-ins."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import config


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("PasswordAuthentication", False, "no"),
        ("PubkeyAuthentication", True, "yes"),
        ("MaxAuthTries", 3, "3"),
        ("KexAlgorithms", ["a", "b"], "a,b"),
        ("PerSourcePenaltyExemptList", ["10.0.0.0/8", "::1"], "10.0.0.0/8,::1"),
        ("AllowGroups", ["ops", "sshusers"], "ops sshusers"),
        ("AuthenticationMethods", "publickey", "publickey"),
    ],
)
def test_render_value(key, value, expected):
    assert config.render_value(key, value) == expected


def test_render_puts_settings_before_include_and_match_last():
    text = config.render(
        {"Port": [22, 2222], "PasswordAuthentication": False, "Banner": None, "AllowUsers": []},
        header="# Ansible managed",
        include="/etc/ssh/sshd_config.d/*.conf",
        match_blocks=[{"criteria": "Group sftponly", "settings": {"ForceCommand": "internal-sftp"}}],
    )
    lines = text.splitlines()
    assert lines[0] == "# Ansible managed"
    assert lines.index("Port 22") < lines.index("Port 2222") < lines.index("Include /etc/ssh/sshd_config.d/*.conf")
    assert lines.index("PasswordAuthentication no") < lines.index("Include /etc/ssh/sshd_config.d/*.conf")
    assert lines[-2:] == ["Match Group sftponly", "    ForceCommand internal-sftp"]
    assert "Banner" not in text and "AllowUsers" not in text  # None and [] are left out


@pytest.mark.parametrize(
    ("settings", "blocks", "option"),
    [
        ({"Bad Key": "x"}, [], "ssh_hardening_custom_options"),
        ({}, [{"criteria": ""}], "ssh_hardening_match_blocks"),
        ({}, [{"criteria": "User a\nPermitRootLogin yes"}], "ssh_hardening_match_blocks"),
    ],
)
def test_render_rejects_injection(settings, blocks, option):
    with pytest.raises(KubeguardError) as err:
        config.render(settings, match_blocks=blocks)
    assert err.value.option == option


@pytest.mark.parametrize(
    ("keywords", "kept", "dropped"),
    [
        ({"persourcepenalties", "port"}, ["Port", "PerSourcePenalties"], []),  # OpenSSH 9.8+
        ({"port"}, ["Port"], ["PerSourcePenalties"]),  # OpenSSH 9.2 does not know it
    ],
)
def test_drop_unsupported(keywords, kept, dropped):
    result, skipped = config.drop_unsupported({"Port": [22], "PerSourcePenalties": "authfail:5"}, keywords)
    assert list(result) == kept
    assert skipped == dropped


def test_parse_effective_keeps_repeated_keywords():
    conf = config.parse_effective("port 22\nport 2222\nPermitRootLogin no\nallowusers a b\n")
    assert conf["port"] == ["22", "2222"]
    assert config.first(conf, "permitrootlogin") == "no"
    assert config.words(conf, "allowusers") == ["a", "b"]
    assert config.first(conf, "missing", "none") == "none"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PasswordAuthentication yes\n", [("passwordauthentication", "yes")]),
        ("# comment\n\nPermitRootLogin=yes\n", [("permitrootlogin", "yes")]),
        ("UsePAM yes\nMatch User x\nPasswordAuthentication yes\n", [("usepam", "yes")]),
    ],
)
def test_parse_dropin(text, expected):
    assert config.parse_dropin(text) == expected


def test_shadowed_lists_overridden_dropin_values():
    dropins = {"/etc/ssh/sshd_config.d/50-cloud-init.conf": [("passwordauthentication", "yes"), ("port", "2200")]}
    found = config.shadowed(dropins, {"PasswordAuthentication": False, "Port": [22]})
    assert found == [
        {"path": "/etc/ssh/sshd_config.d/50-cloud-init.conf", "keyword": "passwordauthentication", "value": "yes"}
    ]


@pytest.mark.parametrize(
    ("error", "option"),
    [
        ('Disabled method "password" in AuthenticationMethods list', "ssh_hardening_authentication_methods"),
        ("Bad SSH2 KexAlgorithms 'foo'", "ssh_hardening_kex_preference"),
        ("Bad SSH2 cipher spec 'x'", "ssh_hardening_cipher_preference"),
        ("Bad SSH2 mac spec 'y'", "ssh_hardening_mac_preference"),
        ("Unsupported Match attribute Foo", "ssh_hardening_match_blocks"),
        ("Bad configuration option: Frobnicate", "ssh_hardening_custom_options"),
    ],
)
def test_option_for_error(error, option):
    assert config.option_for_error(error) == option


@pytest.mark.parametrize(
    ("args", "spec"),
    [
        (("operator", "client", "10.0.0.1", "22"), "user=operator,host=client,addr=10.0.0.1,lport=22"),
        (("operator", "", "10.0.0.1", ""), "user=operator,host=10.0.0.1,addr=10.0.0.1"),
        (("root",), "user=root,host=127.0.0.1,addr=127.0.0.1"),
    ],
)
def test_connection_spec(args, spec):
    assert config.connection_spec(*args) == spec


def test_include_patterns_and_discovery(tmp_path):
    (tmp_path / "b.conf").write_text("PasswordAuthentication yes\n")
    (tmp_path / "a.conf").write_text("# only a comment\n")
    text = f"Port 22\n  include {tmp_path}/*.conf extra.conf\nIncludeX nothing\n"
    patterns = config.include_patterns(text)
    assert patterns == [f"{tmp_path}/*.conf", "/etc/ssh/extra.conf"]
    found = config.discover_dropins(patterns[:1])
    assert list(found) == [f"{tmp_path}/a.conf", f"{tmp_path}/b.conf"]
    assert found[f"{tmp_path}/b.conf"] == [("passwordauthentication", "yes")]


def test_socket_dropin_path():
    assert config.socket_dropin("sshd") == "/etc/systemd/system/sshd.socket.d/kubeguard-listen.conf"
