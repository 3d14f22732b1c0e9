"""OAuth grants: one tenant's consent to one client, with its rights in an ApiKey row.

A grant's rights are an `ApiKey` of kind "oauth" (no usable secret), so MCP sessions, the
audit trail, per-key rate limits and the rights checks work for OAuth callers exactly as they
do for bearer keys. Revoking a grant revokes that row and every token of the grant at once.
"""

from __future__ import annotations

import json
import secrets

from orderdesk_mcp.auth import hash_secret
from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import ApiKey, OAuthClient, OAuthGrant, OAuthToken, utcnow
from orderdesk_mcp.oauth.rights import GrantRights

GRANT_PREFIX = "g_"


class GrantError(ValueError):
    """A grant that does not exist (or cannot be changed); the message says what to do."""


def client_name(client: OAuthClient) -> str:
    try:
        name = json.loads(client.metadata).get("client_name")
    except (TypeError, ValueError):
        name = None
    return str(name) if isinstance(name, str) and name.strip() else client.client_id


def create_grant(
    *,
    tenant_id: int,
    client: OAuthClient,
    rights: GrantRights,
    via_key_id: int | None,
    resource: str,
    redirect_uri: str,
) -> OAuthGrant:
    """Record a consent; its rights row is an ApiKey of kind "oauth" that no token can open."""
    with database.atomic():
        key = ApiKey.create(
            tenant=tenant_id,
            public_id=secrets.token_hex(6),
            # No bearer token matches: the hash of a secret nobody ever saw.
            secret_hash=hash_secret(secrets.token_urlsafe(32)),
            label=f"oauth: {client_name(client)}"[:200],
            kind="oauth",
            **rights.column_values(),
        )
        return OAuthGrant.create(
            public_id=GRANT_PREFIX + secrets.token_hex(8),
            tenant=tenant_id,
            client=client,
            api_key=key,
            via_key=via_key_id,
            resource=resource,
            redirect_uri=redirect_uri,
        )


def find_grant(public_id: str) -> OAuthGrant | None:
    return OAuthGrant.get_or_none(OAuthGrant.public_id == public_id)


def list_grants(tenant_id: int | None = None, *, include_revoked: bool = False) -> list[OAuthGrant]:
    query = OAuthGrant.select().order_by(OAuthGrant.id)
    if tenant_id is not None:
        query = query.where(OAuthGrant.tenant == tenant_id)
    if not include_revoked:
        query = query.where(OAuthGrant.revoked.is_null())
    return list(query)


def revoke_grant(grant: OAuthGrant, reason: str) -> bool:
    """Revoke a grant, its rights row and all its tokens; False when it already was."""
    if grant.revoked is not None:
        return False
    now = utcnow()
    with database.atomic():
        OAuthGrant.update(revoked=now, revoked_reason=reason[:100]).where(
            OAuthGrant.id == grant.id
        ).execute()
        ApiKey.update(revoked=now).where(
            (ApiKey.id == grant.api_key) & ApiKey.revoked.is_null()
        ).execute()
        OAuthToken.update(revoked=now).where(
            (OAuthToken.grant == grant.id) & OAuthToken.revoked.is_null()
        ).execute()
    grant.revoked = now
    grant.revoked_reason = reason[:100]
    return True


def revoke_grants_made_with(key_id: int, reason: str = "api key revoked") -> int:
    """Revoke every live grant a tenant made by signing in with this API key."""
    grants = OAuthGrant.select().where(
        (OAuthGrant.via_key == key_id) & OAuthGrant.revoked.is_null()
    )
    return sum(revoke_grant(grant, reason) for grant in grants)


def revoke_grants_of_client(client: OAuthClient, reason: str = "client revoked") -> int:
    grants = OAuthGrant.select().where(
        (OAuthGrant.client == client.id) & OAuthGrant.revoked.is_null()
    )
    return sum(revoke_grant(grant, reason) for grant in grants)
