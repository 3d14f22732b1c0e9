"""Health endpoints on the real app and real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import peewee
import pytest
import requests
from flask import Flask

from orderdesk_mcp.app import create_app
from orderdesk_mcp.backup import create_backup, running_server_reason
from orderdesk_mcp.config import Secret, Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.metrics import get_metrics
from orderdesk_mcp.orderdesk.machinery import UpstreamCall
from orderdesk_mcp.services import Services
from orderdesk_mcp.tenancy import add_store, create_tenant, rotate_master_key
from orderdesk_mcp.vault import Vault, generate_master_key
from tests.conftest import ServedApp

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}


def _app(settings: Settings, database: peewee.Database, vault: Vault | None) -> Flask:
    return create_app(settings, Services(settings=settings, database=database, vault=vault))


@pytest.fixture
def app(settings: Settings, db: peewee.Database, vault: Vault) -> Flask:
    return _app(settings, db, vault)


def _ready(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/health/ready")
    body: dict[str, Any] = response.get_json()
    return response.status_code, body


def test_health_and_live_answer_without_io(app: Flask) -> None:
    client = app.test_client()
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json()["status"] == "ok"
    assert health.get_json()["service"] == "orderdesk-mcp"
    live = client.get("/health/live")
    assert live.status_code == 200
    assert live.get_json()["status"] == "alive"


def test_ready_when_everything_is_in_place(app: Flask) -> None:
    status, body = _ready(app)
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["checks"] == {
        "database": {"ok": True},
        "cache": {"ok": True},
        "master_key": {"ok": True},
        "disk_space": {"ok": True},
    }


def test_not_ready_while_a_migration_is_pending(settings: Settings, vault: Vault) -> None:
    database = open_database(settings)
    apply_migrations(database, target=1)
    status, body = _ready(_app(settings, database, vault))
    assert status == 503
    assert body["failing"] == ["database"]
    assert "0002_mcp_sessions" in body["checks"]["database"]["error"]
    assert "orderdesk-mcp db upgrade" in body["checks"]["database"]["error"]
    database.close()


@pytest.mark.sqlite_only  # makes the SQLite file unreadable
def test_not_ready_when_the_database_file_is_unreadable(
    app: Flask, settings: Settings, db: peewee.Database
) -> None:
    db.close()
    # Root ignores permission bits, so make the file unreadable as a database instead.
    settings.database_path.write_bytes(b"this is not a SQLite database" * 200)
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.database_path}{suffix}").unlink(missing_ok=True)
    status, body = _ready(app)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["failing"] == ["database"]
    assert "does not answer" in body["checks"]["database"]["error"]


def test_not_ready_without_master_key_or_writable_cache(
    settings: Settings, db: peewee.Database
) -> None:
    settings.cache_path.write_bytes(b"garbage, not a cache database" * 200)
    status, body = _ready(_app(settings, db, None))
    assert status == 503
    assert body["failing"] == ["cache", "master_key"]
    assert "master key" in body["checks"]["master_key"]["error"]
    assert str(settings.cache_path) in body["checks"]["cache"]["error"]


def test_detailed_is_loopback_only_without_an_admin_token(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/health/detailed").status_code == 200
    refused = client.get("/health/detailed", environ_base=OUTSIDE)
    assert refused.status_code == 403
    assert "ORDERDESK_MCP_ADMIN_TOKEN" in refused.get_json()["error"]


def test_detailed_needs_the_admin_token_when_set(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    secured = settings.replace(admin_token=Secret(ADMIN_TOKEN))
    app = _app(secured, db, vault)
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        response = client.get("/health/detailed", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert ADMIN_TOKEN not in response.get_data(as_text=True)

    create_tenant("acme", Vault.new_tenant_salt())
    create_backup(secured)
    with app.app_context():
        get_metrics().observe_upstream(
            UpstreamCall("100001", "GET", "/orders", 200, 12.0, False, 0, 37, False, 0)
        )
    response = client.get(
        "/health/detailed", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, environ_base=OUTSIDE
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["counts"] == {"tenants": 1, "stores": 0, "active_sessions": 0}
    assert body["database"]["schema_version"] == body["database"]["latest_schema_version"]
    assert body["database"]["bytes"] > 0
    assert body["uptime_seconds"] >= 0
    assert body["upstream"]["100001"]["tokens_remaining"] == 37
    assert body["backups"]["count"] == 1
    assert body["backups"]["latest"].startswith("orderdesk-mcp-")
    assert body["backups"]["latest_age_seconds"] >= 0
    assert response.headers["Cache-Control"] == "no-store"


def test_served_health_blocks_restore_of_a_running_server(app: Flask, settings: Settings) -> None:
    served = ServedApp(app)
    try:
        reply = requests.get(f"http://127.0.0.1:{served.port}/health/ready", timeout=10)
        assert reply.status_code == 200
        assert reply.json()["status"] == "ready"
        running = settings.replace(host="127.0.0.1", port=served.port)
        reason = running_server_reason(running)
        assert reason is not None
        assert str(served.port) in reason
    finally:
        served.stop()
    assert running_server_reason(running) is None


def test_ready_shows_failure_reasons_only_to_this_machine_or_the_admin(
    settings: Settings, vault: Vault
) -> None:
    database = open_database(settings)
    apply_migrations(database, target=1)
    client = _app(settings, database, vault).test_client()
    outside = client.get("/health/ready", environ_base=OUTSIDE)
    assert outside.status_code == 503
    body = outside.get_json()
    assert body["failing"] == ["database"]
    assert body["checks"]["database"] == {"ok": False}
    assert str(settings.data_dir) not in outside.get_data(as_text=True)
    database.close()


@pytest.mark.sqlite_only  # holds SQLite's write lock
def test_not_ready_while_another_connection_holds_the_database_write_lock(
    app: Flask, settings: Settings
) -> None:
    holder = sqlite3.connect(settings.database_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        status, body = _ready(app)
        assert status == 503
        assert body["failing"] == ["database"]
        assert "write-locked" in body["checks"]["database"]["error"]
        holder.execute("ROLLBACK")
        status, body = _ready(app)
        assert status == 200, body
    finally:
        holder.close()


def _tenant_with_store(vault: Vault) -> None:
    tenant = create_tenant("acme", Vault.new_tenant_salt())
    add_store(tenant, store_id="100001", api_key="sk_secret_store_key_1", vault=vault)


def test_not_ready_with_a_master_key_that_does_not_open_the_stores(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    _tenant_with_store(vault)
    assert _ready(_app(settings, db, vault))[0] == 200
    status, body = _ready(_app(settings, db, Vault(generate_master_key())))
    assert status == 503
    assert body["failing"] == ["master_key"]
    assert "does not open" in body["checks"]["master_key"]["error"]
    assert "sk_secret_store_key_1" not in str(body)


def test_not_ready_after_a_key_rotation_under_the_running_server(app: Flask, vault: Vault) -> None:
    _tenant_with_store(vault)
    assert _ready(app)[0] == 200
    rotate_master_key(vault, Vault(generate_master_key()))
    status, body = _ready(app)
    assert status == 503
    assert body["failing"] == ["master_key"]
    assert "restart" in body["checks"]["master_key"]["error"]


def test_ready_depends_on_the_free_space_threshold(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    assert _ready(_app(settings.replace(ready_min_free_mb=1), db, vault))[0] == 200
    huge = settings.replace(ready_min_free_mb=1_000_000_000)  # a petabyte
    status, body = _ready(_app(huge, db, vault))
    assert status == 503
    assert body["failing"] == ["disk_space"]
    assert "ORDERDESK_MCP_READY_MIN_FREE_MB=1000000000" in body["checks"]["disk_space"]["error"]
    outside = _app(huge, db, vault).test_client().get("/health/ready", environ_base=OUTSIDE)
    assert outside.get_json()["checks"]["disk_space"] == {"ok": False}


@pytest.mark.sqlite_only  # deletes the SQLite file
def test_not_ready_when_the_database_file_was_deleted_under_the_server(
    app: Flask, settings: Settings
) -> None:
    assert _ready(app)[0] == 200
    settings.database_path.unlink()  # this process still holds the old file open
    status, body = _ready(app)
    assert status == 503
    assert body["failing"] == ["database"]
    assert not settings.database_path.exists()  # the check did not create an empty one
