"""Sessions per API key are capped (least recently used goes), and client_info stays JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import peewee
import pytest
from flask import Flask

from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import McpSession
from orderdesk_mcp.mcp.sessions import (
    MAX_CLIENT_INFO_CHARS,
    DatabaseSessionStore,
    SessionOwner,
    client_info_text,
    hash_session_id,
)
from orderdesk_mcp.tenancy import create_tenant
from orderdesk_mcp.vault import Vault
from tests.conftest import make_mcp_app
from tests.test_mcp_http import McpHttp

CAP = 3


@pytest.fixture
def capped_app(settings: Settings, db: peewee.Database, vault: Vault) -> Iterator[Flask]:
    app = make_mcp_app(settings.replace(max_sessions_per_key=CAP), db, vault)
    yield app
    machinery = app.extensions["orderdesk_mcp"].machinery
    if machinery is not None:
        machinery.close()


def _ping_status(app: Flask, token: str, session_id: str) -> int:
    http = McpHttp(app.test_client(), token)
    http.session, http.version = session_id, "2025-11-25"
    return http.request("ping").status_code


def _count_per_key() -> list[int]:
    counts: dict[int, int] = {}
    for row in McpSession.select():
        counts[row.api_key_id] = counts.get(row.api_key_id, 0) + 1
    return sorted(counts.values())


def test_initialize_in_a_loop_keeps_at_most_the_cap_and_evicts_the_least_recent(
    capped_app: Flask,
) -> None:
    tenant = create_tenant("looper", Vault.new_tenant_salt())
    token = issue_key(tenant, label="loop").token
    other_token = issue_key(tenant, label="other").token
    other = McpHttp(capped_app.test_client(), other_token)
    other.initialize()

    sessions = []
    for _ in range(25):
        client = McpHttp(capped_app.test_client(), token)
        client.initialize()
        assert client.session is not None
        sessions.append(client.session)
    assert _count_per_key() == [1, CAP]
    assert [_ping_status(capped_app, token, s) for s in sessions[-CAP - 1 :]] == [
        404,
        200,
        200,
        200,
    ]

    # Of the survivors, the oldest one was used just now: the least recently used goes instead.
    recently_used, idle, newest = sessions[-CAP:]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    McpSession.update(last_seen=now - dt.timedelta(hours=1)).execute()
    McpSession.update(last_seen=now).where(
        McpSession.id == hash_session_id(recently_used)
    ).execute()
    McpSession.update(last_seen=now - dt.timedelta(minutes=30)).where(
        McpSession.id == hash_session_id(newest)
    ).execute()
    latest = McpHttp(capped_app.test_client(), token)
    latest.initialize()
    assert latest.session is not None

    assert _count_per_key() == [1, CAP]
    assert _ping_status(capped_app, token, latest.session) == 200
    assert _ping_status(capped_app, token, recently_used) == 200
    assert _ping_status(capped_app, token, newest) == 200
    assert _ping_status(capped_app, token, idle) == 404
    # Another key of the same tenant keeps its session.
    assert other.request("ping").status_code == 200


def test_a_cap_of_one_keeps_only_the_newest(db: peewee.Database) -> None:
    tenant = create_tenant("single", Vault.new_tenant_salt())
    key = issue_key(tenant, label="one")
    store = DatabaseSessionStore(ttl_seconds=3600, max_per_key=1)
    owner = SessionOwner(tenant_id=tenant.id, key_id=key.key_id)
    first = store.create(owner, "2025-11-25", {})
    second = store.create(owner, "2025-11-25", {})
    assert store.get(first, owner) is None
    assert store.get(second, owner) is not None
    assert McpSession.select().count() == 1


def test_oversized_client_info_is_stored_as_valid_json(db: peewee.Database) -> None:
    tenant = create_tenant("chatty", Vault.new_tenant_salt())
    key = issue_key(tenant, label="chatty")
    store = DatabaseSessionStore(ttl_seconds=3600)
    owner = SessionOwner(tenant_id=tenant.id, key_id=key.key_id)
    info = {"name": "n" * 500, "version": "1.2", "extra": "x" * 5000, "nested": {"a": [1] * 900}}
    store.create(owner, "2025-11-25", info)
    stored = McpSession.get().client_info
    assert len(stored) <= MAX_CLIENT_INFO_CHARS
    decoded = json.loads(stored)
    assert decoded["truncated"] is True
    assert decoded["version"] == "1.2"
    assert decoded["name"].startswith("nnn")
    # Characters JSON escapes six-fold still fit.
    escaped = json.loads(client_info_text({"name": "\x01" * 5000, "title": "\x02" * 5000}))
    assert escaped["truncated"] is True
    assert len(client_info_text({"name": "\x01" * 5000, "title": "\x02" * 5000})) <= 2000
    assert json.loads(client_info_text({"name": "small"})) == {"name": "small"}
    assert json.loads(client_info_text("not a dict")) == {}
