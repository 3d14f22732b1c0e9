"""Heartbeat rows of the server group: written, refreshed and removed by real serve
processes, left to go stale by a killed one, and honoured by restore and rotate-master-key
for servers on any host."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from pathlib import Path
from typing import Any

import peewee
import pytest
from playhouse.db_url import connect

from orderdesk_mcp.config import load_settings
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.db.models import ServerHeartbeat, utcnow
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.server_group import (
    STALE_AFTER_SECONDS,
    Heartbeat,
    ServerIdentity,
    group_size,
    live_server_reason,
    live_servers,
)
from tests.real_servers import PostgresServer
from tests.server_group import ServerGroup

OTHER_HOST = "other-host.example"
OTHER_PID = 4242


def _rows(data_dir: Path) -> list[ServerHeartbeat]:
    db = peewee.SqliteDatabase(str(data_dir / "orderdesk-mcp.db"), timeout=5)
    try:
        with db.bind_ctx([ServerHeartbeat]):
            return list(ServerHeartbeat.select())
    finally:
        db.close()


def _row_of(data_dir: Path, pid: int) -> ServerHeartbeat | None:
    return next((row for row in _rows(data_dir) if row.pid == pid), None)


def _wait_for(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_serve_writes_refreshes_and_removes_its_row(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    group = ServerGroup.prepare(tmp_path, sandbox, env={"ORDERDESK_MCP_HEARTBEAT_SECONDS": "0.2"})
    try:
        served = group.start_one()
        first = _row_of(group.data_dir, served.process.pid)
        assert first is not None
        assert first.listen == f"127.0.0.1:{served.port}"
        assert first.hostname
        assert first.version

        def refreshed() -> bool:
            row = _row_of(group.data_dir, served.process.pid)
            return row is not None and row.last_seen > first.last_seen

        _wait_for(refreshed, "the heartbeat to move last_seen")
        assert served.stop(signal.SIGTERM) == 0
        assert _row_of(group.data_dir, served.process.pid) is None
    finally:
        group.stop_all()


@pytest.mark.slow
def test_a_killed_server_leaves_a_row_that_goes_stale(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    group = ServerGroup.prepare(tmp_path, sandbox)
    try:
        served = group.start_one()
        served.kill()
        left = _row_of(group.data_dir, served.process.pid)
        assert left is not None  # nobody removed it
        db = peewee.SqliteDatabase(str(group.data_dir / "orderdesk-mcp.db"))
        try:
            assert [row.pid for row in live_servers(db, left.last_seen)] == [left.pid]
            later = left.last_seen + dt.timedelta(seconds=STALE_AFTER_SECONDS + 1)
            assert live_servers(db, later) == []
        finally:
            db.close()
    finally:
        group.stop_all()


def test_heartbeat_context_counts_the_group(db: peewee.Database) -> None:
    assert group_size() >= 1
    first = ServerIdentity.of_this_process("127.0.0.1:1")
    second = ServerIdentity.of_this_process("127.0.0.1:2")
    with Heartbeat(db, first, interval=60):
        assert group_size() == 1
        with Heartbeat(db, second, interval=60):
            assert group_size() == 2
            assert {row.server_id for row in live_servers(db)} == {
                first.server_id,
                second.server_id,
            }
        assert {row.server_id for row in live_servers(db)} == {first.server_id}
    assert live_servers(db) == []


def test_heartbeat_rows_and_the_refusal_reason_on_postgresql(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    db = connect(url)
    try:
        apply_migrations(db)
        identity = ServerIdentity.of_this_process("10.0.0.3:8080")
        with Heartbeat(db, identity, interval=60):
            settings = load_settings(
                {"ORDERDESK_MCP_DATA_DIR": str(tmp_path), "ORDERDESK_MCP_DATABASE_URL": url}
            )
            reason = live_server_reason(settings)
            assert reason is not None
            assert f"pid {identity.pid}" in reason
            assert "10.0.0.3:8080" in reason
        assert live_servers(db) == []
    finally:
        db.close()


@pytest.fixture
def backed_up(run: Any) -> tuple[Any, Path]:
    assert run("init").exit_code == 0
    created = run("backup", "create", "--json")
    assert created.exit_code == 0, created.output
    return run, Path(json.loads(created.output)["path"])


def _other_host_row(data_dir: Path, last_seen: dt.datetime) -> None:
    db = peewee.SqliteDatabase(str(data_dir / "orderdesk-mcp.db"), timeout=5)
    try:
        with db.bind_ctx([ServerHeartbeat]):
            ServerHeartbeat.delete().execute()
            ServerHeartbeat.create(
                server_id="b" * 16,
                hostname=OTHER_HOST,
                pid=OTHER_PID,
                listen="10.0.0.2:8080",
                version="test",
                started=last_seen,
                last_seen=last_seen,
            )
    finally:
        db.close()


@pytest.mark.sqlite_only  # writes the row into the SQLite file; PostgreSQL: test below
def test_restore_refuses_while_a_server_on_another_host_is_live(
    backed_up: tuple[Any, Path],
) -> None:
    run, archive = backed_up
    _other_host_row(run.data_dir, utcnow())
    refused = run("backup", "restore", str(archive))
    assert refused.exit_code != 0
    assert OTHER_HOST in refused.output
    assert f"pid {OTHER_PID}" in refused.output
    assert "Traceback" not in refused.output

    _other_host_row(run.data_dir, utcnow() - dt.timedelta(seconds=STALE_AFTER_SECONDS + 5))
    restored = run("backup", "restore", str(archive))
    assert restored.exit_code == 0, restored.output


@pytest.mark.sqlite_only  # writes the row into the SQLite file
def test_rotate_master_key_refuses_while_a_server_on_another_host_is_live(
    backed_up: tuple[Any, Path], tmp_path: Path
) -> None:
    run, _archive = backed_up
    _other_host_row(run.data_dir, utcnow())
    refused = run("rotate-master-key", "--new-key-file", str(tmp_path / "new.key"))
    assert refused.exit_code != 0
    assert OTHER_HOST in refused.output
    assert f"pid {OTHER_PID}" in refused.output
    assert not (tmp_path / "new.key").exists()
