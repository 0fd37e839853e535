# Copyright: kubeguard maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a kubeconfig read into one connection (server, TLS context, credentials), without the kubernetes library.

Importing that library (and urllib3) cost about 0.3 s of every API module
call; reading a kubeconfig needs PyYAML and the standard library only. kubectl's rules apply:

- ``KUBECONFIG`` (or the ``kubeconfig`` path, ``:``-separated) names files that
  are merged: the first file to name a cluster, user or context, or to set
  ``current-context``, wins; files that do not exist are skipped;
- a path inside a file is relative to that file's directory;
- ``*-data`` fields are base64; the user's credentials are, in order, a token
  (``token`` or ``tokenFile``), an exec plugin (``client.authentication.k8s.io``),
  then ``username``/``password``; client certificates go with any of them.

A user with an ``auth-provider`` (the legacy oidc/gcp/azure plugins) and a
SOCKS ``proxy-url`` are left to the kubernetes library, which implements them:
:func:`load` returns None.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import ssl
import subprocess
import tempfile

from .._errors import KubeguardError

OPTION = "kubeconfig"
DEFAULT_PATH = "~/.kube/config"
EXEC_TIMEOUT = 60


class Connection:
    """What one API connection needs: ``server`` (no trailing slash), ``ssl_context`` (None for http),
    ``tls_server_name``, ``proxy_url`` and the ``headers`` every request carries (Authorization)."""

    def __init__(self, server, ssl_context=None, tls_server_name=None, proxy_url=None, headers=None):
        self.server = server
        self.ssl_context = ssl_context
        self.tls_server_name = tls_server_name
        self.proxy_url = proxy_url
        self.headers = headers or {}


def load(kubeconfig, context=None):
    """The Connection of ``context`` (else the current context) in ``kubeconfig``: a path, an inline dict or
    None (``KUBECONFIG``, else ~/.kube/config); None when it needs an auth-provider plugin or a SOCKS proxy."""
    merged, where = _merge(_documents(kubeconfig))
    name = context or merged["current-context"]
    if not name:
        raise KubeguardError(OPTION, f"cannot load {where}: no context given and no current-context set")
    ctx = _named(merged, "contexts", name, where).get("context") or {}
    cluster_entry = _named(merged, "clusters", ctx.get("cluster"), where)
    cluster = cluster_entry.get("cluster") or {}
    user_entry = _named(merged, "users", ctx.get("user"), where, required=False)
    user = user_entry.get("user") or {}
    if user.get("auth-provider") or str(cluster.get("proxy-url") or "").startswith("socks"):
        return None  # before any exec plugin runs: the library runs it again
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise KubeguardError(OPTION, f"cannot load {where}: cluster {ctx.get('cluster')!r} has no http(s) server")
    # paths inside an entry are relative to the file that holds the entry
    cluster_base = cluster_entry.get("_base", "")
    user_base = user_entry.get("_base", "")
    headers, exec_pair = _credentials(user, user_base, cluster, server, where)
    ssl_context = None
    if server.startswith("https://"):
        ssl_context = _ssl_context(cluster, cluster_base, user, user_base, exec_pair, where)
    return Connection(server, ssl_context, cluster.get("tls-server-name"), cluster.get("proxy-url"), headers)


# ------------------------------------------------------------------ reading


def _documents(kubeconfig):
    """[(document, base directory, name for messages)] in precedence order."""
    import yaml  # PyYAML: a dependency of ansible-core

    if isinstance(kubeconfig, dict):
        return [(kubeconfig, "", "the inline kubeconfig")]
    spec = kubeconfig if kubeconfig else os.environ.get("KUBECONFIG") or DEFAULT_PATH
    paths = [os.path.expanduser(part) for part in str(spec).split(os.pathsep) if part]
    found = [path for path in paths if os.path.exists(path)]
    if not found:
        raise KubeguardError(OPTION, f"cannot load {spec}: no such file")
    documents = []
    for path in found:
        try:
            with open(path, encoding="utf-8") as handle:
                document = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise KubeguardError(OPTION, f"cannot load {path}: {type(exc).__name__}: {exc}") from None
        if not isinstance(document, dict):
            raise KubeguardError(OPTION, f"cannot load {path}: not a kubeconfig (a mapping)")
        documents.append((document, os.path.dirname(os.path.abspath(path)), path))
    return documents


def _merge(documents):
    """One kubeconfig from several, the first name wins; each entry remembers its file's directory (``_base``)."""
    merged = {"clusters": {}, "contexts": {}, "users": {}, "current-context": None}
    for document, base, name in documents:
        for section in ("clusters", "contexts", "users"):
            for entry in document.get(section) or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise KubeguardError(OPTION, f"cannot load {name}: every entry of {section} needs a name")
                merged[section].setdefault(entry["name"], {**entry, "_base": base})
        merged["current-context"] = merged["current-context"] or document.get("current-context")
    return merged, documents[0][2] if len(documents) == 1 else "the merged kubeconfig"


def _named(merged, section, name, where, required=True):
    entry = merged[section].get(name)
    if entry is None:
        if not required and not name:
            return {}
        raise KubeguardError(OPTION, f"cannot load {where}: no {section[:-1]} named {name!r}")
    return entry


def _file_or_data(entry, key, base, where):
    """The bytes of ``key``-data (base64) or of the file ``key`` names, relative to ``base``; None if neither."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise KubeguardError(OPTION, f"cannot load {where}: {key}-data is not base64") from None
    return _read(entry[key], key, base, where) if entry.get(key) else None


def _read(path, key, base, where):
    path = os.path.join(base, os.path.expanduser(str(path)))
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise KubeguardError(OPTION, f"cannot load {where}: {key} {path}: {exc.strerror}") from None


# ------------------------------------------------------------------ credentials


def _credentials(user, base, cluster, server, where):
    """(headers, (certificate PEM, key PEM) from an exec plugin or None)."""
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read(user["tokenFile"], "tokenFile", base, where).decode("utf-8").strip()
    if token:
        return {"Authorization": f"Bearer {token}"}, None
    if user.get("exec"):
        status = _exec_credential(user["exec"], base, cluster, server, where)
        if status.get("token"):
            return {"Authorization": f"Bearer {status['token']}"}, None
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            return {}, (status["clientCertificateData"].encode(), status["clientKeyData"].encode())
        raise KubeguardError(OPTION, f"cannot load {where}: the exec plugin gave neither a token nor a certificate")
    if user.get("username") and user.get("password"):
        pair = base64.b64encode(f"{user['username']}:{user['password']}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}, None
    return {}, None


def _exec_credential(spec, base, cluster, server, where):
    """The ``status`` of the ExecCredential the plugin prints (client.authentication.k8s.io, non-interactive)."""
    command = spec.get("command")
    api_version = spec.get("apiVersion")
    if not command or not api_version:
        raise KubeguardError(OPTION, f"cannot load {where}: an exec plugin needs command and apiVersion")
    env = dict(os.environ)
    env.update({item["name"]: str(item["value"]) for item in spec.get("env") or [] if "name" in item})
    info = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        info["spec"]["cluster"] = {
            key: value
            for key, value in {
                "server": server,
                "tls-server-name": cluster.get("tls-server-name"),
                "insecure-skip-tls-verify": cluster.get("insecure-skip-tls-verify"),
                "certificate-authority-data": cluster.get("certificate-authority-data"),
                "proxy-url": cluster.get("proxy-url"),
                "config": (cluster.get("extensions") or [{}])[0].get("extension"),
            }.items()
            if value is not None
        }
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        run = subprocess.run(
            [str(command), *[str(arg) for arg in spec.get("args") or []]],
            env=env,
            cwd=base or None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=EXEC_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KubeguardError(OPTION, f"cannot load {where}: exec plugin {command}: {exc}") from None
    if run.returncode != 0:
        raise KubeguardError(
            OPTION, f"cannot load {where}: exec plugin {command} exited {run.returncode}: {run.stderr.strip()[-500:]}"
        )
    try:
        credential = json.loads(run.stdout)
    except ValueError:
        raise KubeguardError(OPTION, f"cannot load {where}: exec plugin {command} printed no JSON") from None
    if not isinstance(credential, dict) or credential.get("apiVersion") != api_version:
        raise KubeguardError(OPTION, f"cannot load {where}: exec plugin {command} did not answer in {api_version}")
    return credential.get("status") or {}


# ------------------------------------------------------------------ TLS


def _ssl_context(cluster, cluster_base, user, user_base, exec_pair, where):
    """Verifying against the cluster's CA (else the system's), with the client certificate if there is one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        authority = _file_or_data(cluster, "certificate-authority", cluster_base, where)
        try:
            if authority:
                context.load_verify_locations(cadata=authority.decode("utf-8"))
            else:
                context.load_default_certs()  # a public CA, as kubectl does without one
        except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
            raise KubeguardError(OPTION, f"cannot load {where}: certificate-authority: {exc}") from None
    if exec_pair:
        certificate, key = exec_pair
    else:
        certificate = _file_or_data(user, "client-certificate", user_base, where)
        key = _file_or_data(user, "client-key", user_base, where)
    if certificate and key:
        _load_client_pair(context, certificate, key, where)
    return context


def _load_client_pair(context, certificate, key, where):
    """ssl loads a certificate and key from files only: a private directory holds them for that call."""
    scratch = tempfile.mkdtemp(prefix="kubeguard-kubeconfig-")  # mode 0700
    try:
        paths = []
        for name, content in (("client.crt", certificate), ("client.key", key)):
            path = os.path.join(scratch, name)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
            paths.append(path)
        try:
            context.load_cert_chain(*paths)
        except (ssl.SSLError, ValueError) as exc:
            raise KubeguardError(OPTION, f"cannot load {where}: client certificate and key: {exc}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
