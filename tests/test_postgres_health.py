"""/health/ready on PostgreSQL: a rolled-back write proves the database takes writes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import peewee
import pytest
from flask import Flask

from orderdesk_mcp.app import create_app
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import close_database, open_database
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import Vault
from tests.conftest import second_connection
from tests.real_servers import PostgresServer

pytestmark = pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)


def _ready(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/health/ready")
    body: dict[str, Any] = response.get_json()
    return response.status_code, body


@pytest.fixture
def app(settings: Settings, db: peewee.Database, vault: Vault) -> Flask:
    return create_app(settings, Services(settings=settings, database=db, vault=vault))


def test_ready_on_postgresql_and_the_write_leaves_nothing(app: Flask, db: peewee.Database) -> None:
    before = [tuple(row) for row in db.execute_sql("SELECT * FROM schema_version ORDER BY 1")]
    status, body = _ready(app)
    assert status == 200, body
    assert body["checks"]["database"] == {"ok": True}
    after = [tuple(row) for row in db.execute_sql("SELECT * FROM schema_version ORDER BY 1")]
    assert after == before


def test_not_ready_while_another_session_holds_the_row_lock(
    app: Flask, db: peewee.Database
) -> None:
    holder = second_connection(db)
    try:
        with holder.atomic():
            holder.execute_sql("SELECT * FROM schema_version WHERE version = 1 FOR UPDATE")
            status, body = _ready(app)
            assert status == 503
            assert body["failing"] == ["database"]
            error = body["checks"]["database"]["error"]
            assert "does not take writes" in error
            assert "lock timeout" in error
        status, body = _ready(app)
        assert status == 200, body
    finally:
        holder.close()


def test_not_ready_on_a_read_only_database(
    app: Flask, db: peewee.Database, settings: Settings, postgres_server: PostgresServer
) -> None:
    name = urlsplit(str(settings.database_url)).path.lstrip("/")
    postgres_server.admin_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        close_database(db)  # pooled connections keep their old session settings
        status, body = _ready(app)
        assert status == 503
        assert "read-only" in body["checks"]["database"]["error"]
    finally:
        postgres_server.admin_sql(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        close_database(db)


def test_an_unreachable_database_is_named_without_its_password(settings: Settings) -> None:
    url = "postgresql://odmcp:secret-db-pw-42@127.0.0.1:9/orderdesk"
    broken = settings.replace(database_url=url)
    database = open_database(broken)
    try:
        app = create_app(broken, Services(settings=broken, database=database, vault=None))
        status, body = _ready(app)
        assert status == 503
        assert "the database does not answer" in body["checks"]["database"]["error"]
        assert "secret-db-pw-42" not in str(body)
        detailed = app.test_client().get("/health/detailed").get_json()
        assert detailed["counts"]["tenants"] is None
        assert "secret-db-pw-42" not in str(detailed)
    finally:
        close_database(database)


def test_connections_wait_for_a_lock_no_longer_than_sqlite_would(db: peewee.Database) -> None:
    (value,) = db.execute_sql("SHOW lock_timeout").fetchone()
    assert value == "5s"
