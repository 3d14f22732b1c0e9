"""`db maintain [--full]` and `db status`: on real SQLite files (and a real PostgreSQL), with a
real serve process for the refusal."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from orderdesk_mcp.orderdesk.cache import ResponseCache
from orderdesk_mcp.sandbox import RunningSandbox
from tests.real_servers import PostgresServer, free_port
from tests.server_group import CLI, ServerGroup

# About the SQLite file (pages, auto_vacuum, the cache file); the PostgreSQL path has its own
# test, on the postgres_server fixture.
pytestmark = pytest.mark.sqlite_only

Run = Callable[..., Result]
FILLER = "x" * 900  # an audit row of about 1 KB: a few thousand make megabytes
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def run_offline(run: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI on a fresh data dir whose configured port nothing answers on (the --full guard
    asks http://127.0.0.1:<port>/health, and other tests may serve on the default)."""
    monkeypatch.setenv("ORDERDESK_MCP_PORT", str(free_port()))
    assert run("init").exit_code == 0
    return run


def _db_path(run: Any) -> Path:
    return Path(run.data_dir) / "orderdesk-mcp.db"


def _sql(
    path: Path, statement: str, params: tuple[Any, ...] | list[tuple[Any, ...]] = ()
) -> list[Any]:
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        if isinstance(params, list):
            conn.executemany(statement, params)
            return []
        return conn.execute(statement, params).fetchall()


def _add_audit_rows(
    path: Path, count: int, *, age: dt.timedelta = HOUR, action: str = "get_order"
) -> None:
    moment = dt.datetime.now(dt.UTC).replace(tzinfo=None) - age
    rows = [
        (moment, action, "100001", json.dumps({"n": n, "pad": FILLER}), "ok") for n in range(count)
    ]
    _sql(
        path,
        "INSERT INTO audit_event (time, action, store, arguments, outcome, duration_ms, "
        "upstream_calls) VALUES (?, ?, ?, ?, ?, 1.0, 1)",
        rows,
    )


def _audit_rows(path: Path) -> list[Any]:
    return _sql(path, "SELECT id, time, action, arguments FROM audit_event ORDER BY id")


def _maintain(run: Any, *args: str) -> dict[str, Any]:
    result = run("db", "maintain", *args, "--json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def test_full_run_shrinks_a_database_of_deleted_rows_and_keeps_the_rest(run_offline: Any) -> None:
    path = _db_path(run_offline)
    _add_audit_rows(path, 4000)
    _sql(path, "DELETE FROM audit_event WHERE id % 10 != 0")  # 3600 gone, 400 stay
    kept = _audit_rows(path)
    assert len(kept) == 400

    report = _maintain(run_offline, "--full")

    before, after = report["before"]["database"], report["after"]["database"]
    assert before["free_pages"] > 500
    assert after["free_pages"] == 0
    assert after["bytes"] + after["wal_bytes"] < (before["bytes"] + before["wal_bytes"]) / 3
    assert after["auto_vacuum"] == "incremental"
    assert path.stat().st_size == after["bytes"]
    assert _audit_rows(path) == kept
    assert any("integrity_check ok" in step for step in report["steps"])
    assert any("VACUUM rebuilt" in step for step in report["steps"])


def test_a_new_database_is_made_for_incremental_vacuum(run_offline: Any) -> None:
    assert _sql(_db_path(run_offline), "PRAGMA auto_vacuum") == [(2,)]


def test_online_run_frees_pages_once_incremental_vacuum_is_on(run_offline: Any) -> None:
    path = _db_path(run_offline)
    with closing(sqlite3.connect(path, timeout=10)) as conn:
        # A file like those made before new files were incremental (the mode is set on the
        # connection and written by its VACUUM).
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
    first = _maintain(run_offline)  # auto_vacuum off: the free pages stay
    assert first["after"]["database"]["auto_vacuum"] == "none"
    assert any("--full" in step and "free page(s) kept" in step for step in first["steps"])
    _maintain(run_offline, "--full")  # switches incremental vacuum on, once

    _add_audit_rows(path, 3000)
    _sql(path, "DELETE FROM audit_event WHERE id % 3 != 0")
    kept = _audit_rows(path)
    size_full = path.stat().st_size

    report = _maintain(run_offline)

    freed = [step for step in report["steps"] if "incremental vacuum freed" in step]
    assert freed
    assert int(freed[0].split("freed ")[1].split(" ")[0]) > 300
    assert report["before"]["database"]["free_pages"] > 300
    assert report["after"]["database"]["free_pages"] == 0
    assert path.stat().st_size < size_full
    assert _audit_rows(path) == kept


def test_audit_retention_goes_through_the_audit_prune_rules(
    run_offline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _db_path(run_offline)
    _add_audit_rows(path, 5, age=dt.timedelta(days=40))
    _add_audit_rows(path, 2, age=dt.timedelta(days=40), action="admin:tenant.create")
    _add_audit_rows(path, 3, age=dt.timedelta(days=2))
    monkeypatch.setenv("ORDERDESK_MCP_AUDIT_RETENTION_DAYS", "30")

    report = _maintain(run_offline)

    assert "audit: deleted 5 tool-call event(s) older than 30 days" in report["steps"]
    actions = [row[2] for row in _audit_rows(path)]
    assert actions.count("get_order") == 3
    assert actions.count("admin:tenant.create") == 2  # operator actions are never pruned
    assert "admin:audit.prune" in actions  # the prune itself is on record, as `audit prune`


def test_cache_file_loses_expired_entries_and_keeps_fresh_ones(run_offline: Any) -> None:
    cache_path = Path(run_offline.data_dir) / "http-cache.sqlite"
    cache = ResponseCache(cache_path)
    headers = {"Content-Type": "application/json"}
    cache.store_replies(
        [
            (f"100001|https://x.test/api/v2/orders/{n}?|t", "https://x.test", b"{}")
            for n in range(50)
        ],
        ttl=3600,
        headers=headers,
    )
    cache.store_replies(
        [
            (f"100001|https://x.test/api/v2/orders/{n}?|old", "https://x.test", b"{}")
            for n in range(200)
        ],
        ttl=1,
        headers=headers,
    )
    _sql(cache_path, "UPDATE responses SET expires = 1 WHERE key LIKE '%|old'")  # long expired
    cache.close()

    report = _maintain(run_offline)

    assert "cache: expired entries deleted, 50 fresh entries kept" in report["steps"]
    assert _sql(cache_path, "SELECT count(*) FROM responses") == [(50,)]
    assert any(step.startswith("cache: quick_check ok") for step in report["steps"])
    full = _maintain(run_offline, "--full")
    assert full["after"]["cache"]["free_pages"] == 0
    assert full["after"]["cache"]["auto_vacuum"] == "incremental"


@pytest.mark.slow  # a real serve process on a prepared data dir
def test_full_refuses_while_a_server_runs_and_online_runs_beside_it(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    group = ServerGroup.prepare(tmp_path, sandbox)
    served = group.start_one()
    env = {**group.env, "ORDERDESK_MCP_PORT": str(served.port)}
    try:
        refused = subprocess.run(
            [*CLI, "db", "maintain", "--full"], env=env, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.startswith(
            "Error: refusing a full maintenance run while a server runs"
        )
        assert "Traceback" not in refused.stderr
        assert "db maintain` without --full" in refused.stderr

        online = subprocess.run(
            [*CLI, "db", "maintain", "--json"], env=env, capture_output=True, text=True, timeout=120
        )
        assert online.returncode == 0, online.stderr
        health = subprocess.run(
            ["curl", "-sf", f"{served.base}/health/ready"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert json.loads(health.stdout)["status"] == "ready"
    finally:
        group.stop_all()
    done = subprocess.run(
        [*CLI, "db", "maintain", "--full"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_full_refuses_while_a_fresh_heartbeat_row_exists(run_offline: Any) -> None:
    path = _db_path(run_offline)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _sql(
        path,
        "INSERT INTO server_heartbeat (server_id, hostname, pid, listen, version, started, "
        "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("other-host-1", "web-2", 4242, "10.0.0.2:8080", "1", now, now),
    )
    refused = run_offline("db", "maintain", "--full")
    assert refused.exit_code == 1
    assert "web-2 pid 4242" in refused.output
    assert "heartbeat" in refused.output

    stale = now - dt.timedelta(seconds=120)  # a process that died without deleting its row
    _sql(path, "UPDATE server_heartbeat SET last_seen = ?", (stale,))
    assert run_offline("db", "maintain", "--full").exit_code == 0


def test_status_reports_sizes_rows_and_job_outcomes(run_offline: Any) -> None:
    _add_audit_rows(_db_path(run_offline), 7)
    _maintain(run_offline)

    result = run_offline("db", "status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["schema_version"] == status["latest_version"]
    assert status["pending"] == []
    assert status["engine"] == "sqlite"
    database = status["database"]
    assert database["bytes"] == _db_path(run_offline).stat().st_size
    assert database["page_count"] * database["page_size"] == database["bytes"]
    assert database["free_pages"] >= 0
    assert status["rows"]["audit_event"] == 7
    assert status["rows"]["schema_version"] == status["latest_version"]
    maintain_job = status["jobs"]["maintain"]
    assert maintain_job["outcome"] == "ok"
    assert maintain_job["last_success"] == maintain_job["finished"]

    text = run_offline("db", "status")
    assert text.exit_code == 0
    assert (
        f"Schema version {status['latest_version']} of {status['latest_version']}." in text.output
    )
    assert "free, auto_vacuum incremental" in text.output
    assert "audit_event" in text.output
    assert "maintain" in text.output
    assert "online run" in text.output


def test_a_damaged_cache_file_stops_the_run_with_what_to_do(run_offline: Any) -> None:
    cache_path = Path(run_offline.data_dir) / "http-cache.sqlite"
    ResponseCache(cache_path).close()
    cache_path.write_bytes(b"this is not a database" * 100)

    result = run_offline("db", "maintain")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.startswith(f"Error: the cache {cache_path} is damaged")
    assert "delete the file" in result.output
    status = json.loads(run_offline("db", "status", "--json").output)
    assert status["jobs"]["maintain"]["outcome"] == "failed"


def test_postgresql_gets_vacuum_analyze(
    run: Any, monkeypatch: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database()
    monkeypatch.setenv("ORDERDESK_MCP_DATABASE_URL", url)
    monkeypatch.setenv("ORDERDESK_MCP_PORT", str(free_port()))
    assert run("init").exit_code == 0

    report = _maintain(run)
    assert report["engine"] == "postgresql"
    assert "database: VACUUM ANALYZE done" in report["steps"]
    assert report["after"]["database"]["bytes"] > 0
    full = _maintain(run, "--full")
    assert "database: VACUUM FULL ANALYZE done" in full["steps"]
    text = run("db", "status")
    assert text.exit_code == 0, text.output
    assert "dead rows" in text.output

    status = json.loads(run("db", "status", "--json").output)
    assert status["engine"] == "postgresql"
    assert status["database"]["dead_rows"] >= 0
    assert status["rows"]["schema_version"] == status["latest_version"]
    assert status["jobs"]["maintain"]["outcome"] == "ok"
