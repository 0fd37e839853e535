"""Login defaults: login.defs edits keep every other line; refusals; idempotence (pure, in a temp root)."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import login

DEFS = "# comment\nPASS_MAX_DAYS\t99999\n#UMASK 022\nUMASK\t\t022\nENCRYPT_METHOD SHA512\n"


def test_only_the_named_keys_change():
    text = login.edit_login_defs(DEFS, {"PASS_MAX_DAYS": 365, "UMASK": "027", "SHA_CRYPT_MIN_ROUNDS": 65536})
    assert (
        text
        == "# comment\nPASS_MAX_DAYS\t365\n#UMASK 022\nUMASK\t027\nENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS\t65536\n"
    )
    assert login.edit_login_defs(text, {"UMASK": "027"}) == text


@pytest.mark.parametrize("bad", [{"umask": "027; rm"}, {"UMASK": "0 27"}, {"PASS": "1\nX 2"}])
def test_malformed_login_defs_are_refused(bad):
    with pytest.raises(KubeguardError) as err:
        login.edit_login_defs(DEFS, bad)
    assert err.value.option == "node_os_login_defs"


def test_the_profile_sets_umask_and_a_readonly_timeout():
    assert login.profile("027", 900, "h").splitlines()[1:] == [
        "umask 027",
        "TMOUT=900",
        "readonly TMOUT",
        "export TMOUT",
    ]
    assert "TMOUT" not in login.profile("077", 0, "h")
    with pytest.raises(KubeguardError):
        login.profile("999", 0, "h")


def test_run_writes_then_changes_nothing(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/login.defs").write_text(DEFS)
    params = {
        "root": str(tmp_path),
        "login_defs": {"UMASK": "027"},
        "umask": "027",
        "tmout": 900,
        "banner": "Authorized access only.",
        "profile_file": "/etc/profile.d/60-login.sh",
        "header": "h",
    }
    assert login.run(params, True)["files"] == [
        str(tmp_path / p) for p in ("etc/login.defs", "etc/profile.d/60-login.sh", "etc/issue", "etc/issue.net")
    ]
    assert (tmp_path / "etc/login.defs").read_text() == DEFS  # check mode wrote nothing
    assert login.run(params, False)["changed"]
    assert (tmp_path / "etc/issue.net").read_text() == "Authorized access only.\n"
    assert not login.run(params, False)["changed"]
