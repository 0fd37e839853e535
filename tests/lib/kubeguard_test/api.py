"""Raw HTTPS requests to a lab apiserver (or any TLS endpoint), with or without
a client certificate, for tests that must see the real status code."""

import base64
import json
import pathlib
import ssl
import urllib.error
import urllib.request

import yaml


def api_port(kubeconfig):
    """The published port of the apiserver a kubeconfig points to."""
    server = yaml.safe_load(pathlib.Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    return int(server.rsplit(":", 1)[1])


class Identity:
    """A client certificate and key in files, from a kubeconfig of the PKI tree."""

    def __init__(self, kubeconfig, workdir, name):
        user = yaml.safe_load(pathlib.Path(kubeconfig).read_text())["users"][0]["user"]
        self.cert, self.key = workdir / f"{name}.crt", workdir / f"{name}.key"
        self.cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        self.key.write_bytes(base64.b64decode(user["client-key-data"]))
        self.key.chmod(0o600)


def https(port, path, identity=None, host="127.0.0.1"):
    """(status, body) of a GET; the server is not verified (tests prove TLS elsewhere)."""
    return request(port, "GET", path, identity=identity, host=host)


def request(port, method, path, identity=None, token=None, body=None, host="127.0.0.1", timeout=5):
    """(status, body) of one request, authenticated by a client certificate (``identity``)
    or a bearer ``token``; ``body`` is sent as JSON. The server is not verified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if identity:
        context.load_cert_chain(str(identity.cert), str(identity.key))
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(f"https://{host}:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as response:  # noqa: S310 - https only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
