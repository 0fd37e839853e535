# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: the kubeconfigs the cluster publishes in
ConfigMaps, rewritten with the store's CA bundle at each rotation step of the
cluster CA. kubeadm's ``kube-public/cluster-info`` is what ``kubeadm join``
reads (the bootstrap signer re-signs its JWS by itself when it changes), and
``kube-system/kube-proxy`` embeds the CA when it does not point at the
service-account ``ca.crt``. A kubeconfig that trusts neither CA (another
cluster's) is left alone; an absent ConfigMap (the hard-way layout) is none.
"""

from __future__ import annotations

import base64

from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import ApiError

# (namespace, name, data key) of each published kubeconfig.
PUBLISHED = (
    ("kube-public", "cluster-info", "kubeconfig"),
    ("kube-system", "kube-proxy", "kubeconfig.conf"),
)


def _path(namespace, name):
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


def rewrite(text, bundle_pem, known):
    """``text`` (a kubeconfig) with every cluster's embedded CA that trusts a certificate of ``known``
    (PEM certificates) replaced by ``bundle_pem``; unchanged when none does."""
    import yaml

    config = yaml.safe_load(text) or {}
    changed = False
    for entry in config.get("clusters") or []:
        cluster = entry.get("cluster") or {}
        data = cluster.get("certificate-authority-data")
        if not data:
            continue
        pem = base64.b64decode(data).decode("utf-8", "replace")
        if not any(cert.strip() in pem for cert in known):
            continue
        wanted = base64.b64encode(bundle_pem.encode()).decode("ascii")
        if data != wanted:
            cluster["certificate-authority-data"] = wanted
            changed = True
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False) if changed else text


def publish(client, bundle_pem, known, check_mode):
    """Rewrite each of PUBLISHED that exists; the ``namespace/name`` of those changed."""
    changed = []
    for namespace, name, key in PUBLISHED:
        try:
            configmap = client.request("GET", _path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        text = (configmap.get("data") or {}).get(key)
        if not text:
            continue
        after = rewrite(text, bundle_pem, known)
        if after == text:
            continue
        changed.append(f"{namespace}/{name}")
        if check_mode:
            continue
        patch = [
            # resourceVersion: a concurrent writer (kubeadm, the bootstrap signer) makes this fail, not lost
            {"op": "test", "path": "/metadata/resourceVersion", "value": configmap["metadata"]["resourceVersion"]},
            {"op": "replace", "path": f"/data/{key.replace('~', '~0').replace('/', '~1')}", "value": after},
        ]
        client.request("PATCH", _path(namespace, name), body=patch, content_type="application/json-patch+json")
    return changed
