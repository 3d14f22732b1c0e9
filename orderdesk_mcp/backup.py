"""Backups of the orderdesk-mcp database: create, verify, restore, prune.

A backup is one file, `orderdesk-mcp-<UTC time>.tar.gz`, holding `manifest.json` and
`orderdesk-mcp.db`. The copy is taken with SQLite's online backup API in one step, so it is
a consistent snapshot even while the server writes. The HTTP cache is not backed up (it
refills itself) and neither is the master key: the database holds store API keys only as
ciphertext, so a backup is useless without the key, which must be backed up separately.

Restore refuses while a server uses the data dir. A running server holds an exclusive
`flock` on `<data dir>/server.lock` (see `hold_server_lock`; the kernel releases it when the
process dies, so a crash never leaves a stale lock), and restore also asks
`http://<host>:<port>/health` in case a server runs without the lock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import peewee

from orderdesk_mcp import __version__, backup_postgres
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import (
    SQLITE_PRAGMAS,
    is_postgres_url,
    postgres_database,
    redact_url,
    sqlite_path_from_url,
)
from orderdesk_mcp.db.migrations import LATEST_VERSION, apply_migrations, current_version
from orderdesk_mcp.server_group import live_server_reason

DEFAULT_KEEP = 14
MANIFEST_NAME = "manifest.json"
DATABASE_NAME = "orderdesk-mcp.db"
MANIFEST_FORMAT = 1
SERVER_LOCK_NAME = "server.lock"
_BACKUP_NAME_RE = re.compile(r"^orderdesk-mcp-(\d{8}T\d{6}\.\d{6}Z)\.tar\.gz$")
_NAME_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_HEALTH_PROBE_SECONDS = 2.0


class BackupError(Exception):
    """A backup cannot be made, read, verified or restored; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    """What a backup promises about the database inside it."""

    format: int
    created: str
    app_version: str
    schema_version: int
    tables: dict[str, int]
    database_sha256: str
    database_bytes: int
    # "sqlite" (member orderdesk-mcp.db) or "postgresql" (orderdesk-mcp.pgdump, pg_dump -Fc);
    # manifests written before PostgreSQL support have no engine: SQLite.
    engine: str = "sqlite"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
            manifest = cls(
                format=int(data["format"]),
                created=str(data["created"]),
                app_version=str(data["app_version"]),
                schema_version=int(data["schema_version"]),
                tables={str(k): int(v) for k, v in dict(data["tables"]).items()},
                database_sha256=str(data["database_sha256"]),
                database_bytes=int(data["database_bytes"]),
                engine=str(data.get("engine", "sqlite")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"the backup's manifest is not readable ({exc})") from None
        if manifest.format != MANIFEST_FORMAT:
            raise BackupError(
                f"the backup's manifest has format {manifest.format}; this release reads "
                f"format {MANIFEST_FORMAT}"
            )
        return manifest


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created: dt.datetime  # naive UTC, from the file name

    @property
    def age_seconds(self) -> float:
        return (dt.datetime.now(dt.UTC).replace(tzinfo=None) - self.created).total_seconds()


@dataclass(frozen=True)
class CreateResult:
    path: Path
    manifest: Manifest
    pruned: list[Path]


@dataclass(frozen=True)
class RestoreResult:
    restored_from: Path
    database: Path | str  # the SQLite file, or the PostgreSQL URL without its password
    replaced: Path | None
    migrations_applied: list[str]
    schema_version: int


# --- where things are -------------------------------------------------------------------


def database_file(settings: Settings) -> Path:
    """The SQLite file of the settings, or BackupError for a database that is neither SQLite
    nor PostgreSQL (PostgreSQL goes through backup_postgres.py)."""
    path = sqlite_path_from_url(settings.effective_database_url)
    if path is None:
        raise BackupError(
            "backups cover SQLite and PostgreSQL databases; ORDERDESK_MCP_DATABASE_URL points "
            "elsewhere, so back it up with that database's own tools"
        )
    return path


def backup_name(created: dt.datetime) -> str:
    return f"orderdesk-mcp-{created.strftime(_NAME_TIME_FORMAT)}.tar.gz"


def list_backups(directory: Path) -> list[BackupInfo]:
    """Backups in `directory` (by their file names), oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _BACKUP_NAME_RE.fullmatch(entry.name)
        if match and entry.is_file():
            created = dt.datetime.strptime(match.group(1), _NAME_TIME_FORMAT)
            found.append(BackupInfo(entry, created))
    return sorted(found, key=lambda info: info.created)


def latest_backup(directory: Path) -> BackupInfo | None:
    backups = list_backups(directory)
    return backups[-1] if backups else None


# --- reading a SQLite file --------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    # Names come from sqlite_master itself, never from input; quoting keeps odd names harmless.
    return {
        name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608
        for name in names
    }


def _schema_version(conn: sqlite3.Connection) -> int:
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has_table:
        return 0
    value = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(value or 0)


def integrity_problems(conn: sqlite3.Connection, *, thorough: bool = True) -> list[str]:
    """What SQLite's integrity_check (or, not `thorough`, quick_check) finds; [] if sound."""
    # quick_check skips the index-against-table comparison: O(N) instead of O(N log N).
    pragma = "integrity_check" if thorough else "quick_check"
    rows = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}")]
    return [] if rows == ["ok"] else rows


# --- create -----------------------------------------------------------------------------


def _snapshot(source: Path, target: Path) -> None:
    """Copy `source` to `target` with the online backup API, as one consistent snapshot."""
    with (
        closing(sqlite3.connect(source, timeout=30)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        # pages=-1: copy everything under one read transaction; a stepwise copy would
        # restart whenever the server commits and might never finish under load.
        src.backup(dst, pages=-1)
        # A standalone file: no -wal beside it when it is later opened or restored.
        dst.execute("PRAGMA journal_mode=DELETE")


def create_backup(
    settings: Settings, dest: Path | None = None, keep: int | None = DEFAULT_KEEP
) -> CreateResult:
    """Take a backup into `dest` (default: <data dir>/backups), then prune to the newest `keep`
    (None: no pruning here; the CLI applies backup_retention once the backup is verified)."""
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1 (the backup just taken)")
    if is_postgres_url(settings.effective_database_url):
        return _create_postgres_backup(settings, dest or settings.backups_dir, keep)
    source = database_file(settings)
    if not source.is_file():
        raise BackupError(
            f"there is no database at {source} to back up; run `orderdesk-mcp init` first"
        )
    directory = dest or settings.backups_dir
    created, final = _new_backup_path(directory)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=directory) as work:
        copy = Path(work) / DATABASE_NAME
        try:
            _snapshot(source, copy)
            with closing(sqlite3.connect(copy)) as conn:
                problems = integrity_problems(conn)
                if problems:
                    raise BackupError(
                        f"the database at {source} fails its integrity check "
                        f"({problems[0]}); restore the last good backup"
                    )
                tables = _table_counts(conn)
                version = _schema_version(conn)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot copy the database {source}: {exc}") from None
        manifest = Manifest(
            format=MANIFEST_FORMAT,
            created=created.isoformat(timespec="microseconds") + "Z",
            app_version=__version__,
            schema_version=version,
            tables=tables,
            database_sha256=_sha256_file(copy),
            database_bytes=copy.stat().st_size,
        )
        partial = Path(work) / final.name
        _write_archive(partial, manifest, copy)
        # Rename within one directory: a reader never sees half a backup.
        os.replace(partial, final)
    pruned = prune_backups(directory, keep) if keep is not None else []
    return CreateResult(final, manifest, pruned)


def _new_backup_path(directory: Path) -> tuple[dt.datetime, Path]:
    """The (private) backup directory made if missing; the time and path of a new backup."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot create the backup directory {directory}: {exc}") from None
    created = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return created, directory / backup_name(created)


def _create_postgres_backup(settings: Settings, directory: Path, keep: int | None) -> CreateResult:
    created, final = _new_backup_path(directory)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=directory) as work:
        dump = Path(work) / backup_postgres.DUMP_NAME
        try:
            snapshot = backup_postgres.dump_database(settings.effective_database_url, dump)
        except backup_postgres.PostgresBackupError as exc:
            raise BackupError(str(exc)) from None
        manifest = Manifest(
            format=MANIFEST_FORMAT,
            created=created.isoformat(timespec="microseconds") + "Z",
            app_version=__version__,
            schema_version=snapshot.schema_version,
            tables=snapshot.tables,
            database_sha256=_sha256_file(dump),
            database_bytes=dump.stat().st_size,
            engine=backup_postgres.ENGINE,
        )
        partial = Path(work) / final.name
        _write_archive(partial, manifest, dump)
        os.replace(partial, final)
    pruned = prune_backups(directory, keep) if keep is not None else []
    return CreateResult(final, manifest, pruned)


def _write_archive(path: Path, manifest: Manifest, database: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
        body = manifest.to_json().encode("utf-8")
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size, info.mode, info.mtime = len(body), 0o600, int(dt.datetime.now().timestamp())
        archive.addfile(info, io.BytesIO(body))
        archive.add(database, arcname=_member_name(manifest.engine), recursive=False)
        raw.flush()
        os.fsync(raw.fileno())


def _member_name(engine: str) -> str:
    """The database member of an archive of this engine."""
    return backup_postgres.DUMP_NAME if engine == backup_postgres.ENGINE else DATABASE_NAME


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `directory`; return what was deleted."""
    backups = list_backups(directory)
    doomed = [info.path for info in backups[: max(0, len(backups) - keep)]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


# --- verify -----------------------------------------------------------------------------


def _extract(archive_path: Path, work: Path) -> tuple[Manifest, Path]:
    """Read the manifest and unpack the database into `work`; BackupError if unreadable."""
    if not archive_path.is_file():
        raise BackupError(f"{archive_path} does not exist or is not a file")
    try:
        with tarfile.open(archive_path, mode="r:gz") as archive:
            names = set(archive.getnames())
            if MANIFEST_NAME not in names:
                raise BackupError(
                    f"{archive_path} is not an orderdesk-mcp backup (it holds "
                    f"{sorted(names)}, expected {MANIFEST_NAME} and {DATABASE_NAME})"
                )
            manifest = Manifest.from_json(_read_member(archive, MANIFEST_NAME).read().decode())
            member = _member_name(manifest.engine)
            if names != {MANIFEST_NAME, member}:
                raise BackupError(
                    f"{archive_path} is not an orderdesk-mcp backup (it holds "
                    f"{sorted(names)}, expected {MANIFEST_NAME} and {member})"
                )
            target = work / member
            with target.open("wb") as out:
                shutil.copyfileobj(_read_member(archive, member), out)
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError) as exc:
        raise BackupError(
            f"{archive_path} is damaged and cannot be read ({type(exc).__name__}: {exc}); "
            "use another backup"
        ) from None
    return manifest, target


def _read_member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    member = archive.getmember(name)
    handle = archive.extractfile(member) if member.isfile() else None
    if handle is None:
        raise BackupError(f"the backup's {name} is not a regular file")
    return handle


def _check_database(manifest: Manifest, database: Path, archive_path: Path) -> None:
    digest = _sha256_file(database)
    if digest != manifest.database_sha256:
        raise BackupError(
            f"{archive_path}: the database checksum does not match its manifest (the file is "
            "damaged or was altered); use another backup"
        )
    if manifest.engine != "sqlite":
        _check_postgres_dump(manifest, database, archive_path)
        return
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            problems = integrity_problems(conn)
            version = _schema_version(conn)
            tables = _table_counts(conn)
    except sqlite3.Error as exc:
        raise BackupError(f"{archive_path}: the database inside cannot be read ({exc})") from None
    if problems:
        raise BackupError(
            f"{archive_path}: the database fails PRAGMA integrity_check: {problems[0]}"
        )
    if version != manifest.schema_version:
        raise BackupError(
            f"{archive_path}: schema version {version} differs from the manifest's "
            f"{manifest.schema_version}"
        )
    if version > LATEST_VERSION:
        raise BackupError(
            f"{archive_path} has schema version {version}, newer than this release knows "
            f"({LATEST_VERSION}); restore it with the release that made it ({manifest.app_version})"
        )
    if tables != manifest.tables:
        differing = sorted(
            name
            for name in set(tables) | set(manifest.tables)
            if tables.get(name) != manifest.tables.get(name)
        )
        raise BackupError(
            f"{archive_path}: row counts differ from the manifest in {', '.join(differing)}"
        )


def _check_postgres_dump(manifest: Manifest, dump: Path, archive_path: Path) -> None:
    if manifest.engine != backup_postgres.ENGINE:
        raise BackupError(f"{archive_path}: unknown database engine {manifest.engine!r}")
    try:
        backup_postgres.check_dump(dump, manifest.tables, manifest.schema_version)
    except backup_postgres.PostgresBackupError as exc:
        raise BackupError(f"{archive_path}: {exc}") from None


def verify_backup(archive_path: Path) -> Manifest:
    """Check a backup end to end: checksum, integrity, schema version, row counts."""
    with tempfile.TemporaryDirectory(prefix="orderdesk-mcp-verify-") as work:
        manifest, database = _extract(archive_path, Path(work))
        _check_database(manifest, database, archive_path)
    return manifest


# --- the running-server guard -----------------------------------------------------------


@contextmanager
def hold_server_lock(data_dir: Path, *, group: bool = False) -> Iterator[None]:
    """Hold `<data dir>/server.lock` while serving; restore refuses while it is held.

    A lone server (no Redis) holds it exclusively: a second one would keep its own token
    bucket and counters and together they would break Order Desk's rate limit. With
    `group=True` (ORDERDESK_MCP_REDIS_URL set, so buckets and counters are shared) every
    process of the server group holds it shared; a lone server and a group still exclude each
    other, and restore's exclusive probe still sees any of them.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / SERVER_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if group else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            if group:
                raise BackupError(
                    f"a lone orderdesk-mcp server (without ORDERDESK_MCP_REDIS_URL) already "
                    f"uses {data_dir}; stop it, or give it the same Redis settings"
                ) from None
            raise BackupError(
                f"another orderdesk-mcp server already uses {data_dir}; stop it first, or "
                "set ORDERDESK_MCP_REDIS_URL on every server so they can share the work"
            ) from None
        if not group:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _lock_is_held(data_dir: Path) -> bool:
    path = data_dir / SERVER_LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return False


def _health_answers(settings: Settings) -> bool:
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{settings.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=_HEALTH_PROBE_SECONDS) as response:
            body: Any = json.loads(response.read(4096) or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("service") == "orderdesk-mcp"


def running_server_reason(settings: Settings) -> str | None:
    """Why we believe a server of this data dir's group is running (any host), or None."""
    if _lock_is_held(settings.data_dir):
        return f"a server holds {settings.data_dir / SERVER_LOCK_NAME}"
    if settings.port and _health_answers(settings):
        return f"an orderdesk-mcp server answers on {settings.host}:{settings.port}"
    # Servers on other hosts (or whose lock this host cannot see) keep heartbeat rows.
    return live_server_reason(settings)


# --- restore ----------------------------------------------------------------------------


def restore_backup(settings: Settings, archive_path: Path) -> RestoreResult:
    """Replace the database with a verified backup, keep the old one beside it, migrate."""
    reason = running_server_reason(settings)
    if reason:
        raise BackupError(
            f"refusing to restore while the server runs ({reason}); stop it first "
            "(`systemctl stop orderdesk-mcp`), then run the restore again"
        )
    if is_postgres_url(settings.effective_database_url):
        return _restore_postgres_backup(settings, archive_path)
    # Held until the restored database is migrated: a server (or group member) starting
    # meanwhile would open the old file, or a half-migrated one; it is refused instead.
    with hold_server_lock(settings.data_dir):
        return _replace_database(settings, archive_path)


def _replace_database(settings: Settings, archive_path: Path) -> RestoreResult:
    target = database_file(settings)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=target.parent) as work:
        manifest, incoming = _extract(archive_path, Path(work))
        _check_database(manifest, incoming, archive_path)
        replaced = None
        if target.exists():
            replaced = target.with_name(f"{target.name}.replaced-{stamp}")
            try:
                # A snapshot (not a rename) so the WAL's committed pages come along.
                _snapshot(target, replaced)
            except sqlite3.Error as exc:
                raise BackupError(
                    f"cannot keep a copy of the current database {target} ({exc}); nothing "
                    "was changed"
                ) from None
            os.chmod(replaced, 0o600)
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        os.chmod(incoming, 0o600)
        os.replace(incoming, target)
    applied = _migrate(target)
    with closing(sqlite3.connect(target)) as conn:
        version = _schema_version(conn)
    return RestoreResult(
        restored_from=archive_path,
        database=target,
        replaced=replaced,
        migrations_applied=applied,
        schema_version=version,
    )


def _restore_postgres_backup(settings: Settings, archive_path: Path) -> RestoreResult:
    """pg_restore a PostgreSQL backup over the configured database, after keeping a dump of
    what it held in the backups dir. The caller (restore_backup) has already refused while
    any server of the group is live, by its heartbeat rows (running_server_reason)."""
    url = settings.effective_database_url
    with tempfile.TemporaryDirectory(prefix=".restore-") as work:
        manifest, dump = _extract(archive_path, Path(work))
        if manifest.engine != backup_postgres.ENGINE:
            raise BackupError(
                f"{archive_path} is a backup of a {manifest.engine} database and this server "
                "uses PostgreSQL: restore it on SQLite, then move it with `orderdesk-mcp db copy "
                "--to`"
            )
        _check_database(manifest, dump, archive_path)
        try:
            kept = backup_postgres.restore_dump(url, dump, settings.backups_dir)
        except backup_postgres.PostgresBackupError as exc:
            raise BackupError(str(exc)) from None
    current = postgres_database(url)
    applied = migrate_restored(current)
    with current.connection_context():
        version = current_version(current)
    return RestoreResult(
        restored_from=archive_path,
        database=redact_url(url),
        replaced=kept,
        migrations_applied=applied,
        schema_version=version,
    )


def _migrate(path: Path) -> list[str]:
    return migrate_restored(peewee.SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, timeout=5))


def migrate_restored(db: peewee.Database) -> list[str]:
    """Apply pending migrations to a database just restored (a backup of an older release)."""
    try:
        with db.connection_context():
            applied = apply_migrations(db)
    except peewee.DatabaseError as exc:
        raise BackupError(
            f"the backup was restored but its migrations failed ({exc}); run "
            "`orderdesk-mcp db upgrade` to retry"
        ) from None
    finally:
        db.close()
    return [f"{migration.version:04d}_{migration.name}" for migration in applied]
