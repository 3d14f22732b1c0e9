"""Tenants and their API keys: tenant create|list|disable, key create|list|revoke."""

from __future__ import annotations

import click

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.auth import issue_key, revoke_key
from orderdesk_mcp.cli.base import (
    emit,
    json_option,
    load_vault,
    open_current_database,
    settings_from_context,
    table,
    translated_errors,
)
from orderdesk_mcp.db.models import ApiKey, Store, Tenant
from orderdesk_mcp.tenancy import create_tenant, disable_tenant, get_tenant, list_tenants
from orderdesk_mcp.vault import Vault


@click.group()
def tenant() -> None:
    """Tenants: the customers of this server, each with its own stores and keys."""


@tenant.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The first API key may only read.")
@json_option
@click.pass_context
def tenant_create(ctx: click.Context, name: str, read_only: bool, as_json: bool) -> None:
    """Create a tenant and its first API key (shown once)."""
    settings = settings_from_context(ctx)
    open_current_database(settings)
    load_vault(settings)
    with translated_errors():
        row = create_tenant(name, Vault.new_tenant_salt())
        issued = issue_key(row, read_only=read_only, label="first key")
        record_admin_action("tenant.create", tenant=row, details={"key_id": issued.public_id})
    emit(
        as_json,
        {"tenant": row.name, "api_key": issued.token},
        f"Tenant {row.name} created.\nAPI key (shown once, store it now): {issued.token}",
    )


@tenant.command("list")
@json_option
@click.pass_context
def tenant_list(ctx: click.Context, as_json: bool) -> None:
    """List tenants."""
    open_current_database(settings_from_context(ctx))
    rows = [
        {
            "tenant": t.name,
            "disabled": t.disabled,
            "created": t.created.isoformat(sep=" ", timespec="seconds"),
            "stores": Store.select().where(Store.tenant == t).count(),
            "keys": ApiKey.select().where((ApiKey.tenant == t) & ApiKey.revoked.is_null()).count(),
        }
        for t in list_tenants()
    ]
    emit(
        as_json,
        {"tenants": rows},
        lambda: table(rows, ["tenant", "disabled", "stores", "keys", "created"]),
    )


@tenant.command("disable")
@click.argument("name")
@json_option
@click.pass_context
def tenant_disable(ctx: click.Context, name: str, as_json: bool) -> None:
    """Disable a tenant: its keys stop working at once; nothing is deleted."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = disable_tenant(name)
        record_admin_action("tenant.disable", tenant=row)
    emit(as_json, {"tenant": row.name, "disabled": True}, f"Tenant {row.name} disabled.")


@click.group()
def key() -> None:
    """Tenant API keys (what MCP clients send as `Authorization: Bearer ...`)."""


@key.command("create")
@click.option("--tenant", "tenant_name", required=True, help="Tenant the key belongs to.")
@click.option("--read-only", is_flag=True, help="The key may only call read tools.")
@click.option("--label", default="", help="A note for operators, e.g. 'Claude on Ann's laptop'.")
@click.option(
    "--toolsets",
    default=None,
    help="Comma-separated toolsets this key may use (orders,items,shipments,inventory,store). "
    "Default: all.",
)
@json_option
@click.pass_context
def key_create(
    ctx: click.Context,
    tenant_name: str,
    read_only: bool,
    label: str,
    toolsets: str | None,
    as_json: bool,
) -> None:
    """Create an API key for a tenant (the secret is shown once)."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = get_tenant(tenant_name)
        issued = issue_key(row, read_only=read_only, label=label, toolsets=toolsets)
        record_admin_action(
            "key.create",
            tenant=row,
            details={
                "key_id": issued.public_id,
                "read_only": read_only,
                "label": label,
                "toolsets": toolsets,
            },
        )
    emit(
        as_json,
        {"tenant": row.name, "key_id": issued.public_id, "api_key": issued.token},
        f"API key {issued.public_id} for {row.name} (shown once): {issued.token}",
    )


@key.command("list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's keys.")
@json_option
@click.pass_context
def key_list(ctx: click.Context, tenant_name: str | None, as_json: bool) -> None:
    """List API keys (never their secrets)."""
    open_current_database(settings_from_context(ctx))
    query = ApiKey.select(ApiKey, Tenant).join(Tenant).order_by(Tenant.name, ApiKey.id)
    if tenant_name:
        with translated_errors():
            query = query.where(ApiKey.tenant == get_tenant(tenant_name))
    rows = [
        {
            "key_id": k.public_id,
            "tenant": k.tenant.name,
            "scopes": k.scopes,
            "toolsets": k.toolsets or "all",
            "label": k.label,
            "created": k.created.isoformat(sep=" ", timespec="seconds"),
            "last_used": k.last_used.isoformat(sep=" ", timespec="seconds")
            if k.last_used
            else None,
            "revoked": k.revoked.isoformat(sep=" ", timespec="seconds") if k.revoked else None,
        }
        for k in query
    ]
    emit(
        as_json,
        {"keys": rows},
        lambda: table(
            rows, ["key_id", "tenant", "scopes", "toolsets", "label", "last_used", "revoked"]
        ),
    )


@key.command("revoke")
@click.argument("key_id")
@json_option
@click.pass_context
def key_revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke an API key by its id (the part after `odmcp_`); it stops working at once."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = revoke_key(key_id)
        record_admin_action("key.revoke", tenant=row.tenant, details={"key_id": row.public_id})
    emit(as_json, {"key_id": row.public_id, "revoked": True}, f"API key {row.public_id} revoked.")
