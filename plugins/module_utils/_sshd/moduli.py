# Private to the kubeguard.hardening collection: no stable API (see __init__).
"""The weak-moduli rule, and the filter that applies it to /etc/ssh/moduli."""

from __future__ import annotations

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError

MODULI = "/etc/ssh/moduli"


def prime_bits(line):
    """Bit length of the prime on a moduli line, None for comments and blank lines; raises if unparseable.

    The size field of a moduli line is the bit length minus one (2047 for a 2048-bit prime).
    """
    fields = line.split()
    if not fields or line.lstrip().startswith("#"):
        return None
    if len(fields) != 7 or not fields[4].isdigit():
        raise KubeguardError("ssh_hardening_moduli_enabled", f"unparseable moduli line: {line[:60]!r}")
    return int(fields[4]) + 1


def count_weak(text, min_bits):
    """How many primes in a moduli file are below ``min_bits`` (unparseable lines are left to the filter)."""
    weak = 0
    for line in text.splitlines():
        try:
            bits = prime_bits(line)
        except KubeguardError:
            continue
        weak += bits is not None and bits < min_bits
    return weak


def filter_moduli(text, min_bits):
    """Return ``(new_text, kept, removed)``; comments are kept, weak primes dropped."""
    out, kept, removed = [], 0, 0
    for line in text.splitlines():
        bits = prime_bits(line)
        if bits is None:
            out.append(line)
            continue
        if bits >= min_bits:
            out.append(line)
            kept += 1
        else:
            removed += 1
    if kept == 0:
        raise KubeguardError(
            "ssh_hardening_moduli_min_bits", f"no moduli of at least {min_bits} bits would remain; lower it"
        )
    return "\n".join(out) + "\n", kept, removed
