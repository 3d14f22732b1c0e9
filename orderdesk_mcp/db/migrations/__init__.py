"""Numbered migrations, applied in order and recorded in `schema_version`.

Each module `mNNNN_<name>.py` defines `upgrade(db)`. A migration describes the schema as it
was at that step (frozen model classes or schema operations), never the current models, so
an old database always upgrades the same way.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import peewee

from orderdesk_mcp.db.models import SchemaVersion, utcnow


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[peewee.Database], None]


def _discover() -> tuple[Migration, ...]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("m") or "_" not in info.name:
            continue
        number, _, name = info.name[1:].partition("_")
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(number), name, module.upgrade))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _discover()
LATEST_VERSION = MIGRATIONS[-1].version


def applied_versions(db: peewee.Database) -> set[int]:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return set()
    with db.bind_ctx([SchemaVersion]):
        return {row.version for row in SchemaVersion.select(SchemaVersion.version)}


def current_version(db: peewee.Database) -> int:
    return max(applied_versions(db), default=0)


def pending_migrations(db: peewee.Database) -> list[Migration]:
    done = applied_versions(db)
    return [migration for migration in MIGRATIONS if migration.version not in done]


@contextmanager
def _sqlite_foreign_keys_paused(db: peewee.Database) -> Iterator[None]:
    """Foreign keys off while migrating a SQLite database, checked afterwards.

    SQLite changes a column by rebuilding its table (playhouse.migrate copies it, drops the
    old one, renames the copy); with foreign keys on, that DROP deletes every row that
    references the table through ON DELETE CASCADE (an upgrade past migration 4 lost the MCP
    sessions). SQLite's documented procedure: turn them off outside the transaction, then
    run `PRAGMA foreign_key_check`.
    """
    if not isinstance(db, peewee.SqliteDatabase):
        yield
        return
    enabled = db.execute_sql("PRAGMA foreign_keys").fetchone()[0]  # type: ignore[no-untyped-call]
    db.execute_sql("PRAGMA foreign_keys = OFF")  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if enabled:
            db.execute_sql("PRAGMA foreign_keys = ON")  # type: ignore[no-untyped-call]
    broken = db.execute_sql("PRAGMA foreign_key_check").fetchall()  # type: ignore[no-untyped-call]
    if broken:
        raise RuntimeError(f"the migrated database has broken foreign keys: {broken[:3]}")


def apply_migrations(db: peewee.Database, target: int | None = None) -> list[Migration]:
    """Apply pending migrations up to `target` (default: all), each in its own transaction."""
    with _sqlite_foreign_keys_paused(db):
        return _apply(db, target)


def _apply(db: peewee.Database, target: int | None) -> list[Migration]:
    applied = []
    with db.bind_ctx([SchemaVersion]):
        db.create_tables([SchemaVersion], safe=True)
        for migration in pending_migrations(db):
            if target is not None and migration.version > target:
                break
            with db.atomic():
                migration.upgrade(db)
                SchemaVersion.create(
                    version=migration.version, name=migration.name, applied=utcnow()
                )
            applied.append(migration)
    return applied
