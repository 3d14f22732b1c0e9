"""Client ID Metadata Documents, fetched from a real local https server (a self-signed
certificate trusted through SSL_CERT_FILE, as an operator's own CA would be)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask

from orderdesk_mcp.app import get_services
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.db.models import OAuthClient
from orderdesk_mcp.mcp.blueprint import state as mcp_state
from orderdesk_mcp.oauth import cimd
from orderdesk_mcp.oauth.authorization import AuthorizationError, validate_authorization_request
from orderdesk_mcp.oauth.cimd_gate import MAX_CONCURRENT_FETCHES, gate
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file
from tests.conftest import make_mcp_app
from tests.oauth_helpers import authorize_query, oauth_settings, pkce_pair

REDIRECT = "http://127.0.0.1:5555/cb"


class DocumentServer:
    """An https server answering each path with a configured (status, headers, body)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes, float]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body, delay = routes.get(self.path, (404, {}, b"", 0.0))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for start in range(0, len(body), 512):
                    if delay:
                        time.sleep(delay)
                    self.wfile.write(body[start : start + 512])

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def document(self, path: str, body: Any = None, **headers: str) -> str:
        url = self.url(path)
        data = (
            body
            if body is not None
            else {
                "client_id": url,
                "client_name": "Doc Client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
            }
        )
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.routes[path] = (
            200,
            {"Content-Type": "application/json", **headers},
            raw,
            0.0,
        )
        return url

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def doc_server(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[DocumentServer]:
    # The fetcher trusts the system store; SSL_CERT_FILE points it at our test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    server = DocumentServer(*certificate)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_remembered_failures() -> Iterator[None]:
    gate.forget()
    yield
    gate.forget()


def _app(data_dir: Path, allow_private: bool) -> Flask:
    write_key_file(data_dir / "master.key", generate_master_key())
    settings = oauth_settings(
        data_dir, ORDERDESK_MCP_OAUTH_CIMD_ALLOW_PRIVATE="true" if allow_private else "false"
    )
    database = open_database(settings)
    apply_migrations(database)
    return make_mcp_app(settings, database, Vault.from_settings(settings))


@pytest.fixture
def private_ok_app(data_dir: Path) -> Iterator[Flask]:
    app = _app(data_dir, allow_private=True)
    yield app
    get_services(app).machinery.close()  # type: ignore[union-attr]


@pytest.fixture
def strict_app(data_dir: Path) -> Iterator[Flask]:
    app = _app(data_dir, allow_private=False)
    yield app
    get_services(app).machinery.close()  # type: ignore[union-attr]


def _authorize(app: Flask, client_id: str, redirect_uri: str = REDIRECT) -> Any:
    _, challenge = pkce_pair()
    query = authorize_query(client_id, redirect_uri, challenge)
    with app.test_request_context("/oauth/authorize?" + urlencode(query)):
        return validate_authorization_request()


def _refused(app: Flask, client_id: str) -> AuthorizationError:
    with pytest.raises(AuthorizationError) as caught:
        _authorize(app, client_id)
    assert caught.value.return_to is None
    return caught.value


def test_a_document_client_is_fetched_and_cached(
    private_ok_app: Flask, doc_server: DocumentServer
) -> None:
    url = doc_server.document("/client.json", **{"Cache-Control": "max-age=600"})
    request = _authorize(private_ok_app, url)
    assert request.client_name == "Doc Client"
    assert request.client_id == url
    row = OAuthClient.get(OAuthClient.client_id == url)
    assert row.kind == "metadata_document"
    assert row.expires is not None
    del doc_server.routes["/client.json"]  # served from the cache now
    assert _authorize(private_ok_app, url).client_id == url


def test_private_addresses_are_refused_by_default(
    strict_app: Flask, doc_server: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cimd, "ALLOWED_PORTS", (443, doc_server.port))
    url = doc_server.document("/client.json")
    error = _refused(strict_app, url)
    assert "private" in error.message
    assert OAuthClient.select().count() == 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "224.0.0.1",
        "fc00::1",
        # IPv6 forms that lead to a non-public IPv4 address: 6to4, Teredo, NAT64.
        "2002:7f00:1::",
        "2002:a00:1::1",
        "2002:a9fe:a9fe::",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "2001::1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not cimd.is_public_address(address)


def test_public_addresses() -> None:
    assert cimd.is_public_address("93.184.216.34")
    assert cimd.is_public_address("2606:4700::1111")
    assert cimd.is_public_address("2002:808:808::1")  # 6to4 of 8.8.8.8
    assert cimd.is_public_address("64:ff9b::808:808")  # NAT64 of 8.8.8.8


@pytest.mark.parametrize(
    ("path", "setup", "reason"),
    [
        (
            "/wrong-id.json",
            {"client_id": "https://someone.else/c.json", "redirect_uris": [REDIRECT]},
            "client_id",
        ),
        ("/no-redirects.json", None, "redirect_uris"),
        ("/big.json", b"{" + b" " * (cimd.MAX_DOCUMENT_BYTES + 10) + b"}", "larger"),
        ("/list.json", b"[]", "JSON object"),
        ("/secret.json", None, "none"),
    ],
)
def test_bad_documents_are_refused(
    private_ok_app: Flask, doc_server: DocumentServer, path: str, setup: Any, reason: str
) -> None:
    url = doc_server.url(path)
    if path == "/no-redirects.json":
        setup = {"client_id": url, "redirect_uris": []}
    if path == "/secret.json":
        setup = {
            "client_id": url,
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
        }
    doc_server.document(path, setup)
    assert reason in _refused(private_ok_app, url).message


def test_redirects_and_wrong_types_are_not_followed(
    private_ok_app: Flask, doc_server: DocumentServer
) -> None:
    target = doc_server.document("/real.json")
    doc_server.routes["/moved.json"] = (302, {"Location": target}, b"", 0.0)
    assert "302" in _refused(private_ok_app, doc_server.url("/moved.json")).message
    doc_server.routes["/html.json"] = (200, {"Content-Type": "text/html"}, b"{}", 0.0)
    assert "application/json" in _refused(private_ok_app, doc_server.url("/html.json")).message


def test_a_slow_document_hits_the_deadline(
    private_ok_app: Flask, doc_server: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cimd, "TOTAL_DEADLINE_S", 0.5)
    url = doc_server.url("/slow.json")
    body = json.dumps({"client_id": url, "redirect_uris": [REDIRECT], "pad": "x" * 3000})
    doc_server.routes["/slow.json"] = (
        200,
        {"Content-Type": "application/json"},
        body.encode(),
        0.2,
    )
    assert "timed out" in _refused(private_ok_app, url).message


def test_an_untrusted_certificate_is_refused(
    private_ok_app: Flask, doc_server: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = doc_server.document("/client.json")
    monkeypatch.delenv("SSL_CERT_FILE")
    assert "could not be fetched" in _refused(private_ok_app, url).message


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/client.json",
        "https://localhost",
        "https://u:p@localhost/c.json",
        "https://localhost/c.json#frag",
        "https://" + "a" * 600 + ".example/c.json",
    ],
)
def test_bad_client_id_urls(url: str) -> None:
    with pytest.raises(cimd.MetadataDocumentError):
        cimd.check_url(url)


def test_unresolvable_host() -> None:
    with pytest.raises(cimd.MetadataDocumentError):
        cimd.resolve_checked("does-not-exist.invalid", 443, allow_private=False)


def test_connect_goes_to_the_checked_address(doc_server: DocumentServer) -> None:
    # The fetch connects to the address resolve_checked returned, whatever the name says.
    url = doc_server.document("/client.json")
    fetched = cimd.fetch_document(url, allow_private=True)
    assert fetched.document["client_id"] == url
    assert fetched.cache_seconds == cimd.DEFAULT_CACHE_SECONDS
    with socket.create_connection(("127.0.0.1", doc_server.port), timeout=2):
        pass


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, cimd.DEFAULT_CACHE_SECONDS),
        ("max-age=10", cimd.MIN_CACHE_SECONDS),
        ("public, max-age=7200", 7200),
        ("max-age=99999999", cimd.MAX_CACHE_SECONDS),
        ("no-store", cimd.MIN_CACHE_SECONDS),
    ],
)
def test_cache_lifetime_bounds(header: str | None, seconds: int) -> None:
    assert cimd.cache_seconds(header) == seconds


# --- a fetch cannot hold a thread ---------------------------------------------------------


class TrickleServer:
    """A TLS server that answers "200 OK", then one header line every `period` seconds, for
    up to `lasting` seconds: each read gets a byte well within any per-read timeout."""

    def __init__(self, cert: Path, key: Path, *, period: float = 0.3, lasting: float = 8.0):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.period, self.lasting = period, lasting
        self.connections = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(raw,), daemon=True).start()

    def _trickle(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\n")
                ends = time.monotonic() + self.lasting
                while time.monotonic() < ends and not self.stopped.is_set():
                    time.sleep(self.period)
                    tls.sendall(b"X-A: b\r\n")
        except OSError:
            return

    def url(self, path: str = "/client.json") -> str:
        return f"https://localhost:{self.port}{path}"

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def trickle(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TrickleServer]:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    server = TrickleServer(*certificate)
    yield server
    server.stop()


def test_trickled_headers_end_at_the_deadline(
    trickle: TrickleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cimd, "TOTAL_DEADLINE_S", 1.5)
    started = time.monotonic()
    with pytest.raises(cimd.MetadataDocumentError) as caught:
        cimd.fetch_document(trickle.url(), allow_private=True)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed  # the old per-read timeout let it run the server's 8 s
    assert "timed out" in str(caught.value)
    assert caught.value.host_wide


def test_a_stuck_dns_lookup_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # getaddrinfo has no timeout of its own; this stands in for a resolver that never answers.
    monkeypatch.setattr(cimd, "TOTAL_DEADLINE_S", 1.0)
    monkeypatch.setattr(cimd, "_getaddrinfo", lambda host, port: time.sleep(5) or [])
    started = time.monotonic()
    with pytest.raises(cimd.MetadataDocumentError) as caught:
        cimd.fetch_document("https://stuck.example/client.json", allow_private=False)
    assert "lookup timed out" in str(caught.value)
    assert time.monotonic() - started < 2.0


def test_a_failure_is_remembered_and_not_fetched_again(
    private_ok_app: Flask, trickle: TrickleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cimd, "TOTAL_DEADLINE_S", 0.8)
    assert "timed out" in _refused(private_ok_app, trickle.url()).message
    assert trickle.connections == 1
    started = time.monotonic()
    again = _refused(private_ok_app, trickle.url())
    assert "not fetched again" in again.message
    # The host timed out, so its other documents are not tried either.
    assert "not fetched again" in _refused(private_ok_app, trickle.url("/other.json")).message
    assert time.monotonic() - started < 0.5
    assert trickle.connections == 1


def test_a_bad_document_is_remembered_per_url(
    private_ok_app: Flask, doc_server: DocumentServer
) -> None:
    url = doc_server.url("/wrong.json")
    doc_server.document("/wrong.json", {"client_id": "https://x.example/c", "redirect_uris": []})
    assert "client_id" in _refused(private_ok_app, url).message
    doc_server.document("/wrong.json")  # fixed, but the failure is remembered for a while
    assert "not fetched again" in _refused(private_ok_app, url).message
    # Only that URL: the host answered, so its other documents are fetched.
    assert _authorize(private_ok_app, doc_server.document("/good.json")).client_name
    gate.forget()
    assert _authorize(private_ok_app, url).client_id == url


def test_fetches_beyond_the_cap_are_told_to_retry(
    private_ok_app: Flask, doc_server: DocumentServer
) -> None:
    url = doc_server.document("/client.json")
    with contextlib.ExitStack() as held:
        for _ in range(MAX_CONCURRENT_FETCHES):
            held.enter_context(gate.slot())
        assert "try again" in _refused(private_ok_app, url).message
        reply = private_ok_app.test_client().post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": "x", "client_id": url},
        )
        assert reply.status_code == 503
        assert reply.get_json()["error"] == "temporarily_unavailable"
    assert OAuthClient.select().count() == 0
    assert _authorize(private_ok_app, url).client_id == url  # free again, and not remembered


def test_fetches_take_the_shared_upstream_slots(
    private_ok_app: Flask, doc_server: DocumentServer
) -> None:
    # With Order Desk requests holding every process-wide slot, the threads kept for health
    # checks are not given to a metadata fetch either.
    admission = mcp_state(private_ok_app).admission
    url = doc_server.document("/client.json")
    with contextlib.ExitStack() as held:
        for _ in range(admission.limits.total):
            held.enter_context(admission.outbound())
        assert "try again" in _refused(private_ok_app, url).message
    assert admission.running() == 0
    assert _authorize(private_ok_app, url).client_id == url


def test_only_port_443_unless_private_addresses_are_allowed() -> None:
    assert cimd.check_url("https://app.example/c.json")[1] == 443
    assert cimd.check_url("https://app.example:443/c.json")[1] == 443
    with pytest.raises(cimd.MetadataDocumentError, match="443"):
        cimd.check_url("https://app.example:8443/c.json")
    assert cimd.check_url("https://app.example:8443/c.json", any_port=True)[1] == 8443
