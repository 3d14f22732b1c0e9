"""/tenant/apps: the apps the tenant connected with OAuth (its live grants), and revoking one.

The same functions as `orderdesk-mcp oauth grants list|revoke` (oauth/grants.py): revoking a
grant ends its access and refresh tokens at once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, request

from orderdesk_mcp.db.models import ApiKey, OAuthClient, OAuthGrant, Tenant
from orderdesk_mcp.oauth.grants import client_name, find_grant, revoke_grant
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.tenant import area
from orderdesk_mcp.tenant.area import bp, tenant_page
from orderdesk_mcp.tenant_keys import aliases_of, store_aliases

MAX_LISTED = 200


def _grant_view(grant: OAuthGrant, by_id: dict[int, str]) -> dict[str, Any]:
    rights: ApiKey = grant.api_key
    return {
        "grant_id": grant.public_id,
        "client": client_name(grant.client),
        "redirect_host": urlsplit(grant.redirect_uri).netloc or grant.redirect_uri,
        "access": "read-only" if "write" not in rights.scopes.split(",") else "read-write",
        "stores": store_aliases(rights.store_ids, by_id).replace(",", ", "),
        "toolsets": (rights.toolsets or "all").replace(",", ", "),
        "created": grant.created,
        "last_used": grant.last_used,
    }


def _own_grant(tenant: Tenant, grant_id: str) -> OAuthGrant | None:
    """The tenant's own grant with this id, else None (another tenant's id included)."""
    grant = find_grant(grant_id)
    if grant is None or grant.tenant.id != tenant.id:
        return None
    return grant


@bp.route("/apps", methods=["GET"])
@tenant_page
def apps(*, session: BrowserSession, tenant: Tenant) -> Response:
    by_id = {row_id: alias for alias, row_id in aliases_of(tenant).items()}
    # Each grant's rights row and client in the same query: the view reads both for every
    # grant, which would otherwise cost two lookups per row listed.
    grants = (
        OAuthGrant.select(OAuthGrant, ApiKey, OAuthClient)
        .join(ApiKey, on=(OAuthGrant.api_key == ApiKey.id))
        .switch(OAuthGrant)
        .join(OAuthClient)
        .where((OAuthGrant.tenant == tenant) & OAuthGrant.revoked.is_null())
        .order_by(OAuthGrant.id.desc())
        .limit(MAX_LISTED)
    )
    done = None
    revoked = _own_grant(tenant, request.args.get("revoked", "")[:40])
    if revoked is not None and revoked.revoked is not None:
        done = f"{client_name(revoked.client)} is disconnected; it can no longer use your stores."
    return area.render(
        "tenant_apps.html",
        grants=[_grant_view(grant, by_id) for grant in grants],
        listed_max=MAX_LISTED,
        done=done,
    )


@bp.route("/apps/<grant_id>/revoke", methods=["POST"])
@tenant_page
def revoke_app(grant_id: str, *, session: BrowserSession, tenant: Tenant) -> Response:
    area.check_csrf(session)
    grant = _own_grant(tenant, grant_id)
    if grant is None or grant.revoked is not None:
        return area.not_found()
    revoke_grant(grant, "revoked by tenant")
    area.audit_tenant_action(
        tenant,
        "tenant.grant.revoke",
        details={"grant_id": grant.public_id, "client": client_name(grant.client)},
    )
    return Response(status=303, headers={"Location": f"/tenant/apps?revoked={grant.public_id}"})
