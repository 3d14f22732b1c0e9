"""Browser sign-in sessions for /oauth/authorize (and the tenant pages): server-side rows.

The cookie holds 32 random bytes; the `web_session` row is keyed by their SHA-256, so a copied
database cannot be replayed as a cookie. A session starts anonymous on the first page view
(its CSRF token must exist before the sign-in form is shown), gets a new id when the tenant
signs in (no session fixation), ends after its idle lifetime without a page view
(ORDERDESK_MCP_TENANT_SESSION_IDLE_MINUTES, IDLE_LIFETIME by default) or MAX_LIFETIME after
it began, whichever comes first.

The CSRF token is an HMAC keyed by the raw session id: only the holder of the cookie
(HttpOnly, so not even a script on our origin) can compute it, and the server needs no
secret of its own to check it, whatever process answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, cast

from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import WebSession, utcnow

IDLE_LIFETIME = dt.timedelta(minutes=30)
MAX_LIFETIME = dt.timedelta(hours=12)
COOKIE_NAME = "odmcp_session"
# Behind https the cookie is Secure with the __Host- prefix: the browser then refuses it
# unless it is Secure, has Path=/ and no Domain, so a sibling subdomain cannot plant one.
SECURE_COOKIE_NAME = "__Host-odmcp_session"
_CSRF_CONTEXT = b"orderdesk-mcp web form csrf v1"
_MAX_COOKIE_CHARS = 100


@dataclass(frozen=True)
class BrowserSession:
    """A live session: the raw id (only ever in the cookie) and who is signed in, if anyone."""

    raw_id: str
    tenant_id: int | None
    via_key_id: int | None  # the API key the tenant signed in with, if that is how

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.raw_id)


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE_NAME if secure else COOKIE_NAME


def session_hash(raw_id: str) -> str:
    return hashlib.sha256(raw_id.encode("utf-8")).hexdigest()


def csrf_token_for(raw_id: str) -> str:
    return hmac.new(raw_id.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_matches(session: BrowserSession | None, presented: str | None) -> bool:
    """True when `presented` is this session's CSRF token (constant-time)."""
    if session is None or not presented:
        return False
    return hmac.compare_digest(session.csrf_token.encode(), presented.encode("utf-8", "replace"))


def start_session(*, tenant_id: int | None = None, via_key_id: int | None = None) -> BrowserSession:
    now = utcnow()
    raw_id = secrets.token_urlsafe(32)
    WebSession.create(
        id=session_hash(raw_id),
        tenant=tenant_id,
        via_key=via_key_id,
        created=now,
        last_seen=now,
        signed_in=now if tenant_id is not None else None,
        expires=now + MAX_LIFETIME,
    )
    return BrowserSession(raw_id=raw_id, tenant_id=tenant_id, via_key_id=via_key_id)


def load_session(raw_id: str | None, idle: dt.timedelta = IDLE_LIFETIME) -> BrowserSession | None:
    """The live session of this cookie value (its idle clock restarted), else None.

    An expired session is deleted on sight, so it can never come back.
    """
    if not raw_id or len(raw_id) > _MAX_COOKIE_CHARS:
        return None
    row_id = session_hash(raw_id)
    # dicts(): the foreign keys as plain ids, without loading the tenant or key rows.
    query = WebSession.select().where(WebSession.id == row_id).dicts()
    row = cast(dict[str, Any] | None, query.get_or_none())
    if row is None:
        return None
    now = utcnow()
    if row["expires"] <= now or row["last_seen"] + idle <= now:
        WebSession.delete().where(WebSession.id == row_id).execute()
        return None
    WebSession.update(last_seen=now).where(WebSession.id == row_id).execute()
    return BrowserSession(raw_id=raw_id, tenant_id=row["tenant"], via_key_id=row["via_key"])


def sign_in(
    previous: BrowserSession | None, *, tenant_id: int, via_key_id: int | None
) -> BrowserSession:
    """A new session (new id, new CSRF token) for the signed-in tenant; the old one is gone."""
    with database.atomic():
        if previous is not None:
            end_session(previous)
        return start_session(tenant_id=tenant_id, via_key_id=via_key_id)


def end_session(session: BrowserSession) -> None:
    WebSession.delete().where(WebSession.id == session_hash(session.raw_id)).execute()


def end_tenant_sessions(tenant_id: int, *, keep: BrowserSession | None = None) -> int:
    """End the tenant's browser sessions (all but `keep`, if given); returns how many went."""
    query = WebSession.delete().where(WebSession.tenant == tenant_id)
    if keep is not None:
        query = query.where(WebSession.id != session_hash(keep.raw_id))
    return int(query.execute())


def prune_web_sessions(now: dt.datetime | None = None, idle: dt.timedelta = IDLE_LIFETIME) -> int:
    """Delete expired and idle sessions (housekeeping); returns how many went."""
    now = now or utcnow()
    return int(
        WebSession.delete()
        .where((WebSession.expires <= now) | (WebSession.last_seen <= now - idle))
        .execute()
    )
