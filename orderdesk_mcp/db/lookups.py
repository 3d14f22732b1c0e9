"""The statements every MCP request runs, as SQL written once instead of rendered per call.

Peewee renders a query's SQL from its expression tree on every execution: about 0.2 ms for a
two-table SELECT, which made the API-key and store lookups most of a cached tool call's cost
(docs/PERFORMANCE.md). These statements are fixed text with bound parameters; values pass
through the models' own field conversions, so callers see the same Python values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import ApiKey, AuditEvent, McpSession, Store, Tenant, utcnow

_TENANT_COLUMNS = ("id", "name", "kdf_salt", "created", "disabled")


# Only fixed identifiers and the driver's placeholder are formatted into these statements
# (hence the S608 waivers); every value is a bound parameter.


def _param() -> str:
    """The driver's placeholder ('?' for SQLite, '%s' for PostgreSQL)."""
    return str(database.obj.param)


def _db_value(field: Any, value: Any) -> Any:
    """The value as the model field would store it."""
    return field.db_value(value)


def _python_value(field: Any, raw: Any) -> Any:
    """The value as the model field would load it (datetimes, booleans)."""
    return field.python_value(raw)


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


def api_key_by_public_id(public_id: str) -> KeyRow | None:
    p = _param()
    cursor = database.execute_sql(
        "SELECT k.id, k.public_id, k.secret_hash, k.scopes, k.toolsets, k.last_used, "  # noqa: S608
        "k.revoked, t.id, t.name, t.disabled "
        f"FROM api_key AS k JOIN tenant AS t ON t.id = k.tenant_id WHERE k.public_id = {p}",
        (public_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return KeyRow(
        id=row[0],
        public_id=row[1],
        secret_hash=row[2],
        scopes=row[3],
        toolsets=row[4],
        last_used=_python_value(ApiKey.last_used, row[5]),
        revoked=_python_value(ApiKey.revoked, row[6]),
        tenant_id=row[7],
        tenant_name=row[8],
        tenant_disabled=bool(_python_value(Tenant.disabled, row[9])),
    )


def _store_with_tenant(condition: str, order: str, params: tuple[Any, ...]) -> Store | None:
    """The first matching store row, its `tenant` filled from the same row (no second query)."""
    # Unquoted: the same text works on SQLite, PostgreSQL and MySQL.
    tenant_columns = ", ".join(f"t.{name} AS tenant__{name}" for name in _TENANT_COLUMNS)
    sql = (
        f"SELECT s.*, {tenant_columns} FROM store AS s JOIN tenant AS t ON t.id = s.tenant_id "  # noqa: S608
        f"WHERE {condition} ORDER BY {order} LIMIT 1"
    )
    store: Store | None = next(iter(Store.raw(sql, *params)), None)
    if store is None:
        return None
    fields = Tenant._meta.fields
    store.tenant = Tenant(
        **{
            name: _python_value(fields[name], getattr(store, f"tenant__{name}"))
            for name in _TENANT_COLUMNS
        }
    )
    return store


def default_store(tenant_id: int) -> Store | None:
    """The tenant's default store, else its oldest one."""
    return _store_with_tenant(f"s.tenant_id = {_param()}", "s.is_default DESC, s.id", (tenant_id,))


def store_by_alias(tenant_id: int, alias: str) -> Store | None:
    p = _param()
    return _store_with_tenant(f"s.tenant_id = {p} AND s.alias = {p}", "s.id", (tenant_id, alias))


def store_by_store_id(tenant_id: int, store_id: str) -> Store | None:
    """The tenant's oldest registration of an Order Desk store id."""
    p = _param()
    return _store_with_tenant(
        f"s.tenant_id = {p} AND s.store_id = {p}", "s.id", (tenant_id, store_id)
    )


def session_row(session_hash: str, tenant_id: int | None, key_id: int | None) -> McpSession | None:
    """The session row with this id hash owned by exactly this tenant and key (None matches NULL,
    as peewee's `== None` does)."""
    p = _param()
    conditions: list[str] = [f"id = {p}"]
    params: list[Any] = [session_hash]
    for column, value in (("tenant_id", tenant_id), ("api_key_id", key_id)):
        if value is None:
            conditions.append(f"{column} IS NULL")
        else:
            conditions.append(f"{column} = {p}")
            params.append(value)
    sql = f"SELECT * FROM mcp_session WHERE {' AND '.join(conditions)}"  # noqa: S608
    row: McpSession | None = next(iter(McpSession.raw(sql, *params)), None)
    return row


def insert_audit_event(
    *,
    tenant_id: int | None,
    key_id: int | None,
    action: str,
    store: str | None,
    arguments: str,
    outcome: str,
    duration_ms: float,
    upstream_calls: int,
    request_id: str | None,
) -> None:
    """One AuditEvent row, committed before returning (as AuditEvent.create would)."""
    values: dict[str, Any] = {
        "time": utcnow(),
        "tenant": tenant_id,
        "api_key": key_id,
        "action": action,
        "store": store,
        "arguments": arguments,
        "outcome": outcome,
        "duration_ms": duration_ms,
        "upstream_calls": upstream_calls,
        "request_id": request_id,
    }
    fields = AuditEvent._meta.fields
    columns = ", ".join(fields[name].column_name for name in values)
    placeholders = ", ".join([_param()] * len(values))
    database.execute_sql(
        f"INSERT INTO audit_event ({columns}) VALUES ({placeholders})",  # noqa: S608
        [_db_value(fields[name], value) for name, value in values.items()],
    )
