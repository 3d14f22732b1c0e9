"""The OAuth code flow end to end on the real app and database: authorization request
checks, the code exchange with PKCE, refresh rotation, revocation, and the token on /mcp."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import peewee
import pytest
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orderdesk_mcp.app import get_services
from orderdesk_mcp.auth import parse_token, revoke_key
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import (
    ApiKey,
    AuditEvent,
    OAuthCode,
    OAuthGrant,
    OAuthToken,
    Tenant,
    utcnow,
)
from orderdesk_mcp.oauth.authorization import (
    AuthorizationError,
    approve,
    deny,
    validate_authorization_request,
)
from orderdesk_mcp.oauth.grants import revoke_grants_made_with
from orderdesk_mcp.oauth.metadata import normalise_resource
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.oauth.server import CodeRecord, get_server
from orderdesk_mcp.oauth.tokens import GRANT_LIFETIME
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault
from tests.conftest import McpTenant, make_mcp_app, make_mcp_tenant
from tests.oauth_helpers import (
    PUBLIC_URL,
    RESOURCE,
    approve_in_request,
    authorize_query,
    exchange,
    full_flow,
    pkce_pair,
    register,
)
from tests.test_mcp_http import McpHttp


@pytest.fixture
def app(oauth_env: tuple[Settings, peewee.Database, Vault]) -> Iterator[Flask]:
    settings, database, vault = oauth_env
    application = make_mcp_app(settings, database, vault)
    yield application
    machinery = get_services(application).machinery
    if machinery is not None:
        machinery.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tenant(
    oauth_env: tuple[Settings, peewee.Database, Vault], sandbox: RunningSandbox
) -> McpTenant:
    return make_mcp_tenant("acme", oauth_env[2], sandbox)


def _token_error(reply: object) -> str:
    body = reply.get_json()  # type: ignore[attr-defined]
    assert "error" in body, body
    return str(body["error"])


def _write_refused(mcp: McpHttp) -> bool:
    """Whether a write tool is refused for read-only access (never reaching Order Desk)."""
    mcp.initialize()
    reply = mcp.call("add_order_note", {"order_id": "1", "note": "x"})
    assert reply.status_code == 200
    body = reply.get_json()
    return "read-only" in str(body.get("error") or body.get("result"))


# --- the happy path ----------------------------------------------------------------------


def test_code_flow_issues_tokens_that_open_mcp(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    _reg, tokens = full_flow(app, client, tenant.tenant.id)
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "read write"
    assert tokens["expires_in"] == 3600
    assert tokens["access_token"].startswith("odat_")
    assert tokens["refresh_token"].startswith("odrt_")
    mcp = McpHttp(client, tokens["access_token"])
    mcp.initialize()
    result = mcp.result("tools/call", {"name": "list_stores", "arguments": {}})
    assert not result.get("isError"), result
    grant = OAuthGrant.get()
    assert grant.resource == RESOURCE
    actions = [row.action for row in AuditEvent.select()]
    assert "oauth.grant" in actions
    assert "oauth.client.register" in actions


def test_authorization_response_carries_state_and_iss(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge)
    params = approve_in_request(app, query, tenant_id=tenant.tenant.id)
    assert params["state"] == [query["state"]]
    assert params["iss"] == [PUBLIC_URL]
    assert len(params["code"][0]) >= 40


def test_loopback_redirect_may_use_any_port(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg = register(client)
    verifier, challenge = pkce_pair()
    other_port = "http://127.0.0.1:50999/callback"
    query = authorize_query(reg.client_id, other_port, challenge)
    params = approve_in_request(app, query, tenant_id=tenant.tenant.id)
    reply = exchange(client, params["code"][0], verifier, reg, redirect_uri=other_port)
    assert reply.status_code == 200, reply.get_json()


def test_deny_redirects_with_access_denied(app: Flask, client: FlaskClient) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge)
    with app.test_request_context("/oauth/authorize?" + urlencode(query)):
        response = deny(validate_authorization_request())
    params = parse_qs(urlsplit(response.headers["Location"]).query)
    assert params["error"] == ["access_denied"]
    assert params["state"] == [query["state"]]
    assert params["iss"] == [PUBLIC_URL]


def test_read_scope_asks_read_only(app: Flask, client: FlaskClient) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge, scope="read")
    with app.test_request_context("/oauth/authorize?" + urlencode(query)):
        request = validate_authorization_request()
    assert request.requested.read_only
    assert request.redirect_host == "127.0.0.1:33418"
    assert request.client_name == "Test Client"


# --- authorization request attacks -------------------------------------------------------


def _validate(app: Flask, query: dict[str, str], method: str = "GET") -> AuthorizationError:
    with (
        app.test_request_context("/oauth/authorize?" + urlencode(query), method=method),
        pytest.raises(AuthorizationError) as caught,
    ):
        validate_authorization_request()
    return caught.value


def test_unknown_client_never_redirects(app: Flask) -> None:
    _, challenge = pkce_pair()
    error = _validate(app, authorize_query("odc_nobody", "https://evil.example/cb", challenge))
    assert error.return_to is None
    assert "client" in error.message


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://127.0.0.1:33418/callback/../evil",
        "http://127.0.0.1:33418/callbackx",
        "http://localhost:33418/callback",
        "http://127.0.0.1:33418/callback#frag",
        "http://127.0.0.1:33418@evil.example/callback",
    ],
)
def test_redirect_uri_mismatch_never_redirects(
    app: Flask, client: FlaskClient, redirect_uri: str
) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    error = _validate(app, authorize_query(reg.client_id, redirect_uri, challenge))
    assert error.return_to is None


def test_missing_redirect_uri_is_fine_with_one_registered(app: Flask, client: FlaskClient) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge)
    del query["redirect_uri"]
    with app.test_request_context("/oauth/authorize?" + urlencode(query)):
        assert validate_authorization_request().redirect_uri == reg.redirect_uri
    two = register(client, redirect_uris=[reg.redirect_uri, "https://app.example/cb"])
    query["client_id"] = two.client_id
    assert _validate(app, query).return_to is None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"resource": "https://other.example/mcp"}, "invalid_target"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_requests_offer_a_link_back_to_a_verified_client(
    app: Flask, client: FlaskClient, change: dict[str, str], error: str
) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    query = {**authorize_query(reg.client_id, reg.redirect_uri, challenge), **change}
    refused = _validate(app, query)
    assert refused.return_to is not None
    assert refused.return_host == "127.0.0.1:33418"
    location = refused.return_to
    assert location.startswith(reg.redirect_uri)
    params = parse_qs(urlsplit(location).query)
    assert params["error"] == [error]
    assert params["iss"] == [PUBLIC_URL]


def test_form_fields_cannot_change_the_request(app: Flask, client: FlaskClient) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge)
    with app.test_request_context(
        "/oauth/authorize?" + urlencode(query),
        method="POST",
        data={"redirect_uri": "https://evil.example/cb", "client_id": "odc_other"},
    ):
        request = validate_authorization_request()
    assert request.redirect_uri == reg.redirect_uri
    assert request.client_id == reg.client_id


def test_public_url_or_trailing_slash_names_the_resource(app: Flask, client: FlaskClient) -> None:
    reg = register(client)
    _, challenge = pkce_pair()
    for resource in (PUBLIC_URL, PUBLIC_URL + "/", RESOURCE + "/"):
        query = authorize_query(reg.client_id, reg.redirect_uri, challenge, resource=resource)
        with app.test_request_context("/oauth/authorize?" + urlencode(query)):
            assert validate_authorization_request().resource == RESOURCE


# --- token endpoint attacks --------------------------------------------------------------


def _code(app: Flask, client: FlaskClient, tenant_id: int, **extra: str):  # type: ignore[no-untyped-def]
    reg = register(client)
    verifier, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge, **extra)
    params = approve_in_request(app, query, tenant_id=tenant_id)
    return reg, params["code"][0], verifier


def test_wrong_or_missing_verifier_is_invalid(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, code, _ = _code(app, client, tenant.tenant.id)
    wrong, _ = pkce_pair()
    reply = exchange(client, code, wrong, reg)
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_grant"
    reg, code, _ = _code(app, client, tenant.tenant.id)
    reply = exchange(client, code, "", reg)
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_request"


def test_code_reuse_is_refused_and_revokes_the_grant(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, code, verifier = _code(app, client, tenant.tenant.id)
    first = exchange(client, code, verifier, reg)
    assert first.status_code == 200
    second = exchange(client, code, verifier, reg)
    assert second.status_code == 400
    assert _token_error(second) == "invalid_grant"
    grant = OAuthGrant.get()
    assert grant.revoked is not None
    assert grant.revoked_reason == "authorization code reused"
    mcp = McpHttp(client, first.get_json()["access_token"])
    assert mcp.request("ping").status_code == 401


def test_code_for_another_client_is_refused(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    _, code, verifier = _code(app, client, tenant.tenant.id)
    other = register(client)
    reply = exchange(client, code, verifier, other)
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_grant"


def test_redirect_uri_must_match_the_codes(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, code, verifier = _code(app, client, tenant.tenant.id)
    reply = exchange(client, code, verifier, reg, redirect_uri="http://127.0.0.1:1/other")
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_grant"


def test_token_for_another_resource_is_refused(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, code, verifier = _code(app, client, tenant.tenant.id)
    reply = exchange(client, code, verifier, reg, resource="https://other.example/mcp")
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_target"


def test_token_responses_are_not_cached_and_allow_cors(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, code, verifier = _code(app, client, tenant.tenant.id)
    reply = exchange(client, code, verifier, reg)
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    bad = client.post("/oauth/token", data={"grant_type": "password"})
    assert bad.status_code == 400
    assert bad.headers["Cache-Control"] == "no-store"
    assert _token_error(bad) in {"unsupported_grant_type", "invalid_request"}


# --- refresh, revocation, the resource side ----------------------------------------------


def _refresh(client: FlaskClient, reg_id: str, refresh_token: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": reg_id,
            **extra,
        },
    )


def test_refresh_rotates_and_reuse_revokes_the_grant(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, tokens = full_flow(app, client, tenant.tenant.id)
    second = _refresh(client, reg.client_id, tokens["refresh_token"])
    assert second.status_code == 200, second.get_json()
    rotated = second.get_json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert McpHttp(client, rotated["access_token"]).request("ping").status_code != 401
    again = _refresh(client, reg.client_id, tokens["refresh_token"])
    assert again.status_code == 400
    assert _token_error(again) == "invalid_grant"
    assert OAuthGrant.get().revoked_reason == "refresh token reused"
    assert _refresh(client, reg.client_id, rotated["refresh_token"]).status_code == 400
    assert McpHttp(client, rotated["access_token"]).request("ping").status_code == 401
    assert AuditEvent.select().where(AuditEvent.action == "oauth.refresh_reuse").count() == 1


def test_refresh_may_narrow_but_not_widen(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, tokens = full_flow(app, client, tenant.tenant.id)
    narrow = _refresh(client, reg.client_id, tokens["refresh_token"], scope="read")
    assert narrow.status_code == 200
    assert narrow.get_json()["scope"] == "read"
    assert _write_refused(McpHttp(client, narrow.get_json()["access_token"]))
    reg2, ro = full_flow(
        app,
        client,
        tenant.tenant.id,
        rights=GrantRights(read_only=True, store_ids=None, toolsets=None),
        scope="read",
    )
    wide = _refresh(client, reg2.client_id, ro["refresh_token"], scope="read write")
    assert wide.status_code == 400
    assert _token_error(wide) == "invalid_scope"


def test_refresh_token_of_another_client_is_refused(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    _, tokens = full_flow(app, client, tenant.tenant.id)
    other = register(client)
    reply = _refresh(client, other.client_id, tokens["refresh_token"])
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_grant"


def test_disabled_tenant_stops_at_once(app: Flask, client: FlaskClient, tenant: McpTenant) -> None:
    reg, tokens = full_flow(app, client, tenant.tenant.id)
    mcp = McpHttp(client, tokens["access_token"])
    assert mcp.request("ping").status_code != 401
    Tenant.update(disabled=True).where(Tenant.id == tenant.tenant.id).execute()
    reply = mcp.request("ping")
    assert reply.status_code == 401
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    refresh = _refresh(client, reg.client_id, tokens["refresh_token"])
    assert refresh.status_code == 400
    assert _token_error(refresh) == "invalid_grant"


def test_read_only_grant_cannot_call_a_write_tool(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    _, tokens = full_flow(
        app,
        client,
        tenant.tenant.id,
        rights=GrantRights(read_only=True, store_ids=None, toolsets=None),
        scope="read",
    )
    assert tokens["scope"] == "read"
    assert _write_refused(McpHttp(client, tokens["access_token"]))


def test_revoking_an_access_token_or_the_refresh_token(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, tokens = full_flow(app, client, tenant.tenant.id)
    revoke = client.post(
        "/oauth/revoke", data={"token": tokens["access_token"], "client_id": reg.client_id}
    )
    assert revoke.status_code == 200
    assert McpHttp(client, tokens["access_token"]).request("ping").status_code == 401
    assert OAuthGrant.get().revoked is None  # only that access token
    revoke = client.post(
        "/oauth/revoke",
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": reg.client_id,
        },
    )
    assert revoke.status_code == 200
    assert OAuthGrant.get().revoked is not None
    unknown = client.post(
        "/oauth/revoke", data={"token": "odat_unknown", "client_id": reg.client_id}
    )
    assert unknown.status_code == 200


def test_confidential_client_authenticates_at_the_token_endpoint(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg = register(client, auth_method="client_secret_basic")
    assert reg.client_secret
    verifier, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge)
    code = approve_in_request(app, query, tenant_id=tenant.tenant.id)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": reg.redirect_uri,
        "code_verifier": verifier,
    }
    wrong = client.post("/oauth/token", data=form, auth=(reg.client_id, "wrong-secret"))
    assert wrong.status_code == 401
    assert _token_error(wrong) == "invalid_client"
    right = client.post("/oauth/token", data=form, auth=(reg.client_id, reg.client_secret))
    assert right.status_code == 200, right.get_json()


def test_token_for_another_resource_is_refused_on_mcp(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    _, tokens = full_flow(app, client, tenant.tenant.id)
    OAuthGrant.update(resource="https://other.example/mcp").execute()
    reply = McpHttp(client, tokens["access_token"]).request("ping")
    assert reply.status_code == 401


@pytest.mark.sqlite_only  # scans the SQLite file's bytes
def test_no_secret_in_logs_audit_or_database_file(
    app: Flask,
    client: FlaskClient,
    tenant: McpTenant,
    oauth_env: tuple[Settings, peewee.Database, Vault],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    reg, code, verifier = _code(app, client, tenant.tenant.id)
    tokens = exchange(client, code, verifier, reg).get_json()
    refreshed = _refresh(client, reg.client_id, tokens["refresh_token"]).get_json()
    confidential = register(client, auth_method="client_secret_post")
    secrets_seen = [
        code,
        verifier,
        tokens["access_token"],
        tokens["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        str(confidential.client_secret),
    ]
    audit = " ".join(f"{row.action} {row.arguments}" for row in AuditEvent.select())
    oauth_env[1].execute_sql("PRAGMA wal_checkpoint(FULL)")
    files = b"".join(
        path.read_bytes() for path in oauth_env[0].data_dir.rglob("*") if path.is_file()
    )
    for secret in secrets_seen:
        assert secret not in caplog.text
        assert secret not in audit
        assert secret.encode() not in files


# --- review fixes ------------------------------------------------------------------------


def _code_via_key(app: Flask, client: FlaskClient, tenant: McpTenant):  # type: ignore[no-untyped-def]
    """A code issued to a tenant signed in with its API key: (key row, client, code, verifier)."""
    parts = parse_token(tenant.token)
    assert parts is not None
    key = ApiKey.get(ApiKey.public_id == parts[0])
    reg = register(client)
    verifier, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge)
    params = approve_in_request(app, query, tenant_id=tenant.tenant.id, via_key_id=key.id)
    return key, reg, params["code"][0], verifier


def test_a_code_made_with_a_key_revoked_before_the_exchange_is_refused(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    key, reg, code, verifier = _code_via_key(app, client, tenant)
    # What `orderdesk-mcp key revoke` does: there is no grant yet to sweep.
    revoke_key(key.public_id)
    assert revoke_grants_made_with(key.id) == 0
    reply = exchange(client, code, verifier, reg)
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_grant"
    assert OAuthGrant.select().count() == 0


def test_tokens_of_a_grant_made_with_a_revoked_key_stop_working(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    key, reg, code, verifier = _code_via_key(app, client, tenant)
    tokens = exchange(client, code, verifier, reg).get_json()
    mcp = McpHttp(client, tokens["access_token"])
    mcp.initialize()
    # The key revoked without the sweep (as for a grant made after the sweep ran).
    revoke_key(key.public_id)
    assert mcp.request("ping").status_code == 401
    reply = _refresh(client, reg.client_id, tokens["refresh_token"])
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_grant"


@pytest.mark.parametrize(
    ("scope", "read_only", "granted"),
    [
        ("openid", False, "read write"),
        ("claudeai", False, "read write"),
        ("mcp", False, "read write"),
        ("read write offline_access", False, "read write"),
        ("openid read", True, "read"),
        ("", False, "read write"),
    ],
)
def test_unknown_scopes_are_ignored(
    app: Flask,
    client: FlaskClient,
    tenant: McpTenant,
    scope: str,
    read_only: bool,
    granted: str,
) -> None:
    reg = register(client)
    verifier, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge, scope=scope)
    with app.test_request_context("/oauth/authorize?" + urlencode(query)):
        assert validate_authorization_request().requested.read_only is read_only
    rights = GrantRights(read_only=read_only, store_ids=None, toolsets=None)
    params = approve_in_request(app, query, tenant_id=tenant.tenant.id, rights=rights)
    reply = exchange(client, params["code"][0], verifier, reg)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["scope"] == granted


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        ("claudeai", "read write"),
        ("read offline_access", "read"),
        ("openid read write", "read write"),
    ],
)
def test_a_refresh_ignores_unknown_scopes_too(
    app: Flask, client: FlaskClient, tenant: McpTenant, scope: str, granted: str
) -> None:
    reg, tokens = full_flow(app, client, tenant.tenant.id)
    reply = _refresh(client, reg.client_id, tokens["refresh_token"], scope=scope)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json()["scope"] == granted


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(min_size=1, max_size=60))
def test_non_ascii_credentials_are_a_plain_miss(app: Flask, client: FlaskClient, text: str) -> None:
    reg = register(client)
    for form in (
        {"grant_type": "authorization_code", "code": text, "code_verifier": "v" * 43},
        {"grant_type": "refresh_token", "refresh_token": "odrt_" + text},
    ):
        reply = client.post(
            "/oauth/token",
            data={**form, "client_id": reg.client_id, "redirect_uri": reg.redirect_uri},
        )
        assert reply.status_code == 400, reply.get_data(as_text=True)
        assert _token_error(reply) in ("invalid_grant", "invalid_request")
    revoked = client.post(
        "/oauth/revoke", data={"token": "odat_" + text, "client_id": reg.client_id}
    )
    assert revoked.status_code == 200  # RFC 7009 2.2: an unknown token is not an error
    # What an HTTP header can carry: latin-1, no control characters.
    latin1 = "".join(
        c for c in text.encode("latin-1", "replace").decode("latin-1") if c.isprintable()
    )
    reply = McpHttp(client, "odat_" + latin1).request("ping")
    # 429 once the bad tokens from this address add up: counted, as a bad token should be.
    assert reply.status_code in (401, 429)


def test_non_ascii_bearer_on_mcp_is_a_401(client: FlaskClient) -> None:
    assert McpHttp(client, "odat_\xe9" + "a" * 40).request("ping").status_code == 401


def test_a_code_requested_without_redirect_uri_is_exchanged_without_it(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, code, verifier = _code(app, client, tenant.tenant.id)
    # That code carried redirect_uri, so the token request must repeat it.
    reply = exchange(client, code, verifier, reg, redirect_uri="")
    assert _token_error(reply) == "invalid_grant"
    # Requested without it: the exchange needs none (RFC 6749 4.1.3).
    verifier, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge)
    del query["redirect_uri"]
    with app.test_request_context("/oauth/authorize?" + urlencode(query), method="POST"):
        response = approve(
            validate_authorization_request(),
            tenant_id=tenant.tenant.id,
            via_key_id=None,
            rights=GrantRights.everything(),
        )
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    reply = exchange(client, code, verifier, reg, redirect_uri="")
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert OAuthGrant.get().redirect_uri == reg.redirect_uri


@pytest.mark.parametrize(
    "resource",
    ["HTTP://LOCALHOST:8080/mcp", "http://LocalHost:8080/mcp/", "Http://localhost:8080"],
)
def test_resource_case_of_scheme_and_host_does_not_matter(
    app: Flask, client: FlaskClient, tenant: McpTenant, resource: str
) -> None:
    reg, code, verifier = _code(app, client, tenant.tenant.id, resource=resource)
    reply = exchange(client, code, verifier, reg, resource=resource)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert OAuthGrant.get().resource == RESOURCE


def test_resource_default_port_and_path_case() -> None:
    settings = load_settings({"ORDERDESK_MCP_PUBLIC_URL": "https://mcp.example.com"})
    for same in ("https://MCP.example.com:443/mcp", "HTTPS://mcp.example.com/mcp/"):
        assert normalise_resource(same, settings) == "https://mcp.example.com/mcp"
    for other in (
        "https://mcp.example.com/MCP",
        "https://mcp.example.com:8443/mcp",
        "http://mcp.example.com/mcp",
        "https://user@mcp.example.com/mcp",
        "https://mcp.example.com/mcp?x=1",
        "https://[::1/mcp",
    ):
        assert normalise_resource(other, settings) is None, other


@given(value=st.text(max_size=80))
def test_resource_normalising_never_crashes(value: str) -> None:
    settings = load_settings({"ORDERDESK_MCP_PUBLIC_URL": "https://mcp.example.com"})
    assert normalise_resource(value, settings) in (None, "https://mcp.example.com/mcp")


def test_a_code_reused_during_its_first_exchange_issues_nothing(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, code, verifier = _code(app, client, tenant.tenant.id)
    row = OAuthCode.get()
    # The first exchange has claimed the code (marked it used) and not yet made its grant...
    OAuthCode.update(used=utcnow()).where(OAuthCode.code_hash == row.code_hash).execute()
    second = exchange(client, code, verifier, reg)
    assert _token_error(second) == "invalid_grant"
    # ...then goes on: it finds the code withdrawn and issues nothing.
    with app.test_request_context("/oauth/token", method="POST"):
        server = get_server()
        with pytest.raises(InvalidGrantError), database.atomic():
            server._grant_from_code(CodeRecord(row), server.query_client(reg.client_id))
    assert OAuthGrant.select().count() == 0
    assert AuditEvent.select().where(AuditEvent.action == "oauth.code_reuse").count() == 1


def test_a_grant_ends_a_year_after_consent_however_often_refreshed(
    app: Flask, client: FlaskClient, tenant: McpTenant
) -> None:
    reg, tokens = full_flow(app, client, tenant.tenant.id)
    grant = OAuthGrant.get()
    ends = utcnow() + dt.timedelta(hours=2)
    OAuthGrant.update(created=ends - GRANT_LIFETIME).where(OAuthGrant.id == grant.id).execute()
    reply = _refresh(client, reg.client_id, tokens["refresh_token"])
    assert reply.status_code == 200, reply.get_data(as_text=True)
    fresh = reply.get_json()
    newest = OAuthToken.select().order_by(OAuthToken.id.desc()).first()
    assert newest.kind == "refresh"
    assert newest.expires <= ends
    # Past the end: no more tokens, whatever the refresh token's own expiry says.
    OAuthGrant.update(created=utcnow() - GRANT_LIFETIME).where(OAuthGrant.id == grant.id).execute()
    OAuthToken.update(expires=utcnow() + dt.timedelta(days=30)).where(
        OAuthToken.id == newest.id
    ).execute()
    reply = _refresh(client, reg.client_id, fresh["refresh_token"])
    assert reply.status_code == 400
    assert _token_error(reply) == "invalid_grant"
