# Private to the kubeguard.hardening collection: no stable API.
"""Filter /etc/ssh/moduli to primes of a minimum size."""

from __future__ import annotations

from .errors import SshdHardeningError


def filter_moduli(text, min_bits):
    """Return ``(new_text, kept, removed)``; comments are kept, weak primes dropped.

    The size field of a moduli line is the bit length minus one (2047 for a 2048-bit prime).
    """
    out, kept, removed = [], 0, 0
    for line in text.splitlines():
        fields = line.split()
        if not fields or line.lstrip().startswith("#"):
            out.append(line)
            continue
        if len(fields) != 7 or not fields[4].isdigit():
            raise SshdHardeningError(f"Unparseable moduli line: {line[:60]!r}", option="ssh_hardening_moduli_enabled")
        if int(fields[4]) + 1 >= min_bits:
            out.append(line)
            kept += 1
        else:
            removed += 1
    if kept == 0:
        raise SshdHardeningError(
            f"No moduli of at least {min_bits} bits would remain; lower ssh_hardening_moduli_min_bits",
            option="ssh_hardening_moduli_min_bits",
        )
    return "\n".join(out) + "\n", kept, removed
