"""The statements every MCP request runs, as SQL written once and rows read as plain tuples.

Peewee renders a query's SQL from its expression tree on every execution (about 0.2 ms for a
two-table SELECT) and builds a model instance per row through its cursor wrapper (about
0.1 ms more). These lookups run on every request, so their SQL is fixed text built once per
placeholder style, executed on the DB-API cursor, and the few columns they need come back as
small frozen dataclasses. Values pass through the models' own field conversions where the
drivers differ (datetimes, booleans, blobs), so callers see the same Python values on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import ApiKey, AuditEvent, McpSession, Tenant, utcnow

# Only fixed identifiers and the driver's placeholder are formatted into these statements
# (hence the S608 waivers); every value is a bound parameter. Aliases are unquoted, so the
# same text works on SQLite, PostgreSQL and MySQL.
_STORE_SELECT = (
    "SELECT s.id, s.tenant_id, s.alias, s.store_id, s.sealed_api_key, s.base_url, "
    "s.is_default, t.kdf_salt FROM store AS s JOIN tenant AS t ON t.id = s.tenant_id "
)
_AUDIT_COLUMNS = (
    "time",
    "tenant_id",
    "api_key_id",
    "action",
    "store",
    "arguments",
    "outcome",
    "duration_ms",
    "upstream_calls",
    "request_id",
)


@dataclass(frozen=True)
class _Statements:
    """Every per-request statement for one placeholder style ('?' or '%s')."""

    api_key: str
    default_store: str
    store_by_alias: str
    store_by_store_id: str
    store_by_row_id: str
    # Keyed by (tenant id is None, key id is None): `= ?` or `IS NULL` for each owner column.
    session: dict[tuple[bool, bool], str]
    insert_audit: str
    insert_audit_returning_id: str
    complete_audit: str


@functools.cache
def _statements_for(p: str) -> _Statements:
    def session_sql(tenant_null: bool, key_null: bool) -> str:
        tenant = "tenant_id IS NULL" if tenant_null else f"tenant_id = {p}"
        key = "api_key_id IS NULL" if key_null else f"api_key_id = {p}"
        return (
            "SELECT protocol_version, last_seen, ended FROM mcp_session "  # noqa: S608
            f"WHERE id = {p} AND {tenant} AND {key}"
        )

    return _Statements(
        api_key=(
            "SELECT k.id, k.public_id, k.secret_hash, k.scopes, k.toolsets, k.last_used, "  # noqa: S608
            "k.revoked, t.id, t.name, t.disabled, k.kind, k.store_ids "
            f"FROM api_key AS k JOIN tenant AS t ON t.id = k.tenant_id WHERE k.public_id = {p}"
        ),
        default_store=(
            f"{_STORE_SELECT}WHERE s.tenant_id = {p} ORDER BY s.is_default DESC, s.id LIMIT 1"
        ),
        store_by_alias=(
            f"{_STORE_SELECT}WHERE s.tenant_id = {p} AND s.alias = {p} ORDER BY s.id LIMIT 1"
        ),
        store_by_store_id=(
            f"{_STORE_SELECT}WHERE s.tenant_id = {p} AND s.store_id = {p} ORDER BY s.id LIMIT 1"
        ),
        store_by_row_id=f"{_STORE_SELECT}WHERE s.tenant_id = {p} AND s.id = {p}",
        session={
            (tenant_null, key_null): session_sql(tenant_null, key_null)
            for tenant_null in (False, True)
            for key_null in (False, True)
        },
        insert_audit=(
            f"INSERT INTO audit_event ({', '.join(_AUDIT_COLUMNS)}) "  # noqa: S608
            f"VALUES ({', '.join([p] * len(_AUDIT_COLUMNS))})"
        ),
        # RETURNING works on SQLite >= 3.35 and PostgreSQL alike (lastrowid does not).
        insert_audit_returning_id=(
            f"INSERT INTO audit_event ({', '.join(_AUDIT_COLUMNS)}) "  # noqa: S608
            f"VALUES ({', '.join([p] * len(_AUDIT_COLUMNS))}) RETURNING id"
        ),
        complete_audit=(
            f"UPDATE audit_event SET store = {p}, outcome = {p}, duration_ms = {p}, "  # noqa: S608
            f"upstream_calls = {p} WHERE id = {p}"
        ),
    )


def _statements() -> _Statements:
    """The statements in the placeholder style of the database the models are bound to."""
    return _statements_for(str(database.obj.param))


def _fetch_one(sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = database.execute_sql(sql, params).fetchone()
    return row


# The field conversions, looked up once (each is the model field's own `python_value`).
_datetime_value: Callable[[Any], Any] = ApiKey.last_used.python_value
_boolean_value: Callable[[Any], Any] = Tenant.disabled.python_value
_session_datetime_value: Callable[[Any], Any] = McpSession.last_seen.python_value
_audit_time_value: Callable[[Any], Any] = AuditEvent.time.db_value


@dataclass(frozen=True)
class KeyRow:
    """An API key joined with the two tenant fields authentication needs."""

    id: int
    public_id: str
    secret_hash: str
    scopes: str
    toolsets: str | None
    last_used: dt.datetime | None
    revoked: dt.datetime | None
    tenant_id: int
    tenant_name: str
    tenant_disabled: bool
    kind: str = "key"
    store_ids: str | None = None


def api_key_by_public_id(public_id: str) -> KeyRow | None:
    row = _fetch_one(_statements().api_key, (public_id,))
    if row is None:
        return None
    return KeyRow(
        id=row[0],
        public_id=row[1],
        secret_hash=row[2],
        scopes=row[3],
        toolsets=row[4],
        last_used=_datetime_value(row[5]),
        revoked=_datetime_value(row[6]),
        tenant_id=row[7],
        tenant_name=row[8],
        tenant_disabled=bool(_boolean_value(row[9])),
        kind=row[10],
        store_ids=row[11],
    )


@dataclass(frozen=True)
class StoreRow:
    """What a tool call needs of one store: where it is, and what opens its sealed key."""

    id: int
    tenant_id: int
    alias: str
    store_id: str
    sealed_api_key: bytes
    base_url: str | None
    is_default: bool
    tenant_kdf_salt: bytes


def _store_row(sql: str, params: tuple[Any, ...]) -> StoreRow | None:
    row = _fetch_one(sql, params)
    if row is None:
        return None
    return StoreRow(
        id=row[0],
        tenant_id=row[1],
        alias=row[2],
        store_id=row[3],
        # bytes(): PostgreSQL drivers return memoryview for bytea.
        sealed_api_key=bytes(row[4]),
        base_url=row[5],
        is_default=bool(_boolean_value(row[6])),
        tenant_kdf_salt=bytes(row[7]),
    )


def default_store(tenant_id: int) -> StoreRow | None:
    """The tenant's default store, else its oldest one."""
    return _store_row(_statements().default_store, (tenant_id,))


def store_by_alias(tenant_id: int, alias: str) -> StoreRow | None:
    return _store_row(_statements().store_by_alias, (tenant_id, alias))


def store_by_store_id(tenant_id: int, store_id: str) -> StoreRow | None:
    """The tenant's oldest registration of an Order Desk store id."""
    return _store_row(_statements().store_by_store_id, (tenant_id, store_id))


def store_by_row_id(tenant_id: int, row_id: int) -> StoreRow | None:
    """The tenant's store with this Store row id (a key narrowed to some stores names them so)."""
    return _store_row(_statements().store_by_row_id, (tenant_id, row_id))


@dataclass(frozen=True)
class SessionRow:
    """The fields of an MCP session a request checks."""

    protocol_version: str
    last_seen: dt.datetime
    ended: dt.datetime | None


def session_row(session_hash: str, tenant_id: int | None, key_id: int | None) -> SessionRow | None:
    """The session row with this id hash owned by exactly this tenant and key (None matches NULL,
    as peewee's `== None` does)."""
    sql = _statements().session[(tenant_id is None, key_id is None)]
    params = (session_hash, *(value for value in (tenant_id, key_id) if value is not None))
    row = _fetch_one(sql, params)
    if row is None:
        return None
    return SessionRow(
        protocol_version=row[0],
        last_seen=_session_datetime_value(row[1]),
        ended=_session_datetime_value(row[2]),
    )


def insert_audit_event(
    *,
    returning_id: bool = False,
    tenant_id: int | None,
    key_id: int | None,
    action: str,
    store: str | None,
    arguments: str,
    outcome: str,
    duration_ms: float,
    upstream_calls: int,
    request_id: str | None,
) -> int | None:
    """One AuditEvent row, committed before returning (as AuditEvent.create would: outside a
    transaction peewee's connections autocommit); its id when `returning_id`."""
    statements = _statements()
    cursor = database.execute_sql(
        statements.insert_audit_returning_id if returning_id else statements.insert_audit,
        (
            _audit_time_value(utcnow()),
            tenant_id,
            key_id,
            action,
            store,
            arguments,
            outcome,
            duration_ms,
            upstream_calls,
            request_id,
        ),
    )
    if not returning_id:
        return None
    # fetchall, not fetchone: SQLite commits an autocommit statement only once it is reset,
    # so a half-read RETURNING cursor would keep the write lock.
    rows = cursor.fetchall()
    return int(rows[0][0]) if rows else None


def complete_audit_event(
    event_id: int, *, store: str | None, outcome: str, duration_ms: float, upstream_calls: int
) -> None:
    """Fill in the outcome of a row written as pending before its call ran."""
    database.execute_sql(
        _statements().complete_audit, (store, outcome, duration_ms, upstream_calls, event_id)
    )


def active_session_count(db: Any, since: dt.datetime) -> int:
    """MCP sessions not ended and seen since `since`, in `db`'s placeholder style."""
    sql = f"SELECT count(*) FROM mcp_session WHERE ended IS NULL AND last_seen >= {db.param}"  # noqa: S608
    row = db.execute_sql(sql, (since,)).fetchone()
    return int(row[0])
