"""A write's audit row exists before Order Desk sees the write, and never costs its result.

The database is write-locked from a second SQLite connection, as a long backup or another
process would hold it; the server's busy timeout then runs out and the audit write fails.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee
import pytest
from flask import Flask

from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import AuditEvent
from orderdesk_mcp.metrics import get_metrics
from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, McpTenant, second_connection
from tests.test_mcp_http import McpHttp


@pytest.fixture
def session(mcp_app: Flask, mcp_tenant: McpTenant) -> McpHttp:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    return http


def database_file(settings: Settings) -> Path:
    return settings.data_dir / "orderdesk-mcp.db"


@contextmanager
def write_locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock on `path` from another connection until the block ends."""
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        locker.execute("BEGIN IMMEDIATE")
        yield locker
        locker.execute("ROLLBACK")
    finally:
        locker.close()


@contextmanager
def audit_writes_blocked(db: peewee.Database, settings: Settings) -> Iterator[None]:
    """No audit row can be written until the block ends: SQLite's write lock held by another
    connection, or on PostgreSQL a table lock on audit_event (reads still pass; inserts give
    up after the 5 s lock_timeout, as SQLite's busy_timeout does)."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        with write_locked(database_file(settings)):
            yield
        return
    holder = second_connection(db)
    try:
        with holder.atomic():
            holder.execute_sql("LOCK TABLE audit_event IN EXCLUSIVE MODE")
            yield
    finally:
        holder.close()


def call_tool(session: McpHttp, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return session.result("tools/call", {"name": name, "arguments": arguments})


def posts(sandbox: RunningSandbox) -> int:
    served = sandbox.stats(SANDBOX_DEMO_STORE)["by_endpoint"]
    return sum(count for endpoint, count in served.items() if endpoint.startswith("POST "))


def audit_failures(app: Flask, kind: str) -> float:
    value = get_metrics(app).registry.get_sample_value(
        "orderdesk_mcp_audit_failures_total", {"kind": kind}
    )
    return value or 0.0


def some_order_id(session: McpHttp) -> str:
    listed = call_tool(session, "list_orders", {"limit": 1})["structuredContent"]["orders"]
    return str(listed[0]["id"])


def test_a_write_is_refused_unsent_when_its_audit_row_cannot_be_written(
    session: McpHttp,
    mcp_app: Flask,
    settings: Settings,
    sandbox: RunningSandbox,
    db: peewee.Database,
) -> None:
    order_id = some_order_id(session)
    before = posts(sandbox)
    with audit_writes_blocked(db, settings):
        result = call_tool(session, "add_order_note", {"order_id": order_id, "note": "packed"})
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert "was not sent to Order Desk" in text
    assert "retry" in text
    assert posts(sandbox) == before, "the write reached Order Desk without an audit row"
    assert not AuditEvent.select().where(AuditEvent.action == "tools/call add_order_note").exists()
    assert audit_failures(mcp_app, "write_refused") == 1


def test_a_dry_run_is_not_a_write(
    session: McpHttp, mcp_app: Flask, settings: Settings, db: peewee.Database
) -> None:
    order_id = some_order_id(session)
    with audit_writes_blocked(db, settings):
        result = call_tool(session, "delete_order", {"order_id": order_id, "dry_run": True})
    assert result["isError"] is False
    assert audit_failures(mcp_app, "write_refused") == 0
    assert audit_failures(mcp_app, "unrecorded") == 1


def test_a_read_proceeds_and_the_lost_row_is_counted(
    session: McpHttp, mcp_app: Flask, settings: Settings, db: peewee.Database
) -> None:
    order_id = some_order_id(session)
    with audit_writes_blocked(db, settings):
        result = call_tool(session, "get_order", {"order_id": order_id})
    assert result["isError"] is False
    assert result["structuredContent"]["order"]["id"] == order_id
    assert audit_failures(mcp_app, "unrecorded") == 1


@pytest.mark.sqlite_only  # takes SQLite's write lock at the moment the pending row appears
def test_a_landed_write_keeps_its_result_when_its_row_cannot_be_completed(
    session: McpHttp, mcp_app: Flask, settings: Settings, sandbox: RunningSandbox
) -> None:
    """The lock is taken while the write is held upstream, after its pending row exists."""
    order_id = some_order_id(session)
    path = database_file(settings)
    pending_seen = threading.Event()
    release = threading.Event()

    def lock_once_pending() -> None:
        watcher = sqlite3.connect(path, isolation_level=None)
        try:
            deadline = time.monotonic() + 30  # a safety net; the row appears at once
            while time.monotonic() < deadline and not pending_seen.is_set():
                row = watcher.execute(
                    "SELECT 1 FROM audit_event WHERE outcome = 'pending'"
                ).fetchone()
                if row:
                    watcher.execute("BEGIN IMMEDIATE")
                    pending_seen.set()
                    release.wait(30)
                    watcher.execute("ROLLBACK")
                    return
                time.sleep(0.01)
        finally:
            watcher.close()

    # The watcher takes the lock while the write is held upstream: a generous hold, so even a
    # slow machine sees the pending row first.
    sandbox.set_faults(SANDBOX_DEMO_STORE, latency_ms=4000)
    locker = threading.Thread(target=lock_once_pending)
    locker.start()
    try:
        result = call_tool(session, "add_order_note", {"order_id": order_id, "note": "shipped"})
    finally:
        release.set()
        locker.join(35)
        sandbox.set_faults(SANDBOX_DEMO_STORE)
    assert pending_seen.is_set()
    assert result["isError"] is False, result["content"][0]["text"]
    assert result["structuredContent"]["order_id"] == order_id
    rows = list(AuditEvent.select().where(AuditEvent.action == "tools/call add_order_note"))
    assert [row.outcome for row in rows] == ["pending"]
    assert audit_failures(mcp_app, "unrecorded") == 1


def test_a_write_row_is_pending_first_then_completed(session: McpHttp) -> None:
    order_id = some_order_id(session)
    result = call_tool(session, "add_order_note", {"order_id": order_id, "note": "checked"})
    assert result["isError"] is False
    rows = list(AuditEvent.select().where(AuditEvent.action == "tools/call add_order_note"))
    assert [row.outcome for row in rows] == ["ok"]
    assert rows[0].upstream_calls >= 1
    assert rows[0].store == "demo"
