"""The per-request lookups of db/lookups.py: plain rows, the same answers as the models."""

from __future__ import annotations

import datetime as dt

import peewee
import pytest

from orderdesk_mcp.auth import issue_key, revoke_key, verify_token
from orderdesk_mcp.db import lookups
from orderdesk_mcp.db.models import AuditEvent, McpSession, Store, Tenant, utcnow
from orderdesk_mcp.mcp.sessions import DatabaseSessionStore, SessionOwner, hash_session_id
from orderdesk_mcp.tenancy import (
    add_store,
    create_tenant,
    disable_tenant,
    find_store,
    find_store_row,
    open_store_key,
)
from orderdesk_mcp.vault import Vault
from tests.conftest import second_connection


def _tenant_with_stores(name: str, vault: Vault, *store_ids: str) -> Tenant:
    tenant = create_tenant(name, Vault.new_tenant_salt())
    for store_id in store_ids:
        add_store(tenant, store_id=store_id, api_key=f"sk_{name}_{store_id}_key", vault=vault)
    return tenant


def test_store_row_matches_the_model_and_opens_its_key(db: peewee.Database, vault: Vault) -> None:
    tenant = _tenant_with_stores("acme", vault, "1001", "1002")
    row = find_store_row(tenant.id, "1002")
    model = Store.get(Store.store_id == "1002")
    assert row is not None
    assert (row.id, row.tenant_id, row.alias, row.store_id, row.base_url) == (
        model.id,
        tenant.id,
        model.alias,
        "1002",
        None,
    )
    assert row.is_default is False
    assert isinstance(row.sealed_api_key, bytes)
    assert isinstance(row.tenant_kdf_salt, bytes)
    assert open_store_key(row, vault) == open_store_key(model, vault) == "sk_acme_1002_key"


def test_default_then_alias_then_store_id(db: peewee.Database, vault: Vault) -> None:
    tenant = _tenant_with_stores("acme", vault, "1001")
    add_store(tenant, store_id="1002", api_key="sk_second_key", vault=vault, alias="1001x")
    default = find_store_row(tenant.id, None)
    assert default is not None
    assert (default.store_id, default.is_default) == ("1001", True)
    by_alias = find_store_row(tenant.id, "1001x")
    assert by_alias is not None
    assert by_alias.store_id == "1002"
    assert find_store_row(tenant.id, "nope") is None
    # The operator commands get the same store as a model instance, its tenant joined.
    model = find_store(tenant.id, "1001x")
    assert model is not None
    assert model.id == by_alias.id
    assert model.tenant.name == "acme"


def test_another_tenants_store_is_not_found(db: peewee.Database, vault: Vault) -> None:
    acme = _tenant_with_stores("acme", vault, "1001")
    other = _tenant_with_stores("other", vault, "2001")
    # Same alias in both tenants: each finds only its own row.
    add_store(acme, store_id="1009", api_key="sk_acme_shared", vault=vault, alias="shared")
    add_store(other, store_id="2009", api_key="sk_other_shared", vault=vault, alias="shared")
    assert find_store_row(acme.id, "2001") is None
    assert find_store_row(other.id, "1001") is None
    acme_shared = find_store_row(acme.id, "shared")
    other_shared = find_store_row(other.id, "shared")
    assert acme_shared is not None
    assert other_shared is not None
    assert (acme_shared.store_id, other_shared.store_id) == ("1009", "2009")
    assert open_store_key(other_shared, vault) == "sk_other_shared"
    default = find_store_row(other.id, None)
    assert default is not None
    assert default.store_id == "2001"
    assert find_store_row(10_000, None) is None


def test_key_row_reports_revocation_and_disabled_tenant(db: peewee.Database) -> None:
    tenant = create_tenant("acme", Vault.new_tenant_salt())
    revoked = issue_key(tenant)
    live = issue_key(tenant)
    assert verify_token(revoked.token) is not None
    revoke_key(revoked.public_id)
    row = lookups.api_key_by_public_id(revoked.public_id)
    assert row is not None
    assert isinstance(row.revoked, dt.datetime)
    assert verify_token(revoked.token) is None
    assert verify_token(live.token) is not None
    disable_tenant("acme")
    live_row = lookups.api_key_by_public_id(live.public_id)
    assert live_row is not None
    assert live_row.tenant_disabled is True
    assert verify_token(live.token) is None
    assert lookups.api_key_by_public_id("000000000000") is None


def test_session_lookup_is_bound_to_tenant_and_key(db: peewee.Database) -> None:
    acme = create_tenant("acme", Vault.new_tenant_salt())
    other = create_tenant("other", Vault.new_tenant_salt())
    key = issue_key(acme)
    second_key = issue_key(acme)
    sessions = DatabaseSessionStore(3600)
    owner = SessionOwner(acme.id, key.key_id)
    session_id = sessions.create(owner, "2025-06-18", {"name": "test"})
    state = sessions.get(session_id, owner)
    assert state is not None
    assert state.protocol_version == "2025-06-18"
    row = lookups.session_row(hash_session_id(session_id), acme.id, key.key_id)
    assert row is not None
    assert row.ended is None
    assert isinstance(row.last_seen, dt.datetime)
    assert sessions.get(session_id, SessionOwner(acme.id, second_key.key_id)) is None
    assert sessions.get(session_id, SessionOwner(other.id, key.key_id)) is None
    assert sessions.get(session_id, SessionOwner(acme.id, None)) is None
    assert sessions.end(session_id, SessionOwner(other.id, key.key_id)) is False
    assert sessions.end(session_id, owner) is True
    assert sessions.get(session_id, owner) is None
    ended = lookups.session_row(hash_session_id(session_id), acme.id, key.key_id)
    assert ended is not None
    assert ended.ended is not None


def test_session_without_a_key_matches_only_a_null_key(db: peewee.Database) -> None:
    acme = create_tenant("acme", Vault.new_tenant_salt())
    key = issue_key(acme)
    sessions = DatabaseSessionStore(3600)
    keyless = SessionOwner(acme.id, None)
    session_id = sessions.create(keyless, "2025-06-18", {})
    assert sessions.get(session_id, keyless) is not None
    assert sessions.get(session_id, SessionOwner(acme.id, key.key_id)) is None


def test_idle_session_expires_and_stale_last_seen_is_refreshed(db: peewee.Database) -> None:
    acme = create_tenant("acme", Vault.new_tenant_salt())
    key = issue_key(acme)
    owner = SessionOwner(acme.id, key.key_id)
    sessions = DatabaseSessionStore(3600)
    fresh = sessions.create(owner, "2025-06-18", {})
    stale = sessions.create(owner, "2025-06-18", {})
    a_minute_ago = utcnow() - dt.timedelta(minutes=1)
    McpSession.update(last_seen=a_minute_ago).where(
        McpSession.id == hash_session_id(fresh)
    ).execute()
    McpSession.update(last_seen=utcnow() - dt.timedelta(hours=2)).where(
        McpSession.id == hash_session_id(stale)
    ).execute()
    assert sessions.get(fresh, owner) is not None
    assert McpSession.get_by_id(hash_session_id(fresh)).last_seen > a_minute_ago
    assert sessions.get(stale, owner) is None
    assert McpSession.get_by_id(hash_session_id(stale)).ended is not None


@pytest.mark.parametrize("placeholder", ["?", "%s"])
def test_statements_use_only_the_drivers_placeholder(placeholder: str) -> None:
    statements = lookups._statements_for(placeholder)
    texts = [
        statements.api_key,
        statements.default_store,
        statements.store_by_alias,
        statements.store_by_store_id,
        statements.insert_audit,
        *statements.session.values(),
    ]
    other = "%s" if placeholder == "?" else "?"
    assert all(placeholder in text and other not in text for text in texts)


def test_audit_insert_writes_one_committed_row(db: peewee.Database) -> None:
    acme = create_tenant("acme", Vault.new_tenant_salt())
    key = issue_key(acme)
    before = utcnow()
    lookups.insert_audit_event(
        tenant_id=acme.id,
        key_id=key.key_id,
        action="tools/call get_order",
        store="main",
        arguments='{"order_id": "1"}',
        outcome="ok",
        duration_ms=1.25,
        upstream_calls=0,
        request_id="req-1",
    )
    # Committed: a second connection to the same database sees it.
    other = second_connection(db)
    (count,) = other.execute_sql("SELECT COUNT(*) FROM audit_event").fetchone()
    other.close()
    assert count == 1
    event = AuditEvent.get()
    assert (event.tenant_id, event.api_key_id, event.action, event.store) == (
        acme.id,
        key.key_id,
        "tools/call get_order",
        "main",
    )
    assert (event.arguments, event.outcome, event.duration_ms, event.upstream_calls) == (
        '{"order_id": "1"}',
        "ok",
        1.25,
        0,
    )
    assert event.request_id == "req-1"
    assert before <= event.time <= utcnow()


def test_audit_columns_are_the_models_columns() -> None:
    columns = {field.column_name for field in AuditEvent._meta.sorted_fields}
    assert set(lookups._AUDIT_COLUMNS) == columns - {"id"}
