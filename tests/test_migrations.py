"""Numbered migrations: from empty, from the previous schema, and what `db status` reports."""

from __future__ import annotations

import peewee

from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    apply_migrations,
    current_version,
    pending_migrations,
)
from orderdesk_mcp.db.models import ALL_MODELS, ApiKey, McpSession, Tenant


def test_upgrade_from_an_empty_database(settings: Settings) -> None:
    db = open_database(settings)
    assert current_version(db) == 0
    assert [m.version for m in pending_migrations(db)] == [m.version for m in MIGRATIONS]
    apply_migrations(db)
    assert current_version(db) == LATEST_VERSION
    assert pending_migrations(db) == []
    for model in ALL_MODELS:
        assert db.table_exists(model._meta.table_name)
        # Every column the current models expect exists in the migrated schema.
        columns = {column.name for column in db.get_columns(model._meta.table_name)}
        assert {field.column_name for field in model._meta.sorted_fields} <= columns


def test_upgrade_from_the_previous_schema_keeps_data(settings: Settings) -> None:
    db = open_database(settings)
    apply_migrations(db, target=LATEST_VERSION - 1)
    assert [m.version for m in pending_migrations(db)] == [LATEST_VERSION]
    p = db.param
    db.execute_sql(
        f"INSERT INTO tenant (name, kdf_salt, created, disabled) VALUES ({p}, {p}, {p}, {p})",  # noqa: S608
        ("acme", b"0" * 16, "2026-01-01 00:00:00", False),
    )
    db.execute_sql(
        "INSERT INTO api_key (tenant_id, public_id, secret_hash, scopes, label, created, kind) "
        "VALUES (1, 'abcdefabcdef', 'h', 'read', '', '2026-01-01 00:00:00', 'key')"
    )
    apply_migrations(db)
    assert Tenant.get().name == "acme"
    key = ApiKey.get()
    assert (key.public_id, key.toolsets) == ("abcdefabcdef", None)
    McpSession.create(id="s" * 64, tenant=Tenant.get(), api_key=key, protocol_version="2025-11-25")
    assert McpSession.select().count() == 1


def test_applying_twice_is_a_no_op(db: peewee.Database) -> None:
    assert apply_migrations(db) == []
    assert current_version(db) == LATEST_VERSION
