"""`db copy --to postgresql://...`: a populated SQLite database moves to PostgreSQL whole, and
the server then runs on PostgreSQL with the same master key (sessions, keys, store keys)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee
import pytest

from orderdesk_mcp.config import load_settings
from orderdesk_mcp.db.connection import close_database, open_database
from orderdesk_mcp.db.models import (
    ALL_MODELS,
    ApiKey,
    AuditEvent,
    McpSession,
    OAuthClient,
    OAuthGrant,
    OAuthToken,
    ServerHeartbeat,
    Store,
    Tenant,
    WebSession,
    utcnow,
)
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.tenancy import find_store_row, open_store_key
from orderdesk_mcp.vault import Vault
from tests.conftest import SANDBOX_KEYS
from tests.real_servers import PostgresServer
from tests.server_group import CLI, ServerGroup, call_tool, open_session, run_cli

PASSWORD = "pw-never-printed-9f3c"


def with_password(url: str) -> str:
    """The test cluster trusts loopback, so any password connects; it must never be shown."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"postgres:{PASSWORD}@{parts.hostname}:{parts.port}"))


def run_copy(
    env: Mapping[str, str], url: str, *, stdin: bool = False
) -> subprocess.CompletedProcess[str]:
    """`db copy --to URL`, or with `stdin` the URL piped in (`--to -`)."""
    return subprocess.run(
        [*CLI, "db", "copy", "--to", "-" if stdin else url, "--json"],
        env=dict(env),
        input=f"{url}\n" if stdin else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def group(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[ServerGroup]:
    prepared = ServerGroup.prepare(tmp_path, sandbox)
    yield prepared
    prepared.stop_all()


def _populate_oauth_and_web_rows(group: ServerGroup) -> None:
    """OAuth client, grant and tokens, a browser session: the rows the CLI does not make."""
    settings = load_settings(dict(group.env))
    database = open_database(settings)
    try:
        tenant = Tenant.get(Tenant.name == "acme")
        rights = ApiKey.create(
            tenant=tenant, public_id="oauthrights01", secret_hash="-", kind="oauth"
        )
        client = OAuthClient.create(client_id="client-1", kind="registered")
        grant = OAuthGrant.create(
            public_id="grant-1",
            tenant=tenant,
            client=client,
            api_key=rights,
            resource="http://127.0.0.1/mcp",
            redirect_uri="http://127.0.0.1/cb",
        )
        for kind in ("access", "refresh"):
            OAuthToken.create(token_hash=f"hash-{kind}", kind=kind, grant=grant, expires=utcnow())
        WebSession.create(id="w" * 64, tenant=tenant, expires=utcnow())
    finally:
        close_database(database)


def _source_counts(group: ServerGroup) -> dict[str, int]:
    database = open_database(load_settings(dict(group.env)))
    try:
        return {
            model._meta.table_name: model.select().count()
            for model in ALL_MODELS
            if model._meta.table_name != "schema_version"
        }
    finally:
        close_database(database)


def test_copy_moves_everything_and_the_server_runs_on_postgresql(
    group: ServerGroup, postgres_server: PostgresServer
) -> None:
    # A session opened on SQLite, then the server stopped: the copy carries it over.
    sqlite_server = group.start_one()
    session = open_session(sqlite_server.url, group.token)
    before = call_tool(sqlite_server.url, group.token, session, "list_orders", {"limit": 1})
    assert not before["result"].get("isError"), before
    sqlite_server.stop()
    _populate_oauth_and_web_rows(group)
    expected = _source_counts(group)
    assert expected["mcp_session"] == 1
    assert expected["audit_event"] >= 2

    url = with_password(postgres_server.create_database())
    copied = run_copy(group.env, url, stdin=True)
    assert copied.returncode == 0, copied.stderr
    assert PASSWORD not in copied.stdout + copied.stderr
    report = json.loads(copied.stdout)
    assert report["tables"] == expected
    assert report["to"].startswith("postgresql://postgres:***@")

    # The same master key opens the copied store keys.
    pg_env = {**group.env, "ORDERDESK_MCP_DATABASE_URL": url}
    settings = load_settings(pg_env)
    database = open_database(settings)
    try:
        assert isinstance(database, peewee.PostgresqlDatabase)
        tenant = Tenant.get(Tenant.name == "acme")
        row = find_store_row(tenant.id, "demo")
        assert row is not None
        assert open_store_key(row, Vault.from_settings(settings)) == SANDBOX_KEYS[row.store_id]
        # The sequences moved past the copied ids: new rows get fresh ids.
        newest_audit = AuditEvent.select(peewee.fn.MAX(AuditEvent.id)).scalar()
        assert AuditEvent.create(action="after-copy", outcome="ok").id == newest_audit + 1
        assert Store.select().count() == 2
    finally:
        close_database(database)

    # Served from PostgreSQL: the old session and key still work, a tool call reaches the store.
    pg_server = group.start_one(env={"ORDERDESK_MCP_DATABASE_URL": url})
    after = call_tool(pg_server.url, group.token, session, "list_orders", {"limit": 1}, 3)
    assert not after["result"].get("isError"), after
    assert after["result"]["structuredContent"] == before["result"]["structuredContent"]
    assert PASSWORD not in pg_server.log_text()
    pg_server.stop()

    # A second copy into the same (now populated) database is refused.
    again = run_copy(group.env, url)
    assert again.returncode == 1
    assert "the target database is not empty" in again.stderr
    assert PASSWORD not in again.stdout + again.stderr


def test_copy_refuses_while_a_server_runs_or_heartbeats(
    group: ServerGroup, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database()
    running = group.start_one()
    refused = run_copy({**group.env, "ORDERDESK_MCP_PORT": str(running.port)}, url)
    assert refused.returncode == 1
    assert "refusing to copy the database while the server runs" in refused.stderr
    running.stop()

    # A server on another host shows only through its heartbeat row.
    database = open_database(load_settings(dict(group.env)))
    try:
        ServerHeartbeat.create(server_id="other", hostname="host-b", pid=4242)
    finally:
        close_database(database)
    live = run_copy(group.env, url)
    assert live.returncode == 1
    assert "host host-b pid 4242" in live.stderr
    assert "Traceback" not in live.stderr


def test_copy_refuses_bad_targets_without_showing_the_password(
    group: ServerGroup, postgres_server: PostgresServer
) -> None:
    not_postgres = run_copy(group.env, "sqlite:////tmp/elsewhere.db")
    assert not_postgres.returncode == 1
    assert "--to takes a PostgreSQL URL" in not_postgres.stderr

    # Nothing listens on port 9 of loopback: the connection fails, the password stays hidden.
    unreachable = f"postgresql://postgres:{PASSWORD}@127.0.0.1:9/nowhere"
    failed = run_copy(group.env, unreachable)
    assert failed.returncode == 1
    assert "cannot connect to the target database" in failed.stderr
    assert PASSWORD not in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr


def test_copy_rolls_back_on_a_failure_midway(
    group: ServerGroup, postgres_server: PostgresServer
) -> None:
    """A row the target rejects (here: a store whose tenant was made to vanish) aborts the
    whole copy; the target keeps no half-copied tables."""
    url = postgres_server.create_database()
    settings = load_settings(dict(group.env))
    database = open_database(settings)
    try:
        # SQLite checks foreign keys only with the pragma on; this orphan slips past it.
        database.execute_sql("PRAGMA foreign_keys = OFF")
        database.execute_sql("UPDATE store SET tenant_id = 999 WHERE alias = 'empty'")
    finally:
        close_database(database)
    failed = run_copy(group.env, url)
    assert failed.returncode == 1
    assert "the copy failed and was rolled back" in failed.stderr
    target = open_database(load_settings({**group.env, "ORDERDESK_MCP_DATABASE_URL": url}))
    try:
        assert Tenant.select().count() == 0
        assert McpSession.select().count() == 0
    finally:
        close_database(target)
    run_cli(group.env, "db", "status")
