"""The authorization endpoint's protocol half, for the sign-in and consent pages.

CONTRACT between the pages (oauth/pages.py: sign-in, consent, forms, sessions) and the
protocol code (Authlib server, codes, PKCE, redirect checks). The pages never build a redirect
to a client themselves: they call these three functions.

- `validate_authorization_request()` reads the current Flask request's query parameters
  (response_type, client_id, redirect_uri, code_challenge, code_challenge_method, state,
  scope, resource) and returns the checked request, or raises AuthorizationError.
  The forms POST back to the same URL (query string kept), and the POST handler calls it
  again: nothing about the client is trusted from a form field.
- `approve(request, ...)` issues a code bound to the client, redirect URI, PKCE challenge,
  resource and rights, and returns the 302 to the client (code, state, iss).
- `deny(request)` returns the 302 to the client with error=access_denied (state, iss).

Only those two redirect by themselves, after the tenant acted. A request that fails its checks
never sends the browser anywhere automatically, even back to a verified client: registration
is open, so anyone can register https://evil.example/ as a "client" and would otherwise have
an open redirector (RFC 9700 4.11.2). The page shows the error instead, with a link back to
the client (its host shown) when the redirect URI is verified.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Response

from orderdesk_mcp.auth import hash_secret
from orderdesk_mcp.db.models import OAuthCode, utcnow
from orderdesk_mcp.oauth import events
from orderdesk_mcp.oauth.clients import (
    METADATA_DOCUMENT,
    Client,
    UnknownClientError,
    load_client,
)
from orderdesk_mcp.oauth.metadata import normalise_resource, resource_url
from orderdesk_mcp.oauth.redirects import LOOPBACK_HOSTS
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.oauth.server import get_server, requested_scope

# Long enough for a client to exchange it right away, short enough to be useless if copied.
CODE_SECONDS = 60
CODE_BYTES = 32


class AuthorizationError(Exception):
    """An authorization request that cannot go on: the page shows `message`.

    `return_to` is set when the client and redirect URI are verified: the error response for
    the client (RFC 6749 4.1.2.1), which the page offers as a link to `return_host`, never as
    an automatic redirect (see the module doc).
    """

    def __init__(
        self, message: str, return_to: str | None = None, return_host: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.return_to = return_to
        self.return_host = return_host


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    client_name: str
    redirect_uri: str  # where the browser goes back to: the one sent, or the only registered
    # Whether the request carried redirect_uri: then the token request must repeat it
    # (RFC 6749 4.1.3), else it need not.
    redirect_uri_sent: bool
    redirect_host: str  # what the consent page shows: where the tenant will be sent
    # The redirect goes to this computer (a loopback host): the consent page warns, since
    # any program on the tenant's machine could be listening there.
    redirect_is_local: bool
    # A client ID metadata document's host (whoever controls it vouches for the client);
    # None for a client registered here.
    client_host: str | None
    requested: GrantRights  # from `scope`: "read" asks read-only; none or "read write" both
    state: str | None
    resource: str  # always this server's /mcp resource once validated
    # The PKCE challenge (S256) the code will be bound to; not for display.
    code_challenge: str = field(default="", repr=False)


def validate_authorization_request() -> AuthorizationRequest:
    """Check the current request's query string (GET or POST alike); see the module doc."""
    server = get_server()
    request = server.authorization_request()
    args = request.args
    try:
        client = load_client(args.get("client_id"), server.settings)
    except UnknownClientError as error:
        _refused("invalid_client")
        raise AuthorizationError(str(error)) from None
    try:
        grant = server.get_consent_grant(request)
    except OAuth2Error as error:
        _refused(error.error or "invalid_request")
        raise _error(error, args.get("state")) from None
    redirect_uri: str = grant.redirect_uri
    state = args.get("state")

    def back_to_client(error: str, description: str) -> AuthorizationError:
        _refused(error)
        return AuthorizationError(
            description,
            _location(redirect_uri, [("error", error), ("error_description", description)], state),
            _host_of(redirect_uri),
        )

    if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
        raise back_to_client(
            "invalid_request", "PKCE is required: send code_challenge with method S256"
        )
    resources = args.getlist("resource")
    if len(resources) > 1 or (
        resources and normalise_resource(resources[0], server.settings) is None
    ):
        raise back_to_client(
            "invalid_target", "this server issues tokens only for its own /mcp resource"
        )
    return AuthorizationRequest(
        client_id=client.client_id,
        client_name=client.name,
        redirect_uri=redirect_uri,
        redirect_uri_sent=bool(args.get("redirect_uri")),
        redirect_host=_host_of(redirect_uri),
        redirect_is_local=(urlsplit(redirect_uri).hostname or "").lower() in LOOPBACK_HOSTS,
        client_host=urlsplit(client.client_id).hostname
        if client.row.kind == METADATA_DOCUMENT
        else None,
        requested=GrantRights(
            read_only="write" not in requested_scope(grant.request.scope).split(),
            store_ids=None,
            toolsets=None,
        ),
        state=state,
        resource=resource_url(server.settings),
        code_challenge=args["code_challenge"],
    )


def approve(
    request: AuthorizationRequest,
    *,
    tenant_id: int,
    via_key_id: int | None,
    rights: GrantRights,
) -> Response:
    """Issue a code for these rights and send the browser back to the client with it.

    `rights` must be within what the client asked for (RightsError otherwise): a client that
    asked for read-only access never gets a read-write code.
    """
    rights.within(request.requested)
    server = get_server()
    client: Client | None = server.query_client(request.client_id)
    if client is None or not request.code_challenge:
        raise AuthorizationError("the client is no longer known here; start the sign-in again")
    code = secrets.token_urlsafe(CODE_BYTES)
    now = utcnow()
    OAuthCode.create(
        code_hash=hash_secret(code),
        client=client.row,
        tenant=tenant_id,
        via_key=via_key_id,
        # Empty when the request left it out: the token request need not send it then.
        redirect_uri=request.redirect_uri if request.redirect_uri_sent else "",
        code_challenge=request.code_challenge,
        resource=request.resource,
        created=now,
        expires=now + dt.timedelta(seconds=CODE_SECONDS),
        **_code_rights(rights),
    )
    return _redirect(request.redirect_uri, [("code", code)], request.state)


def deny(request: AuthorizationRequest) -> Response:
    _refused("access_denied")
    return _redirect(
        request.redirect_uri,
        [("error", "access_denied"), ("error_description", "the tenant declined")],
        request.state,
    )


def _code_rights(rights: GrantRights) -> dict[str, str | None]:
    columns = rights.column_values()
    return {
        "scope": rights.scope,
        "store_ids": columns["store_ids"],
        "toolsets": columns["toolsets"],
    }


def _redirect(uri: str, params: list[tuple[str, str]], state: str | None) -> Response:
    location = _location(uri, params, state)
    return Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _location(uri: str, params: list[tuple[str, str]], state: str | None) -> str:
    if state is not None:
        params = [*params, ("state", state)]
    # RFC 9207: the issuer in every authorization response, errors included.
    params.append(("iss", get_server().public_url))
    return str(add_params_to_uri(uri, params))


def _error(error: OAuth2Error, state: str | None) -> AuthorizationError:
    description = error.description or error.error or "invalid authorization request"
    if error.redirect_uri:  # set by Authlib only once the client and redirect URI check out
        params = [("error", str(error.error))]
        if error.description:
            params.append(("error_description", str(error.description)))
        return AuthorizationError(
            description, _location(error.redirect_uri, params, state), _host_of(error.redirect_uri)
        )
    if "redirect" in description.lower():
        # Authlib's text quotes the URI; a page that echoes an attacker's URL helps phishing.
        description = (
            "this sign-in link asks to send you to an address the app never registered, so "
            "sign-in stopped there; start again from the app"
        )
    return AuthorizationError(description)


def _host_of(uri: str) -> str:
    """Where the consent page says the tenant will be sent: host and port, no credentials."""
    parts = urlsplit(uri)
    if not parts.hostname:
        return f"{parts.scheme}: app"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}" if parts.port else host


def _refused(error: str) -> None:
    events.refused("authorize", error)
