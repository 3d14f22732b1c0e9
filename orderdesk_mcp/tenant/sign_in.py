"""/tenant/sign-in, /tenant/sign-out and /tenant (which leads to the stores).

The same sign-in as /oauth/authorize (oauth/sign_in.py: one check, one set of failed-sign-in
limits, one audit action), but with the password only: an API key never opens these pages.
Signing in gives the session a new id; `next` may only lead to another /tenant/ page, so a
link to our sign-in can never send a tenant elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, current_app, request
from werkzeug.datastructures import MultiDict

from orderdesk_mcp.db.models import Tenant
from orderdesk_mcp.oauth import web, web_sessions
from orderdesk_mcp.oauth.pages import LIMITS_KEY, rate_limited
from orderdesk_mcp.oauth.sign_in import MAX_NAME_CHARS, SignInFailed, check_sign_in
from orderdesk_mcp.oauth.sign_in_limits import SignInLimits
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.tenant import area
from orderdesk_mcp.tenant.area import bp

NOTHING_ENTERED = "Enter your tenant name and your password."
_NOT_NEXT = ("/tenant/sign-in", "/tenant/sign-out", "/tenant/invite/")
MAX_NEXT_CHARS = 512


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a local /tenant/ path, else the stores page."""
    if not raw or len(raw) > MAX_NEXT_CHARS or "\\" in raw:
        return area.HOME_PATH
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in raw):
        return area.HOME_PATH
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return area.HOME_PATH
    # No escapes (%2e%2e, %2f: a browser or proxy may decode them into another path) and no
    # dot segments anywhere, trailing ones included ("/tenant/.." is "/"), before the prefix
    # is trusted.
    if "%" in parts.path or any(segment in (".", "..") for segment in parts.path.split("/")):
        return area.HOME_PATH
    if not parts.path.startswith("/tenant/") or parts.path.startswith(_NOT_NEXT):
        return area.HOME_PATH
    return raw


@bp.route("", methods=["GET"])
@bp.route("/", methods=["GET"])
def home() -> Response:
    return Response(status=302, headers={"Location": area.HOME_PATH})


def _form(
    session: BrowserSession,
    *,
    error: str | None = None,
    status: int = 200,
    username: str = "",
    key_session: bool = False,
) -> Response:
    return area.render(
        "tenant_sign_in.html",
        status,
        tenant=None,
        csrf_token=session.csrf_token,
        action=web.this_url(),
        error=error,
        username=username,
        key_session=key_session,
    )


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    came_with = web.loaded_session()
    next_path = safe_next(request.args.get("next"))
    if request.method == "GET":
        if area.signed_in_tenant(came_with) is not None:
            return Response(status=303, headers={"Location": next_path})
        if came_with is None:
            limited = rate_limited()
            if limited is not None:
                return limited
        session = web.browser_session(came_with)
        return _form(session, key_session=session.via_key_id is not None)
    session = area.check_csrf(came_with)
    username = request.form.get("username", "").strip()[:MAX_NAME_CHARS]
    password = request.form.get("password", "")
    if not username or not password:
        return _form(session, error=NOTHING_ENTERED, status=400, username=username)
    limits: SignInLimits = current_app.extensions[LIMITS_KEY]
    try:
        # Only the two fields: an api_key field, if one were posted, is never looked at.
        who = check_sign_in(
            MultiDict({"username": username, "password": password}),
            request.remote_addr or "unknown",
            limits,
        )
    except SignInFailed as failure:
        if failure.retry_after is not None:
            response = web.message_page(429, "Too many sign-ins", failure.message)
            response.headers["Retry-After"] = str(failure.retry_after)
            return response
        return _form(session, error=failure.message, status=400, username=username)
    # A new session id at sign-in: a cookie planted before it is worth nothing after.
    web.use_session(web_sessions.sign_in(session, tenant_id=who.tenant_id, via_key_id=None))
    return Response(status=303, headers={"Location": next_path})


@bp.route("/sign-out", methods=["GET", "POST"])
def sign_out() -> Response:
    came_with = web.loaded_session()
    if request.method == "GET":
        # A typed or bookmarked address: ask, since only a form may sign out (CSRF).
        if area.signed_in_tenant(came_with) is None:
            return Response(status=303, headers={"Location": area.SIGN_IN_PATH})
        return _sign_out_page()
    area.check_csrf(came_with)
    if came_with is not None:
        tenant = area.signed_in_tenant(came_with)
        web_sessions.end_session(came_with)
        if tenant is not None:
            area.audit_tenant_action(tenant, "sign_out")
    return Response(status=303, headers={"Location": area.SIGN_IN_PATH})


@area.tenant_page
def _sign_out_page(*, session: BrowserSession, tenant: Tenant) -> Response:
    return area.render("tenant_sign_out.html")
