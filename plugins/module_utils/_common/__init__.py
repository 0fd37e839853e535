# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection (no stable API): what several
areas share and must agree on, defined once.

- ``duration``: Go's ``time.ParseDuration`` grammar (every ``*_timeout``,
  ``*_period`` and TTL a role passes to a Go binary);
- ``ciphers``: the Go crypto/tls cipher-suite catalogue, the insecure suites
  named and refused, cross-checked against a binary's ``--help``;
- ``addresses``: the node's own IP addresses, from ``ip -o addr``.

Pure functions, no Ansible imports; errors are ``KubeguardError`` naming the
option the caller passes in.
"""
