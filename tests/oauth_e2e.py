"""What the end-to-end OAuth tests share: the real server with OAuth on, a browser-like HTTP
client for the sign-in and consent forms, a loopback redirect listener, PKCE and token calls,
a minimal MCP client over HTTP, and the search for secrets left in files.

Everything here talks to the real server over real HTTP on loopback; nothing is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import peewee
import requests
from flask import Flask

from orderdesk_mcp.app import get_services
from orderdesk_mcp.background_server import BackgroundServer
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.invites import set_password
from orderdesk_mcp.logging import configure_logging
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file
from tests.conftest import McpTenant, make_mcp_app, make_mcp_tenant

HTTP_TIMEOUT_S = 15  # every request a test makes; a hung server fails the test, not CI
TENANT = "acme"
PASSWORD = "correct horse battery staple 42"
MCP_ACCEPT = "application/json, text/event-stream"


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    # The public URL names the port before the server listens, so pick a free one first.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OAuthSite:
    """The real app with OAuth on, served by waitress at `base` (its ORDERDESK_MCP_PUBLIC_URL)."""

    base: str
    app: Flask
    settings: Settings
    database: peewee.Database
    tenant: McpTenant
    password: str
    log: io.StringIO  # every log line the server wrote while the site ran

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir


@contextmanager
def oauth_site(
    data_dir: Path, sandbox: RunningSandbox, env: Mapping[str, str] | None = None
) -> Iterator[OAuthSite]:
    """A tenant "acme" with a password and two sandbox stores, and the server with OAuth on."""
    write_key_file(data_dir / "master.key", generate_master_key())
    port = free_port()
    settings = load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_LOG_FORMAT": "json",
            "ORDERDESK_MCP_LOG_LEVEL": "debug",
            "ORDERDESK_MCP_PUBLIC_URL": f"http://127.0.0.1:{port}",
            **(env or {}),
        }
    )
    log = io.StringIO()
    configure_logging(settings, stream=log)
    database = open_database(settings)
    apply_migrations(database)
    vault = Vault.from_settings(settings)
    tenant = make_mcp_tenant(TENANT, vault, sandbox)
    set_password(tenant.tenant, PASSWORD)
    app = make_mcp_app(settings, database, vault)
    served = BackgroundServer(app, name="oauth-e2e", port=port, threads=4)
    try:
        yield OAuthSite(
            base=f"http://127.0.0.1:{port}",
            app=app,
            settings=settings,
            database=database,
            tenant=tenant,
            password=PASSWORD,
            log=log,
        )
    finally:
        served.stop()
        machinery = get_services(app).machinery
        if machinery is not None:
            machinery.close()
        # The captured log goes into the data dir, so the secrets search covers it too.
        (data_dir / "captured-server.log").write_text(log.getvalue())
        database.close()
        configure_logging(load_settings({"ORDERDESK_MCP_LOG_FORMAT": "text"}))


def run_cli(
    site: OAuthSite, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The operator's `orderdesk-mcp` command on the site's data dir, as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "orderdesk_mcp", "--data-dir", str(site.data_dir), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ORDERDESK_")},
            "ORDERDESK_MCP_LOG_FORMAT": "text",
        },
    )


# --- HTML forms, read as a browser would -------------------------------------------------------


@dataclass
class Form:
    """One <form>: where it posts and its controls (hidden and text values, choices, buttons)."""

    action: str
    method: str
    values: dict[str, str] = field(default_factory=dict)  # hidden, text, password inputs
    choices: dict[str, list[str]] = field(default_factory=dict)  # checkbox and radio values
    checked: dict[str, list[str]] = field(default_factory=dict)  # what is ticked on arrival
    buttons: list[tuple[str, str]] = field(default_factory=list)  # named submit buttons

    def names(self) -> set[str]:
        return set(self.values) | set(self.choices) | {name for name, _ in self.buttons}


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.text: list[str] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(action=attr.get("action", ""), method=attr.get("method", "get"))
            self.forms.append(self._current)
            return
        form = self._current
        if form is None or "name" not in attr:
            return
        name, value = attr["name"], attr.get("value", "")
        kind = attr.get("type", "submit" if tag == "button" else "text").lower()
        if tag == "button" or (tag == "input" and kind == "submit"):
            form.buttons.append((name, value))
        elif tag == "input" and kind in ("checkbox", "radio"):
            form.choices.setdefault(name, []).append(value or "on")
            if "checked" in attr:
                form.checked.setdefault(name, []).append(value or "on")
        elif tag in ("input", "textarea", "select"):
            form.values[name] = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def page_text(html: str) -> str:
    """A page's visible text, whitespace folded: what a person reads."""
    parser = _FormParser()
    parser.feed(html)
    return " ".join(" ".join(parser.text).split())


def form_with(html: str, name: str) -> Form | None:
    return next((form for form in parse_forms(html) if name in form.names()), None)


# --- a browser's way through /oauth/authorize ---------------------------------------------------


@dataclass(frozen=True)
class Consent:
    """What the tenant chooses on the consent page (None: leave the page's own choice)."""

    access: str = "read-write"
    stores: tuple[str, ...] | None = None  # None: every store the page offers
    toolsets: tuple[str, ...] | None = None  # None: every toolset the page offers
    decision: str = "allow"


ALL_RIGHTS = Consent()


@dataclass
class AuthorizeResult:
    """Where the server sent the browser at the end: the client's redirect URI with its query."""

    location: str
    query: dict[str, str]
    consent_text: str  # the consent page as read, for assertions on what it showed

    @property
    def code(self) -> str:
        return self.query["code"]


class Browser:
    """A requests session that keeps cookies and submits forms as a browser would.

    It follows redirects itself and stops at the first one that leaves the server: that is
    the redirect to the client, which a real browser would load and the test only reads.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.pages: list[str] = []

    def close(self) -> None:
        self.session.close()

    def _on_server(self, url: str) -> bool:
        mine, theirs = urlparse(self.base), urlparse(url)
        return (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc)

    def _follow(self, response: requests.Response) -> tuple[requests.Response, str | None]:
        """Follow redirects on the server; (last response, location off the server or None)."""
        for _ in range(10):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response, None
            location = urljoin(response.url, response.headers["Location"])
            if not self._on_server(location):
                return response, location
            response = self.session.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
        raise AssertionError(f"more than 10 redirects from {response.url}")

    def get(self, url: str) -> tuple[requests.Response, str | None]:
        return self._follow(self.session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT_S))

    def submit(
        self, page: requests.Response, form: Form, fields: list[tuple[str, str]]
    ) -> tuple[requests.Response, str | None]:
        """POST `form` (its hidden values, then `fields`) to its action, as a browser does."""
        assert form.method.lower() == "post", f"the form on {page.url} is not a POST form"
        action = urljoin(page.url, form.action) if form.action else page.url
        hidden = [(name, value) for name, value in form.values.items() if name not in dict(fields)]
        response = self.session.post(
            action,
            data=hidden + fields,
            headers={"Origin": self.base, "Referer": page.url},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT_S,
        )
        return self._follow(response)

    def authorize(
        self,
        url: str,
        *,
        password: str | None = None,
        username: str = TENANT,
        api_key: str | None = None,
        consent: Consent = ALL_RIGHTS,
    ) -> AuthorizeResult:
        """Open the authorize URL, sign in (if asked), consent, and return the redirect."""
        page, away = self.get(url)
        consent_text = ""
        for _ in range(4):  # sign-in, consent, and a page or two of slack
            if away is not None:
                query = {k: v[0] for k, v in parse_qs(urlparse(away).query).items()}
                return AuthorizeResult(location=away, query=query, consent_text=consent_text)
            html = page.text
            self.pages.append(html)
            assert page.status_code == 200, f"{page.status_code} from {page.url}: {page_text(html)}"
            sign_in = form_with(html, "password") or form_with(html, "api_key")
            consent_form = form_with(html, "decision")
            if consent_form is not None:
                consent_text = page_text(html)
                page, away = self.submit(page, consent_form, consent_fields(consent_form, consent))
            elif sign_in is not None:
                if api_key is not None:
                    fields = [("api_key", api_key)]
                else:
                    assert password is not None, "the server asked to sign in"
                    fields = [("username", username), ("password", password)]
                page, away = self.submit(page, sign_in, fields)
            else:
                raise AssertionError(f"no sign-in or consent form at {page.url}: {page_text(html)}")
        raise AssertionError(f"the authorization never redirected to the client: {page_text(html)}")


def consent_fields(form: Form, consent: Consent) -> list[tuple[str, str]]:
    """The consent form's fields for `consent`; the choices must be ones the page offers."""
    fields = [("access", consent.access)]
    for name, chosen in (("store", consent.stores), ("toolset", consent.toolsets)):
        offered = form.choices.get(name, [])
        picked = list(offered) if chosen is None else list(chosen)
        assert set(picked) <= set(offered), f"{name}: {picked} not all in the page's {offered}"
        fields += [(name, value) for value in picked]
    assert (("decision", consent.decision)) in form.buttons, form.buttons
    return [*fields, ("decision", consent.decision)]


# --- the client's side: a redirect listener, registration, PKCE, tokens -----------------------


class RedirectListener:
    """A loopback HTTP listener standing in for a native client's redirect URI (RFC 8252).

    It records the query string of every request and answers with a short page."""

    def __init__(self) -> None:
        received: queue.Queue[dict[str, str]] = queue.Queue()
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                received.put({name: values[0] for name, values in query.items()})
                body = b"<!doctype html><title>Signed in</title><p>You may close this window."
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # its access log would hold the code

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, timeout: float = HTTP_TIMEOUT_S) -> dict[str, str]:
        return self.received.get(timeout=timeout)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("="))


def register_client(
    base: str, redirect_uri: str, *, name: str = "E2E Test Client", confidential: bool = False
) -> dict[str, Any]:
    """Dynamic client registration (RFC 7591); returns the server's answer."""
    reply = requests.post(
        f"{base}/oauth/register",
        json={
            "client_name": name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post" if confidential else "none",
            "application_type": "native",
        },
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 201, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def authorize_url(
    base: str,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce,
    *,
    state: str,
    scope: str = "read write",
) -> str:
    return str(
        requests.Request(
            "GET",
            f"{base}/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "code_challenge": pkce.challenge,
                "code_challenge_method": "S256",
                "state": state,
                "scope": scope,
                "resource": f"{base}/mcp",
            },
        )
        .prepare()
        .url
    )


def token_request(base: str, data: dict[str, str]) -> requests.Response:
    return requests.post(f"{base}/oauth/token", data=data, timeout=HTTP_TIMEOUT_S)


def exchange_code(
    base: str, client: Mapping[str, Any], code: str, pkce: Pkce, redirect_uri: str
) -> dict[str, Any]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client["client_id"],
        "code_verifier": pkce.verifier,
        "resource": f"{base}/mcp",
    }
    if client.get("client_secret"):
        data["client_secret"] = client["client_secret"]
    reply = token_request(base, data)
    assert reply.status_code == 200, reply.text
    tokens: dict[str, Any] = reply.json()
    assert tokens["token_type"].lower() == "bearer"
    return tokens


def revoke_token(base: str, client: Mapping[str, Any], token: str) -> requests.Response:
    data = {"token": token, "client_id": client["client_id"]}
    if client.get("client_secret"):
        data["client_secret"] = client["client_secret"]
    return requests.post(f"{base}/oauth/revoke", data=data, timeout=HTTP_TIMEOUT_S)


# --- a minimal MCP client over HTTP -----------------------------------------------------------


class McpOverHttp:
    """initialize, then tools/call over real HTTP with a bearer token (OAuth or key)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.session_id: str | None = None
        self._next_id = 0
        self.http = requests.Session()

    def post(self, message: dict[str, Any]) -> requests.Response:
        headers = {"Accept": MCP_ACCEPT, "Authorization": f"Bearer {self.token}"}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
            headers["MCP-Protocol-Version"] = "2025-11-25"
        return self.http.post(self.url, json=message, headers=headers, timeout=HTTP_TIMEOUT_S)

    def request(self, method: str, params: dict[str, Any]) -> requests.Response:
        self._next_id += 1
        return self.post(
            {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        )

    def initialize(self) -> requests.Response:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "oauth-e2e", "version": "1"},
            },
        )
        if reply.status_code == 200:
            self.session_id = reply.headers["Mcp-Session-Id"]
            self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> requests.Response:
        return self.request("tools/call", {"name": name, "arguments": arguments or {}})

    def close(self) -> None:
        self.http.close()


def tool_result(reply: requests.Response) -> dict[str, Any]:
    """The structured result of a successful tools/call."""
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "result" in body, body
    assert body["result"].get("isError") is not True, body["result"]
    structured: dict[str, Any] = body["result"]["structuredContent"]
    return structured


def refusal_text(reply: requests.Response) -> str:
    """The message of a refused tools/call: a JSON-RPC error or a tool error, either way."""
    assert reply.status_code == 200, reply.text
    body = reply.json()
    if "error" in body:
        return str(body["error"]["message"])
    assert body["result"].get("isError") is True, body["result"]
    return " ".join(str(part.get("text", "")) for part in body["result"]["content"])


def assert_token_refused(site: OAuthSite, token: str) -> None:
    """/mcp answers 401 with the OAuth challenge pointing at the resource metadata."""
    client = McpOverHttp(site.mcp_url, token)
    try:
        reply = client.initialize()
    finally:
        client.close()
    assert reply.status_code == 401, reply.text
    challenge = reply.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert f'resource_metadata="{site.base}/.well-known/oauth-protected-resource' in challenge


# --- secrets left in files ----------------------------------------------------------------------


def files_holding(directory: Path, secrets_by_name: Mapping[str, str]) -> list[str]:
    """ "<file>: <secret name>" for every file under `directory` that holds a secret in clear
    (the database and its WAL, the reply cache, logs: everything the server wrote)."""
    found = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        for name, secret in secrets_by_name.items():
            if secret and secret.encode() in raw:
                found.append(f"{path.relative_to(directory)}: {name}")
    return found


def checkpoint(database: peewee.Database) -> None:
    """Fold the WAL into the database file, so both are searched as they will stay."""
    database.execute_sql("PRAGMA wal_checkpoint(FULL)")


def secrets_of(tokens: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    named: dict[str, str] = {}
    for number, answer in enumerate(tokens):
        for kind in ("access_token", "refresh_token"):
            if answer.get(kind):
                named[f"{kind} #{number}"] = str(answer[kind])
    return named


# --- a client ID metadata document on loopback HTTPS --------------------------------------------


def self_signed_loopback_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 and its key, as PEM files; the cert is its own CA."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cimd-cert.pem", directory / "cimd-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class MetadataDocumentServer:
    """HTTPS on loopback serving one client ID metadata document at /client.json."""

    def __init__(self, directory: Path, document: dict[str, Any]) -> None:
        import json
        import ssl

        self.cert_file, key_file = self_signed_loopback_cert(directory)
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({**document, "client_id": outer.url}).encode()
                status = 200 if self.path == "/client.json" else 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/client.json"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
