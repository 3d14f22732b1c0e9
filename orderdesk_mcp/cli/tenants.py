"""Tenants and their API keys: tenant create|list|disable|set-password|invite,
key create|list|revoke."""

from __future__ import annotations

import sys

import click

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.cli.base import (
    CliError,
    emit,
    iso_utc,
    json_option,
    load_vault,
    open_current_database,
    parse_age,
    settings_from_context,
    short_time,
    table,
    translated_errors,
)
from orderdesk_mcp.db.models import ApiKey, Store, Tenant
from orderdesk_mcp.invites import create_invite, set_password
from orderdesk_mcp.tenancy import create_tenant, disable_tenant, get_tenant, list_tenants
from orderdesk_mcp.tenant_keys import (
    UnknownStoreAlias,
    revoke_api_key,
    store_aliases,
    store_ids_for,
)
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
        record_admin_action("tenant.create", tenant=row, details={"public_id": issued.public_id})
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


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a terminal; never echoed."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError(
                "no password on standard input; pipe one line, e.g. from a password manager"
            )
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to ask for the password; pass --password-stdin and pipe one line"
        )
    typed: str = click.prompt(
        "New sign-in password", hide_input=True, confirmation_prompt=True, err=True
    )
    return typed


@tenant.command("set-password")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (keeps it out of shell "
    "history). Without it, the password is asked twice at the terminal.",
)
@json_option
@click.pass_context
def tenant_set_password(ctx: click.Context, name: str, password_stdin: bool, as_json: bool) -> None:
    """Set the password a tenant signs in with on the OAuth sign-in page (Claude, ChatGPT).

    Prefer `tenant invite`, which lets the tenant choose it without you ever seeing it.
    """
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = get_tenant(name)
        set_password(row, _read_password(password_stdin))
        record_admin_action("tenant.set_password", tenant=row)
    emit(
        as_json,
        {"tenant": row.name, "password_set": True},
        f"Sign-in password of {row.name} set.",
    )


@tenant.command("invite")
@click.argument("name")
@click.option(
    "--expires",
    default="24h",
    show_default=True,
    help="How long the link works: 30m, 24h or 7d (5 minutes to 30 days); it works once.",
)
@json_option
@click.pass_context
def tenant_invite(ctx: click.Context, name: str, expires: str, as_json: bool) -> None:
    """Make a one-time link where the tenant sets its own sign-in password.

    Send the link to the tenant over a channel you trust; anyone holding it can set the
    password until it is used or expires. Needs ORDERDESK_MCP_PUBLIC_URL.
    """
    settings = settings_from_context(ctx)
    if settings.public_url is None:
        raise CliError(
            "invite links point at the server's public address: set ORDERDESK_MCP_PUBLIC_URL "
            "(e.g. https://mcp.example.com) in the environment or env file, then try again"
        )
    lifetime = parse_age(expires)
    if lifetime is None:
        raise CliError(f"--expires {expires!r} is not a duration: use e.g. 30m, 24h or 7d")
    open_current_database(settings)
    with translated_errors():
        row = get_tenant(name)
        if row.disabled:
            raise CliError(f"tenant {row.name!r} is disabled; an invite could not be used")
        invite = create_invite(row, settings.public_url, lifetime)
        record_admin_action(
            "tenant.invite", tenant=row, details={"expires": iso_utc(invite.expires)}
        )
    emit(
        as_json,
        {"tenant": invite.tenant, "url": invite.url, "expires": iso_utc(invite.expires)},
        f"Invite for {invite.tenant} (works once, until {iso_utc(invite.expires)}):\n{invite.url}",
    )


def _store_ids_for(row: Tenant, aliases: str | None) -> frozenset[int] | None:
    """The Store row ids of a comma-separated list of the tenant's aliases."""
    if aliases is None:
        return None
    wanted = [alias.strip() for alias in aliases.split(",") if alias.strip()]
    if not wanted:
        raise CliError("--stores is empty; name one or more store aliases, or leave it out")
    try:
        return store_ids_for(row, wanted)
    except UnknownStoreAlias as unknown:
        listed = ", ".join(unknown.known) or "none yet"
        raise CliError(
            f"tenant {row.name!r} has no store with alias {unknown.alias!r}; its aliases: {listed}"
        ) from None


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
@click.option(
    "--stores",
    default=None,
    help="Comma-separated store aliases this key may reach (`store list` shows them); the "
    "others do not exist for it. Default: all the tenant's stores, including later ones.",
)
@json_option
@click.pass_context
def key_create(
    ctx: click.Context,
    tenant_name: str,
    read_only: bool,
    label: str,
    toolsets: str | None,
    stores: str | None,
    as_json: bool,
) -> None:
    """Create an API key for a tenant (the secret is shown once)."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = get_tenant(tenant_name)
        store_ids = _store_ids_for(row, stores)
        issued = issue_key(
            row, read_only=read_only, label=label, toolsets=toolsets, store_ids=store_ids
        )
        record_admin_action(
            "key.create",
            tenant=row,
            details={
                "public_id": issued.public_id,
                "read_only": read_only,
                "label": label,
                "toolsets": toolsets,
                "stores": stores,
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
    """List API keys (never their secrets; OAuth grants are under `oauth grants list`)."""
    open_current_database(settings_from_context(ctx))
    query = (
        ApiKey.select(ApiKey, Tenant)
        .join(Tenant)
        .where(ApiKey.kind == "key")
        .order_by(Tenant.name, ApiKey.id)
    )
    if tenant_name:
        with translated_errors():
            query = query.where(ApiKey.tenant == get_tenant(tenant_name))
    aliases = {store.id: store.alias for store in Store.select(Store.id, Store.alias)}
    rows = [
        {
            "key_id": k.public_id,
            "tenant": k.tenant.name,
            "scopes": k.scopes,
            "toolsets": k.toolsets or "all",
            "stores": store_aliases(k.store_ids, aliases),
            "label": k.label,
            "created": short_time(k.created),
            "last_used": short_time(k.last_used),
            "revoked": short_time(k.revoked),
        }
        for k in query
    ]
    emit(
        as_json,
        {"keys": rows},
        lambda: table(
            rows,
            ["key_id", "tenant", "scopes", "toolsets", "stores", "label", "last_used", "revoked"],
        ),
    )


@key.command("revoke")
@click.argument("key_id")
@json_option
@click.pass_context
def key_revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke an API key by its id (the part after `odmcp_`); it stops working at once.

    The OAuth grants a tenant made by signing in with this key are revoked with it.
    """
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row, grants = revoke_api_key(key_id)
        record_admin_action(
            "key.revoke",
            tenant=row.tenant,
            details={"public_id": row.public_id, "grants_revoked": grants},
        )
    emit(
        as_json,
        {"key_id": row.public_id, "revoked": True, "grants_revoked": grants},
        f"API key {row.public_id} revoked, with {grants} OAuth grant(s) made by signing in "
        "with it.",
    )
