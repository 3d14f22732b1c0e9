"""OAuth clients and grants: oauth clients list|revoke, oauth grants list|revoke, oauth prune.

A client is an application (Claude, ChatGPT, an MCP inspector) that registered itself or
named its client ID metadata document; a grant is one tenant's consent to one client. Listings
never show a secret: only ids, names, hosts, rights and times.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any
from urllib.parse import urlparse

import click
import peewee

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.cli.base import (
    CliError,
    emit,
    json_option,
    open_current_database,
    settings_from_context,
    short_time,
    table,
    translated_errors,
)
from orderdesk_mcp.db.models import ApiKey, OAuthClient, OAuthGrant, Store, Tenant, utcnow
from orderdesk_mcp.oauth.grants import (
    client_name,
    find_grant,
    list_grants,
    revoke_grant,
    revoke_grants_of_client,
)
from orderdesk_mcp.oauth.housekeeping import prune_expired
from orderdesk_mcp.tenancy import get_tenant
from orderdesk_mcp.tenant_keys import store_aliases

CLIENT_KINDS = {"registered": "registered", "metadata_document": "metadata document"}


@click.group()
def oauth() -> None:
    """OAuth sign-in: the client applications and the grants tenants gave them."""


@oauth.group()
def clients() -> None:
    """OAuth client applications (registered, or known by a client ID metadata document)."""


@oauth.group()
def grants() -> None:
    """OAuth grants: one tenant's consent to one client, with the rights it chose."""


def _redirect_hosts(client: OAuthClient) -> str:
    try:
        uris = json.loads(client.metadata).get("redirect_uris") or []
    except (TypeError, ValueError, AttributeError):
        uris = []
    hosts = [urlparse(str(uri)).netloc for uri in uris if isinstance(uri, str)]
    return ",".join(dict.fromkeys(host for host in hosts if host)) or "-"


@clients.command("list")
@json_option
@click.pass_context
def clients_list(ctx: click.Context, as_json: bool) -> None:
    """List OAuth clients with their live grants (never a client secret)."""
    open_current_database(settings_from_context(ctx))
    counted = (
        OAuthGrant.select(OAuthGrant.client, peewee.fn.COUNT(OAuthGrant.id))
        .where(OAuthGrant.revoked.is_null())
        .group_by(OAuthGrant.client)
        .tuples()
    )
    live: dict[int, int] = dict(counted)  # type: ignore[arg-type]  # .tuples() rows
    rows = [
        {
            "client_id": c.client_id,
            "kind": CLIENT_KINDS.get(c.kind, c.kind),
            "name": client_name(c),
            "redirect_hosts": _redirect_hosts(c),
            "created": short_time(c.created),
            "last_used": short_time(c.last_used),
            "live_grants": live.get(c.id, 0),
            "revoked": short_time(c.revoked),
        }
        for c in OAuthClient.select().order_by(OAuthClient.id)
    ]
    emit(
        as_json,
        {"clients": rows},
        lambda: table(
            rows,
            ["client_id", "kind", "name", "redirect_hosts", "live_grants", "last_used", "revoked"],
        ),
    )


@clients.command("revoke")
@click.argument("client_id")
@json_option
@click.pass_context
def clients_revoke(ctx: click.Context, client_id: str, as_json: bool) -> None:
    """Revoke a client and every grant given to it; its tokens stop working at once."""
    open_current_database(settings_from_context(ctx))
    client = OAuthClient.get_or_none(OAuthClient.client_id == client_id)
    if client is None:
        raise CliError(
            f"no OAuth client {client_id!r}; `orderdesk-mcp oauth clients list` shows them"
        )
    if client.revoked is None:
        OAuthClient.update(revoked=utcnow()).where(OAuthClient.id == client.id).execute()
    revoked = revoke_grants_of_client(client, "client revoked by operator")
    record_admin_action(
        "oauth.client.revoke", details={"client_id": client.client_id, "grants_revoked": revoked}
    )
    emit(
        as_json,
        {"client_id": client.client_id, "revoked": True, "grants_revoked": revoked},
        f"OAuth client {client.client_id} revoked, with {revoked} grant(s).",
    )


def _grant_row(grant: OAuthGrant, aliases: dict[int, str]) -> dict[str, Any]:
    rights: ApiKey = grant.api_key
    via_key: ApiKey | None = grant.via_key
    return {
        "grant_id": grant.public_id,
        "tenant": grant.tenant.name,
        "client": client_name(grant.client),
        "access": "read-only" if "write" not in rights.scopes.split(",") else "read-write",
        "stores": store_aliases(rights.store_ids, aliases),
        "toolsets": rights.toolsets or "all",
        "via_key": via_key.public_id if via_key is not None else None,
        "created": short_time(grant.created),
        "last_used": short_time(grant.last_used),
        "revoked": short_time(grant.revoked),
        "revoked_reason": grant.revoked_reason,
    }


@grants.command("list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's grants.")
@click.option("--include-revoked", is_flag=True, help="Show revoked grants too.")
@json_option
@click.pass_context
def grants_list(
    ctx: click.Context, tenant_name: str | None, include_revoked: bool, as_json: bool
) -> None:
    """List OAuth grants: who gave which client what rights (never a token)."""
    open_current_database(settings_from_context(ctx))
    tenant_id = None
    if tenant_name:
        with translated_errors():
            tenant_id = get_tenant(tenant_name).id
    aliases = {store.id: store.alias for store in Store.select(Store.id, Store.alias)}
    rows = [
        _grant_row(grant, aliases)
        for grant in list_grants(tenant_id, include_revoked=include_revoked)
    ]
    emit(
        as_json,
        {"grants": rows},
        lambda: table(
            rows,
            [
                "grant_id",
                "tenant",
                "client",
                "access",
                "stores",
                "toolsets",
                "created",
                "last_used",
                "revoked",
            ],
        ),
    )


@grants.command("revoke")
@click.argument("grant_id")
@json_option
@click.pass_context
def grants_revoke(ctx: click.Context, grant_id: str, as_json: bool) -> None:
    """Revoke a grant: its access and refresh tokens stop working at once."""
    open_current_database(settings_from_context(ctx))
    grant = find_grant(grant_id)
    if grant is None:
        raise CliError(f"no OAuth grant {grant_id!r}; `orderdesk-mcp oauth grants list` shows them")
    changed = revoke_grant(grant, "revoked by operator")
    tenant: Tenant = grant.tenant
    if changed:
        record_admin_action("oauth.grant.revoke", tenant=tenant, details={"grant_id": grant_id})
    emit(
        as_json,
        {"grant_id": grant.public_id, "revoked": True, "already_revoked": not changed},
        f"OAuth grant {grant.public_id} of {tenant.name} "
        + ("revoked." if changed else "was already revoked."),
    )


@oauth.command("prune")
@json_option
@click.pass_context
def oauth_prune(ctx: click.Context, as_json: bool) -> None:
    """Delete dead OAuth rows: expired codes, invites and sign-in sessions, tokens a day past
    expiry or revocation, and clients without a grant (registered ones unused for
    ORDERDESK_MCP_OAUTH_UNUSED_CLIENT_DAYS, metadata documents past their cache time).

    The daily backup unit runs it; grants are kept.
    """
    settings = settings_from_context(ctx)
    open_current_database(settings)
    result = prune_expired(
        unused_client_days=settings.oauth_unused_client_days,
        session_idle=dt.timedelta(minutes=settings.tenant_session_idle_minutes),
    )
    data = asdict(result)
    if result.total:
        record_admin_action("oauth.prune", details=data)
    emit(
        as_json,
        {**data, "total": result.total},
        f"Deleted {result.total} dead OAuth row(s): "
        + ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in data.items())
        + ".",
    )
