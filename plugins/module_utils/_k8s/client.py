# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: one connection to the API through a kubeconfig, and one discovery per call.

Requests go through keep-alive connections set up from the kubeconfig
(``kubeconfig.py``: TLS, tokens, client certificates, exec plugins); bodies are
plain dicts: no model classes, no per-object discovery. Only a kubeconfig
user with an ``auth-provider`` (or a SOCKS proxy) goes through the kubernetes
library.
"""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import quote, urlencode, urlsplit

from .._errors import KubeguardError
from . import kubeconfig as kubeconfig_reader

FIELD_MANAGER = "kubeguard"
USER_AGENT = "kubeguard.hardening"


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


class _Pool:
    """Keep-alive connections (the standard library's http.client, quick to import) with the TLS context and
    headers of a kubeconfig (kubeconfig.py); the bulk runner's threads each take one from the pool."""

    errors = (OSError, http.client.HTTPException)

    def __init__(self, connection):
        self.host = connection.server
        self._connection = connection
        parts = urlsplit(connection.server)
        self._https = parts.scheme == "https"
        self._address = (parts.hostname, parts.port or (443 if self._https else 80))
        self._prefix = parts.path.rstrip("/")
        self._idle = []
        self._idle_lock = threading.Lock()

    def _open(self, timeout):
        proxy = self._connection.proxy_url
        host, port = self._address
        if proxy:
            target = urlsplit(proxy)
            host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
        if self._https:
            # tls-server-name: the name the certificate is checked against; the address stays the server's
            conn = _TlsConnection(
                host, port, timeout=timeout, context=self._connection.ssl_context,
                server_name=self._connection.tls_server_name or self._address[0],
            )  # fmt: skip
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        if proxy:
            conn.set_tunnel(*self._address)
        return conn

    def send(self, method, path, headers, body, timeout):
        headers = {**self._connection.headers, **headers}
        payload = None if body is None else json.dumps(body).encode("utf-8")  # JSON is also YAML (apply-patch+yaml)
        with self._idle_lock:
            idle = self._idle.pop() if self._idle else None
        if idle is not None:
            try:
                return self._exchange(idle, method, path, headers, payload, timeout)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                pass  # the server closed an idle keep-alive connection: once more on a new one
        return self._exchange(self._open(timeout), method, path, headers, payload, timeout)

    def _exchange(self, conn, method, path, headers, payload, timeout):
        conn.timeout = timeout
        try:
            conn.request(method, self._prefix + path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            with self._idle_lock:
                self._idle.append(conn)
        return response.status, response.reason, data


class _TlsConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against ``server_name`` (kubeconfig tls-server-name) and sent as SNI."""

    def __init__(self, host, port, timeout, context, server_name):
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name

    def connect(self):
        http.client.HTTPConnection.connect(self)  # TCP (and a proxy's CONNECT tunnel)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)


class _Library:
    """The kubernetes library's client, for the kubeconfig users it alone implements (auth-provider plugins)."""

    def __init__(self, kubeconfig, context):
        try:
            from kubernetes import client as k8s_client
            from kubernetes import config as k8s_config
            from kubernetes.client.exceptions import ApiException
        except ImportError as exc:
            raise KubeguardError(
                "kubeconfig", f"an auth-provider user needs the kubernetes Python library on the controller ({exc})"
            ) from None
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
            where = kubeconfig if isinstance(kubeconfig, str) else "the inline kubeconfig"
            raise KubeguardError("kubeconfig", f"cannot load {where}: {type(exc).__name__}: {exc}") from None
        self._api = k8s_client.ApiClient(configuration)
        self._api_exception = ApiException
        self.host = configuration.host
        self.errors = (Exception,)

    def send(self, method, path, headers, body, timeout):
        # the library serialises JSON bodies itself (merge-patch+json too); apply-patch+yaml goes as text
        json_body = headers.get("Content-Type", "").endswith("json")
        payload = body if body is None or json_body else json.dumps(body)
        method, url, headers, _unused, _unused = self._api.param_serialize(
            method, path, header_params=headers, auth_settings=["BearerToken"]
        )
        try:
            response = self._api.call_api(method, url, header_params=headers, body=payload, _request_timeout=timeout)
            return response.status, response.reason, response.read()
        except self._api_exception as exc:
            return exc.status, exc.reason, exc.body


def _connect(kubeconfig, context):
    """The transport for ``kubeconfig``: http.client with our own reading of it; the library for what only it
    implements (auth-provider users, SOCKS proxies: ``load`` returns None for them)."""
    connection = kubeconfig_reader.load(kubeconfig, context)
    return _Library(kubeconfig, context) if connection is None else _Pool(connection)


class Client:
    """JSON requests against one API server; counts requests so callers can prove they are few."""

    def __init__(self, transport, timeout=30):
        self._transport = transport
        self._timeout = timeout
        self._lock = threading.Lock()
        self.requests = 0
        self.discovery_requests = 0
        self._resources = {}

    @classmethod
    def from_kubeconfig(cls, kubeconfig, context=None, timeout=30):
        return cls(_connect(kubeconfig, context), timeout)

    @property
    def host(self):
        return self._transport.host

    def request(self, method, path, query=None, body=None, content_type="application/json", accept="application/json"):
        """Send one request; returns the decoded JSON body, raises ApiError on a non-2xx status."""
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = content_type
        if query:
            path += "?" + urlencode(query)
        with self._lock:
            self.requests += 1
        try:
            status, reason, data = self._transport.send(method, path, headers, body, self._timeout)
        except self._transport.errors as exc:  # connection and TLS errors
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
