"""Helpers for the OAuth tests: an app with OAuth on, a registered client, PKCE, and the
approval step the sign-in and consent pages perform (called inside a real request context,
exactly as the pages call it)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import peewee
from flask import Flask
from flask.testing import FlaskClient

from orderdesk_mcp.app import get_services
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.oauth.authorization import approve, validate_authorization_request
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file
from tests.conftest import make_mcp_app, make_mcp_tenant

PUBLIC_URL = "http://localhost:8080"
RESOURCE = PUBLIC_URL + "/mcp"
REDIRECT_URI = "http://127.0.0.1:33418/callback"


def oauth_settings(data_dir: Path, public_url: str = PUBLIC_URL, **extra: str) -> Settings:
    """Settings with OAuth on: ORDERDESK_MCP_PUBLIC_URL set, text logs, `extra` variables."""
    return load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_LOG_FORMAT": "text",
            "ORDERDESK_MCP_PUBLIC_URL": public_url,
            **extra,
        }
    )


@contextmanager
def oauth_app(data_dir: Path) -> Iterator[tuple[Flask, Vault]]:
    """The real app with OAuth on, over a fresh database in `data_dir`, and its vault."""
    write_key_file(data_dir / "master.key", generate_master_key())
    settings = oauth_settings(data_dir)
    database = open_database(settings)
    apply_migrations(database)
    vault = Vault.from_settings(settings)
    application = make_mcp_app(settings, database, vault)
    try:
        yield application, vault
    finally:
        machinery = get_services(application).machinery
        if machinery is not None:
            machinery.close()
        database.close()


@contextmanager
def oauth_app_with_tenant(data_dir: Path, sandbox: RunningSandbox) -> Iterator[tuple[Flask, int]]:
    """`oauth_app` with the tenant 'acme' and the sandbox's two stores: (app, tenant id)."""
    with oauth_app(data_dir) as (application, vault):
        tenant = make_mcp_tenant("acme", vault, sandbox)
        yield application, tenant.tenant.id


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    return verifier, challenge


@dataclass
class RegisteredClient:
    client_id: str
    client_secret: str | None
    redirect_uri: str


def register(
    client: FlaskClient,
    *,
    redirect_uris: list[str] | None = None,
    auth_method: str = "none",
    **extra: Any,
) -> RegisteredClient:
    body = {
        "client_name": "Test Client",
        "redirect_uris": redirect_uris or [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method,
        **extra,
    }
    reply = client.post("/oauth/register", json=body)
    assert reply.status_code == 201, reply.get_data(as_text=True)
    data = reply.get_json()
    return RegisteredClient(data["client_id"], data.get("client_secret"), body["redirect_uris"][0])


def authorize_query(
    client_id: str, redirect_uri: str, challenge: str, **extra: str
) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        "scope": "read write",
        "resource": RESOURCE,
        **extra,
    }


def approve_in_request(
    app: Flask,
    query: dict[str, str],
    *,
    tenant_id: int,
    rights: GrantRights | None = None,
    via_key_id: int | None = None,
) -> dict[str, list[str]]:
    """What the consent page does on "allow": the redirect's query parameters."""
    with app.test_request_context("/oauth/authorize?" + urlencode(query), method="POST"):
        request = validate_authorization_request()
        response = approve(
            request,
            tenant_id=tenant_id,
            via_key_id=via_key_id,
            rights=rights or GrantRights.everything(),
        )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(query["redirect_uri"].split("?")[0])
    return parse_qs(urlsplit(location).query)


def exchange(
    client: FlaskClient, code: str, verifier: str, reg: RegisteredClient, **extra: str
) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": reg.redirect_uri,
        "client_id": reg.client_id,
        "code_verifier": verifier,
        "resource": RESOURCE,
        **extra,
    }
    return client.post("/oauth/token", data=form)


def full_flow(
    app: Flask,
    client: FlaskClient,
    tenant_id: int,
    *,
    rights: GrantRights | None = None,
    scope: str = "read write",
) -> tuple[RegisteredClient, dict[str, Any]]:
    reg = register(client)
    verifier, challenge = pkce_pair()
    query = authorize_query(reg.client_id, reg.redirect_uri, challenge, scope=scope)
    params = approve_in_request(app, query, tenant_id=tenant_id, rights=rights)
    reply = exchange(client, params["code"][0], verifier, reg)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reg, reply.get_json()


def table_count(database: peewee.Database, table: str) -> int:
    row = database.execute_sql(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(row[0])
