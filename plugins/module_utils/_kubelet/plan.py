# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the checks and the plan before the kubelet's files are replaced:
its serving certificate (the one reader, _node/x509.py), the command-line
flags its config file duplicates, the kernel defaults it may protect."""

from __future__ import annotations

import os

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._kubelet import config as cfg
from ansible_collections.kubeguard.hardening.plugins.module_utils._node import x509
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import file_mode, read

SYSTEMD_DIR = "/etc/systemd/system"
SYSCTL_FILE = "/etc/sysctl.d/90-kubeguard-kubelet.conf"
DEFAULT_CONFIG = "/var/lib/kubelet/config.yaml"


def check_serving_cert(params):
    """The serving cert exists, matches its key, chains to the client CA and names the node IP."""
    option = cfg.var("tls_cert_file")
    cert, key, ca = params["tls_cert_file"], params["tls_private_key_file"], params["client_ca_file"]
    for opt, path in (("client_ca_file", ca), ("tls_cert_file", cert), ("tls_private_key_file", key)):
        if not os.access(path, os.R_OK):
            raise KubeguardError(cfg.var(opt), f"{path} is missing or unreadable (run cluster_pki first)")
    if not x509.matches_key(cert, key):
        raise KubeguardError(cfg.var("tls_private_key_file"), f"{key} is not the key of {cert}")
    problem = x509.chain_problem(cert, ca, server=True)
    if problem:
        raise KubeguardError(option, f"{cert} does not chain to the cluster CA {ca}: {problem}")
    sans = x509.sans_text(cert)
    problem = cfg.sans_problem(sans, params["node_ip"])
    if problem:
        raise KubeguardError(
            option, f"{cert} {problem}: the apiserver verifies it by the node IP (kubeguard_node_ip); reissue it"
        )


def plan_flags(kubelet, config_path):
    """``({path: (content, mode)}, removed flags)`` that take the duplicating flags off the
    command line, wherever they are written; adds ``--config`` when there is none."""
    service = kubelet["unit"]
    if service is None:
        raise KubeguardError("", "the kubelet runs without a systemd unit: its command line cannot be edited")
    removed = cfg.duplicating(kubelet["flags"])
    files = {}
    literal = [n for n in removed if kubelet["flag_sources"].get(n) == "unit"]
    ours = os.path.join(SYSTEMD_DIR, "kubelet.service.d", cfg.DROPIN)
    env_overrides = {}
    for name in removed:
        source = kubelet["flag_sources"].get(name, "unit")
        if source.startswith("unit-env:"):
            variable = source.split(":", 1)[1]
            env_overrides[variable] = " ".join(
                cfg.without(service["environment"].get(variable, "").split(), set(removed))
            )
        elif source != "unit":
            path, variable = source.rsplit(":", 1)
            text = files.get(path, (read(path), None))[0]
            files[path] = (cfg.rewrite_env_file(text, variable, set(removed)), file_mode(path) or 0o644)
    needs_config = "config" not in kubelet["flags"]
    if literal or env_overrides or needs_config or ours in service["dropins"]:
        words = cfg.without(service["exec_start"], set(literal))
        if needs_config:
            words.append(f"--config={config_path}")
        text = cfg.render_dropin(words)
        if env_overrides:
            text += "".join(f'Environment="{k}={v}"\n' for k, v in sorted(env_overrides.items()))
        files[ours] = (text, 0o600)
    return files, removed


def protect_kernel_defaults(params, facts, check_mode):
    """``(enabled, sysctl_files, warnings)``: set the sysctls kubelet expects, then turn
    protectKernelDefaults on only if the live values match (else kubelet would not start)."""
    if not params["protect_kernel_defaults"]:
        return False, {}, []
    wanted = cfg.KERNEL_DEFAULTS
    live = facts["sysctls"]["values"]
    if facts["sysctls"]["in_container"]:
        # A container's global sysctls are its host's: never change the host's kernel from a node.
        bad = sorted(k for k, v in wanted.items() if live.get(k) != v)
        if bad:
            return (
                False,
                {},
                [
                    f"{cfg.var('protect_kernel_defaults')}: left off: this node is a container and its kernel's "
                    f"{', '.join(bad)} differ from what kubelet expects; they are the host's to set"
                ],
            )
        return True, {}, []
    text = "# Managed by kubeguard.hardening.kubelet: what kubelet's protectKernelDefaults expects.\n"
    text += "".join(f"{k} = {v}\n" for k, v in wanted.items())
    return True, {SYSCTL_FILE: (text, 0o644)}, []


def _healthz_url(config):
    port = config.get("healthzPort", 10248)
    address = config.get("healthzBindAddress", "127.0.0.1")
    if address in ("0.0.0.0", "::", ""):  # noqa: S104 - reached on loopback
        address = "127.0.0.1"
    return f"http://{address}:{port}/healthz"
