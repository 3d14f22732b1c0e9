"""/tenant/invite/<token>: a tenant sets its sign-in password from a one-time link.

The token is in the path, so the page sends no Referer (Referrer-Policy: no-referrer) and
loads nothing from elsewhere; the password is never echoed back into the page.
"""

from __future__ import annotations

from flask import Response, g, request

from orderdesk_mcp import invites
from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.mcp.audit import arguments_text
from orderdesk_mcp.oauth import web, web_sessions
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.passwords import MIN_LENGTH, PasswordError

NOT_VALID = (
    "This invite link is not valid any more (used, expired or mistyped); ask the operator for "
    "a new one."
)
AUDIT_INVITE_USED = "oauth.invite_used"


def _form(
    tenant: Tenant, session: BrowserSession, *, error: str | None = None, status: int = 200
) -> Response:
    return web.page(
        "invite.html",
        status,
        tenant=tenant,
        action=request.path,
        csrf_token=session.csrf_token,
        error=error,
        min_length=MIN_LENGTH,
    )


@web.bp.route("/tenant/invite/<token>", methods=["GET", "POST"])
def invite(token: str) -> Response:
    row = invites.find_invite(token)
    if row is None:
        return web.message_page(404, "Invite not valid", NOT_VALID)
    came_with = web.loaded_session()
    session = web.browser_session(came_with)
    tenant: Tenant = row.tenant
    if request.method == "GET":
        return _form(tenant, session)
    if not web_sessions.csrf_matches(came_with, request.form.get("csrf_token")):
        return web.message_page(
            400,
            "Form expired",
            "This form has expired or did not come from this page; nothing was done. "
            "Open the invite link again.",
            retry_url=request.path,
        )
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        return _form(
            tenant, session, error="The two passwords differ; type the same one twice.", status=400
        )
    try:
        tenant = invites.redeem_invite(token, password)
    except PasswordError as problem:
        text = str(problem)
        return _form(tenant, session, error=f"{text[:1].upper()}{text[1:]}.", status=400)
    except invites.InviteError:
        return web.message_page(404, "Invite not valid", NOT_VALID)
    AuditEvent.create(
        tenant=tenant,
        action=AUDIT_INVITE_USED,
        arguments=arguments_text({"address": request.remote_addr or "unknown"}),
        outcome="ok",
        request_id=g.get("request_id"),
    )
    settings = web.settings()
    return web.page(
        "invite_done.html",
        tenant=tenant,
        mcp_url=f"{settings.public_url}/mcp",
        tenant_pages=settings.tenant_pages,
    )
