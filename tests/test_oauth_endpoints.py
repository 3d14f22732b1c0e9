"""Discovery documents, CORS, the switch, registration rules and the 401 challenges."""

from __future__ import annotations

from collections.abc import Iterator

import peewee
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orderdesk_mcp.app import get_services
from orderdesk_mcp.config import Settings
from orderdesk_mcp.oauth.redirects import RedirectUriError, check_registrable, matches
from orderdesk_mcp.vault import Vault
from tests.conftest import make_mcp_app
from tests.oauth_helpers import (
    PUBLIC_URL,
    RESOURCE,
    register,
)
from tests.test_mcp_http import McpHttp


@pytest.fixture
def app(oauth_env: tuple[Settings, peewee.Database, Vault]) -> Iterator[Flask]:
    application = make_mcp_app(*oauth_env)
    yield application
    machinery = get_services(application).machinery
    if machinery is not None:
        machinery.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_authorization_server_metadata(client: FlaskClient) -> None:
    reply = client.get("/.well-known/oauth-authorization-server")
    assert reply.status_code == 200
    doc = reply.get_json()
    assert doc["issuer"] == PUBLIC_URL
    assert doc["authorization_endpoint"] == PUBLIC_URL + "/oauth/authorize"
    assert doc["token_endpoint"] == PUBLIC_URL + "/oauth/token"
    assert doc["registration_endpoint"] == PUBLIC_URL + "/oauth/register"
    assert doc["revocation_endpoint"] == PUBLIC_URL + "/oauth/revoke"
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "none" in doc["token_endpoint_auth_methods_supported"]
    assert doc["revocation_endpoint_auth_methods_supported"]
    assert doc["scopes_supported"] == ["read", "write"]
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert not any(key.startswith(("userinfo", "id_token", "jwks")) for key in doc)


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
def test_protected_resource_metadata(client: FlaskClient, path: str) -> None:
    doc = client.get(path).get_json()
    assert doc == {
        "resource": RESOURCE,
        "authorization_servers": [PUBLIC_URL],
        "scopes_supported": ["read", "write"],
        "bearer_methods_supported": ["header"],
        "resource_name": doc["resource_name"],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/oauth/token",
        "/oauth/register",
        "/oauth/revoke",
    ],
)
def test_cors_preflight(client: FlaskClient, path: str) -> None:
    reply = client.options(
        path,
        headers={
            "Origin": "https://inspector.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert reply.status_code == 204
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in reply.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in reply.headers


def test_everything_is_404_when_oauth_is_off(settings: Settings, db: peewee.Database) -> None:
    app = make_mcp_app(settings, db, Vault.from_settings(settings))
    client = app.test_client()
    for path in (
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
    ):
        assert client.get(path).status_code == 404
    for path in ("/oauth/token", "/oauth/register", "/oauth/revoke"):
        reply = client.post(path, data={})
        assert reply.status_code == 404
        assert reply.is_json
    challenge = McpHttp(client, None).request("ping").headers["WWW-Authenticate"]
    assert "resource_metadata" not in challenge


def test_401_on_mcp_points_at_the_resource_metadata(client: FlaskClient) -> None:
    missing = McpHttp(client, None).request("ping")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == (
        f'Bearer resource_metadata="{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp", '
        'scope="read write"'
    )
    wrong = McpHttp(client, "odat_not-a-real-token").request("ping")
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].endswith('error="invalid_token"')
    assert "resource_metadata=" in wrong.headers["WWW-Authenticate"]


# --- dynamic client registration --------------------------------------------------------


def test_registration_of_a_public_client(client: FlaskClient) -> None:
    reply = client.post(
        "/oauth/register",
        json={
            "client_name": "Claude",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "token_endpoint_auth_method": "none",
            "application_type": "web",
        },
    )
    assert reply.status_code == 201
    body = reply.get_json()
    assert body["client_id"].startswith("odc_")
    assert "client_secret" not in body
    assert body["redirect_uris"] == ["https://claude.ai/api/mcp/auth_callback"]
    assert reply.headers["Cache-Control"] == "no-store"


def test_native_app_private_use_scheme(client: FlaskClient) -> None:
    reg = register(client, redirect_uris=["com.example.app:/oauth/cb"], application_type="native")
    assert reg.client_id


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example/cb#x"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://user:pw@app.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://app.example/cb"}, "invalid_redirect_uri"),
        (
            {"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]},
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]},
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"},
            "invalid_client_metadata",
        ),
        (
            {
                "redirect_uris": ["https://a.example/cb"],
                "token_endpoint_auth_method": "private_key_jwt",
            },
            "invalid_client_metadata",
        ),
        ({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}, "invalid_client_metadata"),
    ],
)
def test_bad_registrations(client: FlaskClient, metadata: dict[str, object], error: str) -> None:
    reply = client.post("/oauth/register", json=metadata)
    assert reply.status_code == 400
    assert reply.get_json()["error"] == error
    assert reply.get_json()["error_description"]


def test_oversized_or_malformed_registration_bodies(client: FlaskClient) -> None:
    huge = {"redirect_uris": ["https://a.example/cb"], "client_name": "x" * 20000}
    reply = client.post("/oauth/register", json=huge)
    assert reply.status_code == 413
    assert reply.get_json()["error"] == "invalid_client_metadata"
    reply = client.post("/oauth/register", data="{not json", content_type="application/json")
    assert reply.status_code == 400
    assert reply.get_json()["error"] == "invalid_client_metadata"
    reply = client.post("/oauth/register", data="[]", content_type="application/json")
    assert reply.status_code == 400
    assert reply.get_json()["error"] == "invalid_client_metadata"


@given(st.text(max_size=300))
@hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_redirect_rules_never_crash_and_match_what_they_accept(uri: str) -> None:
    try:
        accepted = check_registrable(uri)
    except RedirectUriError:
        return
    assert matches(accepted, [accepted])
    assert not accepted.startswith(("javascript:", "data:"))


@given(st.integers(min_value=1, max_value=65535))
def test_any_loopback_port_matches(port: int) -> None:
    assert matches(f"http://127.0.0.1:{port}/cb", ["http://127.0.0.1/cb"])
    assert matches(f"http://[::1]:{port}/cb", ["http://[::1]:1234/cb"])
    assert not matches(f"http://localhost:{port}/cb", ["http://localhost:1/cb"]) or port == 1
    assert not matches(f"https://127.0.0.1:{port}/cb", ["http://127.0.0.1/cb"])
