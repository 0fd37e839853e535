# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: structural edits of kubeadm static-pod manifests. Only the
component container's command and the volumes this collection adds are
touched; every other field is kept as it was. Pure functions, no I/O."""

from __future__ import annotations

import copy
import posixpath

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags as flaglib
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError


def container(pod, component):
    """The container running ``component`` (by name, else the only one)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    for item in containers:
        if item.get("name") == component:
            return item
    if len(containers) == 1:
        return containers[0]
    raise KubeguardError("manifest", f"no container named {component} in the {component} manifest")


def current_argv(pod, component):
    item = container(pod, component)
    return list(item.get("command") or []) + list(item.get("args") or [])


CONFIG_HASH = "kubeguard.io/config-hash"


def edit(pod, component, argv, host_dirs, config_hash=""):
    """A copy of ``pod`` running ``argv``, with ``host_dirs`` (``{name: (path, read_only)}``)
    mounted at the same path. Flags move into ``command`` as kubeadm writes them.
    ``config_hash`` (of the files the flags point to) goes into an annotation, so a
    change of those files alone still makes the kubelet recreate the pod."""
    new = copy.deepcopy(pod)
    if config_hash:
        new.setdefault("metadata", {}).setdefault("annotations", {})[CONFIG_HASH] = config_hash
    item = container(new, component)
    item["command"] = list(argv)
    item.pop("args", None)
    volumes = new["spec"].setdefault("volumes", [])
    mounts = item.setdefault("volumeMounts", [])
    for name, (path, read_only) in sorted(host_dirs.items()):
        if any(v.get("name") == name for v in volumes):
            continue
        volumes.append({"name": name, "hostPath": {"path": path, "type": "DirectoryOrCreate"}})
        mounts.append({"name": name, "mountPath": path, "readOnly": read_only})
    return new


# What the kubelet gives a pod that sets no terminationGracePeriodSeconds (kubeadm's manifests do not).
DEFAULT_GRACE_SECONDS = 30


def with_grace(pod, seconds):
    """``pod`` with ``spec.terminationGracePeriodSeconds`` raised to ``seconds`` when its
    own (or the kubelet's default) is shorter: the kubelet SIGKILLs the container then,
    cutting an apiserver's shutdown delay or drain short. Never lowered."""
    spec = pod.get("spec") or {}
    if seconds <= (spec.get("terminationGracePeriodSeconds") or DEFAULT_GRACE_SECONDS):
        return pod
    new = copy.deepcopy(pod)
    new["spec"]["terminationGracePeriodSeconds"] = int(seconds)
    return new


def validate_pod(pod, path):
    """The checks the kubelet's static-pod source makes before running a manifest."""
    problems = []
    if pod.get("apiVersion") != "v1" or pod.get("kind") != "Pod":
        problems.append("not a v1 Pod")
    if not (pod.get("metadata") or {}).get("name"):
        problems.append("metadata.name missing")
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        problems.append("spec.containers empty")
    volumes = [v.get("name") for v in spec.get("volumes") or []]
    if len(volumes) != len(set(volumes)):
        problems.append("duplicate volume names")
    for item in containers:
        if not item.get("name") or not item.get("image"):
            problems.append("a container lacks name or image")
        if not item.get("command"):
            problems.append(f"container {item.get('name')} has no command")
        for mount in item.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                problems.append(f"volumeMount {mount.get('name')} has no volume")
            if not posixpath.isabs(mount.get("mountPath") or ""):
                problems.append(f"volumeMount {mount.get('name')} mountPath is not absolute")
    if problems:
        raise KubeguardError("manifest", f"{path} would not be a valid Pod: {'; '.join(problems)}")


def flags_of(pod, component):
    return flaglib.parse_argv(current_argv(pod, component))[1]


def anonymous_probe_paths(pod, component):
    """Paths the kubelet probes over HTTPS: it presents no client certificate, so
    these requests are anonymous (kubeadm's /livez and /readyz of kube-apiserver)."""
    item = container(pod, component)
    paths = set()
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = (item.get(probe) or {}).get("httpGet") or {}
        if get and (get.get("scheme") or "HTTP").upper() == "HTTPS":
            paths.add(get.get("path") or "/")
    return sorted(paths)
