"""node_os_plan: every concern planned by its own module's code in check mode, one result each,
refusals named through that concern's role_vars (pure, in a temp root)."""

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node_os import plan, specs

DEFS = "PASS_MAX_DAYS\t99999\nUMASK\t\t022\n"


def login_options(tmp_path, **over):
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc/login.defs").write_text(DEFS)
    options = {
        "root": str(tmp_path),
        "login_defs": {"UMASK": "027"},
        "umask": "027",
        "tmout": 900,
        "banner": "",
        "profile_file": "/etc/profile.d/60-login.sh",
        "header": "h",
    }
    return {**options, **over}


def test_a_concern_is_planned_and_nothing_is_written(tmp_path):
    result = plan.run({"login": login_options(tmp_path)}, node=None)
    assert result["changed"] is False
    assert result["login"]["pending"] is True and result["login"]["changed"] is False
    assert "diff" not in result["login"]
    assert (tmp_path / "etc/login.defs").read_text() == DEFS
    assert not (tmp_path / "etc/profile.d").exists()


def test_a_refusal_names_the_role_variable_behind_concern_and_option(tmp_path):
    role_vars = {"login.umask": "node_os_login_umask", "kernel.sysctls": "node_os_kernel_sysctls_extra"}
    with pytest.raises(KubeguardError) as err:
        plan.run({"login": login_options(tmp_path, umask="999")}, None, role_vars)
    assert err.value.option == "node_os_login_umask"
    # an option the map lacks keeps the concern's own name (some name their role variable already)
    with pytest.raises(KubeguardError) as err:
        plan.run({"login": login_options(tmp_path, login_defs={"UMASK": "0 27"})}, None, role_vars)
    assert err.value.option == "node_os_login_defs"


def test_warnings_are_gathered_and_only_the_given_concerns_run(monkeypatch):
    seen = []

    def fake(params, _node):
        seen.append(params)
        return {"changed": True, "pending": True, "warnings": ["w"], "diff": {"before": "", "after": "x"}}

    monkeypatch.setitem(plan.CHECKS, "audit", fake)
    result = plan.run({"audit": {"watches": [], "header": "h", "role_vars": {}}}, node=None)
    assert seen == [{"watches": [], "header": "h"}]  # the spec's empty role_vars is not the concern's
    assert result == {"changed": False, "warnings": ["w"], "audit": {"changed": False, "pending": True}}


def test_every_concern_has_a_check_and_a_spec_that_fills_in_defaults():
    assert set(plan.CHECKS) == set(specs.CONCERNS)
    checked = ArgumentSpecValidator(specs.PACKAGES).validate({"install": ["aide"]})
    assert not checked.error_messages
    assert checked.validated_parameters == {
        "install": ["aide"],
        "remove": [],
        "cache_valid_time": 3600,
        "files": {},
        "lines": {},
    }
    assert ArgumentSpecValidator(specs.KERNEL).validate({"sysctls": "x"}).error_messages
