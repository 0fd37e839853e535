# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the static token file (--token-auth-file). Tokens come from the variables or are
generated once and kept in a controller-side store next to the cluster PKI (0600 in a 0700
directory). Nothing here returns a token except ``csv``'s text, which the role passes on
under no_log."""

from __future__ import annotations

import json
import os
import re
import secrets

from ansible_collections.kubeguard.hardening.plugins.module_utils._api_access.common import fail, only_keys
from ansible_collections.kubeguard.hardening.plugins.module_utils._common import vault
from ansible_collections.kubeguard.hardening.plugins.module_utils._node.files import atomic_write

OPTION = "api_access_static_tokens"
USER_KEYS = {"user", "uid", "groups", "token"}
CIS_WARNING = (
    "api_access_static_tokens_enabled: static token authentication is on. CIS 1.2.2 says to leave "
    "--token-auth-file unset: these tokens never expire and are revoked only by editing the file and "
    "restarting kube-apiserver. Prefer client certificates, OIDC or bound service-account tokens."
)
# Characters the apiserver's CSV reader or a header would mangle.
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{32,}$")
_FIELD = re.compile(r'^[^,"\n\r]+$')


def _field(where, value):
    if not isinstance(value, str) or not _FIELD.match(value):
        fail(where, "must be a non-empty string without commas, quotes or newlines")
    return value


def users(entries):
    """The validated user list (without tokens generated yet)."""
    if not isinstance(entries, list) or not entries:
        fail(OPTION, "lists no user; give at least one {user, groups} or turn static tokens off")
    seen = set()
    out = []
    for index, entry in enumerate(entries):
        where = f"{OPTION}[{index}]"
        only_keys(where, entry, USER_KEYS, required=("user",))
        user = _field(f"{where}.user", entry["user"])
        if user in seen:
            fail(f"{where}.user", f"{user} is listed twice")
        seen.add(user)
        groups = entry.get("groups") or []
        if isinstance(groups, str):
            groups = [groups]
        groups = [_field(f"{where}.groups", g) for g in groups]
        token = entry.get("token")
        if token is not None and (not isinstance(token, str) or not _TOKEN.match(token)):
            # never echo the value
            fail(f"{where}.token", "must be at least 32 characters of [A-Za-z0-9._~+/=-]")
        out.append(
            {"user": user, "uid": _field(f"{where}.uid", entry.get("uid") or user), "groups": groups, "token": token}
        )
    return out


def load_store(path):
    try:
        with open(path, "rb") as handle:
            raw = vault.open_secret(handle.read(), path)
        data = json.loads(raw)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        fail("api_access_static_token_store", f"cannot read {path}: {exc}")
    if not isinstance(data, dict) or not all(isinstance(v, str) and _TOKEN.match(v) for v in data.values()):
        fail("api_access_static_token_store", f"{path} is not a {{user: token}} map")
    return data


def resolve(entries, store_path, check_mode):
    """Give every user a token: its variable, else the stored one, else a new one (stored).
    Returns (users with tokens, store changed?)."""
    wanted = users(entries)
    # A plaintext store while the store vault is on: encrypted in place (a change).
    sealed = vault.seal_in_place([store_path], check_mode, lambda p, data: atomic_write(p, vault.seal(data), 0o600))
    store = load_store(store_path)
    new_store = {}
    for entry in wanted:
        if entry["token"] is None:
            entry["token"] = store.get(entry["user"]) or secrets.token_urlsafe(32)
            new_store[entry["user"]] = entry["token"]
    changed = new_store != store or bool(sealed)
    if changed and not check_mode:
        directory = os.path.dirname(store_path) or "."
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            atomic_write(
                store_path, vault.seal((json.dumps(new_store, indent=2, sort_keys=True) + "\n").encode()), 0o600
            )
        except OSError as exc:
            fail("api_access_static_token_store", f"cannot write {store_path}: {exc.strerror}")
    return wanted, changed, sorted(store), sorted(new_store)


def csv(entries):
    """token,user,uid,"group1,group2" per line, the format kube-apiserver reads."""
    lines = []
    for entry in entries:
        fields = [entry["token"], entry["user"], entry["uid"]]
        if entry["groups"]:
            fields.append('"' + ",".join(entry["groups"]) + '"')
        lines.append(",".join(fields))
    return "".join(line + "\n" for line in lines)
