# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: one connection to the API through a kubeconfig, and one discovery per call.

Requests go through the ``kubernetes`` client's configured connection pool
(authentication, TLS and exec plugins come from the kubeconfig), but bodies are
plain dicts: no model classes, no per-object discovery.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote, urlencode

from .._errors import KubeguardError

FIELD_MANAGER = "kubeguard"


class ApiError(KubeguardError):
    """A non-2xx answer of the API server; a KubeguardError on ``kubeconfig`` (the cluster it points at)."""

    def __init__(self, status, reason, message, option="kubeconfig"):
        super().__init__(option, message)
        self.status = status
        self.reason = reason

    def describe(self):
        return f"the API server answered HTTP {self.status} {self.reason}: {self.message}"

    def __str__(self):
        # per-object failures in results quote the answer alone
        return f"HTTP {self.status} {self.reason}: {self.message}"


def secret_values(kubeconfig):
    """The strings of an inline kubeconfig that must never be logged (tokens, keys, passwords)."""
    found = []
    for user in (kubeconfig or {}).get("users") or []:
        for key, value in ((user or {}).get("user") or {}).items():
            if key in ("token", "client-key-data", "password") and isinstance(value, str):
                found.append(value)
    return found


def _load_configuration(kubeconfig, context):
    try:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config
    except ImportError as exc:  # the module reports missing_required_lib first; this guards direct callers
        raise KubeguardError(
            "kubeconfig", f"the kubernetes Python library is required on the controller ({exc})"
        ) from exc
    configuration = k8s_client.Configuration()
    try:
        if isinstance(kubeconfig, dict):
            k8s_config.load_kube_config_from_dict(
                kubeconfig, context=context, client_configuration=configuration, persist_config=False
            )
        else:
            k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
            )
    except Exception as exc:  # the library raises ConfigException, OSError, yaml and key errors alike
        # never echo the kubeconfig itself: only its path and the library's reason
        where = kubeconfig if isinstance(kubeconfig, str) else "the inline kubeconfig"
        raise KubeguardError("kubeconfig", f"cannot load {where}: {type(exc).__name__}: {exc}") from None
    return k8s_client.ApiClient(configuration)


class Client:
    """JSON requests against one API server; counts requests so callers can prove they are few."""

    def __init__(self, api_client, timeout=30):
        self._api = api_client
        self._timeout = timeout
        self._lock = threading.Lock()
        self.requests = 0
        self.discovery_requests = 0
        self._resources = {}

    @classmethod
    def from_kubeconfig(cls, kubeconfig, context=None, timeout=30):
        return cls(_load_configuration(kubeconfig, context), timeout)

    @property
    def host(self):
        return self._api.configuration.host

    def request(self, method, path, query=None, body=None, content_type="application/json"):
        """Send one request; returns the decoded JSON body, raises ApiError on a non-2xx status."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type
            # the REST client serialises JSON bodies itself (merge-patch+json too); other types
            # (apply-patch+yaml) go as text
            payload = body if content_type.endswith("json") else json.dumps(body)
        method, url, headers, _unused, _unused = self._api.param_serialize(
            method, path, header_params=headers, auth_settings=["BearerToken"]
        )
        if query:
            url += "?" + urlencode(query)
        with self._lock:
            self.requests += 1
        try:
            response = self._api.call_api(
                method, url, header_params=headers, body=payload, _request_timeout=self._timeout
            )
            data = response.read()
            status, reason = response.status, response.reason
        except ApiException as exc:
            data, status, reason = exc.body, exc.status, exc.reason
        except Exception as exc:  # urllib3 connection and TLS errors
            raise KubeguardError("kubeconfig", f"cannot reach the API server {self.host}: {exc}") from None
        text = data.decode("utf-8") if isinstance(data, bytes) else (data or "")
        if not 200 <= int(status or 0) < 300:
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise ApiError(int(status or 0), reason, message)
        return json.loads(text) if text else {}

    # --------------------------------------------------------------- discovery

    def discover(self, api_versions):
        """Read the resource lists of ``api_versions`` (each once per client): one discovery per call."""
        for api_version in sorted(set(api_versions) - set(self._resources)):
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            with self._lock:
                self.discovery_requests += 1
            try:
                listing = self.request("GET", path)
            except ApiError as exc:
                if exc.status == 404:
                    self._resources[api_version] = {}
                    continue
                raise
            self._resources[api_version] = {
                item["kind"]: Resource(api_version, item["name"], item["kind"], item["namespaced"])
                for item in listing.get("resources", [])
                if "/" not in item["name"]
            }

    def resource(self, api_version, kind, option="objects"):
        if api_version not in self._resources:
            self.discover([api_version])
        found = self._resources[api_version].get(kind)
        if found is None:
            raise KubeguardError(option, f"the API server does not serve kind {kind} in apiVersion {api_version}")
        return found


class Resource:
    """One served resource type: enough to build its URLs."""

    def __init__(self, api_version, plural, kind, namespaced):
        self.api_version = api_version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced

    def path(self, namespace=None, name=None):
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return f"{base}/{quote(name, safe='')}" if name else base
