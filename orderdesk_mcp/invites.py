"""One-time invite links: how a tenant sets its sign-in password without the operator
ever knowing it (`orderdesk-mcp tenant invite NAME` → `/tenant/invite/<token>`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import Tenant, TenantInvite, utcnow
from orderdesk_mcp.oauth.web_sessions import end_tenant_sessions
from orderdesk_mcp.passwords import hash_password

INVITE_PATH = "/tenant/invite/"
DEFAULT_LIFETIME = dt.timedelta(hours=24)
MAX_LIFETIME = dt.timedelta(days=30)


class InviteError(ValueError):
    """An invite that cannot be made or used; the message says what to do."""


@dataclass(frozen=True)
class Invite:
    tenant: str
    url: str  # holds the token: shown once, never stored or logged
    expires: dt.datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_invite(tenant: Tenant, public_url: str, lifetime: dt.timedelta) -> Invite:
    if not dt.timedelta(minutes=5) <= lifetime <= MAX_LIFETIME:
        raise InviteError("an invite must last from 5 minutes to 30 days")
    token = secrets.token_urlsafe(32)
    expires = utcnow() + lifetime
    TenantInvite.create(token_hash=_token_hash(token), tenant=tenant, expires=expires)
    return Invite(tenant=tenant.name, url=f"{public_url}{INVITE_PATH}{token}", expires=expires)


def find_invite(token: str) -> TenantInvite | None:
    """The live invite for this token: unused, unexpired, its tenant enabled; else None."""
    if not token or len(token) > 100:
        return None
    row = TenantInvite.get_or_none(TenantInvite.token_hash == _token_hash(token))
    if row is None or row.used is not None or row.expires <= utcnow() or row.tenant.disabled:
        return None
    return row


def redeem_invite(token: str, password: str) -> Tenant:
    """Set the tenant's password from a live invite and use the invite up (once only).

    Raises PasswordError for a password that cannot be set (the invite stays usable) and
    InviteError for an invite that is unknown, used or expired.
    """
    password_hash = hash_password(password)
    with database.atomic():
        row = find_invite(token)
        if row is None:
            raise InviteError(
                "this invite link is not valid any more (used, expired or mistyped); ask the "
                "operator for a new one"
            )
        claimed = (
            TenantInvite.update(used=utcnow())
            .where((TenantInvite.token_hash == row.token_hash) & TenantInvite.used.is_null())
            .execute()
        )
        if claimed != 1:
            raise InviteError("this invite link has just been used; ask the operator for a new one")
        tenant: Tenant = row.tenant
        _store_password(tenant.id, password_hash)
    return Tenant.get_by_id(tenant.id)


def set_password(tenant: Tenant, password: str) -> None:
    """The operator's way (`tenant set-password NAME --password-stdin`)."""
    password_hash = hash_password(password)
    with database.atomic():
        _store_password(tenant.id, password_hash)


def _store_password(tenant_id: int, password_hash: str) -> None:
    """Set the password and end every browser session signed in as the tenant: a new
    password is how a tenant shuts out whoever learnt the old one."""
    Tenant.update(password_hash=password_hash).where(Tenant.id == tenant_id).execute()
    end_tenant_sessions(tenant_id)
