# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the one gather per node (kubelet_facts): the kubelet's and
kube-proxy's processes, units, flags (and where each is written), binary and
the kernel settings protectKernelDefaults depends on."""

from __future__ import annotations

import os
import re
import shutil

from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import config as cfg
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import binaries, system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import read

process = system.process  # the oldest process running a name, or None


def unit(name):
    """Where systemd reads ``name``.service from, its effective command line and environment."""
    props = system.unit_properties(f"{name}.service", ("LoadState", "FragmentPath", "DropInPaths"))
    if props.get("LoadState") != "loaded" or not props.get("FragmentPath"):
        return None
    paths = [props["FragmentPath"], *props.get("DropInPaths", "").split()]
    service = cfg.unit_service([read(p) or "" for p in paths])
    env, origin = {}, {}
    for spec in service["environment_files"]:
        path = spec.lstrip("-")
        for key, value in cfg.parse_env_file(read(path)).items():
            env[key], origin[key] = value, path
    for key, value in service["environment"].items():
        # systemd applies Environment= before EnvironmentFile=: a file wins.
        if key not in env:
            env[key], origin[key] = value, "unit"
    words = cfg.expand(service["exec_start"], env)
    return {
        "fragment": paths[0],
        "dropins": paths[1:],
        "exec_start": service["exec_start"],
        "environment": env,
        "env_origin": origin,
        "words": [w for w, _unused in words],
        "sources": [s for _unused, s in words],
    }


def in_container():
    """Whether the node shares its kernel with a host (its global sysctls are the host's)."""
    rc, out, _unused = system.run(["systemd-detect-virt", "--container"])
    if rc == 0 and out.strip() not in ("", "none"):
        return True
    return os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv")


def sysctls():
    values = {}
    for name in cfg.KERNEL_DEFAULTS:
        text = read("/proc/sys/" + name.replace(".", "/"))
        values[name] = text.strip() if text is not None else None
    return values


def binary_facts(path, keep_answers=False):
    if not path or not os.access(path, os.X_OK):
        return {"path": path, "version": "", "cipher_suites": [], "reloads_serving_cert": None}
    (_unused, out, err), (_unused, help_out, help_err) = binaries.ask(
        path, ["--version"], ["--help"], keep=keep_answers
    )
    text = help_out + help_err
    entry = re.search(r"--tls-cipher-suites.*?(?=\n\s+--[a-z])", text, re.S)
    gate = re.search(r"ReloadKubeletServerCertificateFile=true\|false \((\w+) - default=(\w+)\)", text)
    return {
        "path": path,
        "version": (out or err).strip(),
        "cipher_suites": sorted(set(re.findall(r"TLS_[A-Z0-9_]+", entry.group(0)))) if entry else [],
        # Kubernetes >= 1.31 reloads tlsCertFile/tlsPrivateKeyFile when they change on disk.
        "reloads_serving_cert": (gate.group(2) == "true") if gate else None,
    }


def component(name):
    """One node daemon: its process, unit, configured and running flags."""
    proc = process(name)
    service = unit(name)
    if proc is None and service is None:
        return None
    words = service["words"] if service else proc["argv"]
    return {
        "running": proc is not None,
        "pid": proc["pid"] if proc else None,
        "argv": proc["argv"] if proc else [],
        "unit": service,
        "flags": cfg.flag_dict(words[1:]),
        "running_flags": cfg.flag_dict(proc["argv"][1:]) if proc else {},
    }


def gather(params, keep_answers=False):
    kubelet = component("kubelet")
    result = {"changed": False, "kubelet": kubelet, "kube_proxy": component("kube-proxy")}
    result["sysctls"] = {"values": sysctls(), "in_container": in_container()}
    if kubelet is None:
        return result
    flags = kubelet["running_flags"] or kubelet["flags"]
    path = flags.get("config") or kubelet["flags"].get("config") or ""
    kubelet["config_path"] = path
    kubelet["config_text"] = (read(path) if path else None) or ""
    kubelet["kubeconfig"] = flags.get("kubeconfig", "")
    exe = (kubelet["argv"] or (kubelet["unit"] or {}).get("words") or [""])[0]
    if not os.path.isabs(exe):
        exe = shutil.which(exe) or ""
    kubelet["binary"] = binary_facts(exe, keep_answers)
    kubelet["flag_sources"] = _flag_sources(kubelet["unit"]) if kubelet["unit"] else {}
    return result


def _flag_sources(service):
    """``{flag: "unit" | env file path | "unit-env:VAR"}``: where each configured flag is written."""
    found = {}
    for name, _unused, indices in cfg.parse_flags(service["words"]):
        source = service["sources"][indices[0]]
        if not source:
            found[name] = "unit"
        elif service["env_origin"].get(source) == "unit":
            found[name] = f"unit-env:{source}"
        else:
            found[name] = f"{service['env_origin'].get(source, '')}:{source}"
    return found
