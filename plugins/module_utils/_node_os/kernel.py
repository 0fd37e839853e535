# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: kernel settings compatible with Kubernetes, and the module blacklist.

``run(params, check_mode)`` is the entry point of ``node_os_kernel``. A
sysctl name the kernel does not have is refused before anything is written.
On a container node the global settings (``kernel.*``, ``fs.*``, ``vm.*``,
``net.core.*``) are the host's kernel's: they are reported not applicable,
never written, and left out of the sysctl.d file (systemd-sysctl would write
them into the host's kernel at the node's next boot). Network settings live
in the node's own network namespace and are applied there.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import kernel_needs
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import files as _files

PER_NETNS = ("net.ipv4.", "net.ipv6.", "net.bridge.", "net.netfilter.", "net.unix.")
# Settings that exist only once their module is loaded: not applicable without it.
NEEDS_MODULE = {"net.bridge.": "br_netfilter"}
_NAME = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_\-]+)+$")
HOST_REASON = "global kernel setting: this node is a container sharing its host's kernel; set it on the host"


def in_container():
    try:
        proc = subprocess.run(["systemd-detect-virt", "--container"], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip() not in ("", "none"):
            return True
    except OSError:
        pass
    return os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv")


def proc_path(name, root="/proc/sys"):
    return os.path.join(root, *name.split("."))


def normalize(value):
    return " ".join(str(value).split())


def option_of(name, sysctls):
    """The module option a wanted setting came from: the operator's ``sysctls`` win over the curated table."""
    return "sysctls" if name in sysctls else "sysctls_optional"


def plan(sysctls, container, root="/proc/sys", optional=None):
    """Split the wanted settings into ``apply`` ({name: value}) and ``not_applicable`` (with reasons).

    Refuses a value a Kubernetes node cannot run with (``kernel_needs``), and a
    name the kernel does not have, unless its module is simply not loaded or it
    comes from ``optional`` (the curated table: e.g. kernel.sysrq or Yama exist
    only when the kernel was built with them). Errors name the option the
    setting came from.
    """
    apply, skipped = {}, []
    optional = optional or {}
    wanted = {**optional, **sysctls}
    for name, value in sorted(wanted.items()):
        option = option_of(name, sysctls)
        if not _NAME.match(str(name)):
            raise KubeguardError(option, f"{name!r} is not a sysctl name")
        if "\n" in str(value) or str(value).strip() == "":
            raise KubeguardError(option, f"{name}: {value!r} is not a value")
        needed = kernel_needs.need(name)
        if needed and normalize(value) != needed[0]:
            value, (must, why) = normalize(value), needed
            raise KubeguardError(
                option, f"{name} = {value} would break the node: {why}; it must be {must}. Nothing was written"
            )
        current = _files.read(proc_path(name, root))
        if current is None:
            module = next((m for prefix, m in NEEDS_MODULE.items() if name.startswith(prefix)), None)
            if module or (name in optional and name not in sysctls):
                reason = f"{module} is not loaded on this node" if module else "this kernel was built without it"
                skipped.append({"name": name, "value": normalize(value), "current": None, "reason": reason})
                continue
            raise KubeguardError(option, f"{name}: this kernel has no such setting")
        entry = {"name": name, "value": normalize(value), "current": normalize(current)}
        if container and not name.startswith(PER_NETNS):
            skipped.append({**entry, "reason": HOST_REASON})
        else:
            apply[name] = entry
    return apply, skipped


def render_sysctl(apply, skipped, header):
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{name} = {entry['value']}" for name, entry in sorted(apply.items())]
    for entry in skipped:
        lines.append(f"# not applicable: {entry['name']} = {entry['value']} ({entry['reason']})")
    return "\n".join(lines) + "\n"


def loaded_modules(path="/proc/modules"):
    text = _files.read(path) or ""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def plan_modules(blacklist, keep, loaded):
    """``(blacklisted, kept)``: a module the cluster uses or that is loaded right now is kept, with why."""
    blacklisted, kept = [], []
    for name in blacklist:
        if not re.match(r"^[A-Za-z0-9_\-]+$", str(name)):
            raise KubeguardError("modules_blacklist", f"{name!r} is not a kernel module name")
        if kernel_needs.module_needed(name):
            why = "the node's container runtime, kube-proxy or CNI loads it; blacklisting it would break the node"
            raise KubeguardError("modules_blacklist", f"{name}: {why}. Nothing was written")
        if name in keep:
            kept.append({"name": name, "reason": "the cluster uses it (node_os_kernel_modules_in_use)"})
        elif name.replace("-", "_") in loaded:
            kept.append({"name": name, "reason": "loaded right now: blacklisting it would break what uses it"})
        else:
            blacklisted.append(name)
    return blacklisted, kept


def _comment(header):
    return "\n".join(f"# {line}" if line else "#" for line in header.splitlines()) + "\n"


def root_path(params, path):
    """Where ``path`` lives: under ``params["root"]`` in the unit tests, else itself."""
    return os.path.join(params.get("root") or "/", path.lstrip("/"))


def render_modules(blacklisted, header):
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name in blacklisted:
        lines += [f"install {name} /bin/false", f"blacklist {name}"]
    return "\n".join(lines) + "\n"


# CIS Debian 12 1.5.3 (core dumps restricted), with fs.suid_dumpable = 0 in the table.
CORE_DUMPS = {
    "/etc/systemd/coredump.conf.d/60-kubeguard-node-os.conf": "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
    "/etc/security/limits.d/60-kubeguard-node-os.conf": "* soft core 0\n* hard core 0\n",
    "/etc/profile.d/60-kubeguard-node-os.sh": "ulimit -c 0\n",
}


def _write_if_changed(path, content, check_mode):
    if _files.read(path) == content:
        return False
    if not check_mode:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _files.atomic_write(path, content.encode(), 0o644)
    return True


def run(params, check_mode, root="/proc/sys", container=None):
    """Entry point of ``node_os_kernel``."""
    container = in_container() if container is None else container
    apply, skipped = plan(params["sysctls"], container, root, params.get("sysctls_optional"))
    blacklisted, kept = plan_modules(params["modules_blacklist"], set(params["modules_in_use"]), loaded_modules())
    result = {"changed": False, "container": container, "applied": {}, "not_applicable": skipped,
              "modules": {"blacklisted": blacklisted, "kept": kept}}  # fmt: skip
    before, after = [], []
    for name, entry in apply.items():
        if entry["current"] == entry["value"]:
            continue
        before.append(f"{name} = {entry['current']}")
        after.append(f"{name} = {entry['value']}")
        if not check_mode:
            try:
                with open(proc_path(name, root), "w") as handle:
                    handle.write(entry["value"])
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    msg = f"{name}: the kernel refused {entry['value']!r}"
                    raise KubeguardError(option_of(name, params["sysctls"]), msg) from exc
                skipped.append({**entry, "reason": f"cannot be set on this node: {exc.strerror}"})
                continue
        result["applied"][name] = entry["value"]
    for entry in skipped:
        apply.pop(entry["name"], None)
    sysctl_text = render_sysctl(apply, skipped, params["header"])
    modules_text = render_modules(blacklisted, params["header"])
    if _write_if_changed(params["sysctl_file"], sysctl_text, check_mode):
        before.append(f"({params['sysctl_file']} differs)")
        result["changed"] = True
    if _write_if_changed(params["modprobe_file"], modules_text, check_mode):
        before.append(f"({params['modprobe_file']} differs)")
        result["changed"] = True
    if params["core_dumps_restricted"]:
        for path, body in CORE_DUMPS.items():
            if _write_if_changed(root_path(params, path), _comment(params["header"]) + body, check_mode):
                before.append(f"({path} differs)")
                result["changed"] = True
    result["changed"] = result["changed"] or bool(result["applied"])
    result["pending"] = result["changed"]
    result["diff"] = {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"}
    return result
