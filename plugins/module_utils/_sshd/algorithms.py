# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""Choose SSH algorithms from what the installed OpenSSH supports, in a hardened order.

Nothing here guesses from version numbers: the input is the output of
``ssh -Q kex|cipher|mac|key-sig`` on the node, so an algorithm the node does
not know is never emitted.
"""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

POST_QUANTUM_KEX = ("mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com")

# Which ``ssh -Q`` list each sshd keyword is checked against, and the role variable that feeds it.
CATEGORIES = {
    "kex": ("KexAlgorithms", "kex", "ssh_hardening_kex_preference"),
    "ciphers": ("Ciphers", "cipher", "ssh_hardening_cipher_preference"),
    "macs": ("MACs", "mac", "ssh_hardening_mac_preference"),
    "host_key_algorithms": ("HostKeyAlgorithms", "key-sig", "ssh_hardening_host_key_algorithm_preference"),
    "pubkey_accepted_algorithms": (
        "PubkeyAcceptedAlgorithms",
        "key-sig",
        "ssh_hardening_pubkey_algorithm_preference",
    ),
}


def parse_query(text):
    """Parse ``ssh -Q <x>`` output into a list of names."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def select(preference, supported):
    """Keep the preferred algorithms the node supports, in preference order, without duplicates."""
    known = set(supported)
    out = []
    for name in preference:
        if name in known and name not in out:
            out.append(name)
    return out


def select_kex(preference, supported, post_quantum_only=True):
    """KEX: as ``select``; with ``post_quantum_only`` drop classical KEX when a PQ hybrid is available."""
    chosen = select(preference, supported)
    if post_quantum_only:
        pq = [name for name in chosen if name in POST_QUANTUM_KEX]
        if pq:
            return pq
    return chosen


def select_all(preferences, supported, post_quantum_only=True):
    """Return ``{sshd keyword: [algorithms]}`` for every category, or raise naming the variable to fix.

    ``preferences`` maps category (see CATEGORIES) to a preference list;
    ``supported`` maps ``ssh -Q`` query names to lists.
    """
    result = {}
    for category, (keyword, query, variable) in CATEGORIES.items():
        if category not in preferences:
            continue
        have = supported.get(query, [])
        if category == "kex":
            chosen = select_kex(preferences[category], have, post_quantum_only)
        else:
            chosen = select(preferences[category], have)
        if not chosen:
            raise KubeguardError(
                variable,
                f"none of {', '.join(preferences[category])} is supported by this OpenSSH "
                f"(ssh -Q {query}: {', '.join(have) or 'nothing'}); add a supported algorithm",
            )
        result[keyword] = chosen
    return result


_RSA_SIGNATURES = {
    "ssh-rsa": ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"),
    "ssh-rsa-cert-v01@openssh.com": (
        "ssh-rsa-cert-v01@openssh.com",
        "rsa-sha2-256-cert-v01@openssh.com",
        "rsa-sha2-512-cert-v01@openssh.com",
    ),
}


def key_type_accepted(key_type, accepted):
    """Whether a public key of ``key_type`` (authorized_keys type field) can log in under ``accepted``."""
    return any(a in accepted for a in _RSA_SIGNATURES.get(key_type, (key_type,)))
