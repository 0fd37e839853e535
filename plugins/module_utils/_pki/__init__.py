# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the cluster PKI backend.

Nothing in this package is a public API; it may change without notice.
The modules ``cluster_pki`` and ``cluster_pki_info`` are thin wrappers over it.
"""
