# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: talking to the Kubernetes API in bulk.

Nothing in this package is a public API; it may change without notice. It owns
the connection through a kubeconfig and the one discovery per call (``client``),
the pure object logic: noise stripping, diff and change decision (``objects``),
the server-side apply / dry-run / delete requests (``service``) and the
decision loop behind the ``k8s_bulk_apply`` module (``runner``). The RBAC and
NetworkPolicy packages reuse the client and the service.
"""
