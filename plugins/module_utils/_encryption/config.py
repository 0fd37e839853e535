# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the EncryptionConfiguration model (pure, no I/O).

A configuration is modelled as an ordered list of *slots*: ``"identity"`` or a
key name; the provider of a key comes from the key store. The first slot
encrypts every write; every slot can decrypt. Summaries (for diffs and results)
carry provider and key names only, never key bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from .._common import names
from .._errors import KubeguardError

PROVIDERS = ("aescbc", "aesgcm", "secretbox")
IDENTITY = "identity"
API_VERSION = "apiserver.config.k8s.io/v1"
KEY_BYTES = 32
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def fingerprint(secret_b64):
    """A short, non-reversible name for a key's bytes: compares keys without showing them."""
    return "sha256:" + hashlib.sha256(base64.b64decode(secret_b64)).hexdigest()[:16]


def etcd_value_prefix(provider, name):
    """What the apiserver writes before every value it encrypts with this key."""
    return f"k8s:enc:{provider}:v1:{name}:"


def slot_label(slot, keys):
    return IDENTITY if slot == IDENTITY else f"{keys[slot]['provider']}:{slot}"


def summary(slots, keys):
    """["aescbc:gen2-aescbc", "identity"]: what a diff may show."""
    return [slot_label(slot, keys) for slot in slots]


def render(resources, slots, keys):
    """The EncryptionConfiguration text for ``slots`` (JSON, which is YAML too: no PyYAML on nodes)."""
    providers = []
    for slot in slots:
        if slot == IDENTITY:
            providers.append({IDENTITY: {}})
            continue
        key = keys[slot]
        entry = {"name": slot, "secret": key["secret"]}
        # adjacent keys of one provider share its block, as upstream's examples do
        if providers and key["provider"] in providers[-1]:
            providers[-1][key["provider"]]["keys"].append(entry)
        else:
            providers.append({key["provider"]: {"keys": [entry]}})
    document = {
        "apiVersion": API_VERSION,
        "kind": "EncryptionConfiguration",
        "resources": [{"resources": list(resources), "providers": providers}],
    }
    return (
        "# Managed by kubeguard.hardening.encryption_at_rest: the first provider encrypts.\n"
        + json.dumps(document, indent=2, sort_keys=False)
        + "\n"
    )


def _load(text, where):
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        import yaml  # configs written by other tools are YAML
    except ImportError:
        raise KubeguardError(
            "encryption_at_rest_adopt", f"{where} is not JSON and python3-yaml is missing on the node to read it"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeguardError("encryption_at_rest_adopt", f"{where} is not valid YAML: {exc}") from None


def parse(text, where):
    """{"resources": [...], "slots": [{"provider", "name", "secret"}], "unsupported": [...]} of an existing config.

    Only the first resource group decides the order (ours has one); keys of
    every group are returned so adoption misses none.
    """
    document = _load(text, where) or {}
    if not isinstance(document, dict) or document.get("kind") != "EncryptionConfiguration":
        raise KubeguardError("encryption_at_rest_adopt", f"{where} is not an EncryptionConfiguration")
    groups = document.get("resources") or []
    resources, slots, extra, unsupported = [], [], [], []
    for index, group in enumerate(groups):
        found = []
        for provider in (group or {}).get("providers") or []:
            for ptype, body in (provider or {}).items():
                if ptype == IDENTITY:
                    found.append({"provider": IDENTITY, "name": IDENTITY})
                elif ptype in PROVIDERS:
                    for key in (body or {}).get("keys") or []:
                        found.append({"provider": ptype, "name": str(key.get("name")), "secret": key.get("secret")})
                else:
                    unsupported.append(ptype)
        if index == 0:
            resources = list(group.get("resources") or [])
            slots = found
        else:
            extra.extend(s for s in found if s["provider"] != IDENTITY)
    return {"resources": resources, "slots": slots, "other_keys": extra, "unsupported": sorted(set(unsupported))}


def public_view(parsed):
    """The parsed config without key bytes: provider, name and fingerprint of each slot."""

    def strip(slot):
        out = {"provider": slot["provider"], "name": slot["name"]}
        if slot.get("secret"):
            out["fingerprint"] = fingerprint(slot["secret"])
        return out

    return {
        "resources": parsed["resources"],
        "slots": [strip(s) for s in parsed["slots"]],
        "other_keys": [strip(s) for s in parsed["other_keys"]],
        "unsupported": parsed["unsupported"],
    }


def validate_inputs(provider, generation, resources):
    if provider not in PROVIDERS:
        raise KubeguardError(
            "encryption_at_rest_provider",
            f"{provider!r} is not one of {', '.join(PROVIDERS)} (identity is only a read fallback; "
            "KMS v2 is an extension point, see docs/encryption_at_rest.md)",
        )
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise KubeguardError("encryption_at_rest_key_generation", f"must be a whole number >= 1, not {generation!r}")
    if not resources:
        raise KubeguardError("encryption_at_rest_resources", "must name at least one resource (secrets)")
    for name in resources:
        # The apiserver serves a resource as "<plural>" or "<plural>.<group>": a DNS-1123 subdomain.
        if not names.is_subdomain(name):
            raise KubeguardError(
                "encryption_at_rest_resources",
                f"{name!r} is not a resource name: use the plural, with the group for non-core resources "
                "(secrets, configmaps, widgets.example.com); wildcards are not supported",
            )
    if len(set(resources)) != len(resources):
        raise KubeguardError("encryption_at_rest_resources", "lists a resource twice")


def key_name(provider, generation):
    return f"gen{generation}-{provider}"
