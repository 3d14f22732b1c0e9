"""OAuth access and refresh tokens: opaque random strings, stored only as SHA-256 hashes.

A token belongs to a grant; the grant's ApiKey row (kind "oauth") carries the rights, so a
verified access token becomes the same `AuthenticatedKey` a bearer key does. Refresh tokens
rotate on every use: `claim_refresh` marks the old one used in one conditional UPDATE, so two
racing refreshes cannot both win, and the loser is treated as reuse (the grant is revoked).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from peewee import JOIN

from orderdesk_mcp.auth import (
    LAST_USED_RESOLUTION,
    AuthenticatedKey,
    hash_secret,
    parse_store_ids,
    parse_toolsets,
)
from orderdesk_mcp.db.models import ApiKey, OAuthClient, OAuthGrant, OAuthToken, Tenant, utcnow

# Distinct prefixes: secret scanners can find them, and they never parse as an odmcp_ key.
ACCESS_PREFIX = "odat_"
REFRESH_PREFIX = "odrt_"
ACCESS = "access"
REFRESH = "refresh"
TOKEN_BYTES = 32
# However often a client refreshes, a grant ends this long after the tenant consented: then
# the tenant signs in and consents again. Not a setting (one fewer thing to get wrong).
GRANT_LIFETIME = dt.timedelta(days=365)


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_oauth_token(token: str) -> bool:
    return token.startswith((ACCESS_PREFIX, REFRESH_PREFIX)) and len(token) < 100


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str

    def response(self) -> dict[str, str | int]:
        body: dict[str, str | int] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def store_tokens(
    grant: OAuthGrant,
    *,
    access_token: str,
    refresh_token: str | None,
    access_seconds: int,
    refresh_days: int,
    access_scope: str,
    refresh_scope: str,
) -> None:
    now = utcnow()
    # The sliding refresh window never reaches past the grant's absolute end.
    grant_ends = grant_end(grant)
    OAuthToken.create(
        token_hash=hash_secret(access_token),
        kind=ACCESS,
        grant=grant,
        created=now,
        expires=min(now + dt.timedelta(seconds=access_seconds), grant_ends),
        scope=access_scope,
    )
    if refresh_token is not None:
        OAuthToken.create(
            token_hash=hash_secret(refresh_token),
            kind=REFRESH,
            grant=grant,
            created=now,
            expires=min(now + dt.timedelta(days=refresh_days), grant_ends),
            scope=refresh_scope,
        )


def grant_end(grant: OAuthGrant) -> dt.datetime:
    """When a grant stops issuing tokens, however often it was refreshed."""
    created: dt.datetime = grant.created
    return created + GRANT_LIFETIME


def find_token(token: str, kind: str | None = None) -> OAuthToken | None:
    """The stored row of a presented token (any state), by its hash: one indexed lookup."""
    if not token or not looks_like_oauth_token(token):
        return None
    query = OAuthToken.select().where(OAuthToken.token_hash == hash_secret(token))
    if kind is not None:
        query = query.where(OAuthToken.kind == kind)
    row: OAuthToken | None = query.first()
    return row


def claim_refresh(row: OAuthToken) -> bool:
    """Mark a refresh token used; False when another request used (or revoked) it first."""
    claimed: int = (
        OAuthToken.update(rotated=utcnow())
        .where(
            (OAuthToken.id == row.id) & OAuthToken.rotated.is_null() & OAuthToken.revoked.is_null()
        )
        .execute()
    )
    return claimed == 1


def revoke_token_row(row: OAuthToken) -> None:
    OAuthToken.update(revoked=utcnow()).where(
        (OAuthToken.id == row.id) & OAuthToken.revoked.is_null()
    ).execute()


def key_is_live(key_id: int) -> bool:
    """Whether the API key a grant was made with (its `via_key`) is still unrevoked."""
    return bool(
        ApiKey.select(ApiKey.id).where((ApiKey.id == key_id) & ApiKey.revoked.is_null()).exists()
    )


@dataclass(frozen=True)
class VerifiedAccess:
    """A live access token's caller: its grant's rights row, tenant and grant."""

    key: AuthenticatedKey
    grant_id: int
    client_id: int


def verify_access_token(token: str, resource: str) -> VerifiedAccess | None:
    """The caller an access token stands for; None unless it is a live access token of a live
    grant of an enabled tenant, bound to `resource`."""
    if not token.startswith(ACCESS_PREFIX) or len(token) >= 100:
        return None
    now = utcnow()
    via_key = ApiKey.alias("via_key")
    # One indexed query (token_hash is unique) with everything the checks need.
    row = (
        OAuthToken.select(OAuthToken, OAuthGrant, ApiKey, Tenant)
        .join(OAuthGrant)
        .join(ApiKey, on=(OAuthGrant.api_key == ApiKey.id))
        .join(Tenant, on=(ApiKey.tenant == Tenant.id))
        .switch(OAuthGrant)
        # The API key the tenant signed in with, if any: once revoked, the grant is dead
        # even if it was made after the revocation swept the grants (a code in flight).
        .join(via_key, JOIN.LEFT_OUTER, on=(OAuthGrant.via_key == via_key.id))
        .where(
            (OAuthToken.token_hash == hash_secret(token))
            & (OAuthToken.kind == ACCESS)
            & OAuthToken.revoked.is_null()
            & (OAuthToken.expires > now)
            & OAuthGrant.revoked.is_null()
            & ApiKey.revoked.is_null()
            & (Tenant.disabled == False)  # noqa: E712 - peewee builds SQL from ==
            & (OAuthGrant.via_key.is_null() | via_key.revoked.is_null())
        )
        .first()
    )
    if row is None:
        return None
    grant: OAuthGrant = row.grant
    if grant.resource != resource:
        return None
    key: ApiKey = grant.api_key
    tenant: Tenant = key.tenant
    scopes = frozenset(key.scopes.split(",")) & frozenset(row.scope.split())
    _note_use(grant, now)
    return VerifiedAccess(
        key=AuthenticatedKey(
            key_id=key.id,
            public_id=key.public_id,
            tenant_id=tenant.id,
            tenant_name=tenant.name,
            scopes=scopes,
            toolsets=parse_toolsets(key.toolsets),
            store_ids=parse_store_ids(key.store_ids),
        ),
        grant_id=grant.id,
        client_id=grant.client_id,
    )


def _note_use(grant: OAuthGrant, now: dt.datetime) -> None:
    # A hint for tenants and operators; written at most once a minute, like keys' last_used.
    if grant.last_used is None or now - grant.last_used > LAST_USED_RESOLUTION:
        OAuthGrant.update(last_used=now).where(OAuthGrant.id == grant.id).execute()
        OAuthClient.update(last_used=now).where(OAuthClient.id == grant.client_id).execute()
