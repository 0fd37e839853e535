# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to kubeguard.hardening: kube-apiserver access configuration.

Renders and validates, on the controller, everything the ``api_access`` role
hands to the control plane's safe restart path: the structured
AuthenticationConfiguration and AuthorizationConfiguration
(``apiserver.config.k8s.io/v1``), the ABAC policy, the static token CSV, the
webhook kubeconfigs and the service-account flags. ``config.run`` is the
entry point; ``authn``, ``authz`` and ``tokens`` are pure functions except
for the controller-side token store. Errors name the role variable
(``api_access_<option>``) to fix; nothing is written before validation.
"""
