"""Opening the database named by the settings.

All models are bound to one `DatabaseProxy`; `open_database` points it at the real database.
Peewee keeps one connection per thread; the web app connects lazily per request and closes
in one teardown (see `init_app`). On PostgreSQL that close hands the connection back to a
small pool instead of ending it (see `POSTGRES_POOL`).

A PostgreSQL URL may carry a password: print or log it only through `redact_url`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse, urlsplit, urlunsplit

import peewee
from flask import Flask, request
from playhouse.db_url import connect
from playhouse.pool import PooledPostgresqlDatabase

from orderdesk_mcp.config import Settings

database = peewee.DatabaseProxy()

# WAL lets readers run beside the writer; NORMAL is durable under WAL except on power loss of
# the last transaction, the usual trade-off for a small service; busy_timeout waits for a lock
# instead of failing at once. auto_vacuum comes first: it only takes on a new, empty file
# (before WAL mode is set), and makes `db maintain` able to free pages while the server runs;
# on an older file it waits for the VACUUM of `db maintain --full` (maintenance.py).
SQLITE_PRAGMAS: dict[str, Any] = {
    "auto_vacuum": "incremental",
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
    "synchronous": "normal",
}


POSTGRES_SCHEMES = ("postgres", "postgresql")


@dataclass(frozen=True)
class PoolSizing:
    """How the PostgreSQL connection pool is sized: threads plus a few background workers."""

    # Housekeeping, heartbeat and scrape threads hold a connection of their own too.
    extra_connections: int = 4
    # A pooled connection older than this is closed and replaced (server-side timeouts,
    # a failed-over primary): five minutes, well under common idle limits.
    stale_seconds: int = 300
    # A request waits this long for a free connection before failing with a clear error.
    wait_seconds: int = 10
    # A statement waits this long for a row or table lock, then fails: the same 5 s SQLite's
    # busy_timeout gives, so a stuck admin transaction makes requests fail (and an audit row
    # that cannot be written refuses its write) instead of hanging every worker thread.
    lock_timeout_ms: int = 5000


POSTGRES_POOL = PoolSizing()


def is_postgres_url(url: str) -> bool:
    return url.split("://", 1)[0] in POSTGRES_SCHEMES


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`: safe to print and log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def scrub_password(text: str, url: str) -> str:
    """`text` (a driver's error message, say) with the URL's password masked wherever it
    appears: drivers may echo a DSN back."""
    password = urlsplit(url).password
    if not password:
        return text
    return text.replace(url, redact_url(url)).replace(password, "***")


def sqlite_path_from_url(url: str) -> Path | None:
    """The file behind a sqlite:// URL, or None for another database or an in-memory one."""
    parsed = urlparse(url)
    if not parsed.scheme.startswith("sqlite"):
        return None
    path = url.split("://", 1)[1][1:]
    if not path or path == ":memory:":
        return None
    return Path(path)


def open_database(settings: Settings) -> peewee.Database:
    """Connect the model proxy to the configured database and return it."""
    url = settings.effective_database_url
    params: dict[str, Any] = {}
    sqlite_path = sqlite_path_from_url(url)
    if url.startswith("sqlite"):
        params["pragmas"] = SQLITE_PRAGMAS
        params["timeout"] = 5
        if sqlite_path is not None:
            sqlite_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Create it private: it holds key hashes and sealed keys; SQLite's -wal and -shm
            # files copy the database file's mode.
            if not sqlite_path.exists():
                os.close(os.open(sqlite_path, os.O_WRONLY | os.O_CREAT, 0o600))
    if is_postgres_url(url):
        return _open_postgres(url, settings.threads)
    db: peewee.Database = connect(url, **params)
    database.initialize(db)
    return db


def close_database(db: peewee.Database) -> None:
    """Close this thread's connection and, for a pool, every idle pooled connection (a
    command or test that is done with the database leaves no server connection behind)."""
    if not db.is_closed():
        db.close()
    if isinstance(db, PooledPostgresqlDatabase):
        db.close_idle()


def _open_postgres(url: str, threads: int) -> peewee.Database:
    """A pooled PostgreSQL database: a request reuses a connection instead of opening one
    (a TCP + authentication round trip each; figures in docs/PERFORMANCE.md)."""
    db: peewee.Database = PooledPostgresqlDatabase(
        _postgres_database_name(url),
        max_connections=threads + POSTGRES_POOL.extra_connections,
        stale_timeout=POSTGRES_POOL.stale_seconds,
        timeout=POSTGRES_POOL.wait_seconds,
        **_postgres_connect_params(url),
    )
    database.initialize(db)
    return db


def postgres_database(url: str) -> peewee.PostgresqlDatabase:
    """A plain (unpooled, unbound) PostgreSQL database for a one-off job such as `db copy`."""
    return peewee.PostgresqlDatabase(_postgres_database_name(url), **_postgres_connect_params(url))


def _postgres_database_name(url: str) -> str | None:
    return unquote(urlsplit(url).path.lstrip("/")) or None


def _postgres_connect_params(url: str) -> dict[str, Any]:
    """psycopg2 connect() keywords from the URL: user, password, host, port and any query
    options (sslmode=require, connect_timeout=...)."""
    parts = urlsplit(url)
    params: dict[str, Any] = {}
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    if parts.hostname:
        params["host"] = parts.hostname
    if parts.port:
        params["port"] = parts.port
    params.update(parse_qsl(parts.query))
    params.setdefault("connect_timeout", 10)
    lock_timeout = f"-c lock_timeout={POSTGRES_POOL.lock_timeout_ms}"
    params["options"] = (
        f"{params['options']} {lock_timeout}" if "options" in params else lock_timeout
    )
    return params


def init_app(app: Flask) -> None:
    """Open the connection lazily per request; close it in one teardown unless it is SQLite.

    A SQLite connection stays open in its worker thread (peewee keeps one per thread): closing
    the last connection to a WAL database checkpoints and deletes the WAL file, which cost
    about 1 ms on every request (see docs/PERFORMANCE.md). Other databases close per request.
    """

    @app.before_request
    def _connect() -> None:
        # Health endpoints must answer (503 naming the fault) even when the database cannot
        # be opened; they query it themselves, inside their checks.
        if request.blueprint == "health":
            return
        database.connect(reuse_if_open=True)

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        if not isinstance(database.obj, peewee.SqliteDatabase) and not database.is_closed():
            database.close()
