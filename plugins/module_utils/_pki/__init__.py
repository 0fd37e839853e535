# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the kubeguard.hardening collection: the cluster PKI backend.

Nothing in this package is a public API; it may change without notice. It
owns every decision of the cluster_pki modules, which are thin adapters over
one Ansible-free entry point each (``run(params, check_mode)``), raising
``_errors.KubeguardError``:

- ``_model``: the kubeadm layout, declared once (``LAYOUT``: files, who
  receives each, which are CAs; key algorithms), and the cluster catalogue.
- ``_plan`` / ``_engine`` / ``_crypto`` / ``_kubeconfig`` / ``_files``: the
  controller side (cluster_pki): read the tree, decide, issue, write.
- ``_install``: the node side (cluster_pki_install): compare with the node's
  files, refuse a different CA, back up, write.
- ``_endpoint``: the check before a kubeconfig is repointed (cluster_pki_endpoint).
- ``_node_plan`` / ``_specs``: a node's side checked in one call that writes nothing
  (cluster_pki_node_plan: the endpoint proof, the install checks, the report), each
  concern validated with its own module's argument spec (``_specs``).
- ``_restart``: healthy one-at-a-time restarts with rollback (cluster_pki_restart),
  on the node engine (``_node.restart``).
- ``_info``: the expiry report (cluster_pki_info), read with ``_node.x509``.
"""
