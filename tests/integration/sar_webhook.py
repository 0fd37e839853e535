"""A SubjectAccessReview (and TokenReview) webhook over TLS, on 127.0.0.1:23300-23399.

Authorization (POST /authorize): ``allow-*`` users are allowed, ``deny-*`` users are denied,
everyone else gets no opinion. Authentication (POST /authenticate): the tokens in ``users``
map to a user and groups. Every review it answers is recorded in ``seen``. It also serves a
minimal OIDC issuer at ``/oidc`` (discovery document and JWKS; ``sign`` makes ES256 tokens):
the JWT authenticator's rendering is checked here, the Keycloak chain is proven elsewhere.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

PORTS = range(23300, 23400)


def issue(subject_cn, ca=None, orgs=(), server_ip=None, days=1):
    """(cert PEM, key PEM) signed by ``ca`` = (cert, key) objects, or a self-signed CA when None."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        + [x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca[0].subject if ca else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if server_ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]), False
        )
    cert = builder.sign(ca[1] if ca else key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert, key, pem, key_pem


class Webhook:
    def __init__(self, work, users=None):
        ca_cert, ca_key, self.ca_pem, _ = issue("kubeguard-test-webhook-ca")
        _, _, cert_pem, key_pem = issue("127.0.0.1", (ca_cert, ca_key), server_ip="127.0.0.1")
        (work / "webhook.crt").write_bytes(cert_pem)
        (work / "webhook.key").write_bytes(key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(work / "webhook.crt", work / "webhook.key")
        self.users, self.seen, self.server, self.port = users or {}, [], None, None
        self.jwt_key = ec.generate_private_key(ec.SECP256R1())

    @property
    def issuer(self):
        return f"https://127.0.0.1:{self.port}/oidc"

    def jwks(self):
        numbers = self.jwt_key.public_key().public_numbers()
        point = {k: _b64(v.to_bytes(32, "big")) for k, v in (("x", numbers.x), ("y", numbers.y))}
        return {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", **point}]}

    def sign(self, claims):
        header = _b64(json.dumps({"alg": "ES256", "kid": "k1", "typ": "JWT"}).encode())
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}".encode()
        r, s = decode_dss_signature(self.jwt_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return f"{signing_input.decode()}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def start(self, port=None):
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                documents = {
                    "/oidc/.well-known/openid-configuration": {
                        "issuer": hook.issuer,
                        "jwks_uri": f"{hook.issuer}/jwks",
                        "id_token_signing_alg_values_supported": ["ES256"],
                    },
                    "/oidc/jwks": hook.jwks(),
                }
                if self.path in documents:
                    self.answer(200, documents[self.path])
                else:
                    self.answer(404, {})

            def answer(self, code, document):
                body = json.dumps(document).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                spec = review["spec"]
                if review["kind"] == "TokenReview":
                    user = hook.users.get(spec["token"])
                    status = {"authenticated": True, "user": user} if user else {"authenticated": False}
                else:
                    hook.seen.append(spec)
                    status = {"allowed": spec["user"].startswith("allow-")}
                    if spec["user"].startswith("deny-"):
                        status.update(denied=True, reason="denied by the test webhook")
                self.answer(200, {**review, "status": status})

            def log_message(self, *args):
                pass

        for candidate in [port] if port else PORTS:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", candidate), Handler)
                break
            except OSError:
                continue
        self.port = self.server.server_address[1]
        self.server.socket = self.context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
