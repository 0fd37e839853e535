# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: validation helpers shared by the authn and authz renderers."""

from __future__ import annotations

import base64

from ansible_collections.kubeguard.hardening.plugins.module_utils._common import duration, names
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

PREFIX = "api_access_"


def var(option):
    """The role variable an error names."""
    return option if option.startswith(PREFIX) else PREFIX + option


def fail(option, message):
    raise KubeguardError(var(option), message)


def seconds(option, value):
    """A Go duration string (``90s``, ``2m``, ``1h30m``) in seconds; refuses anything else."""
    return duration.seconds(var(option), str(value), example="30s, 2m or 1h")


def dns_label(option, value):
    if not names.is_label(value):
        fail(option, f"{value!r} must be a DNS-1123 label (lower-case letters, digits and '-')")
    return value


def only_keys(option, entry, allowed, required=()):
    """Refuse a dict with keys outside ``allowed`` or without one of ``required``."""
    if not isinstance(entry, dict):
        fail(option, f"must be a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        fail(option, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    missing = [key for key in required if entry.get(key) in (None, "", [])]
    if missing:
        fail(option, f"missing {', '.join(missing)}")
    return entry


def pem_bundle(option, pem=None, path=None, read=None):
    """The CA bundle as PEM text, from inline PEM or a controller-side file; refuses non-PEM."""
    if pem and path:
        fail(option, "give either ca_pem or ca_file, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                pem = handle.read()
        except OSError as exc:
            fail(option, f"cannot read the CA file {path}: {exc.strerror}")
    if not pem:
        fail(option, "needs a CA (ca_file or ca_pem) to trust")
    text = str(pem).strip() + "\n"
    if "-----BEGIN CERTIFICATE-----" not in text or "-----END CERTIFICATE-----" not in text:
        fail(option, "the CA is not a PEM certificate bundle")
    return text


def b64(text):
    return base64.b64encode(text.encode()).decode()


def webhook_kubeconfig(name, server, ca_pem):
    """A kubeconfig-style file for a webhook: ``clusters`` is the remote service, trusted by
    its own CA (inline); the apiserver presents no client credential."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": "kube-apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {"cluster": name, "user": "kube-apiserver"}}],
        "current-context": "webhook",
    }


def https_url(option, url):
    if not isinstance(url, str) or not url.startswith("https://") or len(url) <= len("https://"):
        fail(option, f"{url!r} must be an https:// URL")
    if any(c in url for c in " \t\n#"):
        fail(option, f"{url!r} is not a valid URL")
    return url
