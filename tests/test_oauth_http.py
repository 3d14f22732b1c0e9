"""The code flow over real HTTP: waitress on a loopback port, requests as the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import ServedApp
from tests.oauth_helpers import (
    REDIRECT_URI,
    RESOURCE,
    approve_in_request,
    authorize_query,
    oauth_app_with_tenant,
    pkce_pair,
)


@pytest.fixture
def served(data_dir: Path, sandbox: RunningSandbox) -> Iterator[tuple[Flask, str, int]]:
    with oauth_app_with_tenant(data_dir, sandbox) as (app, tenant_id):
        server = ServedApp(app)
        try:
            yield app, f"http://127.0.0.1:{server.port}", tenant_id
        finally:
            server.stop()


def test_register_authorize_exchange_call_refresh_revoke(served: tuple[Flask, str, int]) -> None:
    app, base, tenant_id = served
    http = requests.Session()
    registration = http.post(
        base + "/oauth/register",
        json={
            "client_name": "HTTP test",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        },
        timeout=10,
    ).json()
    verifier, challenge = pkce_pair()
    query = authorize_query(registration["client_id"], REDIRECT_URI, challenge)
    code = approve_in_request(app, query, tenant_id=tenant_id)["code"][0]
    token_reply = http.post(
        base + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": registration["client_id"],
            "code_verifier": verifier,
            "resource": RESOURCE,
        },
        timeout=10,
    )
    assert token_reply.status_code == 200, token_reply.text
    tokens = token_reply.json()
    headers = {
        "Authorization": f"Bearer {tokens['access_token']}",
        "Accept": "application/json, text/event-stream",
    }
    init = http.post(
        base + "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        headers=headers,
        timeout=10,
    )
    assert init.status_code == 200, init.text
    headers["Mcp-Session-Id"] = init.headers["Mcp-Session-Id"]
    call = http.post(
        base + "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "list_orders", "arguments": {"limit": 1}},
        },
        headers=headers,
        timeout=30,
    )
    assert call.status_code == 200, call.text
    assert "result" in call.json(), call.text
    refreshed = http.post(
        base + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": registration["client_id"],
        },
        timeout=10,
    )
    assert refreshed.status_code == 200, refreshed.text
    revoked = http.post(
        base + "/oauth/revoke",
        data={"token": refreshed.json()["refresh_token"], "client_id": registration["client_id"]},
        timeout=10,
    )
    assert revoked.status_code == 200
    headers["Authorization"] = f"Bearer {refreshed.json()['access_token']}"
    after = http.post(
        base + "/mcp",
        json={"jsonrpc": "2.0", "id": 3, "method": "ping"},
        headers=headers,
        timeout=10,
    )
    assert after.status_code == 401
    assert "resource_metadata=" in after.headers["WWW-Authenticate"]
