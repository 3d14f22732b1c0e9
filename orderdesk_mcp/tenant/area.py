"""The tenant area's frame: its blueprint, the signed-in-tenant guard, rendering and audit.

Every view that shows or changes a tenant's things is a `@tenant_page`: it gets the browser
session and the tenant signed in with its PASSWORD (a session opened with an API key is
enough for OAuth consent only, never here: a read-only key must not become one that adds
stores or mints keys). Views look every id up within `tenant` and answer `not_found()` for
anything else, so another tenant's id is indistinguishable from one that never existed.

The area answers 404 when ORDERDESK_MCP_TENANT_PAGES is false or OAuth is off
(ORDERDESK_MCP_PUBLIC_URL unset); the invite link (/tenant/invite/<token>) belongs to the
OAuth pages and keeps working.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, abort, g, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from orderdesk_mcp import errors
from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.mcp.audit import arguments_text
from orderdesk_mcp.oauth import web, web_sessions
from orderdesk_mcp.oauth.web_sessions import BrowserSession

bp = Blueprint("tenant_pages", __name__, url_prefix="/tenant", template_folder="templates")

AUDIT_PREFIX = "tenant."
SIGN_IN_PATH = "/tenant/sign-in"
HOME_PATH = "/tenant/stores"
NOT_FOUND = "There is nothing here: it does not exist, or it was removed."
FORM_EXPIRED = "This form has expired or did not come from this page; nothing was done. Try again."
_SESSION = "tenant_session"
_TENANT = "tenant_signed_in"

View = Callable[..., Response]


def init_app(app: Flask) -> None:
    """Register the tenant area (its views register themselves on `bp` when imported)."""
    from orderdesk_mcp.tenant import pages  # noqa: F401 - imports every view module

    app.register_blueprint(bp)


def enabled() -> bool:
    settings = web.settings()
    return settings.oauth_enabled and settings.tenant_pages


@bp.before_request
def _only_when_enabled() -> Response | None:
    return None if enabled() else not_found()


@bp.after_request
def _page_headers(response: Response) -> Response:
    return web.finish_page(response)


@bp.route("/<path:unknown>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def _unknown_page(unknown: str) -> Response:
    # Any other path under /tenant/ gets the page-shaped 404 (with its headers), not the
    # app's JSON one. Werkzeug tries every more specific rule first.
    setattr(g, _TENANT, signed_in_tenant(web.loaded_session()))
    return not_found()


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    # abort(response) (check_csrf) carries its own page; anything else gets one sentence.
    if error.response is not None:
        return error.response  # type: ignore[return-value]
    if error.code == 404:
        return not_found()
    if error.code == 405:
        return _message(405, "Not allowed", "This page cannot be used that way; use its form.")
    if error.code is not None and error.code < 500:
        return _message(error.code, "Cannot do that", "That request was not understood.")
    return _server_error(error)


@bp.errorhandler(InternalServerError)
def _server_error(error: HTTPException) -> Response:
    errors.log_unhandled(error)
    request_id = g.get("request_id", "")
    return _message(
        500,
        "Something went wrong",
        f"Something went wrong on our side and nothing may have been saved; try again, or quote "
        f"{request_id} to the operator.",
    )


# --- the guard ---------------------------------------------------------------------------


def signed_in_tenant(session: BrowserSession | None) -> Tenant | None:
    """The tenant this session signed in with its password, while it may still sign in."""
    if session is None or session.tenant_id is None or session.via_key_id is not None:
        return None
    tenant: Tenant | None = Tenant.get_or_none(Tenant.id == session.tenant_id)
    if tenant is None or tenant.disabled:
        return None
    return tenant


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?{urlencode({'next': next_path})}"


def tenant_page(view: View) -> View:
    """For views that need a password-signed-in tenant: passes `session=` and `tenant=`.

    Not signed in (or only with an API key, or the tenant was disabled since): a 303 to the
    sign-in page, which comes back here afterwards; nothing the request asked is done.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        session = web.loaded_session()
        tenant = signed_in_tenant(session)
        if session is None or tenant is None:
            back = web.this_url() if request.method == "GET" else request.path
            return Response(status=303, headers={"Location": sign_in_url(back)})
        setattr(g, _SESSION, session)
        setattr(g, _TENANT, tenant)
        return view(*args, session=session, tenant=tenant, **kwargs)

    return guarded


def check_csrf(session: BrowserSession | None) -> BrowserSession:
    """Abort with a 400 page unless the posted `csrf_token` is this session's; returns the
    session (then certainly not None)."""
    if session is None or not web_sessions.csrf_matches(session, request.form.get("csrf_token")):
        abort(_message(400, "Form expired", FORM_EXPIRED))
    return session


# --- rendering ---------------------------------------------------------------------------


def render(template: str, status: int = 200, **context: Any) -> Response:
    """A page in the tenant layout (nav, sign-out form with the session's CSRF token)."""
    session: BrowserSession | None = g.get(_SESSION)
    context.setdefault("tenant", g.get(_TENANT))
    context.setdefault("csrf_token", session.csrf_token if session is not None else "")
    context.setdefault("current_path", request.path)
    context.setdefault("error", None)
    response = Response(render_template(template, **context), status=status)
    response.headers["Content-Security-Policy"] = web.CSP_FORMS_TO_SELF
    return response


def _message(status: int, title: str, message: str) -> Response:
    if g.get(_TENANT) is not None:
        return render("tenant_message.html", status, title=title, message=message)
    return web.message_page(status, title, message)


def not_found() -> Response:
    """The one-sentence 404 page: for unknown ids and other tenants' ids alike."""
    return _message(404, "Not found", NOT_FOUND)


def message(title: str, text: str, status: int = 200) -> Response:
    """A page with one sentence in the tenant layout (what happened, or what went wrong)."""
    return _message(status, title, text)


# --- audit -------------------------------------------------------------------------------


def audit_tenant_action(
    tenant: Tenant,
    action: str,
    store: str | None = None,
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> None:
    """Record what the tenant did (or tried) on a page, the tenant as actor:
    `tenant.<thing>` (e.g. "tenant.store.add"; the prefix is added when missing), with its
    outcome ("ok", or "refused" when the page said no). Never pass a secret: details still
    go through the audit redaction, as a last line."""
    name = action if action.startswith(AUDIT_PREFIX) else AUDIT_PREFIX + action
    AuditEvent.create(
        tenant=tenant,
        action=name,
        store=store,
        arguments=arguments_text({**(details or {}), "address": request.remote_addr or "unknown"}),
        outcome=outcome,
        request_id=g.get("request_id"),
    )
