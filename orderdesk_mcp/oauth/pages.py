"""/oauth/authorize for a browser: the sign-in page, then the consent page.

Both forms post back to the same URL with its query string. Every request, GET or POST,
checks the authorization request again through `authorization.validate_authorization_request`:
nothing about the client is ever read from a form field, and the pages never build a redirect
to a client themselves (`authorization.approve` and `deny` do).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

from orderdesk_mcp.db.models import ApiKey, Tenant
from orderdesk_mcp.oauth import (
    authorization,
    consent,
    invite_page,  # noqa: F401 - its route is on the same blueprint
    web,
    web_sessions,
)
from orderdesk_mcp.oauth.authorization import AuthorizationError, AuthorizationRequest
from orderdesk_mcp.oauth.blueprint import get_server_limits
from orderdesk_mcp.oauth.consent import ConsentChoice, ConsentError, ConsentOffer
from orderdesk_mcp.oauth.rights import RightsError
from orderdesk_mcp.oauth.sign_in import SignInFailed, check_sign_in
from orderdesk_mcp.oauth.sign_in_limits import SignInLimits
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.services import get_services

LIMITS_KEY = "orderdesk_mcp.oauth.sign_in_limits"
FORM_EXPIRED = (
    "This form has expired or did not come from this page; nothing was done. Start again below."
)
SIGN_IN_ENDED = "Your sign-in has ended; sign in again, then decide."


def init_app(app: Flask) -> None:
    """Register the sign-in, consent and invite pages and their stylesheet."""
    settings = get_services(app).settings
    app.extensions[LIMITS_KEY] = SignInLimits(settings)
    app.register_blueprint(web.bp)


def _signed_in(session: BrowserSession) -> tuple[Tenant, ApiKey | None] | None:
    """The session's tenant and sign-in key while both may still sign in, else None."""
    if session.tenant_id is None:
        return None
    tenant = Tenant.get_or_none(Tenant.id == session.tenant_id)
    if tenant is None or tenant.disabled:
        return None
    if session.via_key_id is None:
        return tenant, None
    key = ApiKey.get_or_none(ApiKey.id == session.via_key_id)
    if key is None or key.revoked is not None or key.kind != "key":
        return None
    return tenant, key


def _sign_in_page(
    auth_request: AuthorizationRequest,
    session: BrowserSession,
    *,
    error: str | None = None,
    status: int = 200,
    username: str = "",
) -> Response:
    return web.page(
        "sign_in.html",
        status,
        authz=auth_request,
        action=web.this_url(),
        csrf_token=session.csrf_token,
        error=error,
        username=username,
    )


def _consent_page(
    auth_request: AuthorizationRequest,
    session: BrowserSession,
    tenant: Tenant,
    key: ApiKey | None,
    offer: ConsentOffer,
    *,
    choice: ConsentChoice | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    if choice is None:
        asked = auth_request.requested
        read_only = asked.read_only or not offer.read_write
        choice = ConsentChoice(
            access=consent.READ_ONLY if read_only else consent.READ_WRITE,
            stores=frozenset(offer.stores),
            toolsets=frozenset(
                name for name in offer.toolsets if asked.toolsets is None or name in asked.toolsets
            )
            or frozenset(offer.toolsets),
        )
    return web.page(
        "consent.html",
        status,
        forms_to_self=False,  # the decision redirects to the client
        authz=auth_request,
        tenant=tenant,
        key=key,
        offer=offer,
        choice=choice,
        action=web.this_url(),
        csrf_token=session.csrf_token,
        error=error,
    )


@web.bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    limited = rate_limited()
    if limited is not None:
        return limited
    came_with = web.loaded_session()
    posted = request.method == "POST"
    if posted and not web_sessions.csrf_matches(came_with, request.form.get("csrf_token")):
        return web.message_page(400, "Form expired", FORM_EXPIRED, retry_url=web.this_url())
    try:
        return _authorize(came_with, posted)
    except AuthorizationError as error:
        # From validation, or from approve/deny (a client revoked meanwhile, say). Never an
        # automatic redirect: at most a link back to a verified client.
        return web.message_page(
            400,
            "Cannot connect",
            error.message,
            return_url=error.return_to,
            return_host=error.return_host,
        )


def rate_limited() -> Response | None:
    """The per-address cap on sign-in page requests (/oauth/authorize, /tenant/sign-in).

    Generous: it bounds the session rows a flood of first visits writes."""
    waited = get_server_limits().hit_authorize(request.remote_addr or "unknown")
    if waited is None:
        return None
    response = web.message_page(
        429, "Too many requests", f"Too many requests from your address; retry in {waited} seconds."
    )
    response.headers["Retry-After"] = str(waited)
    return response


def _authorize(came_with: BrowserSession | None, posted: bool) -> Response:
    auth_request = authorization.validate_authorization_request()
    # Only now a session row, if there was none: junk requests never write one.
    session = web.browser_session(came_with)
    signed_in = _signed_in(session)
    switching = posted and "sign_out" in request.form
    if session.tenant_id is not None and (signed_in is None or switching):
        # Signed out on request, or the tenant was disabled or its sign-in key revoked since.
        web_sessions.end_session(session)
        session = web.use_session(web_sessions.start_session())
        if switching:
            return _sign_in_page(auth_request, session)
        if posted:
            return _sign_in_page(auth_request, session, error=SIGN_IN_ENDED, status=400)
    if not posted:
        if signed_in is None:
            return _sign_in_page(auth_request, session)
        tenant, key = signed_in
        return _consent_page(
            auth_request,
            session,
            tenant,
            key,
            consent.offer_for(tenant.id, key, asked_read_only=auth_request.requested.read_only),
        )
    if "decision" in request.form:
        if signed_in is None:
            return _sign_in_page(auth_request, session, error=SIGN_IN_ENDED, status=400)
        return _decide(auth_request, session, *signed_in)
    return _sign_in(auth_request, session)


def _sign_in(auth_request: AuthorizationRequest, session: BrowserSession) -> Response:
    limits: SignInLimits = current_app.extensions[LIMITS_KEY]
    try:
        who = check_sign_in(request.form, request.remote_addr or "unknown", limits)
    except SignInFailed as failure:
        if failure.retry_after is not None:
            response = web.message_page(
                429, "Too many sign-ins", failure.message, retry_url=web.this_url()
            )
            response.headers["Retry-After"] = str(failure.retry_after)
            return response
        username = request.form.get("username", "")[:64]
        return _sign_in_page(
            auth_request, session, error=failure.message, status=400, username=username
        )
    # A new session id at sign-in: a cookie planted before it is worth nothing after.
    web.use_session(
        web_sessions.sign_in(session, tenant_id=who.tenant_id, via_key_id=who.via_key_id)
    )
    # Post/redirect/get: reloading the consent page never posts the password again.
    return Response(status=303, headers={"Location": web.this_url()})


def _decide(
    auth_request: AuthorizationRequest,
    session: BrowserSession,
    tenant: Tenant,
    key: ApiKey | None,
) -> Response:
    decision = request.form.get("decision")
    if decision == "deny":
        return authorization.deny(auth_request)
    offer = consent.offer_for(tenant.id, key, asked_read_only=auth_request.requested.read_only)
    if decision != "allow":
        error = "Choose Allow or Deny."
    else:
        try:
            rights = consent.rights_from_form(request.form, offer)
        except ConsentError as problem:
            error = str(problem)
        else:
            try:
                return authorization.approve(
                    auth_request,
                    tenant_id=tenant.id,
                    via_key_id=key.id if key is not None else None,
                    rights=rights,
                )
            except RightsError:
                # The offer already keeps within the request; this is the last line.
                error = "This app did not ask for that much access; choose less."
    return _consent_page(
        auth_request,
        session,
        tenant,
        key,
        offer,
        choice=consent.choice_from(request.form),
        error=error,
        status=400,
    )
