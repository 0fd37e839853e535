"""External identities through real identity providers, proven by a real kube-apiserver.

OpenLDAP slapd holds the users and groups; Keycloak federates it and issues ID tokens; the apiserver
trusts Keycloak as a JWT issuer (structured AuthenticationConfiguration). The same slapd also backs a
TokenReview webhook (--authentication-token-webhook-config-file), the Guard-style LDAP route.
Daemons: tests/integration/idp_fixture.py (ports 23400-23499); apiserver: apiserver_fixture.py.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error

import pytest
import yaml
from apiserver_fixture import ansible, controller_inventory, loopback_cluster
from idp_fixture import USERS, claims, shared_idp
from kubeguard_test.waiting import wait_for

NAMESPACE = "idp-proof"


# The apiserver's configuration comes from the api_access role itself: the play below runs it on
# the controller-only inventory with these variables and api_access_apply_enabled=false, then
# writes its rendered files (0600) and flags where the loopback apiserver reads them, as the
# control plane's restart path does on a node (that path is proven on the lab by
# test_api_access_role.py).
RENDER_PLAY = [
    {
        "name": "api_access, rendered on the controller for the loopback apiserver",
        "hosts": "control_plane",
        "gather_facts": False,
        "roles": [{"role": "kubeguard.hardening.api_access", "vars": {"api_access_apply_enabled": False}}],
        "post_tasks": [
            {
                "name": "Write the rendered files as the control plane's restart path would",
                "ansible.builtin.copy": {"dest": "{{ item.key }}", "content": "{{ item.value }}", "mode": "0600"},
                "loop": "{{ api_access_render_result.files | dict2items }}",
                "no_log": True,
            },
            {
                "name": "Hand over the flags",
                "ansible.builtin.copy": {
                    "dest": "{{ idp_test_flags_file }}",
                    "content": "{{ api_access_render_result.flags | to_json }}",
                    "mode": "0600",
                },
            },
        ],
    }
]


def access_variables(idp, work):
    """The inventory a user writes for Keycloak (OIDC) and an LDAP token webhook (docs/api_access_idp.md)."""
    return {
        "api_access_jwt_issuers": [
            {
                "url": idp.keycloak.issuer,
                "audiences": ["kubernetes"],
                "ca_file": str(idp.ca),
                "username_claim": "preferred_username",
                "username_prefix": "oidc:",
                "groups_claim": "groups",
                "groups_prefix": "oidc:",
                "claim_validation_rules": [],
                "user_validation_rules": [
                    {"expression": "!user.username.startsWith('system:')", "message": "no system: users"}
                ],
            }
        ],
        "api_access_webhook_token_authn": {"server": idp.webhook.url, "ca_file": str(idp.ca), "cache_ttl": "2m"},
        "kubeguard_config_dir": str(work / "kubeguard"),
        "kubeguard_pki_output_dir": str(work / "controller-pki"),
        "api_access_cluster_ca_file": str(idp.ca),  # unused: each issuer names its CA
        "idp_test_flags_file": str(work / "flags.json"),
    }


@pytest.fixture(scope="module")
def idp():
    return shared_idp()


@pytest.fixture(scope="module")
def cluster(lab_binaries, idp, tmp_path_factory):
    work = tmp_path_factory.mktemp("idp-api")
    (work / "kubeguard").mkdir(mode=0o700)
    inventory = controller_inventory(work / "inventory.yml")
    (work / "vars.yml").write_text(yaml.safe_dump(access_variables(idp, work)))
    (work / "render.yml").write_text(yaml.safe_dump(RENDER_PLAY, sort_keys=False))
    run, stats, _ = ansible(work / "render.yml", inventory, "-e", f"@{work / 'vars.yml'}")
    assert run.returncode == 0 and stats["cp1"]["failures"] == 0, run.stdout[-3000:]
    flags = json.loads((work / "flags.json").read_text())
    assert flags["authentication-config"].startswith(str(work / "kubeguard"))
    assert flags["authentication-token-webhook-config-file"].startswith(str(work / "kubeguard"))
    with loopback_cluster(lab_binaries, work / "cluster", flags=flags) as running:
        idp.keycloak.ready()  # launched first, it started while the role and the apiserver did
        # An apiserver that started before Keycloak answered retries the issuer's discovery in
        # the background (every 10 s); until then it refuses every token of that issuer.
        probe = idp.keycloak.id_token("bob")
        wait_for(lambda: Bearer(running, probe).whoami() is not None, 60, "the apiserver trusting Keycloak's keys")
        yield running


class Bearer:
    """kubectl as the holder of one bearer token: a kubeconfig with the cluster and the token only."""

    def __init__(self, cluster, token):
        source = yaml.safe_load(cluster.super_admin.read_text())
        context = {"cluster": source["clusters"][0]["name"], "user": "bearer"}
        self.path = cluster.work / f"bearer-{time.monotonic_ns()}.kubeconfig"
        self.path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": source["clusters"],
                    "users": [{"name": "bearer", "user": {"token": token}}],
                    "contexts": [{"name": "bearer", "context": context}],
                    "current-context": "bearer",
                }
            )
        )
        self.path.chmod(0o600)
        self.cluster = cluster

    def kubectl(self, *args):
        return self.cluster.kubectl(*args, kubeconfig=self.path)

    def whoami(self):
        """(username, groups) as the apiserver authenticated them, or None when it refused the token."""
        run = self.kubectl("auth", "whoami", "-o", "json")
        if run.returncode != 0:
            assert "Unauthorized" in run.stderr, run.stderr
            return None
        info = json.loads(run.stdout)["status"]["userInfo"]
        return info["username"], sorted(info.get("groups", []))


@pytest.fixture(scope="module")
def proof_namespace(cluster):
    cluster.kubectl("create", "namespace", NAMESPACE, check=True)
    cluster.kubectl("-n", NAMESPACE, "create", "configmap", "team-settings", "--from-literal=a=b", check=True)
    # no controller-manager here to aggregate the "view" ClusterRole: a Role that spells out its rules
    rules = ("--verb=get,list", "--resource=configmaps")
    cluster.kubectl("-n", NAMESPACE, "create", "role", "read-configmaps", *rules, check=True)
    return NAMESPACE


@pytest.fixture
def alice_in_platform_ops(idp):
    """alice is in the LDAP group platform-ops for the test, and again after it, whatever it changed."""
    yield
    if "platform-ops" not in (idp.slapd.bind_as("alice", USERS["alice"]) or []):
        idp.slapd.set_member("platform-ops", "alice", True)


def test_ldap_user_id_token_shows_prefixed_username_and_ldap_groups(cluster, idp):
    token = idp.keycloak.id_token("alice")
    assert sorted(claims(token)["groups"]) == ["developers", "platform-ops"]  # LDAP's, through Keycloak
    with pytest.raises(urllib.error.HTTPError) as refused:  # Keycloak checks the password by an LDAP bind
        idp.keycloak.token("alice", "not-" + USERS["alice"])
    assert refused.value.code == 401
    who = Bearer(cluster, token).whoami()
    assert who == ("oidc:alice", ["oidc:developers", "oidc:platform-ops", "system:authenticated"])


def test_rbac_binding_on_ldap_group_grants_and_removal_from_the_group_denies_on_the_next_token(
    cluster, idp, proof_namespace, alice_in_platform_ops
):
    alice = Bearer(cluster, idp.keycloak.id_token("alice"))
    denied = alice.kubectl("-n", proof_namespace, "get", "configmap", "team-settings", "-o", "name")
    assert denied.returncode != 0 and 'User "oidc:alice" cannot get resource "configmaps"' in denied.stderr

    # The binding names the LDAP group, as prefixed by the JWT authenticator; not the user.
    cluster.kubectl(
        "-n", proof_namespace, "create", "rolebinding", "platform-ops-read",
        "--role=read-configmaps", "--group=oidc:platform-ops", check=True,
    )  # fmt: skip

    def granted():  # the RBAC authorizer sees the new binding through its informer, a moment later
        run = alice.kubectl("-n", proof_namespace, "get", "configmap", "team-settings", "-o", "name")
        return run.stdout.strip() == "configmap/team-settings" or run.stderr

    wait_for(granted, 30, "alice's access through the LDAP group binding")
    write = alice.kubectl("-n", proof_namespace, "delete", "configmap", "team-settings", "--dry-run=server")
    assert write.returncode != 0 and "forbidden" in write.stderr.lower()

    idp.slapd.set_member("platform-ops", "alice", False)
    after = Bearer(cluster, idp.keycloak.id_token("alice"))
    assert after.whoami() == ("oidc:alice", ["oidc:developers", "system:authenticated"])
    denied_again = after.kubectl("-n", proof_namespace, "get", "configmap", "team-settings", "-o", "name")
    assert denied_again.returncode != 0 and 'User "oidc:alice" cannot get resource' in denied_again.stderr
    # bob, still in the group, keeps the access the binding gives
    bob = Bearer(cluster, idp.keycloak.id_token("bob"))
    assert bob.kubectl("-n", proof_namespace, "get", "configmap", "team-settings", "-o", "name").returncode == 0


def test_expired_id_token_is_refused(cluster, idp):
    # kubectl-short's tokens live 15 s (realm-kubeguard.json)
    token = idp.keycloak.id_token("alice", client="kubectl-short")
    holder = Bearer(cluster, token)
    fresh = holder.whoami()
    expires = claims(token)["exp"]
    assert fresh is not None and fresh[0] == "oidc:alice", "a fresh token of this client must be accepted"
    time.sleep(max(0.0, expires - time.time()) + 2)
    assert holder.whoami() is None


def test_token_for_another_audience_is_refused(cluster, idp):
    token = idp.keycloak.id_token("alice", client="other-app")
    assert claims(token)["iss"] == idp.keycloak.issuer  # same issuer, same keys: only the audience differs
    assert "kubernetes" not in claims(token)["aud"]
    assert Bearer(cluster, token).whoami() is None


def test_webhook_token_authentication_binds_to_ldap(cluster, idp):
    good = Bearer(cluster, "bob:bob-Secret-2").whoami()
    assert good == ("ldap:bob", ["ldap:developers", "ldap:platform-ops", "system:authenticated"])
    assert Bearer(cluster, "bob:wrong-password").whoami() is None
    assert Bearer(cluster, "mallory:bob-Secret-2").whoami() is None


def test_keycloak_figures(cluster, idp):
    """Keycloak's start-up (process start to discovery document over HTTPS) and memory, for the docs."""
    kc = idp.keycloak.ready()
    print(
        f"\nKeycloak 26.4.0: discovery served {kc.start_seconds:.1f} s after start "
        f"({kc.cpu_seconds:.0f} CPU-seconds, load average {os.getloadavg()[0]:.1f}); RSS {kc.rss_kib / 1024:.0f} MiB"
    )
    assert claims(kc.id_token("alice"))["iss"] == kc.issuer
