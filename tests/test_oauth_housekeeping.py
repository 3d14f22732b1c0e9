"""OAuth housekeeping: dead rows go (expired codes, invites and sign-in sessions; tokens a day
past expiry or revocation; clients without a grant), live ones and every grant stay."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any

import peewee

from orderdesk_mcp.db.models import (
    OAuthClient,
    OAuthCode,
    OAuthGrant,
    OAuthToken,
    Tenant,
    TenantInvite,
    WebSession,
    utcnow,
)
from orderdesk_mcp.oauth.grants import create_grant, revoke_grant
from orderdesk_mcp.oauth.housekeeping import prune_expired
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.tenancy import create_tenant
from orderdesk_mcp.vault import Vault

NOW = utcnow()
DAY = dt.timedelta(days=1)


def _hash() -> str:
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()


def _client(kind: str, *, age: dt.timedelta, **fields: Any) -> OAuthClient:
    return OAuthClient.create(
        client_id=f"{kind}-{secrets.token_hex(4)}",
        kind=kind,
        metadata=json.dumps({"client_name": kind}),
        created=NOW - age,
        **fields,
    )


def _grant(tenant: Tenant, client: OAuthClient) -> OAuthGrant:
    return create_grant(
        tenant_id=tenant.id,
        client=client,
        rights=GrantRights.everything(),
        via_key_id=None,
        resource="https://mcp.example.com/mcp",
        redirect_uri="https://claude.ai/api/mcp/auth_callback",
    )


def _token(grant: OAuthGrant, *, expires: dt.datetime, revoked: dt.datetime | None = None) -> int:
    row = OAuthToken.create(
        token_hash=_hash(), kind="access", grant=grant, expires=expires, revoked=revoked
    )
    return int(row.id)


def _code(tenant: Tenant, client: OAuthClient, expires: dt.datetime) -> str:
    code_hash = _hash()
    OAuthCode.create(
        code_hash=code_hash,
        client=client,
        tenant=tenant,
        redirect_uri="https://claude.ai/cb",
        scope="read",
        code_challenge="x" * 43,
        resource="https://mcp.example.com/mcp",
        expires=expires,
    )
    return code_hash


def test_prune_deletes_only_dead_rows(db: peewee.Database) -> None:
    tenant = create_tenant("acme", Vault.new_tenant_salt())
    used_client = _client("registered", age=30 * DAY)
    grant = _grant(tenant, used_client)
    revoked_grant = _grant(tenant, used_client)
    revoke_grant(revoked_grant, "test")
    stale_registration = _client("registered", age=8 * DAY)
    recent_registration = _client("registered", age=2 * DAY)
    recently_used = _client("registered", age=30 * DAY, last_used=NOW - DAY)
    stale_document = _client("metadata_document", age=DAY, expires=NOW - dt.timedelta(hours=1))
    fresh_document = _client("metadata_document", age=DAY, expires=NOW + DAY)
    granted_document = _client("metadata_document", age=DAY, expires=NOW - DAY)
    _grant(tenant, granted_document)

    live_token = _token(grant, expires=NOW + dt.timedelta(hours=1))
    just_expired = _token(grant, expires=NOW - dt.timedelta(hours=1))
    long_expired = _token(grant, expires=NOW - 2 * DAY)
    long_revoked = _token(grant, expires=NOW + DAY, revoked=NOW - 2 * DAY)
    live_code = _code(tenant, used_client, NOW + dt.timedelta(minutes=5))
    dead_code = _code(tenant, recent_registration, NOW - dt.timedelta(minutes=1))
    TenantInvite.create(token_hash="live", tenant=tenant, expires=NOW + DAY)
    TenantInvite.create(token_hash="dead", tenant=tenant, expires=NOW - DAY)
    WebSession.create(id="live", expires=NOW + DAY)
    WebSession.create(id="dead", expires=NOW - dt.timedelta(seconds=1))

    result = prune_expired(unused_client_days=7, now=NOW)

    assert result.codes == 1
    assert result.tokens == 2
    assert result.registered_clients == 1
    assert result.metadata_documents == 1
    assert (result.invites, result.web_sessions) == (1, 1)
    assert result.total == 7
    remaining_clients = {c.id for c in OAuthClient.select()}
    assert remaining_clients == {
        used_client.id,
        recent_registration.id,
        recently_used.id,
        fresh_document.id,
        granted_document.id,
    }
    assert stale_registration.id not in remaining_clients
    assert stale_document.id not in remaining_clients
    assert {t.id for t in OAuthToken.select()} == {live_token, just_expired}
    assert long_expired not in {t.id for t in OAuthToken.select()}
    assert long_revoked not in {t.id for t in OAuthToken.select()}
    assert [c.code_hash for c in OAuthCode.select()] == [live_code]
    assert dead_code != live_code
    assert [i.token_hash for i in TenantInvite.select()] == ["live"]
    assert [s.id for s in WebSession.select()] == ["live"]
    # Grants are history: revoked or not, they stay.
    assert OAuthGrant.select().count() == 3

    assert prune_expired(unused_client_days=7, now=NOW).total == 0
