"""External identities through real identity providers, proven by a real kube-apiserver.

OpenLDAP slapd holds the users and groups; Keycloak federates it and issues ID tokens; the apiserver
trusts Keycloak as a JWT issuer (structured AuthenticationConfiguration). The same slapd also backs a
TokenReview webhook (--authentication-token-webhook-config-file), the Guard-style LDAP route.
Daemons: tests/integration/idp_fixture.py (ports 23400-23499); apiserver: apiserver_fixture.py.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time

import pytest
import yaml
from apiserver_fixture import loopback_cluster
from idp_fixture import USERS, claims, shared_idp
from kubeguard_test.waiting import wait_for

NAMESPACE = "idp-proof"


def authentication_config(idp):
    """What the api_access role renders from api_access_jwt_issuers (hand-written here)."""
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "anonymous": {"enabled": False},
        "jwt": [
            {
                "issuer": {
                    "url": idp.keycloak.issuer,
                    "audiences": ["kubernetes"],
                    "certificateAuthority": idp.ca.read_text(),
                },
                "claimMappings": {
                    "username": {"claim": "preferred_username", "prefix": "oidc:"},
                    "groups": {"claim": "groups", "prefix": "oidc:"},
                },
                "userValidationRules": [
                    {"expression": "!user.username.startsWith('system:')", "message": "no system: users"}
                ],
            }
        ],
    }


def webhook_kubeconfig(idp):
    """What the api_access role renders from api_access_webhook_token_authn (hand-written here)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "token-webhook", "cluster": {"server": idp.webhook.url, "certificate-authority": str(idp.ca)}}
        ],
        "users": [{"name": "apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {"cluster": "token-webhook", "user": "apiserver"}}],
        "current-context": "webhook",
    }


@pytest.fixture(scope="module")
def idp():
    return shared_idp()


@pytest.fixture(scope="module")
def cluster(lab_binaries, idp):
    with tempfile.TemporaryDirectory(prefix="kg-idp9-api-") as work, contextlib.ExitStack() as stack:
        authn = f"{work}/authentication.yaml"
        webhook = f"{work}/token-webhook.kubeconfig"
        with open(authn, "w") as out:
            yaml.safe_dump(authentication_config(idp), out)
        with open(webhook, "w") as out:
            yaml.safe_dump(webhook_kubeconfig(idp), out)
        flags = {
            "anonymous-auth": None,  # the structured config owns anonymous; the two cannot be combined
            "authentication-config": authn,
            "authentication-token-webhook-config-file": webhook,
            "authentication-token-webhook-version": "v1",
        }
        yield stack.enter_context(loopback_cluster(lab_binaries, f"{work}/cluster", flags=flags))


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


def test_keycloak_figures(idp):
    """Keycloak's start-up (process start to discovery document over HTTPS) and memory, for the docs."""
    kc = idp.keycloak
    print(f"\nKeycloak 26.4.0: discovery served {kc.start_seconds:.1f} s after start; RSS {kc.rss_kib / 1024:.0f} MiB")
    assert claims(kc.id_token("alice"))["iss"] == kc.issuer


def test_ldap_user_id_token_shows_prefixed_username_and_ldap_groups(cluster, idp):
    token = idp.keycloak.id_token("alice")
    assert sorted(claims(token)["groups"]) == ["developers", "platform-ops"]  # LDAP's, through Keycloak
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
