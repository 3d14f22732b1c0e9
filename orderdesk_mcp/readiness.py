"""The readiness checks behind /health/ready: can this process do its work right now?

Each check tries the thing the service needs rather than trusting that it was set up once:
the database takes a write transaction, the disk has room, the reply cache takes a write
lock, and the master key opens a sealed store key. Every check is bounded (about a second at
most) and none calls Order Desk. On PostgreSQL the database check makes a write and rolls
it back. A failing check returns one sentence saying what is wrong
and what to do; it never carries a secret (the reasons are shown to loopback and the admin
token only, but they also go to the log).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import peewee

from orderdesk_mcp.config import Settings
from orderdesk_mcp.coordination.link import shared_link
from orderdesk_mcp.db.connection import (
    is_postgres_url,
    redact_url,
    scrub_password,
    sqlite_path_from_url,
)
from orderdesk_mcp.db.migrations import pending_migrations
from orderdesk_mcp.db.models import VaultCanary
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import VaultError
from orderdesk_mcp.vault_canary import CANARY_ROW_ID

# A request waits up to 5 s for the database lock (db/connection.py); readiness says
# "not ready" sooner, while a held lock would already be making requests slow.
DATABASE_LOCK_TIMEOUT = 1.0
_CACHE_LOCK_TIMEOUT = 0.5
_MEBIBYTE = 1024 * 1024
_NEWEST_STORE_SQL = (
    "SELECT s.id, s.sealed_api_key, t.id, t.kdf_salt FROM store AS s "
    "JOIN tenant AS t ON t.id = s.tenant_id ORDER BY s.id DESC LIMIT 1"
)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    error: str | None = None
    degraded: str | None = None
    """Ready, but working around a failure (what and how): /health/ready stays 200."""

    def as_json(self) -> dict[str, Any]:
        if not self.ok:
            return {"ok": False, "error": self.error}
        return {"ok": True, "degraded": self.degraded} if self.degraded else {"ok": True}


def take_write_lock(path: Path, timeout: float) -> None:
    """Begin and roll back a write transaction on a SQLite file; raises sqlite3 errors.

    BEGIN IMMEDIATE takes the same lock a writer needs, so it proves writes would get through
    without writing anything. Its own connection bounds the wait to `timeout`.
    """
    # mode=rw: a file that has gone missing is an error, not silently created empty.
    uri = f"file:{quote(str(path))}?mode=rw"
    with closing(sqlite3.connect(uri, timeout=timeout, isolation_level=None, uri=True)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")


def take_postgres_write(database: peewee.Database, timeout: float) -> None:
    """A write PostgreSQL accepts, rolled back: proves the server takes writes (not a read-only
    standby, not out of disk, no lock held on the row) within `timeout`."""
    milliseconds = int(timeout * 1000)
    with database.atomic() as transaction:
        # SET LOCAL: bounds apply to this transaction only, so the pooled connection keeps
        # its defaults afterwards.
        for statement in (
            # The lock wait is what usually stalls; the statement bound catches the rest.
            f"SET LOCAL lock_timeout = {milliseconds}",
            f"SET LOCAL statement_timeout = {2 * milliseconds}",
            "UPDATE schema_version SET name = name WHERE version = 1",
        ):
            database.execute_sql(statement)  # type: ignore[no-untyped-call]
        transaction.rollback()


def _check_postgres_writes(services: Services) -> CheckResult:
    url = services.settings.effective_database_url
    try:
        take_postgres_write(services.database, DATABASE_LOCK_TIMEOUT)
    except Exception as exc:  # any driver error means "not ready", with its reason
        reason = scrub_password(str(exc).strip().splitlines()[0] if str(exc) else "", url)
        return CheckResult(
            False,
            f"the PostgreSQL database {redact_url(url)} does not take writes ({reason}): is it "
            "a read-only standby, out of disk, or is a lock held? see the PostgreSQL log",
        )
    return CheckResult(True)


def check_database(services: Services) -> CheckResult:
    url = services.settings.effective_database_url
    try:
        pending = pending_migrations(services.database)
    except Exception as exc:  # any driver error means "not ready", with its reason
        return CheckResult(False, f"the database does not answer: {scrub_password(str(exc), url)}")
    if pending:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
        return CheckResult(False, f"pending migrations {names}; run `orderdesk-mcp db upgrade`")
    if is_postgres_url(url):
        return _check_postgres_writes(services)
    path = sqlite_path_from_url(url)
    if path is None:
        return CheckResult(True)  # another database server: the query above reached it
    try:
        take_write_lock(path, DATABASE_LOCK_TIMEOUT)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return CheckResult(
                False,
                f"the database {path} stayed write-locked for {DATABASE_LOCK_TIMEOUT:g} s: "
                "another process holds a write transaction open (a stuck admin command or "
                "a copy tool?); find it with `fuser` and stop it",
            )
        return CheckResult(False, f"the database {path} does not take writes: {exc}")
    except sqlite3.DatabaseError as exc:
        return CheckResult(False, f"the database {path} is unusable: {exc}")
    return CheckResult(True)


def check_cache_writable(cache_path: Path) -> CheckResult:
    if not cache_path.exists():
        directory = cache_path.parent
        if directory.is_dir() and _directory_writable(directory):
            return CheckResult(True)
        return CheckResult(False, f"the cache directory {directory} is missing or not writable")
    try:
        take_write_lock(cache_path, _CACHE_LOCK_TIMEOUT)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            return CheckResult(True)  # another thread is writing it right now
        return CheckResult(False, f"the cache database {cache_path} is not writable: {exc}")
    except sqlite3.DatabaseError as exc:
        return CheckResult(False, f"the cache database {cache_path} is unusable: {exc}")
    return CheckResult(True)


def _directory_writable(directory: Path) -> bool:
    probe = directory / f".health-probe-{time.monotonic_ns()}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return False
    probe.unlink(missing_ok=True)
    return True


def check_master_key(services: Services) -> CheckResult:
    """The loaded key opens the key canary; on a database without one yet, the newest sealed
    store key (no stores: nothing to open yet).

    A key that loads but is the wrong one (a different file, or a rotation while this
    process kept the old key) would otherwise fail only on the first tool call.
    """
    if services.vault is None:
        return CheckResult(
            False, "no master key loaded; see ORDERDESK_MCP_MASTER_KEY_FILE in docs/SETTINGS.md"
        )
    try:
        canary = VaultCanary.get_or_none(VaultCanary.id == CANARY_ROW_ID)
    except Exception:
        canary = None  # the database check names that failure
    if canary is not None:
        # The canary is what start-up checks and what a rotation reseals: one damaged store
        # row cannot make the whole server look unready.
        if services.vault.opens_canary(bytes(canary.sealed)):
            return CheckResult(True)
        return CheckResult(
            False,
            "the master key does not open this database's key canary (a key rotation while "
            "this server ran, or another key file): restart it with the current key",
        )
    try:
        row = services.database.execute_sql(_NEWEST_STORE_SQL).fetchone()  # type: ignore[no-untyped-call]
    except Exception:
        # The database check names that failure; this check judges only the key.
        return CheckResult(True)
    if row is None:
        return CheckResult(True)
    store_row_id, sealed, tenant_id, salt = row
    try:
        services.vault.open(
            bytes(sealed), tenant_salt=bytes(salt), tenant_id=tenant_id, store_row_id=store_row_id
        )
    except VaultError:
        return CheckResult(
            False,
            f"the master key does not open the sealed API key of store row {store_row_id}: "
            "this process runs with another key than the one that sealed it (was the key "
            "rotated or replaced while it ran?); restart the service with the current key",
        )
    return CheckResult(True)


def check_disk_space(services: Services) -> CheckResult:
    settings = services.settings
    minimum = settings.ready_min_free_mb
    directories = [settings.data_dir, settings.cache_path.parent]
    database_path = sqlite_path_from_url(settings.effective_database_url)
    if database_path is not None:
        directories.append(database_path.parent)
    for directory in dict.fromkeys(directories):  # in order, each once
        try:
            free_mb = shutil.disk_usage(directory).free // _MEBIBYTE
        except OSError as exc:
            return CheckResult(False, f"cannot read the free space of {directory}: {exc.strerror}")
        if free_mb < minimum:
            return CheckResult(
                False,
                f"only {free_mb} MB free on the disk of {directory}, under "
                f"ORDERDESK_MCP_READY_MIN_FREE_MB={minimum}; free space (old backups, "
                "journal logs) or grow the disk",
            )
    return CheckResult(True)


READINESS_CHECKS: dict[str, Callable[[Services], CheckResult]] = {
    "database": check_database,
    "cache": lambda services: check_cache_writable(services.settings.cache_path),
    "master_key": check_master_key,
    "disk_space": check_disk_space,
}


def check_redis(services: Services) -> CheckResult:
    """The server group's Redis answers a PING. An outage leaves the process ready but
    degraded: every process of the group shares this Redis, so a 503 would take all of them
    out of nginx at once, while each still answers safely on its local fallbacks."""
    link = shared_link(services.settings)
    if link is None:
        return CheckResult(True)
    if link.available():  # down: one try per breaker period, not one per probe
        link.ping()
    state = link.state()
    if state.up:
        return CheckResult(True)
    return CheckResult(
        True,
        degraded=f"Redis does not answer ({state.error}): this process serves on local "
        "fallbacks (its share of each store's Order Desk budget, its own rate-limit counts) "
        "and returns to Redis when it answers; check the Redis service and "
        "ORDERDESK_MCP_REDIS_URL",
    )


def readiness_checks(settings: Settings) -> dict[str, Callable[[Services], CheckResult]]:
    """READINESS_CHECKS, plus the Redis check for a server group (ORDERDESK_MCP_REDIS_URL)."""
    if settings.redis_url is None:
        return READINESS_CHECKS
    return {**READINESS_CHECKS, "redis": check_redis}
