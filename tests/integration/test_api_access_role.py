"""The api_access role on the lab (after site.yml in the lab stream): check mode predicts
and writes nothing, the apply goes through the control plane's restart path, a rerun changes
and restarts nothing, the diff never shows a token, and the real apiserver then refuses
anonymous /api, answers anonymous /readyz and knows the static user. Bad input: the
loopback test file (the refusal comes before any node is touched)."""

import json

import pytest
import requests
import yaml
from conftest import ansible_playbook
from kubeguard_test.api import api_port

pytestmark = pytest.mark.lab

HEALTH_AND_TOKENS = {
    "api_access_anonymous": "health",
    "api_access_static_tokens_enabled": True,
    "api_access_static_tokens": [{"user": "ops-bot", "groups": ["kubeguard:ops", "team-a"]}],
    "api_access_api_audiences": ["https://kubernetes.default.svc.cluster.local"],
    "api_access_service_account_max_token_expiration": "12h",
}


def apiserver(lab):
    """(pid, flags) of the running kube-apiserver on the first control-plane node."""
    host = lab.groups["control_plane"][0]
    pid = lab.podman_exec(host, "pgrep", "-o", "-f", "^[^ ]*kube-apiserver ").stdout.split()[0]
    argv = lab.podman_exec(host, "cat", f"/proc/{pid}/cmdline").stdout.split("\0")
    return pid, {a.split("=", 1)[0][2:]: a.split("=", 1)[1] for a in argv if a.startswith("--") and "=" in a}


def run_role(lab, tmp_path, variables, *extra):
    path = tmp_path / f"vars-{len(list(tmp_path.iterdir()))}.yml"
    path.write_text(yaml.safe_dump(variables))
    return ansible_playbook(lab.inventory, "api_access.yml", "-e", f"@{path}", *extra)


def status(lab, path, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"https://127.0.0.1:{api_port(lab.kubeconfig)}{path}"
    return requests.get(url, headers=headers, verify=False, timeout=10)  # noqa: S501 (TLS is proven elsewhere)


@pytest.fixture(scope="module")
def applied(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api-access-role")
    # The role contributes to a hardened control plane: on a lab that site.yml has not hardened yet
    # (this file run alone), install the PKI and harden it first, as site.yml would.
    host = lab.groups["control_plane"][0]
    if lab.podman_exec(host, "test", "-e", "/etc/kubernetes/pki/apiserver-etcd-client.crt").returncode != 0:
        run, _ = ansible_playbook(lab.inventory, "site.yml", "--tags", "cluster_pki,control_plane")
        assert run.returncode == 0, run.stdout[-3000:]
    variables = {**HEALTH_AND_TOKENS, "api_access_static_token_store": str(tmp / "pki/api_access/static-tokens.json")}
    before = apiserver(lab)
    check, check_recap = run_role(lab, tmp, variables, "--check", "--diff")
    after_check = apiserver(lab)
    store_after_check = (tmp / "pki/api_access/static-tokens.json").exists()
    first, first_recap = run_role(lab, tmp, variables, "--diff", "-v")
    assert first.returncode == 0, first.stdout[-4000:]
    after_first = apiserver(lab)
    second, second_recap = run_role(lab, tmp, variables, "--diff")
    yield {
        "tmp": tmp,
        "variables": variables,
        "before": before,
        "check": (check, check_recap, after_check),
        "store_after_check": store_after_check,
        "first": (first, first_recap, after_first),
        "second": (second, second_recap, apiserver(lab)),
    }
    # The lab keeps this configuration: restoring the defaults would cost a second restart, and
    # every later lab test sees the same answers (anonymous /api 401; the health endpoints are
    # not asserted closed after this file).


def test_check_mode_predicts_and_changes_nothing(applied):
    check, recap, after = applied["check"]
    assert check.returncode == 0, check.stdout[-3000:]
    assert any(stats["changed"] for stats in recap.values())
    assert after == applied["before"]  # same process, same flags: nothing written, nothing restarted
    assert applied["store_after_check"] is False


def test_apply_restarts_once_with_the_structured_config(applied):
    _, recap, (pid, flags) = applied["first"]
    assert any(stats["changed"] for stats in recap.values())
    assert pid != applied["before"][0]
    assert flags["authentication-config"] == "/etc/kubernetes/kubeguard/authentication.yaml"
    assert flags["authorization-config"] == "/etc/kubernetes/kubeguard/authorization.yaml"
    assert flags["token-auth-file"] == "/etc/kubernetes/kubeguard/static-tokens.csv"
    assert flags["service-account-max-token-expiration"] == "12h"
    assert "anonymous-auth" not in flags and "authorization-mode" not in flags


def test_rerun_changes_and_restarts_nothing(applied):
    second, recap, after = applied["second"]
    assert second.returncode == 0, second.stdout[-3000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), second.stdout[-3000:]
    assert after == applied["first"][2]


def test_no_token_in_any_output_and_the_cis_warning(applied):
    store = applied["tmp"] / "pki/api_access/static-tokens.json"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    token = json.loads(store.read_text())["ops-bot"]
    for run, _, _ in (applied["check"], applied["first"], applied["second"]):
        assert token not in run.stdout and token not in run.stderr
    assert "CIS 1.2.2" in applied["first"][0].stdout


def test_the_apiserver_enforces_it(applied, lab):
    token = json.loads((applied["tmp"] / "pki/api_access/static-tokens.json").read_text())["ops-bot"]
    assert status(lab, "/readyz").status_code == 200
    assert status(lab, "/api").status_code == 401
    review = requests.post(
        f"https://127.0.0.1:{api_port(lab.kubeconfig)}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Authorization": f"Bearer {token}"},
        verify=False,  # noqa: S501
        timeout=10,
    )
    assert review.status_code == 201, review.text
    info = review.json()["status"]["userInfo"]
    assert info["username"] == "ops-bot" and {"kubeguard:ops", "team-a"} <= set(info["groups"])
    assert status(lab, "/api", token=token[:-1] + ("x" if token[-1] != "x" else "y")).status_code == 401


def apiserver_starts(lab):
    """How often systemd started kube-apiserver on the first control-plane node (its journal)."""
    host = lab.groups["control_plane"][0]
    log = lab.podman_exec(host, "journalctl", "-u", "kube-apiserver", "-o", "cat", "--no-pager").stdout
    return sum(1 for line in log.splitlines() if line.startswith("Started "))


def test_site_tags_api_access_applies_it_in_one_restart(applied, lab):
    """site.yml assembles the apiserver in the control_plane play; --tags api_access must still
    reach it (the apiserver task carries the contributing roles' tags), in one restart, and a
    rerun must restart nothing. The role's playbook alone then puts the file's settings back."""
    shorter = {**applied["variables"], "api_access_service_account_max_token_expiration": "6h"}
    path = applied["tmp"] / "site-vars.yml"
    path.write_text(yaml.safe_dump(shorter))
    starts, (pid, _) = apiserver_starts(lab), apiserver(lab)
    run, recap = ansible_playbook(lab.inventory, "site.yml", "--tags", "api_access", "-e", f"@{path}")
    assert run.returncode == 0, run.stdout[-4000:]
    assert any(stats["changed"] for stats in recap.values())
    new_pid, flags = apiserver(lab)
    assert (apiserver_starts(lab) - starts, new_pid != pid) == (1, True)
    assert flags["service-account-max-token-expiration"] == "6h"
    assert flags["authentication-config"] == "/etc/kubernetes/kubeguard/authentication.yaml"
    again, recap = ansible_playbook(lab.inventory, "site.yml", "--tags", "api_access", "-e", f"@{path}")
    assert again.returncode == 0, again.stdout[-4000:]
    assert all(stats["changed"] == 0 for stats in recap.values()), again.stdout[-3000:]
    assert apiserver(lab)[0] == new_pid
    starts = apiserver_starts(lab)
    back, _ = run_role(lab, applied["tmp"], applied["variables"])
    assert back.returncode == 0, back.stdout[-4000:]
    assert apiserver_starts(lab) - starts == 1
    assert apiserver(lab)[1]["service-account-max-token-expiration"] == "12h"
