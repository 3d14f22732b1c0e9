"""audit list|prune: the audit trail of tool calls and operator actions, and its retention."""

from __future__ import annotations

import datetime as dt
import json

import click
import peewee

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.cli.base import (
    CliError,
    emit,
    json_option,
    open_current_database,
    parse_age,
    settings_from_context,
    table,
    translated_errors,
)
from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.mcp.audit import prune_audit_events
from orderdesk_mcp.tenancy import get_tenant


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _parse_since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    age = parse_age(value)
    if age is not None:
        return _utcnow() - age
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


@audit.command("prune")
@click.option(
    "--older-than",
    default=None,
    help="Delete tool-call events older than this (30m, 12h or 30d). "
    "Default: ORDERDESK_MCP_AUDIT_RETENTION_DAYS days.",
)
@json_option
@click.pass_context
def audit_prune(ctx: click.Context, older_than: str | None, as_json: bool) -> None:
    """Delete old tool-call events in small batches; operator actions (admin:*) are kept."""
    settings = settings_from_context(ctx)
    if older_than is None:
        if settings.audit_retention_days == 0:
            emit(
                as_json,
                {"deleted": 0, "cutoff": None, "older_than": None},
                "Nothing pruned: ORDERDESK_MCP_AUDIT_RETENTION_DAYS is 0 (keep everything).",
            )
            return
        older_than = f"{settings.audit_retention_days}d"
    age = parse_age(older_than)
    if age is None or age <= dt.timedelta(0):
        raise CliError(
            f"--older-than {older_than!r} is not an age: use e.g. 30d, 12h or 90m (more than 0)"
        )
    open_current_database(settings)
    result = prune_audit_events(_utcnow() - age)
    if result.deleted:
        record_admin_action(
            "audit.prune", details={"older_than": older_than, "deleted": result.deleted}
        )
    data = {
        "older_than": older_than,
        "cutoff": result.cutoff.isoformat(sep=" ", timespec="seconds"),
        "deleted": result.deleted,
        "batches": result.batches,
        "admin_rows_kept": result.admin_rows_kept,
    }
    emit(
        as_json,
        data,
        f"Deleted {result.deleted} tool-call audit event(s) older than {older_than} "
        f"(before {data['cutoff']} UTC); kept {result.admin_rows_kept} older operator "
        "action(s).",
    )
