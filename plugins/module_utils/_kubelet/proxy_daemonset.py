# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: kube-proxy's metrics address where kube-proxy is a DaemonSet (kubeadm), CIS 4.3.1.

kubeadm runs kube-proxy as the kube-system/kube-proxy DaemonSet, configured by
the ``config.conf`` key of the ConfigMap of the same name; a node-side edit
cannot reach it. This sets ``metricsBindAddress`` there (the line only, the
rest of the text is kept) with a roll-pending mark in the same write, rolls the
DaemonSet (its own rolling update: one node at a time by default), waits until
every pod is updated and available and clears the mark; a run killed before
that finds the mark and rolls again. If not in time, the previous ConfigMap is
put back and the DaemonSet rolled again. Ansible-free: the module kubelet_kube_proxy_daemonset is its adapter.
"""

from __future__ import annotations

import re
import time

from .._errors import KubeguardError
from .._k8s.client import ApiError, Client
from . import config as cfg

# kube-proxy's own default for an empty or missing metricsBindAddress in a --config file
DEFAULT_ADDRESS = "127.0.0.1:10249"
CONFIG_KEY = "config.conf"
RESTARTED_AT = "kubeguard.io/restartedAt"
PENDING = "kubeguard.io/kube-proxy-roll-pending"


def _get(client, path):
    try:
        return client.request("GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def effective(text):
    """The metrics address a kube-proxy with this config file serves on."""
    return cfg.top_level(text, "metricsBindAddress") or DEFAULT_ADDRESS


def rolled_out(daemonset):
    """Every scheduled pod runs the current template and is available."""
    meta, status = daemonset.get("metadata") or {}, daemonset.get("status") or {}
    desired = status.get("desiredNumberScheduled", 0)
    return (
        status.get("observedGeneration", 0) >= meta.get("generation", 0)
        and status.get("updatedNumberScheduled", 0) == desired
        and status.get("numberAvailable", 0) == desired
        and not status.get("numberUnavailable")
    )


def _roll(client, path, stamp):
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    client.request("PATCH", path, body=body, content_type="application/merge-patch+json")


def _wait(client, path, timeout, sleep=time.sleep, clock=time.monotonic):
    deadline = clock() + timeout
    while True:
        if rolled_out(client.request("GET", path)):
            return True
        if clock() >= deadline:
            return False
        sleep(2)


def _put_config(client, path, configmap, text, pending):
    """Write config.conf and the roll-pending mark in one request; resourceVersion kept, so a
    concurrent edit of the ConfigMap fails this write instead of being overwritten."""
    meta = dict(configmap["metadata"])
    meta["annotations"] = dict(meta.get("annotations") or {}, **{PENDING: pending})
    client.request("PUT", path, body=dict(configmap, metadata=meta, data=dict(configmap["data"], **{CONFIG_KEY: text})))


def run(params, check_mode, client=None):
    address = params["metrics_bind_address"]
    if not re.match(r"^127\.[0-9.]+:[0-9]+$", address):
        raise KubeguardError("metrics_bind_address", f"{address!r} is not a 127.x address:port")
    namespace, name = params["namespace"], params["name"]
    client = client or Client.from_kubeconfig(params["kubeconfig"], params.get("context"), params["request_timeout"])
    cm_path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
    ds_path = f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"
    configmap, daemonset = _get(client, cm_path), _get(client, ds_path)
    if daemonset is None:
        return {"changed": False, "skipped_reason": f"no DaemonSet {namespace}/{name}: kube-proxy is not a pod here"}
    before = ((configmap or {}).get("data") or {}).get(CONFIG_KEY)
    if before is None:
        reason = f"the DaemonSet {namespace}/{name} has no ConfigMap {namespace}/{name} with a {CONFIG_KEY} key"
        return {"changed": False, "skipped_reason": reason, "warnings": [f"{reason}: CIS 4.3.1 is not applied"]}
    current = effective(before)
    # A run killed between the ConfigMap write and the end of the roll-out left this mark: roll again.
    pending = PENDING in ((configmap.get("metadata") or {}).get("annotations") or {})
    where = f"configmap {namespace}/{name} {CONFIG_KEY}"
    shown = f"{current} (not rolled out yet)" if pending else current
    result = cfg.metrics_address_result(current != address or pending, shown, address, where)
    if not result["changed"] or check_mode:
        return result
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if current != address:
        _put_config(client, cm_path, configmap, cfg.set_top_level(before, "metricsBindAddress", address), stamp)
    _roll(client, ds_path, stamp)
    if _wait(client, ds_path, params["restart_timeout"]):
        client.request("PATCH", cm_path, body=_unmark(), content_type="application/merge-patch+json")
        result["restarted"] = True
        return result
    if current != address:
        _put_config(client, cm_path, client.request("GET", cm_path), before, stamp)
    _roll(client, ds_path, f"{stamp}-rollback")
    raise KubeguardError(
        "restart_timeout",
        f"the DaemonSet {namespace}/{name} did not roll out with metricsBindAddress {address} within "
        f"{params['restart_timeout']} s; the previous {where} was put back and the DaemonSet rolled again",
    )


def _unmark():
    return {"metadata": {"annotations": {PENDING: None}}}
