"""Deleting OAuth rows nobody can use any more, so open registration and token rotation do not
make the tables grow for ever.

Run by `orderdesk-mcp oauth prune`, which the daily backup unit starts after `audit prune`
(systemd/orderdesk-mcp-backup.service): off the request path, and one run a day is plenty
for rows that are all dead already (nothing here decides whether a token is valid; the token
check does that by itself). Grants are kept, revoked or not: they are the tenant's history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import peewee

from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import (
    OAuthClient,
    OAuthCode,
    OAuthGrant,
    OAuthToken,
    TenantInvite,
    utcnow,
)
from orderdesk_mcp.oauth.web_sessions import IDLE_LIFETIME, prune_web_sessions

# Expired or revoked tokens stay this long, so an operator can still see what just stopped
# working (and a refresh token's rotation outlives any sensible retry).
TOKEN_GRACE = dt.timedelta(days=1)


@dataclass(frozen=True)
class PruneResult:
    codes: int
    tokens: int
    registered_clients: int
    metadata_documents: int
    invites: int
    web_sessions: int

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


def prune_expired(
    *,
    unused_client_days: int,
    now: dt.datetime | None = None,
    session_idle: dt.timedelta = IDLE_LIFETIME,
) -> PruneResult:
    """Delete what can no longer be used; returns how many rows of each kind went."""
    now = now or utcnow()
    token_cutoff = now - TOKEN_GRACE
    client_cutoff = now - dt.timedelta(days=unused_client_days)
    with_grant = OAuthGrant.select(OAuthGrant.client)
    with database.atomic():
        codes = OAuthCode.delete().where(OAuthCode.expires < now).execute()
        tokens = (
            OAuthToken.delete()
            .where((OAuthToken.expires < token_cutoff) | (OAuthToken.revoked < token_cutoff))
            .execute()
        )
        registered = (
            OAuthClient.delete()
            .where(
                (OAuthClient.kind == "registered")
                & OAuthClient.id.not_in(with_grant)
                & (peewee.fn.COALESCE(OAuthClient.last_used, OAuthClient.created) < client_cutoff)
            )
            .execute()
        )
        # A cached client ID metadata document past its refetch time is fetched again on the
        # next sign-in; the row is only worth keeping while a grant refers to it.
        documents = (
            OAuthClient.delete()
            .where(
                (OAuthClient.kind == "metadata_document")
                & OAuthClient.id.not_in(with_grant)
                & (OAuthClient.expires < now)
            )
            .execute()
        )
        invites = TenantInvite.delete().where(TenantInvite.expires < now).execute()
        # Idle ones too: every first visit to /oauth/authorize writes an anonymous session.
        sessions = prune_web_sessions(now, session_idle)
    return PruneResult(
        codes=codes,
        tokens=tokens,
        registered_clients=registered,
        metadata_documents=documents,
        invites=invites,
        web_sessions=sessions,
    )
