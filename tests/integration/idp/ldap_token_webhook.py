"""A TokenReview webhook backed by LDAP, the Guard-style route for --authentication-token-webhook-config-file.

The bearer token is ``username:password``. The webhook binds to slapd as that user (a wrong password
fails the bind) and, on the same connection, reads the groups that list the user as a member. The
answer names the user ``ldap:<uid>`` with groups ``ldap:<cn>``. A test fixture, not a product: it
does not authenticate the apiserver calling it.

Usage: ldap_token_webhook.py PORT CERT KEY LDAP_URL LDAPSEARCH
(LD_LIBRARY_PATH from the environment reaches ldapsearch.)
"""

import http.server
import json
import re
import ssl
import subprocess
import sys
import tempfile

BASE = "dc=kubeguard,dc=test"
UID = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")  # nothing that could change the DN or the filter


def ldap_groups(ldap_url, ldapsearch, uid, password):
    """The user's groups, or None when the bind fails."""
    dn = f"uid={uid},ou=people,{BASE}"
    with tempfile.NamedTemporaryFile("w") as secret:  # never on a command line
        secret.write(password)
        secret.flush()
        search = ["-b", f"ou=groups,{BASE}", f"(member={dn})", "cn"]
        run = subprocess.run(
            [ldapsearch, "-x", "-LLL", "-H", ldap_url, "-D", dn, "-y", secret.name, *search],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    if run.returncode != 0:
        return None
    return re.findall(r"^cn: (.+)$", run.stdout, re.M)


def review(body, ldap_url, ldapsearch):
    token = body.get("spec", {}).get("token", "")
    uid, _, password = token.partition(":")
    groups = ldap_groups(ldap_url, ldapsearch, uid, password) if UID.match(uid) and password else None
    status = {"authenticated": groups is not None}
    if groups is not None:
        status["user"] = {"username": f"ldap:{uid}", "groups": [f"ldap:{g}" for g in groups]}
    return {"apiVersion": body.get("apiVersion", "authentication.k8s.io/v1"), "kind": "TokenReview", "status": status}


def main(port, cert, key, ldap_url, ldapsearch):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            answer = json.dumps(review(body, ldap_url, ldapsearch)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, fmt, *args):  # one line per review, never the token
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
