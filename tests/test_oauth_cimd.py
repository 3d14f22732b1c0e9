"""Client ID Metadata Documents, fetched from a real local https server (a self-signed
certificate trusted through SSL_CERT_FILE, as an operator's own CA would be)."""

from __future__ import annotations

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
from orderdesk_mcp.oauth import cimd
from orderdesk_mcp.oauth.authorization import AuthorizationError, validate_authorization_request
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
    strict_app: Flask, doc_server: DocumentServer
) -> None:
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
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not cimd.is_public_address(address)


def test_public_addresses() -> None:
    assert cimd.is_public_address("93.184.216.34")
    assert cimd.is_public_address("2606:4700::1111")


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
