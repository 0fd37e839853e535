"""API access, proven by a real kube-apiserver admitting or refusing real requests.

The api_access_config module (through ansible-playbook) renders the structured authentication
and authorization configuration, the ABAC policy, the static tokens and the webhook
kubeconfigs; a loopback etcd + kube-apiserver (apiserver_fixture) starts with exactly the
files and flags it returned, as the control plane's restart path would write them. A TLS
SubjectAccessReview/TokenReview webhook (sar_webhook) runs on 127.0.0.1:23300-23399.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
import yaml
from apiserver_fixture import REPO, ansible, call_module, controller_inventory, loopback_cluster
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from kubeguard_test.waiting import wait_for
from sar_webhook import Webhook, issue

ABBY_TOKEN = "abby-readonly-token-0123456789abcdefghijklmnop"
LENA_TOKEN = "lena-ldap-webhook-token-0123456789abcdefghijkl"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


class Access:
    """The running cluster plus what the tests need to talk to it as different identities."""

    def __init__(self, cluster, work, hook, result):
        self.cluster, self.work, self.hook, self.result = cluster, work, hook, result
        self.pki = work / "cluster/pki-tree/pki"
        self.ca = self.pki / "ca.crt"
        self.bare = work / "bare.kubeconfig"  # server and CA only: the identity comes from flags
        self.bare.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "c", "cluster": {"server": cluster.server, "certificate-authority": str(self.ca)}}
                    ],
                    "users": [{"name": "u", "user": {}}],
                    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "c",
                }
            )
        )

    def admin(self, *args):
        return self.cluster.kubectl(*args, check=True)

    def apply(self, *docs):
        path = self.work / f"objects-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        return self.admin("apply", "-f", str(path))

    def as_token(self, token, *args):
        return self.cluster.kubectl(f"--token={token}", *args, kubeconfig=self.bare)

    def as_cert(self, name, *args):
        return self.cluster.kubectl(
            f"--client-certificate={self.work / name}.crt",
            f"--client-key={self.work / name}.key",
            *args,
            kubeconfig=self.bare,
        )

    def whoami(self, run):
        assert run.returncode == 0, run.stderr
        info = json.loads(run.stdout)["status"]["userInfo"]
        return info["username"], info.get("groups", [])

    def client_cert(self, name, cn, orgs):
        """A client certificate from the cluster CA, as the PKI would issue it."""
        ca_cert, ca_key = (self.pki / "ca.crt").read_bytes(), (self.pki / "ca.key").read_bytes()
        from cryptography import x509

        ca = (x509.load_pem_x509_certificate(ca_cert), serialization.load_pem_private_key(ca_key, None))
        _, _, cert, key = issue(cn, ca, orgs)
        (self.work / f"{name}.crt").write_bytes(cert)
        (self.work / f"{name}.key").write_bytes(key)

    def status(self, path, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.cluster.server + path, headers=headers, verify=str(self.ca), timeout=15).status_code


def _pod(name, namespace, node, secret=None, service_account="default"):
    spec = {
        "nodeName": node,
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "containers": [{"name": "c", "image": "registry.invalid/pause:1"}],
    }
    if secret:
        spec["volumes"] = [{"name": "s", "secret": {"secretName": secret}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture(scope="module")
def access(lab_binaries, tmp_path_factory):
    work = tmp_path_factory.mktemp("api-access")
    hook = Webhook(work, users={LENA_TOKEN: {"username": "lena", "uid": "1001", "groups": ["ldap-devs"]}}).start()
    (work / "webhook-ca.pem").write_bytes(hook.ca_pem)
    url = f"https://127.0.0.1:{hook.port}"
    only = "has(request.resourceAttributes) && request.resourceAttributes.namespace == '{}'"
    webhook = {"server": f"{url}/authorize", "ca_file": str(work / "webhook-ca.pem"), "timeout": "2s"}
    webhook.update(cache_authorized=False, cache_unauthorized=False)  # show each decision live
    args = {
        "config_dir": str(work / "kubeguard"),
        "anonymous": "health",
        "jwt_issuers": [
            {
                "url": f"{url}/oidc",
                "audiences": ["kubernetes"],
                "ca_file": str(work / "webhook-ca.pem"),
                "username_claim": "preferred_username",
                "username_prefix": "oidc:",
                "groups_claim": "groups",
                "groups_prefix": "oidc:",
                "claim_validation_rules": [{"expression": "claims.email_verified == true", "message": "verified only"}],
                "user_validation_rules": [{"expression": "!user.username.startsWith('oidc:system:')"}],
            }
        ],
        "service_account_issuer": [SA_ISSUER],
        "authorizers": [
            "Node",
            {
                **webhook,
                "type": "Webhook",
                "name": "gate",
                "failure_policy": "Deny",
                "match_conditions": [only.format("gated")],
            },
            {
                **webhook,
                "type": "Webhook",
                "name": "advisor",
                "failure_policy": "NoOpinion",
                "match_conditions": [only.format("advised")],
            },
            "ABAC",
            "RBAC",
        ],
        "abac_policy": [{"user": "abby", "namespace": "abac-ro", "resource": "*", "apiGroup": "*", "readonly": True}],
        "static_tokens_enabled": True,
        "static_tokens": [{"user": "tess", "groups": ["team-a", "team-b"]}, {"user": "abby", "token": ABBY_TOKEN}],
        "static_token_store": str(work / "controller-pki/api_access/static-tokens.json"),
        "webhook_token_authn": {
            "server": f"{url}/authenticate",
            "ca_file": str(work / "webhook-ca.pem"),
            "cache_ttl": "10s",
        },
        "api_audiences": [SA_ISSUER, "kubeguard-api"],
        "service_account_max_token_expiration": "2h",
    }
    result, run = call_module(work, "api_access_config", args)
    assert not result.get("failed"), result.get("msg")
    assert any("CIS 1.2.2" in w for w in result.get("warnings", [])), run.stdout[-2000:]
    # What the control plane's restart path does with them on a node: 0600 files, then the flags.
    (work / "kubeguard").mkdir(mode=0o700)
    for path, text in result["files"].items():
        with open(path, "w", opener=lambda p, f: __import__("os").open(p, f, 0o600)) as handle:
            handle.write(text)
    try:
        with loopback_cluster(lab_binaries, work / "cluster", flags=result["flags"]) as cluster:
            ready = lambda: cluster.kubectl("get", "--raw", "/readyz").returncode == 0 or "not ready"  # noqa: E731
            wait_for(ready, 60, "kube-apiserver /readyz")
            yield Access(cluster, work, hook, result)
    finally:
        hook.stop()


# ------------------------------------------------------------------ authentication


def test_anonymous_only_reaches_the_health_endpoints(access):
    assert access.status("/readyz") == 200
    assert access.status("/livez") == 200
    assert access.status("/api") == 401
    assert access.status("/version") == 401  # RBAC would allow it; the anonymous conditions do not


def test_static_token_user_and_groups_from_the_csv(access):
    store = json.loads((access.work / "controller-pki/api_access/static-tokens.json").read_text())
    assert sorted(store) == ["tess"]  # generated for tess only; abby's came from the variables
    user, groups = access.whoami(access.as_token(store["tess"], "auth", "whoami", "-o", "json"))
    assert user == "tess"
    assert {"team-a", "team-b", "system:authenticated"} <= set(groups)
    assert access.status("/api", token=store["tess"]) == 200
    assert access.status("/api", token=store["tess"][:-1] + "x") == 401


def test_client_certificate_cn_is_the_user_and_o_the_groups(access):
    access.client_cert("carol", "carol", ["team-x", "team-y"])
    user, groups = access.whoami(access.as_cert("carol", "auth", "whoami", "-o", "json"))
    assert user == "carol" and {"team-x", "team-y"} <= set(groups)


def test_webhook_token_authentication(access):
    user, groups = access.whoami(access.as_token(LENA_TOKEN, "auth", "whoami", "-o", "json"))
    assert user == "lena" and "ldap-devs" in groups
    assert access.status("/api", token=LENA_TOKEN[:-1] + "x") == 401


def test_jwt_issuer_prefixes_claims_and_enforces_rules(access):
    """The rendered jwt section against a minimal issuer (discovery + JWKS over TLS, ES256)."""
    hook, now = access.hook, int(time.time())
    good = {
        "iss": hook.issuer,
        "aud": "kubernetes",
        "sub": "1234",
        "preferred_username": "jane",
        "groups": ["devs"],
        "email_verified": True,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 300,
    }
    # The authenticator fetches the JWKS in the background after start-up.
    wait_for(lambda: access.status("/api", token=hook.sign(good)) == 200 or "jwks not loaded", 30, "JWT authenticator")
    user, groups = access.whoami(access.as_token(hook.sign(good), "auth", "whoami", "-o", "json"))
    assert user == "oidc:jane" and "oidc:devs" in groups
    assert access.status("/api", token=hook.sign({**good, "aud": "someone-else"})) == 401
    assert access.status("/api", token=hook.sign({**good, "exp": now - 60, "iat": now - 600, "nbf": now - 600})) == 401
    assert access.status("/api", token=hook.sign({**good, "email_verified": False})) == 401  # claimValidationRules
    assert (
        access.status("/api", token=hook.sign({**good, "preferred_username": "system:admin"})) == 401
    )  # userValidationRules


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _resign(access, token, **claims):
    """The same token with some claims changed, signed with the cluster's service-account key."""
    header, payload, _ = token.split(".")
    body = {**json.loads(_unb64(payload)), **claims}
    signing_input = f"{header}.{_b64(json.dumps(body).encode())}".encode()
    key = serialization.load_pem_private_key((access.pki / "sa.key").read_bytes(), None)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{_b64(signature)}"


def test_bound_service_account_token(access):
    access.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sa-test"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": "sa-test"}},
        _pod("bound", "sa-test", "worker1", service_account="app"),
    )
    run = access.admin(
        "create",
        "token",
        "app",
        "-n",
        "sa-test",
        "--bound-object-kind=Pod",
        "--bound-object-name=bound",
        "--duration=3h",
    )
    token = run.stdout.strip()
    claims = json.loads(_unb64(token.split(".")[1]))
    assert claims["exp"] - claims["iat"] == 7200  # 3h asked, --service-account-max-token-expiration=2h given
    assert claims["aud"] == [SA_ISSUER, "kubeguard-api"]  # --api-audiences
    assert claims["kubernetes.io"]["pod"]["name"] == "bound"
    user, _ = access.whoami(access.as_token(token, "auth", "whoami", "-o", "json"))
    assert user == "system:serviceaccount:sa-test:app"

    # Expiry: TokenRequest refuses durations under 10 minutes, so the expired token is the real one
    # with exp moved into the past and re-signed with the cluster's key; the same re-signing with a
    # future exp is accepted, so only the expiry differs.
    now = int(time.time())
    assert access.status("/api", token=_resign(access, token, iat=now - 60, nbf=now - 60, exp=now + 600)) == 200
    assert access.status("/api", token=_resign(access, token, iat=now - 7200, nbf=now - 7200, exp=now - 60)) == 401
    assert access.status("/api", token=_resign(access, token, aud=["someone-else"])) == 401  # not an api audience

    # Deleting the bound pod invalidates the token (no kubelet: force the deletion).
    access.admin("delete", "pod", "bound", "-n", "sa-test", "--grace-period=0", "--force")
    wait_for(
        lambda: access.status("/api", token=token) == 401 or "still accepted", 30, "token of the deleted pod refused"
    )


# ------------------------------------------------------------------ authorization


def test_node_authorizer_and_node_restriction(access):
    access.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "default"}},
        *({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}} for n in ("worker1", "worker2")),
        *(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": s, "namespace": "default"},
                "data": {"k": "dg=="},
            }
            for s in ("secret-w1", "secret-w2")
        ),
        _pod("pod-w1", "default", "worker1", secret="secret-w1"),
        _pod("pod-w2", "default", "worker2", secret="secret-w2"),
    )
    access.client_cert("worker1", "system:node:worker1", ["system:nodes"])
    user, groups = access.whoami(access.as_cert("worker1", "auth", "whoami", "-o", "json"))
    assert user == "system:node:worker1" and "system:nodes" in groups

    # The node graph fills from informers: wait until the pod's secret is reachable.
    wait_for(lambda: access.as_cert("worker1", "get", "secret", "secret-w1").returncode == 0 or "not yet", 30, "graph")
    other = access.as_cert("worker1", "get", "secret", "secret-w2")
    assert other.returncode != 0 and "Forbidden" in other.stderr

    def patch_node(name):
        # a direct PATCH: kubectl annotate would GET first, which the Node authorizer already refuses
        return requests.patch(
            f"{access.cluster.server}/api/v1/nodes/{name}",
            data=json.dumps({"metadata": {"annotations": {"kubeguard.test/patched": "yes"}}}),
            headers={"Content-Type": "application/merge-patch+json"},
            cert=(str(access.work / "worker1.crt"), str(access.work / "worker1.key")),
            verify=str(access.ca),
            timeout=15,
        )

    own = patch_node("worker1")
    assert own.status_code == 200, own.text
    foreign = patch_node("worker2")
    assert foreign.status_code == 403
    assert 'node "worker1" is not allowed to modify node "worker2"' in foreign.json()["message"]  # NodeRestriction
    reads = access.as_cert("worker1", "get", "node", "worker2")
    assert reads.returncode != 0 and "Forbidden" in reads.stderr  # the Node authorizer: its own Node only

    csr = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "worker1-client"},
        "spec": {
            "request": base64.b64encode(_csr_pem("system:node:worker1", "system:nodes")).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
        },
    }
    path = access.work / "csr.yaml"
    path.write_text(yaml.safe_dump(csr))
    created = access.as_cert("worker1", "create", "-f", str(path))
    assert created.returncode == 0, created.stderr
    assert access.as_cert("worker1", "get", "csr", "worker1-client").returncode == 0


def _csr_pem(cn, org):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def _role(name, namespace, rules):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": rules,
    }


def _binding(role, namespace, kind, subject):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{role}-{subject}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
    }


PERSONAS = {"rita": ("rita", []), "dan": ("dan", ["deployers"]), "sam": ("sam", [])}
# (verb, resource, namespace) -> which personas may
MATRIX = [
    (("get", "pods", "team"), {"rita", "dan"}),
    (("list", "pods", "team"), {"rita"}),
    (("delete", "pods", "team"), set()),
    (("create", "deployments.apps", "team"), {"dan"}),
    (("patch", "deployments.apps", "team"), {"dan"}),
    (("delete", "deployments.apps", "team"), set()),
    (("get", "secrets/app-config", "team"), {"sam"}),
    (("get", "secrets/db-password", "team"), set()),
    (("list", "secrets", "team"), set()),
    (("get", "pods", "default"), set()),
]


def test_rbac_can_i_matrix_for_three_personas(access):
    access.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
        _role("pod-reader", "team", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
        _role(
            "deployer",
            "team",
            [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create", "update", "patch"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            ],
        ),
        _role(
            "config-reader",
            "team",
            [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app-config"], "verbs": ["get"]}],
        ),
        _binding("pod-reader", "team", "User", "rita"),
        _binding("deployer", "team", "Group", "deployers"),
        _binding("config-reader", "team", "User", "sam"),
    )
    got, want = {}, {}
    for (verb, resource, namespace), allowed in MATRIX:
        for persona, (user, groups) in PERSONAS.items():
            cell = (persona, verb, resource, namespace)
            args = ["auth", "can-i", verb, resource, "-n", namespace, f"--as={user}"]
            run = access.cluster.kubectl(*args, *(f"--as-group={g}" for g in groups))
            # "no - No policy matched." when ABAC is in the chain: the first word is the answer
            assert run.stdout.split()[:1] in (["yes"], ["no"]), (cell, run.stdout, run.stderr)
            got[cell] = run.stdout.split()[0] == "yes"
            want[cell] = persona in allowed
    assert got == want


def test_abac_read_only_in_one_namespace(access):
    access.apply(
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("abac-ro", "abac-other"))
    )
    assert access.as_token(ABBY_TOKEN, "get", "pods", "-n", "abac-ro").returncode == 0
    assert access.as_token(ABBY_TOKEN, "get", "configmaps", "-n", "abac-ro").returncode == 0
    write = access.as_token(ABBY_TOKEN, "create", "configmap", "abby", "-n", "abac-ro")
    assert write.returncode != 0 and "forbidden" in write.stderr.lower()
    elsewhere = access.as_token(ABBY_TOKEN, "get", "pods", "-n", "abac-other")
    assert elsewhere.returncode != 0 and "forbidden" in elsewhere.stderr.lower()


def test_webhook_authorizer_allow_deny_no_opinion_and_match_conditions(access):
    grant = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    docs = []
    for namespace in ("gated", "advised", "plain"):
        docs += [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            _role("pod-getter", namespace, grant),
            _binding("pod-getter", namespace, "User", "deny-dave"),
            _binding("pod-getter", namespace, "User", "nina"),
        ]
    access.apply(*docs)
    review = access.cluster.review
    assert review("allow-wendy", [], "get", "pods", "gated")  # the webhook allows; RBAC grants nothing
    assert not review("deny-dave", [], "get", "pods", "gated")  # the webhook denies before RBAC's grant
    assert review("deny-dave", [], "get", "pods", "plain")  # ... which RBAC gives where the webhook is skipped
    assert review("nina", [], "get", "pods", "gated")  # no opinion: falls through to RBAC
    before = len(access.hook.seen)
    assert not review("allow-wendy", [], "get", "pods", "plain")  # matchConditions skip the webhook
    assert len(access.hook.seen) == before
    assert all(s["resourceAttributes"]["namespace"] in ("gated", "advised") for s in access.hook.seen)


def test_webhook_failure_policy_when_it_is_down(access):
    review = access.cluster.review
    assert review("nina", [], "get", "pods", "advised")
    access.hook.stop()
    assert not review("nina", [], "get", "pods", "gated")  # failurePolicy Deny: RBAC is never asked
    assert review("nina", [], "get", "pods", "advised")  # failurePolicy NoOpinion: RBAC decides
    assert not review("allow-wendy", [], "get", "pods", "advised")


# ------------------------------------------------------------------ the role refuses bad input

ISSUER = {
    "url": "https://idp.example/realms/k",
    "audiences": ["kubernetes"],
    "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "username_claim": "preferred_username",
    "username_prefix": "oidc:",
}
# One refusal through the whole role (an ansible-playbook run each); every refusal of the issue
# (http issuer, no prefix, unknown authorizer, ABAC key, webhook without CA, duplicate issuer)
# is a unit test of the same code with the same nothing-written check.
BAD = [
    (
        "http-issuer",
        {"api_access_jwt_issuers": [{**ISSUER, "url": "http://idp.example"}]},
        "api_access_jwt_issuers[0].url",
    ),
]


@pytest.mark.parametrize(("variables", "option"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_the_role_refuses_bad_input_naming_the_variable_with_nothing_written(tmp_path, variables, option):
    """The whole role on this machine as its only control-plane node: the refusal comes before
    the control plane is touched, and not even the controller-side token store is written."""
    extra = {
        **variables,
        "kubeguard_config_dir": str(tmp_path / "kubeguard"),
        "api_access_static_tokens_enabled": True,
        "api_access_static_tokens": [{"user": "tess"}],
        "api_access_static_token_store": str(tmp_path / "store/static-tokens.json"),
        "ansible_become": False,
    }
    inventory = controller_inventory(tmp_path / "inventory.yml")
    run, _, tasks = ansible(REPO / "playbooks/api_access.yml", inventory, "-e", json.dumps(extra))
    assert run.returncode != 0
    failed = [t for t in tasks if t.get("failed")]
    assert failed and failed[0]["msg"].startswith(f"{option}:"), failed
    assert not (tmp_path / "store").exists() and not (tmp_path / "kubeguard").exists()
