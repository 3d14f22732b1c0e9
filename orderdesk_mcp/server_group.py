"""Who is serving: one heartbeat row per running `serve` process, on any host.

Several serve processes (and, on PostgreSQL, several hosts) form one server group. The data
dir's lock only shows the processes of this host; the `server_heartbeat` rows show all of
them, so `backup restore` and `rotate-master-key` can refuse while any of them is live.

Each serve process writes its row when it starts, refreshes `last_seen` from a daemon thread
every few seconds (never per request) and deletes the row at a clean stop. A process killed
outright leaves its row behind; once `last_seen` is older than `STALE_AFTER_SECONDS` the row
counts for nothing (and the next process to start deletes it).

`group_size()` is the number of live servers as the heartbeat thread last counted it, for the
per-process share of a budget the group would otherwise share (1 outside `serve`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from types import TracebackType

import peewee
from playhouse.db_url import connect

from orderdesk_mcp import __version__
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import is_postgres_url, postgres_database, sqlite_path_from_url
from orderdesk_mcp.db.models import ServerHeartbeat, utcnow

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS = 5.0
# Six missed beats: long enough for a busy SQLite writer or a short database outage, short
# enough that an operator who just killed a process waits half a minute, not longer. Hosts
# judge each other's rows by their own clocks, so keep them in sync (NTP) to well under this.
STALE_AFTER_SECONDS = 30.0


@dataclass(frozen=True)
class ServerIdentity:
    """What a heartbeat row says about its process."""

    server_id: str
    hostname: str
    pid: int
    listen: str
    version: str

    @classmethod
    def of_this_process(cls, listen: str) -> ServerIdentity:
        return cls(
            server_id=secrets.token_hex(8),
            hostname=socket.gethostname(),
            pid=os.getpid(),
            listen=listen,
            version=__version__,
        )


def register(db: peewee.Database, identity: ServerIdentity) -> None:
    """Write this process's row, and drop rows that went stale long ago (killed processes)."""
    now = utcnow()
    with db.bind_ctx([ServerHeartbeat]), db.atomic():
        ServerHeartbeat.delete().where(
            ServerHeartbeat.last_seen < now - dt.timedelta(seconds=STALE_AFTER_SECONDS)
        ).execute()
        ServerHeartbeat.insert(
            server_id=identity.server_id,
            hostname=identity.hostname,
            pid=identity.pid,
            listen=identity.listen,
            version=identity.version,
            started=now,
            last_seen=now,
        ).execute()


def refresh(db: peewee.Database, identity: ServerIdentity) -> None:
    """Move `last_seen` to now; rewrite the row if something removed it."""
    with db.bind_ctx([ServerHeartbeat]):
        updated = (
            ServerHeartbeat.update(last_seen=utcnow())
            .where(ServerHeartbeat.server_id == identity.server_id)
            .execute()
        )
    if not updated:
        register(db, identity)


def unregister(db: peewee.Database, server_id: str) -> None:
    with db.bind_ctx([ServerHeartbeat]):
        ServerHeartbeat.delete().where(ServerHeartbeat.server_id == server_id).execute()


def live_servers(
    db: peewee.Database, now: dt.datetime | None = None, stale_after: float = STALE_AFTER_SECONDS
) -> list[ServerHeartbeat]:
    """The rows refreshed within `stale_after` seconds of `now` (naive UTC), oldest first."""
    cutoff = (now or utcnow()) - dt.timedelta(seconds=stale_after)
    with db.bind_ctx([ServerHeartbeat]):
        return list(
            ServerHeartbeat.select()
            .where(ServerHeartbeat.last_seen >= cutoff)
            .order_by(ServerHeartbeat.started, ServerHeartbeat.server_id)
        )


def describe(row: ServerHeartbeat, now: dt.datetime | None = None) -> str:
    age = max(0, round(((now or utcnow()) - row.last_seen).total_seconds()))
    listen = f", listening on {row.listen}" if row.listen else ""
    return f"host {row.hostname} pid {row.pid}{listen}, last heartbeat {age} s ago"


def live_server_reason(settings: Settings) -> str | None:
    """A sentence naming the live servers of the group (any host), or None.

    Opens its own connection, so it neither needs nor disturbs the CLI's database handle. A
    database that does not exist yet, or predates the heartbeat table, has no live server; a
    shared (non-SQLite) database that cannot be read is a reason to refuse, not a "no".
    """
    url = settings.effective_database_url
    sqlite_path = sqlite_path_from_url(url)
    if url.startswith("sqlite") and (sqlite_path is None or not sqlite_path.exists()):
        return None
    # PostgreSQL through the project's own parameters (connect_timeout, lock_timeout): an
    # unreachable host then fails in seconds, as everywhere else, instead of hanging.
    db = postgres_database(url) if is_postgres_url(url) else connect(url)
    now = utcnow()
    try:
        if not db.table_exists(ServerHeartbeat._meta.table_name):
            return None  # a schema older than the heartbeat table: no server of a group
        rows = live_servers(db, now)
    except peewee.DatabaseError as error:
        if sqlite_path is not None:
            # One host only, whose servers the data dir's lock (checked before this) shows;
            # a damaged file is what many restores are for, so it must not block them.
            return None
        # A shared database is the only view of servers on other hosts: when it cannot be
        # read, a live one cannot be ruled out. The class name only: the URL holds a password.
        return (
            f"the server group's heartbeat rows cannot be read ({type(error).__name__}), so "
            "servers on other hosts may be live; check that the database answers, then retry"
        )
    finally:
        db.close()
    if not rows:
        return None
    shown = "; ".join(describe(row, now) for row in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"{len(rows)} server(s) of the group are live: {shown}{more}"


# --- the heartbeat thread of a serve process ---------------------------------------------

_live_count = 1
_counted = False


def group_size() -> int:
    """Live servers of the group as last counted by this process's heartbeat (at least 1).

    No database work: it reads what the heartbeat thread stored, so it is cheap per call.
    """
    return max(1, _live_count)


def counted_group_size() -> int | None:
    """`group_size()` once this process's heartbeat has counted the group; None before (or
    in a process without a heartbeat), when a caller must assume a size of its own."""
    return group_size() if _counted else None


class Heartbeat:
    """This process's row: written by `start`, refreshed by a daemon thread, deleted by
    `stop` (a SIGKILL leaves it to go stale). Also a context manager."""

    def __init__(
        self,
        db: peewee.Database,
        identity: ServerIdentity,
        interval: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        self.db = db
        self.identity = identity
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-heartbeat", daemon=True)
        self._failing = False

    def start(self) -> None:
        # A database hiccup at start must not stop the server: the thread writes the row
        # at its next beat (refresh re-registers a missing row).
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and delete the row; nothing to do if `start` never ran."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(timeout=max(5.0, self.interval * 2))
        try:
            unregister(self.db, self.identity.server_id)
        except peewee.DatabaseError as error:
            log.warning("could not remove this server's heartbeat row (%s); it goes stale", error)

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._beat()
        finally:
            self.db.close()  # this thread's own connection (peewee keeps one per thread)

    def _beat(self) -> None:
        try:
            refresh(self.db, self.identity)
            self._count()
        except peewee.DatabaseError as error:
            # One line per episode: a database outage must not flood the log every 5 s.
            if not self._failing:
                log.warning("heartbeat could not be written (%s); retrying", error)
            self._failing = True
            return
        if self._failing:
            log.info("heartbeat written again")
        self._failing = False

    def _count(self) -> None:
        global _live_count, _counted
        _live_count = len(live_servers(self.db))
        _counted = True
