"""What every browser page shares: the blueprint, its security headers, the sign-in session
cookie and rendering.

The pages answer 404 while OAuth is off (ORDERDESK_MCP_PUBLIC_URL unset), like any unknown
path. Every reply carries a Content-Security-Policy without inline script or style (the pages
have no JavaScript at all), is never cached, and cannot be framed (clickjacking a consent
button).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from orderdesk_mcp.config import Settings
from orderdesk_mcp.oauth import web_sessions
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.services import get_services

bp = Blueprint(
    "oauth_pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/oauth/static",
)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Not on the consent page: browsers apply form-action to the redirect to the client too.
CSP_FORMS_TO_SELF = CSP + "; form-action 'self'"
_NEW_COOKIE = "oauth_pages_new_session"


def settings() -> Settings:
    return get_services(current_app).settings


def _secure_cookie() -> bool:
    return (settings().public_url or "").startswith("https://")


@bp.before_request
def _only_when_oauth_is_on() -> None:
    if not settings().oauth_enabled:
        abort(404)


@bp.after_request
def _page_headers(response: Response) -> Response:
    return finish_page(response, cacheable=request.endpoint == "oauth_pages.static")


def finish_page(response: Response, *, cacheable: bool = False) -> Response:
    """The headers every page reply carries, and the new session cookie if one was started
    (the OAuth pages' and the tenant area's after_request both call it)."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP_FORMS_TO_SELF)
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    if not cacheable:
        headers["Cache-Control"] = "no-store"
    new_session: BrowserSession | None = g.pop(_NEW_COOKIE, None)
    if new_session is not None:
        secure = _secure_cookie()
        response.set_cookie(
            web_sessions.cookie_name(secure),
            new_session.raw_id,
            max_age=int(web_sessions.MAX_LIFETIME.total_seconds()),
            path="/",
            secure=secure,
            httponly=True,
            samesite="Lax",
        )
    return response


def idle_lifetime() -> dt.timedelta:
    """How long a browser session lives without a page view (one clock for all the pages)."""
    return dt.timedelta(minutes=settings().tenant_session_idle_minutes)


def loaded_session() -> BrowserSession | None:
    """The live session the request's cookie names, else None (nothing is created)."""
    name = web_sessions.cookie_name(_secure_cookie())
    return web_sessions.load_session(request.cookies.get(name), idle_lifetime())


def use_session(session: BrowserSession) -> BrowserSession:
    """Send this (new) session's cookie with the reply."""
    setattr(g, _NEW_COOKIE, session)
    return session


def browser_session(loaded: BrowserSession | None) -> BrowserSession:
    """The request's live session, or a new anonymous one (its cookie goes with the reply).

    The page then has a CSRF token; a form posted without a live session fails the CSRF
    check, as it should.
    """
    return loaded if loaded is not None else use_session(web_sessions.start_session())


def this_url() -> str:
    """The current path and query string: where a page's form posts back to (same origin)."""
    query = request.query_string.decode("utf-8", "replace")
    return request.path + (f"?{query}" if query else "")


def page(
    template: str, status: int = 200, *, forms_to_self: bool = True, **context: Any
) -> Response:
    response = Response(render_template(template, **context), status=status)
    response.headers["Content-Security-Policy"] = CSP_FORMS_TO_SELF if forms_to_self else CSP
    return response


def message_page(
    status: int,
    title: str,
    message: str,
    *,
    retry_url: str | None = None,
    return_url: str | None = None,
    return_host: str | None = None,
) -> Response:
    """A page with one sentence (an error, or what happened) and nothing to submit;
    `return_url` (with `return_host` shown) is a link back to a verified client."""
    return page(
        "message.html",
        status,
        title=title,
        message=message,
        retry_url=retry_url,
        return_url=return_url,
        return_host=return_host,
    )
