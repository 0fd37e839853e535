"""An API server's refusal is a KubeguardError on kubeconfig (no traceback), and still reads as the answer."""

from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import ApiError


def test_api_error_is_a_kubeguard_error_naming_the_kubeconfig():
    exc = ApiError(403, "Forbidden", 'namespaces is forbidden: User "x" cannot list resource')
    assert isinstance(exc, KubeguardError)
    assert exc.option == "kubeconfig"
    assert (
        exc.describe()
        == 'the API server answered HTTP 403 Forbidden: namespaces is forbidden: User "x" cannot list resource'
    )
    assert str(exc) == 'HTTP 403 Forbidden: namespaces is forbidden: User "x" cannot list resource'
    assert (exc.status, exc.reason, exc.message) == (
        403,
        "Forbidden",
        'namespaces is forbidden: User "x" cannot list resource',
    )
