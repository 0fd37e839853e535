"""Real identity providers on loopback (ports 23400-23499) for the API-access tests.

- OpenLDAP ``slapd`` from Debian (unpacked by lab/bin/fetch-idp, run as a plain process) holds the
  users and groups of tests/integration/idp/seed.ldif;
- Keycloak (Maven Central's keycloak-quarkus-dist, pre-built by lab/bin/fetch-idp) serves HTTPS with
  a certificate from our PKI code, imports tests/integration/idp/realm-kubeguard.json at start-up and
  federates slapd (LDAP user federation + group mapper, no user cache);
- a TokenReview webhook (tests/integration/idp/ldap_token_webhook.py) binds to the same slapd.

``identity_providers(work)`` is a context manager; ``shared_idp()`` starts one per test session and
stops it at exit. Only the tests that call it start it. Keycloak is only launched there:
``keycloak.ready()`` (or the first token) waits for it, so callers overlap its start-up with theirs.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import json
import os
import pathlib
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import apiserver_fixture
from ansible_collections.kubeguard.hardening.plugins.module_utils._pki import _crypto, _model
from cryptography.hazmat.primitives import serialization
from kubeguard_test.waiting import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent / "idp"
PORTS = range(23400, 23500)
BASE = "dc=kubeguard,dc=test"
REALM = "kubeguard"
# The plain passwords of seed.ldif's test accounts (it stores salted hashes).
USERS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2"}


def free_port(taken=()):
    return apiserver_fixture.free_port(taken, PORTS)


def fetch():
    """{"slapd": dir, "keycloak": dir} from lab/bin/fetch-idp (cached after the first run)."""
    out = subprocess.check_output([str(REPO / "lab/bin/fetch-idp")], text=True)
    return {name: pathlib.Path(path) for name, path in (line.split(" ", 1) for line in out.strip().splitlines())}


def issue_tls(out):
    """A test CA and a loopback serving certificate from it (our PKI code): (ca.pem, tls.crt, tls.key).
    The key is PKCS#8, which both Keycloak and Python's ssl read."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = _crypto.generate_keys(["ECDSA-P256", "ECDSA-P256"])
    ca = _crypto.build_cert(
        _model.Item("ca", "ca", cn="kubeguard idp test CA"), ca_key, now, now + datetime.timedelta(days=1)
    )
    leaf_item = _model.Item("idp", "leaf", cn="127.0.0.1", eku=("serverAuth",), dns=("localhost",), ips=("127.0.0.1",))
    leaf = _crypto.build_cert(leaf_item, key, now, now + datetime.timedelta(days=1), signer=(ca, ca_key))
    paths = (out / "ca.pem", out / "tls.crt", out / "tls.key")
    paths[0].write_bytes(_crypto.cert_pem(ca))
    paths[1].write_bytes(_crypto.cert_pem(leaf))
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    paths[2].write_bytes(pkcs8)
    paths[2].chmod(0o600)
    return paths


def fetch_json(url, context, data=None):
    """GET (or POST ``data``) an https URL of ours; the JSON answer."""
    with urllib.request.urlopen(urllib.request.Request(url, data=data), context=context, timeout=30) as r:  # noqa: S310
        return json.load(r)


def claims(jwt):
    """The payload of a JWT, unverified (the apiserver is what verifies it)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def rss_kib(pid):
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone meanwhile
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


def _sid(proc_dir):
    try:
        # the session id is field 6 of /proc/<pid>/stat, after the parenthesised command name
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


class Slapd:
    """slapd with a slapd.conf in ``work``, seeded by slapadd, on ldap://127.0.0.1:<port>."""

    def __init__(self, root, work, port):
        self.root = root
        self.work = work
        self.port = port
        self.url = f"ldap://127.0.0.1:{port}"
        self.admin_dn = f"cn=admin,{BASE}"
        self.admin_password = secrets.token_urlsafe(18)
        self.env = dict(os.environ, LD_LIBRARY_PATH=str(root / "usr/lib/x86_64-linux-gnu"))
        self.proc = None
        self._log = None

    def tool(self, name):
        return str(self.root / ("usr/sbin" if name.startswith("slap") else "usr/bin") / name)

    def start(self):
        schema = self.root / "etc/ldap/schema"
        data = self.work / "data"
        data.mkdir(parents=True)
        conf = self.work / "slapd.conf"
        conf.write_text(
            "".join(f"include {schema / s}.schema\n" for s in ("core", "cosine", "inetorgperson", "nis"))
            + f"modulepath {self.root / 'usr/lib/ldap'}\nmoduleload back_mdb\n"
            + f"pidfile {self.work / 'slapd.pid'}\n"
            + f'database mdb\nmaxsize 33554432\nsuffix "{BASE}"\nrootdn "{self.admin_dn}"\n'
            + f"rootpw {self.admin_password}\ndirectory {data}\n"
            # passwords only for binding; the rest readable by bound users (Keycloak, the webhook)
            + "access to attrs=userPassword by self write by anonymous auth by * none\n"
            + "access to * by users read by * none\n"
        )
        conf.chmod(0o600)
        subprocess.run(
            [self.tool("slapadd"), "-f", str(conf), "-l", str(HERE / "seed.ldif")],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self._log = open(self.work / "slapd.log", "w")  # noqa: SIM115
        # -d keeps it in the foreground (a child we can stop); "stats" logs binds and searches
        self.proc = subprocess.Popen(
            [self.tool("slapd"), "-h", f"{self.url}/", "-f", str(conf), "-d", "stats"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self._alive() and self.bind_as("alice", USERS["alice"]) is not None, 30, "slapd")

    def _alive(self):
        if self.proc.poll() is not None:
            raise AssertionError((self.work / "slapd.log").read_text()[-2000:])
        return True

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        if self._log:
            self._log.close()

    def bind_as(self, uid, password):
        """The cn of each group listing ``uid``, read over a connection bound as that user;
        None when the bind fails."""
        dn = f"uid={uid},ou=people,{BASE}"
        with tempfile.NamedTemporaryFile("w") as secret:
            secret.write(password)
            secret.flush()
            search = ["-b", f"ou=groups,{BASE}", f"(member={dn})", "cn"]
            run = subprocess.run(
                [self.tool("ldapsearch"), "-x", "-LLL", "-H", self.url, "-D", dn, "-y", secret.name, *search],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
        if run.returncode != 0:
            return None
        return sorted(line[4:] for line in run.stdout.splitlines() if line.startswith("cn: "))

    def modify(self, ldif):
        with tempfile.NamedTemporaryFile("w") as secret:
            secret.write(self.admin_password)
            secret.flush()
            subprocess.run(
                [self.tool("ldapmodify"), "-x", "-H", self.url, "-D", self.admin_dn, "-y", secret.name],
                input=ldif,
                env=self.env,
                text=True,
                capture_output=True,
                check=True,
            )

    def set_member(self, group, uid, member):
        """Add ``uid`` to the LDAP group or remove it (ldapmodify as the directory admin)."""
        action = "add" if member else "delete"
        self.modify(
            f"dn: cn={group},ou=groups,{BASE}\nchangetype: modify\n{action}: member\n"
            f"member: uid={uid},ou=people,{BASE}\n"
        )


class Keycloak:
    """Keycloak on https://127.0.0.1:<port>, its own copy of the pre-built home (the library
    files hard-linked, data/ copied), the realm imported at start-up."""

    def __init__(self, cached_home, work, port, tls, ldap):
        self.cached_home = cached_home
        self.home = work / "keycloak"
        self.port = port
        self.ca, self.cert, self.key = tls
        self.ldap = ldap
        self.url = f"https://127.0.0.1:{port}"
        self.issuer = f"{self.url}/realms/{REALM}"
        self.context = ssl.create_default_context(cafile=str(self.ca))
        self.proc = None
        self._started = None
        self.start_seconds = None
        self.rss_kib = None
        self.cpu_seconds = None
        self._log = None

    def launch(self):
        """Start the process; ``ready()`` waits for it. The caller may do other work meanwhile
        (the role's rendering, the apiserver's start): Keycloak is the slow one."""
        try:
            shutil.copytree(self.cached_home, self.home, copy_function=os.link, ignore=shutil.ignore_patterns("data"))
        except OSError:  # another filesystem: a plain copy
            shutil.rmtree(self.home, ignore_errors=True)
            shutil.copytree(self.cached_home, self.home, ignore=shutil.ignore_patterns("data"))
        shutil.copytree(self.cached_home / "data", self.home / "data")  # the database is written to
        (self.home / "data/import").mkdir()
        realm = (HERE / "realm-kubeguard.json").read_text()
        realm = realm.replace("@LDAP_URL@", self.ldap.url).replace("@LDAP_BIND_PASSWORD@", self.ldap.admin_password)
        imported = self.home / "data/import/kubeguard-realm.json"
        imported.write_text(realm)
        imported.chmod(0o600)
        self._log = open(self.home.parent / "keycloak.log", "w")  # noqa: SIM115
        env = dict(os.environ, JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m")
        self._started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                str(self.home / "bin/kc.sh"),
                "start",
                "--optimized",
                "--cache=local",
                "--http-enabled=false",
                "--http-host=127.0.0.1",
                f"--https-port={self.port}",
                f"--https-certificate-file={self.cert}",
                f"--https-certificate-key-file={self.key}",
                f"--hostname={self.url}",
                "--import-realm",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # kc.sh runs java as its child: stop() signals the whole group
        )

    def ready(self):
        if self.start_seconds is None:
            wait_for(self._discovery, 480, "Keycloak's discovery document")
            self.start_seconds = time.monotonic() - self._started
            group = self._group()
            self.rss_kib = sum(rss_kib(pid) for pid in group)
            # CPU time says what start-up costs whatever else the machine is doing
            self.cpu_seconds = sum(cpu_seconds(pid) for pid in group)
        return self

    def _discovery(self):
        if self.proc.poll() is not None:
            raise AssertionError((self.home.parent / "keycloak.log").read_text()[-3000:])
        try:
            return fetch_json(f"{self.issuer}/.well-known/openid-configuration", self.context)["issuer"] == self.issuer
        except OSError:  # refused, reset, TLS not up yet, HTTP errors (URLError)
            return False

    def _group(self):
        """kc.sh and the JVM it runs: the processes of Keycloak's session."""
        return [int(p.name) for p in pathlib.Path("/proc").iterdir() if p.name.isdigit() and _sid(p) == self.proc.pid]

    def stop(self):
        if self.proc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
                wait_for(lambda: not self._group(), 30, "Keycloak's JVM to exit")
            except (subprocess.TimeoutExpired, AssertionError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log:
            self._log.close()

    def token(self, username, password, client="kubectl"):
        """The password grant (direct access grants) of a public client: the token response,
        or raises urllib.error.HTTPError (401 for a bad password)."""
        self.ready()
        grant = {"grant_type": "password", "client_id": client, "scope": "openid"}
        form = urllib.parse.urlencode({**grant, "username": username, "password": password}).encode()
        return fetch_json(f"{self.issuer}/protocol/openid-connect/token", self.context, form)

    def id_token(self, username, client="kubectl"):
        return self.token(username, USERS[username], client)["id_token"]


class TokenWebhook:
    """tests/integration/idp/ldap_token_webhook.py over TLS on https://127.0.0.1:<port>."""

    def __init__(self, work, port, tls, ldap):
        self.work = work
        self.port = port
        self.ca, self.cert, self.key = tls
        self.ldap = ldap
        self.url = f"https://127.0.0.1:{port}/authenticate"
        self.proc = None
        self._log = None

    def start(self):
        self._log = open(self.work / "token-webhook.log", "w")  # noqa: SIM115
        argv = [sys.executable, str(HERE / "ldap_token_webhook.py"), str(self.port), str(self.cert), str(self.key)]
        self.proc = subprocess.Popen(
            [*argv, self.ldap.url, self.ldap.tool("ldapsearch")],
            env=self.ldap.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        context = ssl.create_default_context(cafile=str(self.ca))

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError((self.work / "token-webhook.log").read_text()[-2000:])
            body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "spec": {"token": "nobody:x"}}).encode()
            try:
                return fetch_json(self.url, context, body)["status"]["authenticated"] is False
            except OSError:  # refused, reset, TLS not up yet, HTTP errors (URLError)
                return False

        wait_for(answers, 30, "the LDAP token webhook")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        if self._log:
            self._log.close()


class IdentityProviders:
    def __init__(self, slapd, keycloak, webhook, ca):
        self.slapd = slapd
        self.keycloak = keycloak
        self.webhook = webhook
        self.ca = ca  # signs Keycloak's and the webhook's serving certificates


@contextlib.contextmanager
def identity_providers(work):
    work = pathlib.Path(work)
    cache = fetch()
    tls = issue_tls(work)
    ldap_port = free_port()
    kc_port = free_port({ldap_port})
    webhook_port = free_port({ldap_port, kc_port})
    (work / "slapd").mkdir()
    slapd = Slapd(cache["slapd"], work / "slapd", ldap_port)
    keycloak = Keycloak(cache["keycloak"], work, kc_port, tls, slapd)
    webhook = TokenWebhook(work, webhook_port, tls, slapd)
    try:
        slapd.start()
        keycloak.launch()
        webhook.start()
        yield IdentityProviders(slapd, keycloak, webhook, tls[0])
    finally:
        for daemon in (keycloak, webhook, slapd):
            daemon.stop()


_SHARED = {}


def shared_idp():
    """One set of identity providers per process (test session), stopped at exit."""
    if "idp" not in _SHARED:
        stack = contextlib.ExitStack()
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="kg-idp9-"))
        _SHARED["idp"] = stack.enter_context(identity_providers(work))
        atexit.register(stack.close)
    return _SHARED["idp"]
