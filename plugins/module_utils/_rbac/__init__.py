# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the RBAC audit against CIS 5.1.

Nothing in this package is a public API; it may change without notice. It owns
the checks (``audit``: pure, from lists of roles, bindings and service
accounts to findings with CIS IDs and effective subjects) and the read-once /
remediate loop behind the ``rbac_audit`` module (``runner``). API access goes
through ``module_utils/_k8s``.
"""
