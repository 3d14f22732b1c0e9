"""Backups of a PostgreSQL database with pg_dump / pg_restore, in the usual backup archive.

The archive is the same `orderdesk-mcp-<UTC time>.tar.gz` with `manifest.json` (engine
"postgresql") beside `orderdesk-mcp.pgdump`, a `pg_dump -Fc` custom-format dump. The row
counts in the manifest and the dump come from one snapshot: a repeatable-read transaction
exports its snapshot and pg_dump runs inside it (`--snapshot`), so servers may keep writing.

The password never reaches a command line (other users may read /proc/*/cmdline): every
connection detail goes to pg_dump and pg_restore through libpq's environment variables
(PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE...).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee

from orderdesk_mcp.db.connection import postgres_database, redact_url, scrub_password
from orderdesk_mcp.db.migrations import LATEST_VERSION, current_version

ENGINE = "postgresql"
DUMP_NAME = "orderdesk-mcp.pgdump"
# libpq environment variables for the URL's query options (postgresql://...?sslmode=require).
_QUERY_TO_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}
_TOOL_SECONDS = 3600
_VERSION_RE = re.compile(r"\(PostgreSQL\) (\d+)")


class PostgresBackupError(Exception):
    """pg_dump/pg_restore cannot do the job; the message says why and what to do."""


@dataclass(frozen=True)
class Snapshot:
    """What a backup records about the database: taken from the dump's own snapshot."""

    schema_version: int
    tables: dict[str, int]


def libpq_environment(url: str) -> dict[str, str]:
    """This process's environment plus the URL's connection details as libpq variables."""
    parts = urlsplit(url)
    env = dict(os.environ)
    pieces = {
        "PGHOST": parts.hostname,
        "PGPORT": str(parts.port) if parts.port else None,
        "PGUSER": unquote(parts.username) if parts.username else None,
        "PGPASSWORD": unquote(parts.password) if parts.password else None,
        "PGDATABASE": unquote(parts.path.lstrip("/")) or None,
    }
    env.update({name: value for name, value in pieces.items() if value})
    for option, value in parse_qsl(parts.query):
        if option in _QUERY_TO_ENV:
            env[_QUERY_TO_ENV[option]] = value
    return env


def find_tool(name: str, server_major: int | None = None) -> Path:
    """`pg_dump`/`pg_restore`: Debian's versioned binary for the server's major version if
    installed, else the newest one, else the one on PATH."""
    versioned = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    matching = [path for path in versioned if path.parts[-3] == str(server_major)]
    if matching:
        return matching[0]
    if versioned:
        return versioned[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise PostgresBackupError(
            f"{name} is not installed; install the PostgreSQL client tools "
            "(Debian: apt install postgresql-client)"
        )
    return Path(on_path)


def tool_major(tool: Path) -> int:
    # The tool path comes from find_tool (fixed directories or PATH), never from input.
    done = subprocess.run(  # noqa: S603
        [str(tool), "--version"], capture_output=True, text=True, timeout=30
    )
    match = _VERSION_RE.search(done.stdout)
    if match is None:
        raise PostgresBackupError(f"cannot tell the version of {tool} ({done.stdout.strip()!r})")
    return int(match.group(1))


def server_major(database: peewee.Database) -> int:
    row = database.execute_sql("SHOW server_version_num").fetchone()  # type: ignore[no-untyped-call]
    return int(row[0]) // 10000


def require_fitting_tool(tool: Path, server: int) -> None:
    """pg_dump refuses servers newer than itself: say so before it fails half-way."""
    major = tool_major(tool)
    if major < server:
        raise PostgresBackupError(
            f"{tool} is PostgreSQL {major}, older than the server's PostgreSQL {server}: "
            f"pg_dump must be at least the server's version; install postgresql-client-{server}"
        )


def _run(tool: Path, args: list[str], url: str, what: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(  # noqa: S603
            [str(tool), *args],
            env=libpq_environment(url),
            capture_output=True,
            text=True,
            timeout=_TOOL_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise PostgresBackupError(f"{what} did not finish within {_TOOL_SECONDS} s") from None
    if done.returncode != 0:
        lines = scrub_password(done.stderr.strip(), url).splitlines()
        # The first "error:" line names the cause; later ones repeat the failed command.
        errors = [line for line in lines if "error:" in line] or lines or ["no output"]
        raise PostgresBackupError(f"{what} failed on {redact_url(url)}: {errors[0]}")
    return done


def _table_names(database: peewee.Database) -> list[str]:
    return sorted(database.get_tables())


def _read_snapshot(database: peewee.Database) -> Snapshot:
    tables = {
        # Names come from the catalogue itself, never from input.
        name: int(database.execute_sql(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # type: ignore[no-untyped-call]  # noqa: S608
        for name in _table_names(database)
    }
    return Snapshot(schema_version=current_version(database), tables=tables)


@contextmanager
def exported_snapshot(database: peewee.Database) -> Iterator[tuple[str, Snapshot]]:
    """A repeatable-read transaction held open: its exported snapshot id (for pg_dump) and
    the schema version and row counts as that snapshot sees them."""
    with database.atomic():
        database.execute_sql(  # type: ignore[no-untyped-call]
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        )
        snapshot_id = database.execute_sql("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[no-untyped-call]
        yield str(snapshot_id), _read_snapshot(database)


def dump_database(url: str, target: Path) -> Snapshot:
    """`pg_dump -Fc` of the database at `url` into `target`; the snapshot it saw."""
    database = postgres_database(url)
    try:
        database.connect()
        tool = find_tool("pg_dump", server_major(database))
        require_fitting_tool(tool, server_major(database))
        with exported_snapshot(database) as (snapshot_id, snapshot):
            _run(
                tool,
                ["--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot_id}",
                 f"--file={target}"],
                url,
                "pg_dump",
            )  # fmt: skip
    except peewee.DatabaseError as exc:
        raise PostgresBackupError(
            f"cannot read the database {redact_url(url)}: {scrub_password(str(exc), url)}"
        ) from None
    finally:
        database.close()
    return snapshot


def dump_tables(dump: Path) -> set[str]:
    """The tables whose data the dump holds (its table of contents, via `pg_restore -l`)."""
    tool = find_tool("pg_restore")
    done = subprocess.run(  # noqa: S603
        [str(tool), "--list", str(dump)], capture_output=True, text=True, timeout=_TOOL_SECONDS
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()
        raise PostgresBackupError(
            f"the dump cannot be read by pg_restore ({reason[-1] if reason else 'no output'})"
        )
    tables = set()
    for line in done.stdout.splitlines():
        # e.g. "3375; 0 16390 TABLE DATA public tenant postgres"
        if line.startswith(";") or " TABLE DATA " not in line:
            continue
        fields = line.split(" TABLE DATA ", 1)[1].split()
        if len(fields) >= 2:
            tables.add(fields[1])
    return tables


def check_dump(dump: Path, tables: dict[str, int], schema_version: int) -> None:
    """The dump is readable and holds the data of every table its manifest counts."""
    missing = sorted(set(tables) - dump_tables(dump))
    if missing:
        raise PostgresBackupError(f"the dump lacks the data of {', '.join(missing)}")
    if schema_version > LATEST_VERSION:
        raise PostgresBackupError(
            f"the dump has schema version {schema_version}, newer than this release knows "
            f"({LATEST_VERSION}); restore it with the release that made it"
        )


def restore_dump(url: str, dump: Path, keep_dir: Path) -> Path:
    """Replace the database's tables with the dump's, in one transaction, after keeping a
    dump of the current contents in `keep_dir`; returns the kept dump. (The caller then
    applies pending migrations: a backup of an older release.)

    `pg_restore --clean` cannot drop a table that a newer table (absent from the dump)
    still references, so the restore is one psql script instead: drop every current table,
    then the dump's SQL, all under --single-transaction (a failure changes nothing).
    """
    database = postgres_database(url)
    try:
        database.connect()
        major = server_major(database)
        tables = _table_names(database)
    except peewee.DatabaseError as exc:
        raise PostgresBackupError(
            f"cannot connect to {redact_url(url)}: {scrub_password(str(exc), url)}"
        ) from None
    finally:
        database.close()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    keep_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept = keep_dir / f"orderdesk-mcp.replaced-{stamp}.pgdump"
    dump_database(url, kept)
    os.chmod(kept, 0o600)
    with tempfile.TemporaryDirectory(prefix="orderdesk-mcp-restore-") as work:
        body = Path(work) / "dump.sql"
        _run(
            find_tool("pg_restore", major),
            ["--no-owner", "--no-privileges", f"--file={body}", str(dump)],
            url,
            "pg_restore",
        )
        script = Path(work) / "restore.sql"
        with script.open("w") as out:
            if tables:
                # Names come from the catalogue itself, never from input.
                listed = ", ".join(f'public."{name}"' for name in tables)
                out.write(f"DROP TABLE IF EXISTS {listed} CASCADE;\n")
            with body.open() as dumped:
                shutil.copyfileobj(dumped, out)
        _run(
            find_tool("psql", major),
            ["-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1", f"--file={script}"],
            url,
            "the restore (psql)",
        )
    return kept
