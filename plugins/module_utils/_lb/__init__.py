# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: load balancers in front of
kube-apiserver (``haproxy``: drain and undrain a server through the runtime
API). Nothing in this package is a public API; it may change without notice.
"""
