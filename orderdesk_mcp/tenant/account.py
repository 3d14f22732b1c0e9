"""/tenant/account: change the sign-in password, and sign out everywhere.

A new password goes through invites.set_password (the operator's `tenant set-password`),
which ends every browser session of the tenant, this one too; this browser then gets a new
session, still signed in, so only the others are shut out. Wrong current passwords count
against the same failed-sign-in limits as the sign-in forms: a stolen session cannot be
used to guess the password.
"""

from __future__ import annotations

from flask import Response, current_app, request

from orderdesk_mcp import passwords
from orderdesk_mcp.db.models import Tenant
from orderdesk_mcp.invites import set_password
from orderdesk_mcp.oauth import web, web_sessions
from orderdesk_mcp.oauth.pages import LIMITS_KEY
from orderdesk_mcp.oauth.sign_in_limits import SignInLimits
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.passwords import MIN_LENGTH, PasswordError
from orderdesk_mcp.tenant import area
from orderdesk_mcp.tenant.area import bp, tenant_page

WRONG_CURRENT = "Your current password is not right; nothing was changed."
DIFFERENT = "The two new passwords differ; type the same one twice."


def _page(*, error: str | None = None, status: int = 200, done: str | None = None) -> Response:
    return area.render("tenant_account.html", status, error=error, done=done, min_length=MIN_LENGTH)


@bp.route("/account", methods=["GET"])
@tenant_page
def account(*, session: BrowserSession, tenant: Tenant) -> Response:
    done = "Your password is changed." if request.args.get("changed") == "password" else None
    return _page(done=done)


@bp.route("/account/password", methods=["POST"])
@tenant_page
def change_password(*, session: BrowserSession, tenant: Tenant) -> Response:
    area.check_csrf(session)
    limits: SignInLimits = current_app.extensions[LIMITS_KEY]
    address = request.remote_addr or "unknown"
    wait = limits.blocked(address, tenant.name)
    if wait is not None:
        response = area.message(
            "Too many tries", f"Too many wrong passwords; try again in {wait} seconds.", 429
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if not passwords.verify_password(tenant.password_hash, request.form.get("current", "")):
        limits.note_failure(address, tenant.name)
        # Visible on the activity page: someone with this session tried a password.
        area.audit_tenant_action(tenant, "tenant.password.change", outcome="refused")
        return _page(error=WRONG_CURRENT, status=400)
    new = request.form.get("password", "")
    if new != request.form.get("confirm", ""):
        return _page(error=DIFFERENT, status=400)
    try:
        set_password(tenant, new)  # ends every session of the tenant, this one included
    except PasswordError as problem:
        text = str(problem)
        return _page(error=f"{text[:1].upper()}{text[1:]}.", status=400)
    web.use_session(web_sessions.start_session(tenant_id=tenant.id))
    area.audit_tenant_action(tenant, "tenant.password.change")
    return Response(status=303, headers={"Location": "/tenant/account?changed=password"})


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@tenant_page
def sign_out_everywhere(*, session: BrowserSession, tenant: Tenant) -> Response:
    area.check_csrf(session)
    ended = web_sessions.end_tenant_sessions(tenant.id)
    area.audit_tenant_action(tenant, "tenant.sign_out_everywhere", details={"sessions": ended})
    return Response(status=303, headers={"Location": area.SIGN_IN_PATH})
