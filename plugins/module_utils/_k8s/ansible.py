# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the connection options every API module shares.

The only file of this package that knows about Ansible's AnsibleModule, so the
modules stay thin and the rest stays Ansible-free.
"""

from __future__ import annotations

from .._errors import ROLE_VARS_SPEC, KubeguardError
from .client import secret_values

CONNECTION_ARGS = {
    "kubeconfig": {"type": "raw", "no_log": True},
    "context": {"type": "str"},
    "request_timeout": {"type": "int", "default": 30},
}


def prepare(module):
    """Never log an inline kubeconfig's secrets."""
    kubeconfig = module.params.get("kubeconfig")
    if isinstance(kubeconfig, dict):
        module.no_log_values.update(secret_values(kubeconfig))
    elif kubeconfig is not None and not isinstance(kubeconfig, str):
        raise KubeguardError("kubeconfig", "must be a path or a kubeconfig dict")


def main(argument_spec, entry_point):
    """The whole ``main()`` of an API module: the connection options plus ``argument_spec``, check mode
    supported, then ``entry_point(params, check_mode)`` rendered by run_module()."""
    from ansible.module_utils.basic import AnsibleModule

    from .._errors import run_module

    module = AnsibleModule(
        argument_spec={**ROLE_VARS_SPEC, **CONNECTION_ARGS, **argument_spec}, supports_check_mode=True
    )

    def run(params, check_mode):
        prepare(module)  # inside run_module, so a bad kubeconfig is named like every other error
        return entry_point(params, check_mode)

    run_module(module, run, module.params, module.check_mode)
