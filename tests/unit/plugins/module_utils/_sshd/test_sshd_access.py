"""The lockout guard: would the account Ansible connects with keep access under a candidate config?"""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._sshd import access, config

BASE = """permitrootlogin no
pubkeyauthentication yes
authenticationmethods publickey
authorizedkeysfile .ssh/authorized_keys
pubkeyacceptedalgorithms ssh-ed25519,rsa-sha2-512
trustedusercakeys none
authorizedkeyscommand none
port 22
"""
OPERATOR = {"name": "operator", "uid": 1000, "groups": ["operator", "sudo"], "key_types": ["ssh-ed25519"]}
ROOT = {"name": "root", "uid": 0, "groups": ["root"], "key_types": ["ssh-ed25519"]}
CONN = {"addr": "10.88.0.1", "host": "10.88.0.1", "lport": "22"}


def run(extra="", account=OPERATOR, conn=CONN, replace=None):
    text = BASE
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return access.check(config.parse_effective(text + extra), account, conn)


@pytest.mark.parametrize(
    ("kwargs", "variable"),
    [
        ({"account": ROOT}, "ssh_hardening_permit_root_login"),
        ({"account": {**OPERATOR, "key_types": []}}, "ssh_hardening_authorized_keys_file"),
        ({"extra": "allowusers alice bob\n"}, "ssh_hardening_allow_users"),
        ({"extra": "allowusers operator@192.0.2.0/24\n"}, "ssh_hardening_allow_users"),
        ({"extra": "allowusers operator@10.0.0.0/8\n", "conn": {"lport": "22"}}, "ssh_hardening_allow_users"),
        ({"extra": "denyusers oper*\n"}, "ssh_hardening_deny_users"),
        ({"extra": "allowgroups sshusers\n"}, "ssh_hardening_allow_groups"),
        ({"extra": "denygroups sudo\n"}, "ssh_hardening_deny_groups"),
        ({"replace": {"authenticationmethods publickey": "authenticationmethods publickey,password"}},
         "ssh_hardening_authentication_methods"),
        ({"replace": {"authenticationmethods publickey": "authenticationmethods keyboard-interactive"}},
         "ssh_hardening_authentication_methods"),
        ({"replace": {"pubkeyauthentication yes": "pubkeyauthentication no"}}, "ssh_hardening_pubkey_authentication"),
        ({"replace": {"port 22": "port 2222"}}, "ssh_hardening_ports"),
        ({"replace": {"ssh-ed25519,rsa-sha2-512": "rsa-sha2-512"}}, "ssh_hardening_pubkey_algorithm_preference"),
    ],
)  # fmt: skip
def test_refusals_name_the_variable(kwargs, variable):
    problems = run(**kwargs)
    assert [var for _, var in problems] == [variable]
    assert problems[0][0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"extra": "allowusers operator\n"},
        {"extra": "allowusers ops* operator@10.88.0.0/16\n"},
        {"extra": "allowusers operator@10.88.*\n"},
        {"extra": "allowgroups sudo admins\n"},
        {"extra": "denyusers root\ndenygroups games\n"},
        {"account": ROOT, "replace": {"permitrootlogin no": "permitrootlogin prohibit-password"}},
        {"replace": {"port 22": "port 22\nport 2222"}},
        {"replace": {"authenticationmethods publickey": "authenticationmethods any"}},
        {"replace": {"authenticationmethods publickey": "authenticationmethods publickey,password publickey"}},
        # certificates or a keys command may grant access without an authorized_keys entry
        {"account": {**OPERATOR, "key_types": []}, "replace": {"trustedusercakeys none": "trustedusercakeys /ca"}},
        {"account": {**OPERATOR, "key_types": []},
         "replace": {"authorizedkeyscommand none": "authorizedkeyscommand /bin/keys"}},
        {"conn": {}},  # unknown port: the port check cannot apply
    ],
)  # fmt: skip
def test_access_kept(kwargs):
    assert run(**kwargs) == []


def test_several_problems_are_all_reported():
    problems = run("allowgroups sshusers\ndenyusers operator\n", account={**OPERATOR, "key_types": []})
    assert {var for _, var in problems} == {
        "ssh_hardening_allow_groups",
        "ssh_hardening_deny_users",
        "ssh_hardening_authorized_keys_file",
    }


@pytest.mark.parametrize(
    ("patterns", "host", "addr", "expected"),
    [
        (["operator"], "", "", True),
        (["op*"], "", "", True),
        (["alice"], "", "", False),
        (["operator@10.88.0.0/16"], "", "10.88.0.1", True),
        (["operator@10.88.0.0/16"], "", "192.0.2.1", False),
        (["operator@10.88.0.0/16"], "", "", None),  # undecidable without the address
        (["operator@bastion.*"], "bastion.example", "", True),
    ],
)
def test_match_user(patterns, host, addr, expected):
    assert access.match_user(patterns, "operator", host, addr) is expected
