"""cluster_pki_node_plan's entry point: the endpoint proof, the install checks of the node's files
and of its agents' kubeconfigs, and the expiry report, in one call that writes nothing, each with
its own module's code and argument spec."""

import os
import pathlib

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.kubeguard.hardening.plugins.module_utils._common.concerns import validated
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import (
    _endpoint,
    _info,
    _install,
    _kubeconfig,
    _node_plan,
    _specs,
)
from ansible_collections.kubeguard.hardening.plugins.modules import (
    cluster_pki_endpoint,
    cluster_pki_info,
    cluster_pki_install,
    cluster_pki_node_plan,
)
from kubeguard_test import modules

UID, GID = str(os.getuid()), str(os.getgid())
CA = b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"


@pytest.fixture
def node(tmp_path):
    dirs = {"kubernetes_dir": str(tmp_path / "k8s"), "kubelet_pki_dir": str(tmp_path / "kubelet")}
    os.makedirs(dirs["kubernetes_dir"])
    return dirs


def entry(dest, mode="0644", **extra):
    components = ["kube-apiserver"]
    return {"root": "kubernetes", "dest": dest, "mode": mode, "components": components, "src": "/tree/" + dest, **extra}


def install_options(node, files, contents, **extra):
    role_vars = {"owner": "cluster_pki_owner"}
    return {"files": files, "contents": contents, "owner": UID, "group": GID, "role_vars": role_vars, **node, **extra}


def concerns(given):
    return validated(given, _specs.CONCERNS)


def no_unit(unit):
    return False


def test_it_refuses_to_run_outside_check_mode(node):
    with pytest.raises(KubeguardError, match="only checks"):
        _node_plan.run(concerns({"report": dict(node)}), False)


def test_a_converged_node_has_nothing_pending_and_each_concern_answers_as_its_module(node):
    files = [entry("pki/ca.crt"), entry("admin.conf", "0600", server="https://10.0.0.1:6443")]
    contents = ["ca\n", _kubeconfig.render("unit", "https://10.0.0.1:6443", "admin", CA, CA, b"key").decode()]
    options = install_options(node, files, contents)
    _install.run(validated({"x": options}, {"x": _specs.INSTALL})["x"], check_mode=False, loaded=no_unit)
    given = {
        "endpoint": dict(node, files=[files[1]], ca_certificate=""),
        "distribute": options,
        "node_agents": install_options(node, [], []),
        "report": dict(node, renew_before_days=30),
    }
    plan = _node_plan.run(concerns(given), True, loaded=no_unit)
    assert plan["pending"] == [] and plan["changed"] is False and "diff" not in plan
    assert plan["endpoint"] == {"changed": False, "checked": []}
    assert plan["distribute"] == {
        "changed": False,
        "changed_files": [],
        "components": [],
        "pending_restart": False,
        "agents_skipped": [],
    }
    report = _info.run(validated({"r": given["report"]}, {"r": _specs.INFO})["r"])
    assert plan["report"] == report


def test_a_missing_or_planned_file_is_pending_with_its_diff_and_nothing_is_written(node):
    files = [entry("pki/ca.crt"), entry("pki/apiserver.crt")]
    planned = [entry("pki/apiserver-kubelet-client.crt")]
    given = {"distribute": install_options(node, files, ["ca\n", "crt\n"], planned=planned), "report": dict(node)}
    plan = _node_plan.run(concerns(given), True, loaded=no_unit)
    assert plan["pending"] == ["distribute"]
    assert [(os.path.basename(f["path"]), f["reason"]) for f in plan["distribute"]["changed_files"]] == [
        ("ca.crt", "absent"),
        ("apiserver.crt", "absent"),
        ("apiserver-kubelet-client.crt", "planned"),
    ]
    assert plan["distribute"]["components"] == ["kube-apiserver"]
    assert "ca.crt (0644, absent)" in plan["diff"][0]["after"] and "ca\n" not in str(plan)
    assert os.listdir(node["kubernetes_dir"]) == []


def test_a_restart_left_pending_by_a_killed_run_is_pending(node, tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / _install.MANIFEST).write_text('{"components": ["kubelet"], "files": {}}')
    given = {"node_agents": install_options(node, [], [], backup_dir=str(backup))}
    plan = _node_plan.run(concerns(given), True, loaded=no_unit)
    assert plan["pending"] == ["node_agents"] and plan["node_agents"]["components"] == ["kubelet"]


def test_an_agent_without_its_unit_here_is_skipped_as_the_install_skips_it(node):
    agent = {
        "root": "/",
        "dest": node["kubernetes_dir"].lstrip("/") + "/proxy.conf",
        "mode": "0600",
        "agent": "kube-proxy",
        "unit": "kube-proxy",
        "src": "/tree/proxy",
    }
    given = {"node_agents": install_options(node, [agent], ["conf\n"])}
    plan = _node_plan.run(concerns(given), True, loaded=no_unit)
    assert plan["pending"] == [] and plan["node_agents"]["agents_skipped"] == ["kube-proxy"]
    plan = _node_plan.run(concerns(given), True, loaded=lambda unit: True)
    assert plan["pending"] == ["node_agents"]


def test_a_failing_endpoint_proof_fails_the_call_as_cluster_pki_endpoint_fails(node):
    kubeconfig = _kubeconfig.render("unit", "https://10.0.0.1:6443", "admin", CA, CA, b"key")
    pathlib.Path(node["kubernetes_dir"], "admin.conf").write_bytes(kubeconfig)
    moved = entry("admin.conf", "0600", server="https://noport.invalid:6443", server_option="control_plane_endpoint")
    given = {"endpoint": dict(node, files=[moved]), "report": dict(node)}
    with pytest.raises(KubeguardError, match=r"noport\.invalid:6443 does not resolve") as error:
        _node_plan.run(concerns(given), True, loaded=no_unit)
    with pytest.raises(KubeguardError) as alone:
        _endpoint.run(validated({"e": given["endpoint"]}, {"e": _specs.ENDPOINT})["e"])
    assert error.value.option == alone.value.option == "control_plane_endpoint"
    assert "cluster_pki_control_plane_endpoint" in str(error.value)


def test_another_concern_refused_is_pending_so_its_own_task_refuses_in_its_place(node):
    pathlib.Path(node["kubernetes_dir"], "pki").mkdir()
    pathlib.Path(node["kubernetes_dir"], "pki/ca.crt").write_text("node's own CA\n")
    given = {
        "distribute": install_options(node, [entry("pki/ca.crt", ca=True)], ["tree CA\n"]),
        "node_agents": install_options(node, [], [], owner="no-such-user-here"),
        "report": dict(node, renew_before_days=-1),
    }
    plan = _node_plan.run(concerns(given), True, loaded=no_unit)
    assert plan["pending"] == ["distribute", "node_agents", "report"]
    assert plan["distribute"]["error"].startswith("replace_ca: ")
    assert "never replaced silently" in plan["distribute"]["error"]
    # the role's variable, through the concern's own role_vars, as its module names it
    assert plan["node_agents"]["error"].startswith("cluster_pki_owner: unknown user or group")
    assert plan["report"]["error"].startswith("renew_before_days: ")


@pytest.mark.parametrize(
    "concern, module",
    [
        ("endpoint", cluster_pki_endpoint),
        ("distribute", cluster_pki_install),
        ("node_agents", cluster_pki_install),
        ("report", cluster_pki_info),
    ],
)
def test_each_concern_is_validated_with_its_module_s_own_spec(concern, module):
    assert modules.argument_spec(module.__name__.rsplit(".", 1)[1]) == _specs.CONCERNS[concern]
    plan_spec = modules.argument_spec("cluster_pki_node_plan")[concern]
    assert plan_spec == {"type": "dict", "options": _specs.CONCERNS[concern]}
    assert cluster_pki_node_plan.ARGUMENT_SPEC[concern]["options"] is _specs.CONCERNS[concern]
    # the secret keeps its no_log inside the plan's option
    if concern in ("distribute", "node_agents"):
        assert plan_spec["options"]["contents"]["no_log"] is True


def test_a_bad_option_is_refused_naming_the_concern():
    with pytest.raises(KubeguardError) as error:
        validated({"report": {"renew_before_days": "soon"}}, _specs.CONCERNS)
    assert error.value.option == "report"
    assert ArgumentSpecValidator(_specs.INFO).validate({"renew_before_days": "soon"}).error_messages


def test_the_module_keeps_the_contents_out_of_its_result(node):
    options = install_options(node, [entry("pki/ca.key", "0600")], ["SECRET KEY MATERIAL\n"])
    ended = modules.run("cluster_pki_node_plan", {"distribute": options})
    assert not ended.failed and ended.result["pending"] == ["distribute"]
    assert "SECRET" not in str(ended.result)


@pytest.mark.parametrize("value", [False, 3])
def test_the_module_refuses_a_concern_that_is_not_a_dict_naming_it(node, value):
    # ansible-core's sub-spec validation raises a TypeError on these instead of refusing them
    ended = modules.run("cluster_pki_node_plan", {"report": value, "endpoint": dict(node, files=[])})
    assert ended.failed
    assert ended.result["msg"].startswith("report: "), ended.result
