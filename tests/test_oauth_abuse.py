"""Anonymous abuse of the open OAuth endpoints: another caller's token-endpoint budget, junk
registration bodies, and rows piling up (registrations, browser sessions)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from limits import parse_many

from orderdesk_mcp.app import get_services
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import OAuthClient, WebSession, utcnow
from orderdesk_mcp.oauth import clients, limits
from orderdesk_mcp.oauth.blueprint import LIMITS_KEY
from orderdesk_mcp.oauth.housekeeping import prune_expired
from orderdesk_mcp.oauth.web_sessions import IDLE_LIFETIME
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault
from tests.conftest import make_mcp_tenant
from tests.oauth_helpers import RESOURCE, full_flow, oauth_app, register

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
_addresses = itertools.count(1)


@pytest.fixture
def running(data_dir: Path) -> Iterator[tuple[Flask, Vault]]:
    with oauth_app(data_dir) as app_and_vault:
        yield app_and_vault


@pytest.fixture
def app(running: tuple[Flask, Vault]) -> Flask:
    return running[0]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tenant(running: tuple[Flask, Vault], sandbox: RunningSandbox) -> int:
    return int(make_mcp_tenant("acme", running[1], sandbox).tenant.id)


def _fresh_address() -> dict[str, str]:
    n = next(_addresses)
    return {"REMOTE_ADDR": f"198.18.{n // 250 % 250}.{n % 250 + 1}"}


# --- finding: the token endpoint's per-client budget ----------------------------------------


def _failures_allowed() -> int:
    return int(limits.FAILURES_PER_CLIENT_AND_ADDRESS_LIMIT.split("/")[0])


def test_strangers_naming_a_client_cannot_use_up_its_token_budget(
    app: Flask,
    client: FlaskClient,
    tenant: int,
) -> None:
    reg, tokens = full_flow(app, client, tenant)
    bogus = {"grant_type": "refresh_token", "refresh_token": "odrt_x", "client_id": reg.client_id}
    for _ in range(_failures_allowed()):
        reply = client.post("/oauth/token", data=bogus, environ_base=ATTACKER)
        assert reply.status_code == 400
    # The stranger's own address is now refused for this client...
    refused = client.post("/oauth/token", data=bogus, environ_base=ATTACKER)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    # ...and the client's real users, elsewhere, refresh as before.
    reply = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": reg.client_id,
            "resource": RESOURCE,
        },
    )
    assert reply.status_code == 200, reply.get_data(as_text=True)
    # Another stranger's address has its own budget too.
    other = client.post("/oauth/token", data=bogus, environ_base=_fresh_address())
    assert other.status_code == 400


def test_successful_requests_do_not_count_as_failures(
    app: Flask,
    client: FlaskClient,
    tenant: int,
) -> None:
    reg, tokens = full_flow(app, client, tenant)
    app.extensions[LIMITS_KEY].failures_per_client = parse_many("2/minute")
    refresh = tokens["refresh_token"]
    for _ in range(4):
        reply = client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": reg.client_id,
            },
        )
        assert reply.status_code == 200, reply.get_data(as_text=True)
        refresh = reply.get_json()["refresh_token"]
    reply = client.post("/oauth/revoke", data={"token": refresh, "client_id": reg.client_id})
    assert reply.status_code == 200


# --- finding: registration bodies never cause a 500 -----------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000,
        '{"a":' * 3000,
        json.dumps({"redirect_uris": ["https://a.example/cb"], "grant_types": [["x"]]}),
        json.dumps({"redirect_uris": ["https://a.example/cb"], "grant_types": [{"x": 1}]}),
        json.dumps({"redirect_uris": [["https://a.example/cb"]]}),
        json.dumps({"redirect_uris": [{"u": 1}]}),
        json.dumps({"redirect_uris": ["https://a.example/cb"], "response_types": [["code"]]}),
        json.dumps({"redirect_uris": ["https://a.example/cb"], "application_type": ["web"]}),
        json.dumps({"redirect_uris": ["https://a.example/cb"], "scope": ["read"]}),
        json.dumps(
            {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": {"a": 1}}
        ),
    ],
)
def test_malformed_registration_bodies_get_one_clear_error(client: FlaskClient, body: str) -> None:
    reply = client.post(
        "/oauth/register", data=body, content_type="application/json", environ_base=_fresh_address()
    )
    assert reply.status_code == 400, reply.get_data(as_text=True)
    assert reply.get_json()["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}
    assert reply.get_json()["error_description"]
    assert OAuthClient.select().count() == 0


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=20,
)
_field_names = st.sampled_from(
    [
        "redirect_uris",
        "grant_types",
        "response_types",
        "application_type",
        "client_name",
        "scope",
        "token_endpoint_auth_method",
        "client_uri",
        "logo_uri",
        "software_id",
    ]
)
_bodies = st.one_of(
    _json_values,
    st.dictionaries(_field_names, _json_values, max_size=6),
    st.dictionaries(_field_names, _json_values, max_size=6).map(
        lambda d: {"redirect_uris": ["https://a.example/cb"], **d}
    ),
)


@given(body=_bodies)
@hypothesis_settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_any_json_registration_body_is_answered_without_a_server_error(
    client: FlaskClient, body: Any
) -> None:
    reply = client.post(
        "/oauth/register",
        data=json.dumps(body),
        content_type="application/json",
        environ_base=_fresh_address(),
    )
    assert reply.status_code in {201, 400}, reply.get_data(as_text=True)
    assert reply.is_json


# --- finding: rows do not pile up -----------------------------------------------------------


def test_unused_registrations_are_capped(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clients, "MAX_UNUSED_REGISTRATIONS", 3)
    for _ in range(3):
        register(client)
    reply = client.post("/oauth/register", json={"redirect_uris": ["https://a.example/cb"]})
    assert reply.status_code == 503
    assert reply.get_json()["error"] == "temporarily_unavailable"
    assert "unused client registrations" in reply.get_json()["error_description"]
    assert OAuthClient.select().count() == 3
    # Once one is past its unused lifetime (due for deletion), there is room again.
    oldest = OAuthClient.select().order_by(OAuthClient.id).first()
    oldest.created = utcnow() - dt.timedelta(days=2)
    oldest.save()
    register(client)


def test_never_used_registrations_go_within_a_day(settings: Settings) -> None:
    assert settings.oauth_unused_client_days == 1


def test_a_day_old_unused_registration_is_pruned(app: Flask, client: FlaskClient) -> None:
    register(client)
    later = utcnow() + dt.timedelta(hours=25)
    days = get_services(app).settings.oauth_unused_client_days
    result = prune_expired(unused_client_days=days, now=later)
    assert result.registered_clients == 1
    assert OAuthClient.select().count() == 0


def test_housekeeping_deletes_idle_browser_sessions(db: peewee.Database) -> None:
    now = utcnow()
    WebSession.create(id="idle", last_seen=now - IDLE_LIFETIME, expires=now + dt.timedelta(hours=6))
    WebSession.create(id="active", last_seen=now, expires=now + dt.timedelta(hours=6))
    assert prune_expired(unused_client_days=1, now=now).web_sessions == 1
    assert [s.id for s in WebSession.select()] == ["active"]


def test_the_authorize_page_is_limited_per_address(client: FlaskClient) -> None:
    allowed = int(limits.AUTHORIZE_PER_ADDRESS_LIMIT.split("/")[0])
    for _ in range(allowed):
        assert client.get("/oauth/authorize", environ_base=ATTACKER).status_code == 400
    refused = client.get("/oauth/authorize", environ_base=ATTACKER)
    assert refused.status_code == 429
    assert "Too many requests" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) >= 1
    assert client.get("/oauth/authorize", environ_base=_fresh_address()).status_code == 400
