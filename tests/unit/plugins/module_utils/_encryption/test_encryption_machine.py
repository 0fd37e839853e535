"""The rotation state machine: plan, begin and record against a key store and state file in tmp_path."""

import base64
import json
import os
import stat

import pytest
from ansible_collections.kubeguard.hardening.plugins.module_utils._encryption import config, keystore, machine
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

SECRET = base64.b64encode(b"k" * 32).decode()


def params(tmp_path, nodes, **extra):
    out = {
        "action": "plan",
        "key_store": str(tmp_path / "pki/encryption-keys.json"),
        "state_file": str(tmp_path / "pki/encryption-state.json"),
        "provider": "aescbc",
        "generation": 1,
        "resources": ["secrets"],
        "nodes": nodes,
        "adopt": False,
    }
    out.update(extra)
    return out


def node_from(text, include_secrets=False):
    parsed = config.parse(text, "node")
    view = config.public_view(parsed)
    if include_secrets:
        view["secrets"] = {s["name"]: s["secret"] for s in parsed["slots"] if s.get("secret")}
    return view


PLAIN = {"resources": [], "slots": [], "other_keys": [], "unsupported": []}


def drive(tmp_path, nodes, upto=None, **extra):
    """Run the role's sequence: plan, then begin/apply/record each step; returns the nodes' configs."""
    p = params(tmp_path, nodes, **extra)
    planned = machine.run(p)
    for step in planned["steps"]:
        if step in ("secondary", "primary", "remove"):
            text = machine.run(dict(p, action="begin", step=step))["config"]
            nodes = {host: node_from(text) for host in nodes}
            p["nodes"] = nodes
        evidence = None
        if step == "verify":
            state = keystore.load_state(p["state_file"])
            store = keystore.load_store(p["key_store"])
            target = state["transition"]["target"]
            evidence = {
                "expected_prefix": config.etcd_value_prefix(store[target]["provider"], target),
                "resources": p["resources"],
                "stale": 0,
            }
        machine.run(dict(p, action="record", step=step, evidence=evidence))
        if step == upto:
            break
    return planned, nodes


def test_first_run_migrates_from_identity_then_drops_it(tmp_path):
    planned, nodes = drive(tmp_path, {"cp1": PLAIN, "cp2": PLAIN})
    assert planned["steps"] == list(machine.STEPS)
    assert planned["retiring"] == ["identity"]
    assert planned["providers"]["secondary"] == ["identity", "aescbc:gen1-aescbc"]
    assert planned["providers"]["primary"] == ["aescbc:gen1-aescbc", "identity"]
    assert planned["providers"]["remove"] == ["aescbc:gen1-aescbc"]
    assert [s["name"] for s in nodes["cp1"]["slots"]] == ["gen1-aescbc"]
    store_path = tmp_path / "pki/encryption-keys.json"
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store_path.parent).st_mode) == 0o700
    secret = json.loads(store_path.read_text())["keys"]["gen1-aescbc"]["secret"]
    assert len(base64.b64decode(secret)) == 32
    # nothing due on the next run
    again = machine.run(params(tmp_path, nodes))
    assert again["changed"] is False and again["steps"] == []


def test_no_key_bytes_in_plan_result(tmp_path):
    planned = machine.run(params(tmp_path, {"cp1": PLAIN}))
    secret = keystore.load_store(str(tmp_path / "pki/encryption-keys.json"))["gen1-aescbc"]["secret"]
    assert secret not in json.dumps(planned)


def test_generation_bump_rotates_and_resumes_at_every_boundary(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN, "cp2": PLAIN})
    p = params(tmp_path, nodes)
    for generation, boundary in enumerate(machine.STEPS[:-1], start=2):
        _, nodes = drive(tmp_path, nodes, upto=boundary, generation=generation)
        assert keystore.load_state(p["state_file"])["transition"]["done"][-1] == boundary
        resumed, nodes = drive(tmp_path, nodes, generation=generation)
        assert resumed["steps"][0] == machine.STEPS[machine.STEPS.index(boundary) + 1]
        assert keystore.load_state(p["state_file"])["current"] == f"gen{generation}-aescbc"
        assert [s["name"] for s in nodes["cp1"]["slots"]] == [f"gen{generation}-aescbc"]


def test_remove_never_comes_before_verify(tmp_path):
    drive(tmp_path, {"cp1": PLAIN}, upto="rewrite")
    p = params(tmp_path, {"cp1": PLAIN})
    with pytest.raises(KubeguardError, match="remove is not due"):
        machine.run(dict(p, action="begin", step="remove"))
    with pytest.raises(KubeguardError, match="cannot be recorded before verify"):
        machine.run(dict(p, action="record", step="remove"))


@pytest.mark.parametrize(
    "evidence",
    [
        {"expected_prefix": "k8s:enc:aescbc:v1:gen1-aescbc:", "resources": ["secrets"], "stale": 3},
        {"expected_prefix": "k8s:enc:aescbc:v1:other:", "resources": ["secrets"], "stale": 0},
        {"expected_prefix": "k8s:enc:aescbc:v1:gen1-aescbc:", "resources": [], "stale": 0},
        None,
    ],
)
def test_verify_needs_etcd_evidence(tmp_path, evidence):
    drive(tmp_path, {"cp1": PLAIN}, upto="rewrite")
    p = params(tmp_path, {"cp1": PLAIN}, action="record", step="verify", evidence=evidence)
    with pytest.raises(KubeguardError, match="retiring keys stay"):
        machine.run(p)


def test_missing_store_with_keys_on_nodes_is_refused_and_nothing_written(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN})
    (tmp_path / "pki/encryption-keys.json").unlink()
    state_before = (tmp_path / "pki/encryption-state.json").read_text()
    with pytest.raises(KubeguardError) as caught:
        machine.run(params(tmp_path, nodes))
    message = str(caught.value)
    assert caught.value.option == "encryption_at_rest_key_store"
    assert "does not exist" in message and "gen1-aescbc" in message and "encryption_at_rest_adopt" in message
    assert "cp1" in message
    assert not (tmp_path / "pki/encryption-keys.json").exists()
    assert (tmp_path / "pki/encryption-state.json").read_text() == state_before


def test_store_and_node_disagree(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN})
    path = str(tmp_path / "pki/encryption-keys.json")
    store = keystore.load_store(path)
    store["gen1-aescbc"]["secret"] = SECRET
    keystore.save_store(path, store)
    with pytest.raises(KubeguardError, match=r"the key store .* holds gen1-aescbc as aescbc sha256:"):
        machine.run(params(tmp_path, nodes))


def test_nodes_disagree(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN, "cp2": PLAIN})
    other = json.loads(json.dumps(nodes["cp2"]))
    other["slots"][0]["fingerprint"] = "sha256:0000"
    with pytest.raises(KubeguardError, match="nodes disagree on key 'gen1-aescbc'"):
        machine.run(params(tmp_path, {"cp1": nodes["cp1"], "cp2": other}, adopt=True))


def test_adopt_takes_the_nodes_keys(tmp_path):
    foreign = config.render(["secrets"], ["key1"], {"key1": {"provider": "secretbox", "secret": SECRET}})
    nodes = {"cp1": node_from(foreign, include_secrets=True)}
    with pytest.raises(KubeguardError, match="does not exist, but the apiserver configuration on the nodes holds key1"):
        machine.run(params(tmp_path, nodes))
    planned = machine.run(params(tmp_path, nodes, adopt=True))
    assert planned["adopted"] == ["key1"]
    assert keystore.load_store(str(tmp_path / "pki/encryption-keys.json"))["key1"]["secret"] == SECRET
    assert planned["retiring"] == ["key1"] and planned["target"] == "gen1-aescbc"


def test_state_naming_a_lost_key_is_refused(tmp_path):
    drive(tmp_path, {"cp1": PLAIN})
    (tmp_path / "pki/encryption-keys.json").unlink()
    with pytest.raises(KubeguardError, match=r"state file .* says objects are .* encrypted with gen1-aescbc"):
        machine.run(params(tmp_path, {"cp1": PLAIN}))


def test_check_mode_predicts_and_writes_nothing(tmp_path):
    planned = machine.run(params(tmp_path, {"cp1": PLAIN, "cp2": PLAIN}), check_mode=True)
    assert planned["changed"] is True and planned["steps"] == list(machine.STEPS)
    assert "aescbc:gen1-aescbc" in planned["diff"]["after"]
    assert not (tmp_path / "pki").exists()


def test_provider_switch_is_a_rotation(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN})
    planned, nodes = drive(tmp_path, nodes, provider="secretbox")
    assert planned["retiring"] == ["gen1-aescbc"] and planned["target"] == "gen1-secretbox"
    assert planned["providers"]["secondary"] == ["aescbc:gen1-aescbc", "secretbox:gen1-secretbox"]
    assert [s["provider"] for s in nodes["cp1"]["slots"]] == ["secretbox"]


def test_new_resource_keeps_identity_until_rewritten(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN})
    planned = machine.run(params(tmp_path, nodes, resources=["secrets", "configmaps"]))
    assert planned["target"] == "gen1-aescbc" and planned["retiring"] == ["identity"]
    assert planned["providers"]["primary"] == ["aescbc:gen1-aescbc", "identity"]


def test_dropping_a_resource_is_refused(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN}, resources=["secrets", "configmaps"])
    with pytest.raises(KubeguardError, match="encrypt configmaps, which the list no longer names"):
        machine.run(params(tmp_path, nodes))


def test_drifted_node_is_repaired_through_a_transition(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN})
    planned = machine.run(params(tmp_path, dict(nodes, cp2=PLAIN)))
    assert planned["target"] == "gen1-aescbc" and planned["retiring"] == ["identity"]
    assert planned["steps"] == list(machine.STEPS)


def test_one_apiserver_skips_the_secondary_step(tmp_path):
    planned = machine.run(params(tmp_path, {"cp1": PLAIN}))
    assert planned["steps"] == ["primary", "rewrite", "verify", "remove"]
    assert planned["providers"]["primary"] == ["aescbc:gen1-aescbc", "identity"]


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("provider", "identity", "encryption_at_rest_provider"),
        ("provider", "kms", "encryption_at_rest_provider"),
        ("generation", 0, "encryption_at_rest_key_generation"),
        ("resources", [], "encryption_at_rest_resources"),
        ("resources", ["*.*"], "encryption_at_rest_resources"),
        ("resources", ["secrets", "secrets"], "encryption_at_rest_resources"),
    ],
)
def test_bad_inputs_name_their_variable(tmp_path, option, value, match):
    with pytest.raises(KubeguardError, match=match):
        machine.run(params(tmp_path, {"cp1": PLAIN}, **{option: value}))
    assert not (tmp_path / "pki").exists()


def test_generation_never_goes_back_and_retired_keys_stay_retired(tmp_path):
    _, nodes = drive(tmp_path, {"cp1": PLAIN})
    _, nodes = drive(tmp_path, nodes, generation=2)
    store = keystore.load_store(str(tmp_path / "pki/encryption-keys.json"))
    assert store["gen1-aescbc"]["retired"] and not store["gen2-aescbc"].get("retired")
    older = machine.run(params(tmp_path, nodes, generation=1))
    assert older["steps"] == [] and "keeping generation 2" in older["warnings"][0]
    _, nodes = drive(tmp_path, nodes, generation=2, provider="secretbox")
    with pytest.raises(KubeguardError, match="gen2-aescbc was retired"):
        machine.run(params(tmp_path, nodes, generation=2, provider="aescbc"))


def test_with_a_kubeconfig_the_plan_checks_the_resources_against_discovery_first(tmp_path, monkeypatch):
    from test_encryption_facts import FakeClient

    client = FakeClient()
    monkeypatch.setattr(machine.objects, "connect", lambda _params: client)
    planned = machine.run(params(tmp_path, {"cp1": PLAIN}, kubeconfig="", resources=["secrets", "widgets.example.com"]))
    assert planned["served"]["widgets.example.com"]["etcd_prefix"] == "/registry/example.com/widgets/"
    assert planned["steps"] and client.requests == 3


def test_a_resource_the_api_server_does_not_serve_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from test_encryption_facts import FakeClient

    monkeypatch.setattr(machine.objects, "connect", lambda _params: FakeClient())
    with pytest.raises(KubeguardError, match=r"does not serve gadgets\.example\.com") as caught:
        machine.run(params(tmp_path, {"cp1": PLAIN}, kubeconfig="/k", resources=["secrets", "gadgets.example.com"]))
    assert caught.value.option == "resources"
    assert not (tmp_path / "pki").exists()


def test_without_a_kubeconfig_the_plan_makes_no_request(tmp_path, monkeypatch):
    monkeypatch.setattr(machine.objects, "connect", lambda _params: pytest.fail("no API request without kubeconfig"))
    assert "served" not in machine.run(params(tmp_path, {"cp1": PLAIN}))
