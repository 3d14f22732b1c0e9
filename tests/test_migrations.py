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
from orderdesk_mcp.db.models import ALL_MODELS, ApiKey, McpSession, Store, Tenant


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


# Rows written right after each migration, in that step's schema. Later migrations must keep
# every one of them.
_T = "2026-01-01 00:00:00"
_ROWS_AT_STEP: tuple[tuple[int, str, dict[str, object]], ...] = (
    (1, "tenant", {"name": "acme", "kdf_salt": b"s" * 16, "created": _T, "disabled": False}),
    (1, "api_key", {"tenant_id": 1, "public_id": "pub000000001", "secret_hash": "h",
                    "scopes": "read", "label": "", "created": _T}),
    (1, "store", {"tenant_id": 1, "alias": "main", "store_id": "1001",
                  "sealed_api_key": b"\x00sealed\xff", "is_default": True, "created": _T}),
    (1, "audit_event", {"time": _T, "tenant_id": 1, "api_key_id": 1, "action": "tools/call x",
                        "arguments": "{}", "outcome": "ok", "duration_ms": 1.5,
                        "upstream_calls": 1}),
    (2, "mcp_session", {"id": "s" * 64, "tenant_id": 1, "api_key_id": 1,
                        "protocol_version": "2025-11-25", "client_info": "{}", "created": _T,
                        "last_seen": _T}),
    (3, "vault_canary", {"id": 1, "sealed": b"canary", "created": _T}),
    (4, "oauth_client", {"client_id": "client-1", "kind": "registered", "auth_method": "none",
                         "metadata": "{}", "created": _T}),
    (5, "job_run", {"kind": "backup", "started": _T, "finished": _T, "outcome": "ok",
                    "detail": ""}),
)  # fmt: skip


def test_each_migration_in_turn_keeps_the_rows_written_before_it(settings: Settings) -> None:
    """Every migration from empty, one at a time, with data written between the steps (on
    SQLite and PostgreSQL alike: the `db` engines of conftest)."""
    db = open_database(settings)
    p = db.param
    for migration in MIGRATIONS:
        apply_migrations(db, target=migration.version)
        assert current_version(db) == migration.version
        for version, table, row in _ROWS_AT_STEP:
            if version == migration.version:
                placeholders = ", ".join([p] * len(row))
                db.execute_sql(
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({placeholders})",  # noqa: S608
                    tuple(row.values()),
                )
    assert current_version(db) == LATEST_VERSION
    # Read back through today's models: added columns took their defaults, blobs are intact.
    key = ApiKey.get()
    assert (key.public_id, key.kind, key.toolsets, key.store_ids) == (
        "pub000000001",
        "key",
        None,
        None,
    )
    assert Tenant.get().password_hash is None
    assert bytes(Store.get().sealed_api_key) == b"\x00sealed\xff"
    assert Store.get().is_default is True
    assert McpSession.get().tenant_id == 1
    for version, table, _row in _ROWS_AT_STEP:
        (count,) = db.execute_sql(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        assert count == 1, (version, table)


def test_migrated_columns_are_exactly_the_models(db: peewee.Database) -> None:
    """No column the models lack, none they expect missing: the frozen migrations and the
    models describe the same schema on this engine."""
    for model in ALL_MODELS:
        columns = {column.name for column in db.get_columns(model._meta.table_name)}
        assert columns == {field.column_name for field in model._meta.sorted_fields}, model
