# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the one gather per node (control_plane_facts): which components
run, how each is configured (systemd unit or kubeadm static pod), its binary's
version and flags, and the CIS 1.1.x files with their modes and owners."""

from __future__ import annotations

import glob
import os
import shutil

from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import desired, manifest
from ansible_collections.kubeguard.hardening.plugins.module_utils._control_plane import flags as flaglib
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import binaries, system
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import file_state, mode_ok, read

DROPIN = "50-kubeguard.conf"
DROPIN_HEADER = "# Managed by kubeguard.hardening.control_plane: the hardened flags of this unit, one a line."
ETCD_USER = "etcd"  # the owner CIS 1.1.12 names for the data directory, and the user etcd runs as
# The files etcd reads from pki/etcd (0700 root), its key pairs and CAs: systemd hands them
# to the etcd user's service.
ETCD_CREDENTIAL_FLAGS = tuple(flag for triple in desired.KEY_PAIRS["etcd"] for flag in triple)


def processes(proc="/proc"):
    """``{component: {"pid": n, "argv": [...]}}`` of the running control-plane processes (the oldest of each)."""
    return system.processes(desired.COMPONENTS, proc)


process_user = system.process_user


def unit_state(component):
    props = system.unit_properties(f"{component}.service", ("LoadState", "FragmentPath", "DropInPaths", "ActiveState"))
    return props if props.get("LoadState") == "loaded" and props.get("FragmentPath") else None


def configured(component, kubernetes_dir):
    """Where ``component`` is configured and its configured argv, or None."""
    path = os.path.join(kubernetes_dir, "manifests", f"{component}.yaml")
    text = read(path)
    if text is not None:
        pod = _load_yaml(text, path)
        return {"layout": "static-pod", "source": path, "argv": manifest.current_argv(pod, component)}
    unit = unit_state(component)
    if unit is None:
        return None
    dropin = os.path.join("/etc/systemd/system", f"{component}.service.d", DROPIN)
    sources = [unit["FragmentPath"], *unit.get("DropInPaths", "").split()]
    text = "\n".join(read(p) or "" for p in sources)
    return {
        "layout": "systemd",
        "source": dropin,
        "unit_file": unit["FragmentPath"],
        "dropins": sources[1:],
        "argv": flaglib.exec_start(text),
    }


def _load_yaml(text, path):
    try:
        import yaml  # only the kubeadm layout needs PyYAML on the node
    except ImportError:
        raise KubeguardError("manifest", f"{path}: python3-yaml is needed on the node to edit manifests") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KubeguardError("manifest", f"{path} is not valid YAML: {exc}") from None


def binary_path(component, argv, running, static_pod=False):
    """The binary to ask for its version and flags. A static pod's binary is in its image, not on the
    node (a node may hold another version, or none): the running process's /proc/<pid>/exe opens it."""
    exe = f"/proc/{running['pid']}/exe" if running else ""
    if static_pod and exe and os.access(exe, os.X_OK):
        return exe
    for candidate in (argv[0] if argv else "", f"/usr/local/bin/{component}", shutil.which(component) or ""):
        if candidate and os.path.isabs(candidate) and os.access(candidate, os.X_OK):
            return candidate
    # readlink() would name the path in the process's mount namespace, which the node may lack.
    return exe if exe and os.access(exe, os.X_OK) else ""


def binary_facts(component, path, keep_answers=False):
    if not path:
        return {"version": "", "help_flags": []}
    (_unused, out, err), (_unused, help_out, help_err) = binaries.ask(
        path, ["--version"], ["--help"], keep=keep_answers
    )
    version = (out or err).strip().splitlines()[0] if (out or err).strip() else ""
    text = help_out + help_err
    facts = {"path": path, "version": version, "help_flags": flaglib.help_flags(text)}
    if component != "etcd":
        facts["cipher_suites"] = flaglib.cipher_suites(text)
        facts["feature_gates_help"] = flaglib._help_entry(text, "feature-gates")
    if component == "kube-apiserver":
        facts["admission_plugins"] = flaglib.admission_plugins(text)
    return facts


def cis_files(kubernetes_dir, components):
    """The files CIS 1.1.x looks at, with the mode and owner each must have."""
    wanted = []
    for name, comp in components.items():
        if comp.get("layout") == "static-pod":
            wanted.append((comp["source"], "0600", "root", "CIS 1.1.1-1.1.8"))
        elif comp.get("layout") == "systemd":
            for path in (comp["unit_file"], comp["source"]):
                wanted.append((path, "0600", "root", "CIS 1.1.1-1.1.8 (unit files)"))
        if name == "etcd" and comp.get("flags", {}).get("data-dir"):
            wanted.append((comp["flags"]["data-dir"], "0700", ETCD_USER, "CIS 1.1.11/1.1.12"))
    for conf, cis in (
        ("admin.conf", "CIS 1.1.13"),
        ("super-admin.conf", "CIS 1.1.14"),
        ("scheduler.conf", "CIS 1.1.15/1.1.16"),
        ("controller-manager.conf", "CIS 1.1.17/1.1.18"),
    ):
        wanted.append((os.path.join(kubernetes_dir, conf), "0600", "root", cis))
    pki = os.path.join(kubernetes_dir, "pki")
    wanted.append((pki, None, "root", "CIS 1.1.19"))
    for path in sorted(glob.glob(f"{pki}/**/*", recursive=True)):
        if path.endswith(".crt"):
            wanted.append((path, "0644", "root", "CIS 1.1.20"))
        elif path.endswith(".key"):
            wanted.append((path, "0600", "root", "CIS 1.1.21"))
        elif os.path.isdir(path):
            wanted.append((path, None, "root", "CIS 1.1.19"))
    files = []
    for path, mode, owner, cis in wanted:
        state = file_state(path)
        if state["exists"]:
            state.update(want_mode=mode, want_owner=owner, cis=cis)
            state["compliant"] = (mode is None or mode_ok(state["mode"], mode)) and state["owner"] == owner
            files.append(state)
    return files


def gather(params, keep_answers=False):
    kubernetes_dir = params["kubernetes_dir"]
    running = processes()
    components = {}
    for name in desired.COMPONENTS:
        conf = configured(name, kubernetes_dir)
        proc = running.get(name)
        if conf is None and proc is None:
            continue
        conf = conf or {"layout": "unknown", "argv": proc["argv"]}
        conf["flags"] = flaglib.parse_argv(conf["argv"])[1]
        conf["running"] = bool(proc)
        conf["pid"] = proc["pid"] if proc else None
        conf["user"] = process_user(proc["pid"]) if proc else None
        conf["running_flags"] = flaglib.parse_argv(proc["argv"])[1] if proc else {}
        exe = binary_path(name, conf["argv"], proc, conf["layout"] == "static-pod")
        conf["binary"] = binary_facts(name, exe, keep_answers)
        components[name] = conf
    layouts = sorted({c["layout"] for c in components.values()})
    return {
        "changed": False,
        "layout": layouts[0] if len(layouts) == 1 else ("mixed" if layouts else "none"),
        "components": components,
        "files": cis_files(kubernetes_dir, components),
    }
