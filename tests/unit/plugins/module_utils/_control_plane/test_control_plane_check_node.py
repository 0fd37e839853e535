"""check_node (control_plane_plan): the files and each component checked in order, etcd's deferred change
counted as pending, the facts gathered once when the caller gives none, and nothing run outside check mode.
apply, fix_files and gather are stubbed here: their own behaviour is proven on the lab."""

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import check_node as module
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def apply(params, check_mode):
        seen.append((params["component"], params["facts"], check_mode))
        return {
            "etcd": {"changed": False, "deferred": True},
            "kube-apiserver": {"changed": True, "diff": {"after": "--profiling=false\n"}},
        }.get(params["component"], {"changed": False})

    monkeypatch.setattr(module, "apply", apply)
    monkeypatch.setattr(module, "fix_files", lambda params, check_mode: {"changed": False, "fixed": []})
    monkeypatch.setattr(module, "gather", lambda params: seen.append("gather") or {"files": []})
    return seen


def params(**extra):
    components = [{"component": name} for name in ("etcd", "kube-apiserver", "kube-scheduler")]
    return {"facts": None, "files": True, "components": components, **extra}


def test_every_component_is_checked_in_order_on_facts_gathered_once(calls):
    result = module.check_node(params(), True)
    assert calls == ["gather", *[(name, {"files": []}, True) for name in ("etcd", "kube-apiserver", "kube-scheduler")]]
    assert result["pending"] == ["etcd", "kube-apiserver"]  # etcd deferred until the apiserver follows
    assert result["changed"] and result["diff"] == [{"after": "--profiling=false\n"}]
    assert result["files"] == {"changed": False, "fixed": []}
    assert list(result["components"]) == ["etcd", "kube-apiserver", "kube-scheduler"]


def test_given_facts_are_used_and_the_files_can_be_left_out(calls):
    result = module.check_node(params(facts={"given": True}, files=False), True)
    assert "gather" not in calls and calls[0][1] == {"given": True}
    assert "files" not in result


def test_outside_check_mode_nothing_runs(calls):
    with pytest.raises(KubeguardError, match="control_plane_plan only checks"):
        module.check_node(params(), False)
    assert calls == []
