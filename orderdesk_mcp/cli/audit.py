"""audit list: the audit trail of tool calls and operator actions."""

from __future__ import annotations

import datetime as dt
import json

import click
import peewee

from orderdesk_mcp.cli.base import (
    CliError,
    emit,
    json_option,
    open_current_database,
    settings_from_context,
    table,
    translated_errors,
)
from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.tenancy import get_tenant


def _parse_since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
            seconds=int(value[:-1]) * units[value[-1]]
        )
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"--since {value!r} is not a time: use e.g. 30m, 12h, 7d or 2026-11-01T00:00:00"
        ) from None


@click.group()
def audit() -> None:
    """The audit trail of tool calls and admin actions."""


@audit.command("list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's events.")
@click.option("--since", default=None, help="Only events after this: 30m, 12h, 7d or an ISO time.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@json_option
@click.pass_context
def audit_list(
    ctx: click.Context, tenant_name: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """List audit events, newest first."""
    open_current_database(settings_from_context(ctx))
    query = (
        AuditEvent.select(AuditEvent, Tenant)
        .join(Tenant, peewee.JOIN.LEFT_OUTER)
        .order_by(AuditEvent.time.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if tenant_name:
        with translated_errors():
            query = query.where(AuditEvent.tenant == get_tenant(tenant_name))
    start = _parse_since(since)
    if start is not None:
        query = query.where(AuditEvent.time >= start)
    rows = [
        {
            "time": e.time.isoformat(sep=" ", timespec="seconds"),
            "tenant": e.tenant.name if e.tenant else None,
            "action": e.action,
            "store": e.store,
            "outcome": e.outcome,
            "duration_ms": round(e.duration_ms, 1),
            "upstream_calls": e.upstream_calls,
            "arguments": json.loads(e.arguments or "{}"),
            "request_id": e.request_id,
        }
        for e in query
    ]
    emit(
        as_json,
        {"events": rows},
        lambda: table(rows, ["time", "tenant", "action", "store", "outcome", "duration_ms"]),
    )
