"""The kubeconfig is read as kubectl reads it, and the connection it gives makes real TLS handshakes: against a
local HTTPS server that requires a client certificate, with the CA, client pair, token, exec plugin and
tls-server-name taken from files, inline data and merged KUBECONFIG paths."""

import base64
import datetime
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from ansible_collections.kubeguard.hardening.plugins.module_utils._errors import KubeguardError
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s import kubeconfig
from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import Client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(name, signer=None, sans=None, usage=None):
    """(certificate, key): a CA when ``signer`` is None, else a leaf signed by ``signer`` (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = signer if signer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=signer is None, path_length=None), critical=True)
    )
    if sans:
        import ipaddress

        names = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API server

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        peer = self.connection.getpeercert() or {}
        common_name = dict(item[0] for item in peer.get("subject", ())).get("commonName")
        data = json.dumps(
            {
                "path": self.path,
                "method": self.command,
                "authorization": self.headers.get("Authorization"),
                "client": common_name,
                "body": body,
            }
        ).encode()
        self.send_response(200 if not self.path.startswith("/missing") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pki():
    ca = _issue("test-ca")
    other_ca = _issue("other-ca")
    server = _issue("apiserver", ca, sans=["127.0.0.1", "localhost"], usage=ExtendedKeyUsageOID.SERVER_AUTH)
    named_only = _issue("apiserver", ca, sans=["api.internal"], usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client = _issue("kubeguard-admin", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return {"ca": ca, "other_ca": other_ca, "server": server, "named_only": named_only, "client": client}


def _serve(tmp_path_factory, pki, server_pair, require_client=True):
    where = tmp_path_factory.mktemp("server")
    (where / "s.crt").write_bytes(_pem(server_pair[0]))
    (where / "s.key").write_bytes(_key_pem(server_pair[1]))
    (where / "ca.crt").write_bytes(_pem(pki["ca"][0]))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(where / "s.crt", where / "s.key")
    context.load_verify_locations(where / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    httpd = _serve(tmp_path_factory, pki, pki["server"])
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def named_server(tmp_path_factory, pki):
    httpd = _serve(tmp_path_factory, pki, pki["named_only"], require_client=False)
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _b64(data):
    return base64.b64encode(data).decode()


def _config(server, cluster=None, user=None, name="lab"):
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": name, "user": user or {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def _inline(pki, server, **user):
    return _config(
        server,
        {"certificate-authority-data": _b64(_pem(pki["ca"][0]))},
        {
            "client-certificate-data": _b64(_pem(pki["client"][0])),
            "client-key-data": _b64(_key_pem(pki["client"][1])),
            **user,
        },
    )


def test_an_inline_kubeconfig_makes_a_mutual_tls_request(pki, server):
    client = Client.from_kubeconfig(_inline(pki, server))
    answer = client.request("GET", "/api/v1/namespaces", query={"limit": "1"})
    assert answer["client"] == "kubeguard-admin"
    assert answer["path"] == "/api/v1/namespaces?limit=1"
    assert answer["authorization"] is None


def test_files_are_read_relative_to_the_kubeconfig(tmp_path, pki, server):
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(_pem(pki["ca"][0]))
    (tmp_path / "pki" / "admin.crt").write_bytes(_pem(pki["client"][0]))
    (tmp_path / "pki" / "admin.key").write_bytes(_key_pem(pki["client"][1]))
    config = _config(
        server,
        {"certificate-authority": "pki/ca.crt"},
        {"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"},
    )
    path = tmp_path / "admin.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    assert Client.from_kubeconfig(str(path)).request("GET", "/version")["client"] == "kubeguard-admin"


def test_a_token_and_a_token_file_go_as_bearer(tmp_path, pki, server):
    assert Client.from_kubeconfig(_inline(pki, server, token="abc")).request("GET", "/")["authorization"] == (
        "Bearer abc"
    )
    (tmp_path / "token").write_text("from-file\n")
    config = _inline(pki, server, tokenFile=str(tmp_path / "token"))
    assert Client.from_kubeconfig(config).request("GET", "/")["authorization"] == "Bearer from-file"


def test_bodies_go_as_json_and_refusals_raise_api_errors(pki, server):
    client = Client.from_kubeconfig(_inline(pki, server))
    answer = client.request("PATCH", "/x", body={"a": 1}, content_type="application/apply-patch+yaml")
    assert (answer["method"], json.loads(answer["body"])) == ("PATCH", {"a": 1})
    with pytest.raises(KubeguardError) as refused:
        client.request("GET", "/missing")
    assert refused.value.option == "kubeconfig" and refused.value.status == 404


def test_a_server_signed_by_another_ca_is_refused(pki, server):
    config = _inline(pki, server)
    config["clusters"][0]["cluster"]["certificate-authority-data"] = _b64(_pem(pki["other_ca"][0]))
    with pytest.raises(KubeguardError) as refused:
        Client.from_kubeconfig(config).request("GET", "/")
    assert refused.value.option == "kubeconfig"
    assert "cannot reach the API server" in str(refused.value) and "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_tls_server_name_is_the_name_checked(pki, named_server):
    config = _inline(pki, named_server)
    with pytest.raises(KubeguardError, match="cannot reach the API server"):
        Client.from_kubeconfig(config).request("GET", "/")
    config["clusters"][0]["cluster"]["tls-server-name"] = "api.internal"
    assert Client.from_kubeconfig(config).request("GET", "/")["path"] == "/"


def test_an_exec_plugin_gives_the_token_and_sees_the_cluster(tmp_path, pki, server):
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, os\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',\n"
        "                  'status': {'token': os.environ['PREFIX'] + info['spec']['cluster']['server']}}))\n"
    )
    exec_spec = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": [str(plugin)],
        "env": [{"name": "PREFIX", "value": "for-"}],
        "provideClusterInfo": True,
        "interactiveMode": "Never",
    }
    config = _inline(pki, server)
    config["users"][0]["user"]["exec"] = exec_spec
    assert Client.from_kubeconfig(config).request("GET", "/")["authorization"] == f"Bearer for-{server}"


def test_an_exec_plugin_may_give_a_client_certificate(tmp_path, pki, server):
    status = {
        "clientCertificateData": _pem(pki["client"][0]).decode(),
        "clientKeyData": _key_pem(pki["client"][1]).decode(),
    }
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json\n"
        f"print(json.dumps({{'apiVersion': 'client.authentication.k8s.io/v1beta1', 'status': {status!r}}}))\n"
    )
    config = _config(
        server,
        {"certificate-authority-data": _b64(_pem(pki["ca"][0]))},
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": sys.executable,
                "args": [str(plugin)],
            }
        },
    )
    assert Client.from_kubeconfig(config).request("GET", "/")["client"] == "kubeguard-admin"


def test_kubeconfig_paths_merge_and_the_first_wins(tmp_path, monkeypatch, pki, server):
    first = _inline(pki, server, token="first")
    second = _inline(pki, "https://192.0.2.1:6443", token="second")
    second["current-context"] = "elsewhere"
    second["contexts"].append({"name": "elsewhere", "context": {"cluster": "lab", "user": "lab"}})
    (tmp_path / "one").write_text(yaml.safe_dump(first))
    (tmp_path / "two").write_text(yaml.safe_dump(second))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{tmp_path / 'one'}:{tmp_path / 'two'}")
    connection = kubeconfig.load(None)
    assert (connection.server, connection.headers) == (server, {"Authorization": "Bearer first"})
    assert kubeconfig.load(None, context="elsewhere").server == server  # the context from two, the cluster from one


def test_concurrent_requests_share_the_keep_alive_connections(pki, server):
    client = Client.from_kubeconfig(_inline(pki, server))
    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda n: client.request("GET", f"/item/{n}")["path"], range(40)))
    assert paths == [f"/item/{n}" for n in range(40)] and client.requests == 40


def test_an_auth_provider_user_or_a_socks_proxy_is_left_to_the_kubernetes_library(pki, server):
    config = _inline(pki, server)
    config["users"][0]["user"] = {"auth-provider": {"name": "oidc", "config": {"id-token": "x"}}}
    assert kubeconfig.load(config) is None
    socks = _inline(pki, server)
    socks["clusters"][0]["cluster"]["proxy-url"] = "socks5://127.0.0.1:1080"
    assert kubeconfig.load(socks) is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c.update({"current-context": "nowhere"}), "no context named 'nowhere'"),
        (lambda c: c.update({"current-context": None}), "no context given and no current-context set"),
        (lambda c: c["clusters"][0]["cluster"].pop("server"), "has no http(s) server"),
        (lambda c: c["clusters"][0]["cluster"].update({"certificate-authority-data": "%%%"}), "is not base64"),
        (lambda c: c["users"][0]["user"].update({"client-key-data": _b64(b"nonsense")}), "client certificate and key"),
        (lambda c: c["users"].clear(), "no user named 'lab'"),
        (lambda c: c["users"][0]["user"].update({"exec": {"command": "x"}}), "needs command and apiVersion"),
        (
            lambda c: c["users"][0]["user"].update(
                {"exec": {"command": "/nonexistent/plugin", "apiVersion": "client.authentication.k8s.io/v1"}}
            ),
            "exec plugin /nonexistent/plugin",
        ),
    ],
)
def test_a_bad_kubeconfig_is_refused_naming_the_option(pki, server, change, words):
    config = _inline(pki, server)
    change(config)
    with pytest.raises(KubeguardError) as refused:
        kubeconfig.load(config)
    assert refused.value.option == "kubeconfig" and words in refused.value.message
    assert "BEGIN" not in str(refused.value)  # no key or certificate echoed


def test_a_missing_or_unreadable_file_is_refused(tmp_path):
    with pytest.raises(KubeguardError, match="cannot load /nonexistent/kubeconfig: no such file"):
        kubeconfig.load("/nonexistent/kubeconfig")
    (tmp_path / "list").write_text("- a\n- b\n")
    with pytest.raises(KubeguardError, match="not a kubeconfig"):
        kubeconfig.load(str(tmp_path / "list"))


def test_a_request_does_not_import_the_kubernetes_library(tmp_path, pki, server):
    """Importing it cost about 0.3 s of every API module call: it is only for auth-provider users."""
    config = tmp_path / "admin.kubeconfig"
    config.write_text(yaml.safe_dump(_inline(pki, server)))
    script = (
        "import sys\n"
        "from ansible_collections.kubeguard.hardening.plugins.module_utils._k8s.client import Client\n"
        f"Client.from_kubeconfig({str(config)!r}).request('GET', '/')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'urllib3', 'requests')))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))  # where pytest found the collection
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert run.stdout.strip() == "[]"


def test_an_oidc_auth_provider_user_still_connects_through_the_library(pki, server):
    def part(claims):
        return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

    id_token = f"{part({'alg': 'RS256'})}.{part({'exp': 4102444800, 'sub': 'a'})}.c2ln"  # a JWT shape, exp in 2100
    config = _inline(pki, server)
    config["users"][0]["user"] = {
        "client-certificate-data": config["users"][0]["user"]["client-certificate-data"],
        "client-key-data": config["users"][0]["user"]["client-key-data"],
        "auth-provider": {"name": "oidc", "config": {"id-token": id_token, "client-id": "kubectl"}},
    }
    client = Client.from_kubeconfig(config)
    answer = client.request("GET", "/api")
    assert (answer["authorization"], answer["client"]) == (f"Bearer {id_token}", "kubeguard-admin")
    for content_type in ("application/merge-patch+json", "application/apply-patch+yaml"):
        answer = client.request("PATCH", "/x", body={"a": 1}, content_type=content_type)
        assert json.loads(answer["body"]) == {"a": 1}, content_type
