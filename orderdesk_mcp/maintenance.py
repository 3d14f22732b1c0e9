"""Database upkeep (`db maintain [--full]`) and what the files look like (`db status`).

The online run is safe beside a running server: every step is short or done in slices, so
the server's writers wait milliseconds, not minutes.

SQLite only returns deleted pages to the disk through VACUUM (rewrites the whole file, so
offline only: `--full`) or, when the file was made with ``auto_vacuum=INCREMENTAL``, through
``PRAGMA incremental_vacuum`` (online, a few pages at a time). Existing files have
auto_vacuum off and that mode can only be switched on by one VACUUM; `--full` does that, so
after one offline run every later weekly run frees pages online too. Until then the online
run reports the free pages and says so.

The reply cache file gets the same treatment after its expired entries are deleted. On
PostgreSQL the equivalent is ``VACUUM ANALYZE`` (``VACUUM FULL ANALYZE`` with `--full`, which
locks every table while it runs, so it is refused while a server runs).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import peewee

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.backup import integrity_problems
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import sqlite_path_from_url
from orderdesk_mcp.db.migrations import LATEST_VERSION, current_version, pending_migrations
from orderdesk_mcp.db.models import utcnow
from orderdesk_mcp.jobs import newest_outcomes, record_job
from orderdesk_mcp.mcp.audit import prune_audit_events
from orderdesk_mcp.orderdesk.cache import ResponseCache

log = logging.getLogger(__name__)

JOB_KIND = "maintain"

INCREMENTAL_VACUUM_PAGES = 500
"""Pages freed per incremental_vacuum slice (2 MB at 4 KiB pages): each slice holds the
write lock briefly, so the server's writes interleave."""

PAUSE_BETWEEN_SLICES = 0.1
"""Seconds the write lock stays free after each slice. SQLite's lock is not fair: a waiting
writer retries after sleeps of up to 100 ms, so back-to-back slices would starve it for the
whole run (a 700 ms stall measured; docs/PERFORMANCE.md)."""

ANALYSIS_LIMIT = 1000
"""Rows ANALYZE samples per index: enough for the planner, bounded on a large audit table."""

_DAMAGE_ADVICE = {
    "database": "stop the server and restore the newest backup (docs/DEPLOYMENT.md, section 7)",
    "cache": "stop the server and delete the file (it only holds cached Order Desk replies)",
}

_POSTGRES_SIZE_SQL = (
    "SELECT pg_database_size(current_database()), "
    "(SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables)"
)

AUTO_VACUUM_MODES = {0: "none", 1: "full", 2: "incremental"}
_INCREMENTAL = 2


class MaintenanceError(Exception):
    """Maintenance cannot run or found damage; the message says why and what to do."""


@dataclass(frozen=True)
class SqliteFileStats:
    """Sizes of one SQLite file and its write-ahead log."""

    path: str
    bytes: int
    wal_bytes: int
    page_size: int
    page_count: int
    free_pages: int
    auto_vacuum: str


@dataclass
class MaintenanceReport:
    """What `db maintain` did: one plain line per step, and sizes before and after."""

    engine: str
    full: bool
    steps: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# --- looking at SQLite files ------------------------------------------------------------


@contextmanager
def _open_sqlite(path: Path, timeout: float = 10) -> Iterator[sqlite3.Connection]:
    # mode=rw: a missing file is an error here, never silently created empty.
    uri = f"file:{quote(str(path))}?mode=rw"
    with closing(sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)) as conn:
        yield conn


def _pragma(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def sqlite_file_stats(path: Path) -> SqliteFileStats:
    wal = Path(f"{path}-wal")
    with _open_sqlite(path) as conn:
        page_size = _pragma(conn, "page_size")
        page_count = _pragma(conn, "page_count")
        free_pages = _pragma(conn, "freelist_count")
        auto_vacuum = AUTO_VACUUM_MODES.get(_pragma(conn, "auto_vacuum"), "unknown")
    return SqliteFileStats(
        path=str(path),
        bytes=path.stat().st_size,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        page_size=page_size,
        page_count=page_count,
        free_pages=free_pages,
        auto_vacuum=auto_vacuum,
    )


def _free_pages_online(conn: sqlite3.Connection) -> int:
    """Give free pages back to the disk in slices; returns how many (incremental mode only)."""
    if _pragma(conn, "auto_vacuum") != _INCREMENTAL:
        return 0
    freed = 0
    while (free := _pragma(conn, "freelist_count")) > 0:
        # executescript steps the pragma to the end; execute() steps it once, which frees
        # a single page per write transaction (50 s instead of 1 s on 100 MB of free pages).
        conn.executescript(f"PRAGMA incremental_vacuum({INCREMENTAL_VACUUM_PAGES});")
        now_free = _pragma(conn, "freelist_count")
        freed += free - now_free
        if now_free >= free:
            break  # nothing moved (another writer keeps reusing them): stop, never spin
        if now_free:
            time.sleep(PAUSE_BETWEEN_SLICES)
    return freed


def _rebuild(conn: sqlite3.Connection) -> None:
    """VACUUM into a file with incremental auto-vacuum, so later online runs can free pages."""
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")


def _checkpoint(conn: sqlite3.Connection, *, truncate: bool) -> str:
    # PASSIVE never waits for the server's readers or writers; TRUNCATE (offline) empties the
    # -wal file too.
    busy, log_frames, done = conn.execute(
        f"PRAGMA wal_checkpoint({'TRUNCATE' if truncate else 'PASSIVE'})"
    ).fetchone()
    if log_frames < 0:
        return "not in WAL mode"
    if busy:
        return (
            f"{done} of {log_frames} WAL frames copied back (the server is busy; it finishes later)"
        )
    return f"{done} of {log_frames} WAL frames copied back"


def _maintain_sqlite_file(path: Path, label: str, *, full: bool, report: MaintenanceReport) -> None:
    with _open_sqlite(path) as conn:
        conn.execute("PRAGMA busy_timeout = 10000")
        problems = integrity_problems(conn, thorough=full)
        if problems:
            raise MaintenanceError(
                f"the {label} {path} is damaged ({'; '.join(problems[:3])}); nothing was "
                f"changed: {_DAMAGE_ADVICE[label]}"
            )
        report.steps.append(f"{label}: {'integrity_check' if full else 'quick_check'} ok")
        if full:
            _rebuild(conn)
            report.steps.append(f"{label}: VACUUM rebuilt the file (auto_vacuum=incremental)")
        else:
            freed = _free_pages_online(conn)
            if _pragma(conn, "auto_vacuum") == _INCREMENTAL:
                report.steps.append(f"{label}: incremental vacuum freed {freed} page(s)")
            else:
                free = _pragma(conn, "freelist_count")
                report.steps.append(
                    f"{label}: {free} free page(s) kept in the file (auto_vacuum is off; run "
                    "`orderdesk-mcp db maintain --full` once with the server stopped to switch "
                    "on incremental vacuum)"
                )
        conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
        conn.execute("ANALYZE")
        report.steps.append(f"{label}: ANALYZE refreshed the query planner's statistics")
        report.steps.append(f"{label}: checkpoint: {_checkpoint(conn, truncate=full)}")


# --- the steps --------------------------------------------------------------------------


def _prune_audit(settings: Settings, report: MaintenanceReport) -> None:
    days = settings.audit_retention_days
    if days == 0:
        report.steps.append("audit: kept everything (ORDERDESK_MCP_AUDIT_RETENTION_DAYS is 0)")
        return
    result = prune_audit_events(utcnow() - dt.timedelta(days=days))
    if result.deleted:
        record_admin_action(
            "audit.prune", details={"older_than": f"{days}d", "deleted": result.deleted}
        )
    report.steps.append(
        f"audit: deleted {result.deleted} tool-call event(s) older than {days} days"
    )


def _maintain_cache(settings: Settings, *, full: bool, report: MaintenanceReport) -> None:
    path = settings.cache_path
    if not path.exists():
        report.steps.append("cache: no cache file yet")
        return
    try:
        cache = ResponseCache(path)  # drops an old-format file's rows and expired entries
        try:
            entries = cache.count()
            cache.prune_expired()
        finally:
            cache.close()
    except sqlite3.DatabaseError as exc:
        raise MaintenanceError(
            f"the cache {path} is damaged ({exc}): {_DAMAGE_ADVICE['cache']}"
        ) from None
    report.steps.append(f"cache: expired entries deleted, {entries} fresh entries kept")
    _maintain_sqlite_file(path, "cache", full=full, report=report)


def _sizes(settings: Settings, db: peewee.Database) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    database_path = sqlite_path_from_url(settings.effective_database_url)
    if database_path is not None:
        sizes["database"] = asdict(sqlite_file_stats(database_path))
    elif isinstance(db, peewee.PostgresqlDatabase):
        row = db.execute_sql(_POSTGRES_SIZE_SQL).fetchone()  # type: ignore[no-untyped-call]
        # Dead rows are PostgreSQL's free pages: space VACUUM makes reusable.
        sizes["database"] = {"bytes": int(row[0]), "dead_rows": int(row[1])}
    if settings.cache_path.exists():
        try:
            sizes["cache"] = asdict(sqlite_file_stats(settings.cache_path))
        except sqlite3.DatabaseError as exc:  # reported, and the database is still looked after
            sizes["cache"] = {"path": str(settings.cache_path), "error": str(exc)}
    return sizes


def _vacuum_postgres(db: peewee.Database, *, full: bool, report: MaintenanceReport) -> None:
    # Peewee runs PostgreSQL connections in autocommit mode, so outside `atomic()` this is
    # not inside a transaction block, as VACUUM requires.
    if db.in_transaction():
        raise MaintenanceError("VACUUM cannot run inside a transaction")
    statement = "VACUUM FULL ANALYZE" if full else "VACUUM ANALYZE"
    db.execute_sql(statement)  # type: ignore[no-untyped-call]
    report.steps.append(f"database: {statement} done")


def maintain(settings: Settings, db: peewee.Database, *, full: bool) -> MaintenanceReport:
    """Run the upkeep and record its outcome as a `maintain` job (also when it fails).

    `db` is open and migrated. With `full`, the caller holds the server lock and has checked
    `backup.running_server_reason` (which also reads the group's heartbeat rows).
    """
    engine = "postgresql" if isinstance(db, peewee.PostgresqlDatabase) else "sqlite"
    report = MaintenanceReport(engine=engine, full=full)
    started = utcnow()
    try:
        report.before = _sizes(settings, db)
        _prune_audit(settings, report)
        database_path = sqlite_path_from_url(settings.effective_database_url)
        if database_path is not None:
            _maintain_sqlite_file(database_path, "database", full=full, report=report)
        elif engine == "postgresql":
            _vacuum_postgres(db, full=full, report=report)
        _maintain_cache(settings, full=full, report=report)
        report.after = _sizes(settings, db)
    except (MaintenanceError, sqlite3.Error, peewee.DatabaseError, OSError) as exc:
        detail = str(exc) if isinstance(exc, MaintenanceError) else f"maintenance failed: {exc}"
        _record_failure(db, started, detail)
        if isinstance(exc, MaintenanceError):
            raise
        raise MaintenanceError(
            f"{detail}; nothing was lost (each step commits on its own); run it again, and "
            "if it keeps failing check `orderdesk-mcp db status` and the disk"
        ) from None
    before, after = _total_bytes(report.before), _total_bytes(report.after)
    record_job(
        db,
        JOB_KIND,
        ok=True,
        started=started,
        detail=f"{'full' if full else 'online'} run: {before} -> {after} bytes",
        size_bytes=after,
    )
    return report


def file_bytes(stats: dict[str, Any]) -> int:
    """A file's bytes with its WAL, from one entry of the sizes dict."""
    return int(stats.get("bytes", 0)) + int(stats.get("wal_bytes", 0))


def _record_failure(db: peewee.Database, started: dt.datetime, detail: str) -> None:
    try:
        record_job(db, JOB_KIND, ok=False, started=started, detail=detail)
    except (sqlite3.Error, peewee.DatabaseError):
        # A database too broken to take the row: the error itself still reaches the operator
        # (and the timer unit fails), so monitoring sees the failed unit instead.
        log.warning("the failed maintenance run could not be recorded", exc_info=True)


def _total_bytes(sizes: dict[str, Any]) -> int:
    return sum(file_bytes(part) for part in sizes.values())


# --- db status --------------------------------------------------------------------------


def _row_counts(db: peewee.Database) -> dict[str, int]:
    counts = {}
    for name in db.get_tables():
        if name.startswith("sqlite_"):
            continue
        # Names come from the database's own catalogue, never from input; quoted anyway.
        row = db.execute_sql(f'SELECT count(*) FROM "{name}"').fetchone()  # type: ignore[no-untyped-call]  # noqa: S608
        counts[name] = int(row[0])
    return counts


def _job_outcomes(db: peewee.Database) -> dict[str, Any]:
    if "job_run" not in db.get_tables():
        return {}  # schema older than migration 5
    result: dict[str, Any] = {}
    for kind, (newest, newest_ok) in sorted(newest_outcomes(db).items()):
        result[kind] = {
            "outcome": newest.outcome if newest else None,
            "finished": newest.finished if newest else None,
            "detail": newest.detail if newest else None,
            "last_success": newest_ok.finished if newest_ok else None,
            "size_bytes": newest_ok.size_bytes if newest_ok else None,
        }
    return result


def database_status(settings: Settings, db: peewee.Database) -> dict[str, Any]:
    """Schema version, file sizes and free pages, rows per table, newest job outcomes."""
    pending = [f"{m.version:04d}_{m.name}" for m in pending_migrations(db)]
    return {
        "engine": "postgresql" if isinstance(db, peewee.PostgresqlDatabase) else "sqlite",
        "schema_version": current_version(db),
        "latest_version": LATEST_VERSION,
        "pending": pending,
        **_sizes(settings, db),
        "rows": _row_counts(db),
        "jobs": _job_outcomes(db),
    }
