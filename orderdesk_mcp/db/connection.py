"""Opening the database named by the settings.

All models are bound to one `DatabaseProxy`; `open_database` points it at the real database.
Peewee keeps one connection per thread; the web app connects lazily per request and closes
in one teardown (see `init_app`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import peewee
from flask import Flask, request
from playhouse.db_url import connect

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
    db: peewee.Database = connect(url, **params)
    database.initialize(db)
    return db


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
