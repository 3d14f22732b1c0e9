"""`db copy --to postgresql://...`: move the whole database to an empty PostgreSQL database.

The target is migrated to the source's schema first (the same numbered migrations, so it is
exactly what `db upgrade` would build), then every table is copied in foreign-key order
inside one transaction, the id sequences are moved past the copied ids, and the row counts
of every table are compared before the commit: the copy lands whole or not at all.

Rows pass through the models' own field conversions (SQLite's text datetimes and 0/1
booleans become PostgreSQL timestamps and booleans; blobs stay bytes), so sealed store keys
arrive bit for bit and open with the same master key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import peewee

from orderdesk_mcp.db.connection import is_postgres_url, postgres_database, scrub_password
from orderdesk_mcp.db.migrations import LATEST_VERSION, apply_migrations, current_version
from orderdesk_mcp.db.models import ALL_MODELS, BaseModel, SchemaVersion

# Rows read and written per statement: large audit tables stream through in batches.
BATCH_ROWS = 1000


class CopyError(Exception):
    """The copy cannot start or did not verify; the message says why and what to do."""


@dataclass(frozen=True)
class CopyResult:
    schema_version: int
    tables: dict[str, int]  # table name -> rows copied (and counted again in the target)


def copy_order() -> list[type[BaseModel]]:
    """The tables to copy, parents before children; schema_version is built by the
    migrations themselves."""
    ordered: list[type[BaseModel]] = peewee.sort_models(list(ALL_MODELS))  # type: ignore[attr-defined]
    return [model for model in ordered if model is not SchemaVersion]


def open_target(url: str) -> peewee.Database:
    """A plain (unpooled) connection to the target; CopyError naming the problem."""
    if not is_postgres_url(url):
        raise CopyError(
            "--to takes a PostgreSQL URL such as postgresql://orderdesk@db.internal/orderdesk "
            "(the password may come from ~/.pgpass or PGPASSWORD instead of the URL)"
        )
    target = postgres_database(url)
    try:
        target.connect()
    except peewee.DatabaseError as exc:
        reason = scrub_password(str(exc).strip(), url)
        raise CopyError(f"cannot connect to the target database: {reason}") from None
    return target


def _rows_in(database: peewee.Database, model: type[BaseModel]) -> int:
    if not database.table_exists(model._meta.table_name):
        return 0
    return int(model.select().bind(database).count())


def require_empty(target: peewee.Database) -> None:
    occupied = {
        model._meta.table_name: rows
        for model in copy_order()
        if (rows := _rows_in(target, model)) > 0
    }
    if occupied:
        listed = ", ".join(f"{name} ({rows} rows)" for name, rows in occupied.items())
        raise CopyError(
            f"the target database is not empty: {listed}; copy into a new, empty database "
            "(CREATE DATABASE ... OWNER ...), never over one in use"
        )
    version = current_version(target)
    if version > LATEST_VERSION:
        raise CopyError(
            f"the target's schema is at version {version}, newer than this release knows "
            f"({LATEST_VERSION}); use a new, empty database"
        )


def _batches(database: peewee.Database, model: type[BaseModel]) -> Iterator[list[tuple]]:  # type: ignore[type-arg]
    fields = model._meta.sorted_fields
    primary = model._meta.primary_key
    query = model.select(*fields).order_by(primary).tuples().bind(database)
    batch: list[tuple] = []  # type: ignore[type-arg]
    for row in query.iterator():
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _reset_sequence(target: peewee.Database, model: type[BaseModel]) -> None:
    """Move an auto-increment id's sequence past the copied ids (inserts with explicit ids
    never advance it, so the next new row would collide)."""
    primary = model._meta.primary_key
    if not isinstance(primary, peewee.AutoField):
        return
    table, column = model._meta.table_name, primary.column_name
    # Identifiers come from the models, never from input.
    target.execute_sql(  # type: ignore[no-untyped-call]
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "  # noqa: S608
        f'COALESCE(MAX("{column}"), 1), MAX("{column}") IS NOT NULL) FROM "{table}"'
    )


def copy_database(source: peewee.Database, target: peewee.Database) -> CopyResult:
    """Copy every row of `source` (migrated to the newest schema) into the empty `target`."""
    version = current_version(source)
    if version != LATEST_VERSION:
        raise CopyError(
            f"the source database is at schema version {version}, this release copies "
            f"version {LATEST_VERSION}; run `orderdesk-mcp db upgrade` first"
        )
    require_empty(target)
    apply_migrations(target)
    copied: dict[str, int] = {}
    # One read transaction on the source: a consistent snapshot even if something writes.
    with source.atomic(), target.atomic():
        for model in copy_order():
            fields = model._meta.sorted_fields
            count = 0
            for batch in _batches(source, model):
                model.insert_many(batch, fields=fields).bind(target).execute()
                count += len(batch)
            _reset_sequence(target, model)
            copied[model._meta.table_name] = count
        _verify_counts(source, target, copied)
    return CopyResult(schema_version=current_version(target), tables=copied)


def _verify_counts(
    source: peewee.Database, target: peewee.Database, copied: dict[str, int]
) -> None:
    """Raise (rolling the copy back) unless source, copy and target agree on every table."""
    for model in copy_order():
        name = model._meta.table_name
        in_source, in_target = _rows_in(source, model), _rows_in(target, model)
        if not in_source == copied[name] == in_target:
            raise CopyError(
                f"row counts differ in {name} (source {in_source}, copied {copied[name]}, "
                f"target {in_target}); nothing was committed, run the copy again"
            )
