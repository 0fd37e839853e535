# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the ``pods`` step of a CA rotation.

A pod started before the ``trust`` step read the old root CA (its
kube-root-ca.crt, directly or in the projected service-account volume) and an
in-cluster client keeps it in memory: once the API server presents a
certificate of the new CA (``reissue``) it stops trusting the API (CoreDNS
does). The step lists those pods and, when asked, restarts their
controllers (Deployment, DaemonSet, StatefulSet: the restartedAt annotation of
``kubectl rollout restart``) once the controller-manager has published the
bundle in every namespace's kube-root-ca.crt, one controller at a time: each
is rolled out (``kubectl rollout status``'s test) before the next starts, so
kube-proxy, the CNI agent, CoreDNS and an application never roll together.
Bare pods are listed only.

For the service-account key (``sa``) the step comes after ``reissue``: a pod
started before it holds a projected token signed by the old key (the kubelet
replaces it at 80 % of its lifetime, about 48 min for the default hour).
Those pods are listed, and restarted the same way when asked. Secrets of
type service-account-token (legacy tokens, signed once) are listed: they
stop working at ``remove``. When asked, those the new key did not sign lose
their ``token`` key; the controller-manager's token controller fills a new
one, signed by the key it signs with now (the new one, since ``reissue``).
"""

from __future__ import annotations

import base64
import json
import time

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

ROOT_CA = "kube-root-ca.crt"
TOKEN = "serviceAccountToken"  # noqa: S105 (a volume source name, not a secret)
LEGACY = "kubernetes.io/service-account-token"
MIRROR = "kubernetes.io/config.mirror"
ANNOTATION = "kubectl.kubernetes.io/restartedAt"
FIELD_MANAGER = "kubeguard-ca-rotation"
RESTARTABLE = {"Deployment": "deployments", "DaemonSet": "daemonsets", "StatefulSet": "statefulsets"}


def _mounts(pod, what):
    """Whether ``pod`` mounts the root CA (``ROOT_CA``) or a projected service-account token (``TOKEN``)."""
    for volume in pod.get("spec", {}).get("volumes") or []:
        if what == ROOT_CA and (volume.get("configMap") or {}).get("name") == ROOT_CA:
            return True
        for source in (volume.get("projected") or {}).get("sources") or []:
            if what == TOKEN and TOKEN in source:
                return True
            if what == ROOT_CA and (source.get("configMap") or {}).get("name") == ROOT_CA:
                return True
    return False


def _controller(obj):
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("kind", ""), ref.get("name", "")
    return "", ""


def holders(pods, replicasets, before, what=ROOT_CA):
    """Pods started before ``before`` (RFC 3339, UTC) that mount the root CA (or, ``what=TOKEN``, a projected
    service-account token), with the controller to restart.

    Returns [{'namespace', 'pod', 'kind', 'name'}]; ``kind`` is '' for a pod no restartable controller owns."""
    owners = {(r["metadata"]["namespace"], r["metadata"]["name"]): _controller(r) for r in replicasets}
    found = []
    for pod in pods:
        meta = pod.get("metadata", {})
        started = (pod.get("status") or {}).get("startTime") or ""
        if MIRROR in (meta.get("annotations") or {}) or not started or started >= before:
            continue
        if not _mounts(pod, what):
            continue
        kind, name = _controller(pod)
        if kind == "ReplicaSet":
            kind, name = owners.get((meta.get("namespace"), name), ("", ""))
        if kind not in RESTARTABLE:
            kind, name = "", ""
        found.append({"namespace": meta.get("namespace", ""), "pod": meta.get("name", ""), "kind": kind, "name": name})
    return found


def targets(found):
    """The distinct controllers to restart, in a stable order."""
    return sorted({(h["kind"], h["namespace"], h["name"]) for h in found if h["kind"]})


def token_key_id(data):
    """The ``kid`` header of the token in a Secret's ``data`` (base64 of a JWT); '' when there is none."""
    try:
        header = base64.b64decode(data.get("token") or "").decode("ascii").split(".")[0]
        return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid") or ""
    except (ValueError, AttributeError):
        return ""


def _secret_name(secret):
    return f"{secret['metadata']['namespace']}/{secret['metadata']['name']}"


def _secret_path(secret):
    return f"/api/v1/namespaces/{secret['metadata']['namespace']}/secrets/{secret['metadata']['name']}"


def reissue_secrets(client, signing_kid, reissue, check_mode, timeout=180):
    """The legacy token Secrets, and those whose token ``signing_kid`` did not sign (re-signed when asked)."""
    secrets = client.request("GET", "/api/v1/secrets", query={"fieldSelector": f"type={LEGACY}"})["items"]
    stale = [s for s in secrets if (s.get("data") or {}).get("token") and token_key_id(s["data"]) != signing_kid]
    result = {"token_secrets": sorted(_secret_name(s) for s in secrets), "token_secrets_reissued": []}
    if not reissue:
        return result
    result["token_secrets_reissued"] = sorted(_secret_name(s) for s in stale)
    if check_mode:
        return result
    for secret in stale:
        # The test op: a token changed since the list is left to its writer.
        patch = [{"op": "test", "path": "/data/token", "value": secret["data"]["token"]}]
        patch.append({"op": "remove", "path": "/data/token"})
        client.request("PATCH", _secret_path(secret), body=patch, content_type="application/json-patch+json")
    deadline = time.monotonic() + timeout
    for secret in stale:
        while token_key_id(client.request("GET", _secret_path(secret)).get("data") or {}) != signing_kid:
            if time.monotonic() > deadline:
                raise KubeguardError(
                    "reissue_token_secrets",
                    f"the controller-manager did not re-sign {_secret_name(secret)} within {timeout} s",
                )
            time.sleep(1)
    return result


def run(client, before, restart, check_mode, ca_pem, now_text, timeout=180, what=ROOT_CA):
    """List (and restart) the holders; the module's result part. ``ca_pem`` empty: no bundle to wait for."""
    pods = client.request("GET", "/api/v1/pods")["items"]
    replicasets = client.request("GET", "/apis/apps/v1/replicasets")["items"]
    found = holders(pods, replicasets, before, what)
    planned = targets(found)
    result = {"pods": found, "controllers": [f"{k}/{ns}/{n}" for k, ns, n in planned], "restarted": []}
    if not restart or check_mode or not planned:
        return result
    if ca_pem:
        _wait_for_bundle(client, sorted({ns for _k, ns, _n in planned}), ca_pem, timeout)
    # One controller at a time, as the node components: a rerun after a failed rollout lists only the pods that
    # still hold the old CA, so it goes on where this one stopped.
    for kind, namespace, name in planned:
        path = f"/apis/apps/v1/namespaces/{namespace}/{RESTARTABLE[kind]}/{name}"
        # Server-side apply of the one annotation (the client sends apply patches as text, others re-encoded).
        body = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": {"annotations": {ANNOTATION: now_text}}}},
        }
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        client.request("PATCH", path, query=query, body=body, content_type="application/apply-patch+yaml")
        result["restarted"].append(f"{kind}/{namespace}/{name}")
        _wait_rolled_out(client, kind, namespace, name, timeout)
    return result


def _wait_for_bundle(client, namespaces, ca_pem, timeout):
    """Every namespace's kube-root-ca.crt carries the new CA (the controller-manager's --root-ca-file)."""
    deadline = time.monotonic() + timeout
    for namespace in namespaces:
        while True:
            data = client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{ROOT_CA}").get("data") or {}
            if ca_pem.strip() in (data.get("ca.crt") or ""):
                break
            if time.monotonic() > deadline:
                raise KubeguardError(
                    "step", f"{namespace}/{ROOT_CA} lacks the new CA after {timeout} s; no pod was restarted"
                )
            time.sleep(2)


def _wait_rolled_out(client, kind, namespace, name, timeout):
    deadline = time.monotonic() + timeout
    path = f"/apis/apps/v1/namespaces/{namespace}/{RESTARTABLE[kind]}/{name}"
    while True:
        obj = client.request("GET", path)
        if rolled_out(kind, obj):
            return
        if time.monotonic() > deadline:
            raise KubeguardError("step", f"{kind} {namespace}/{name} did not roll out within {timeout} s")
        time.sleep(2)


def rolled_out(kind, obj):
    """``kubectl rollout status``'s test, from the object's status."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if status.get("observedGeneration", 0) < obj.get("metadata", {}).get("generation", 0):
        return False
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        return status.get("updatedNumberScheduled", 0) >= want and status.get("numberAvailable", 0) >= want
    want = spec.get("replicas", 1)
    return (
        status.get("updatedReplicas", 0) >= want
        and status.get("availableReplicas", 0) >= want
        and status.get("replicas", 0) <= want
    )
