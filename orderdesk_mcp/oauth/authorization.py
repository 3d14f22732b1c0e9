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
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response

from orderdesk_mcp.oauth.rights import GrantRights


class AuthorizationError(Exception):
    """An authorization request that cannot go on.

    `redirect` is set when the client and redirect URI are verified, so the error goes back to
    the client (RFC 6749 4.1.2.1); otherwise the page shows `message` and never redirects
    (an unverified redirect URI would make us an open redirector).
    """

    def __init__(self, message: str, redirect: Response | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.redirect = redirect


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    client_name: str
    redirect_uri: str
    redirect_host: str  # what the consent page shows: where the tenant will be sent
    requested: GrantRights  # from `scope`: "read" asks read-only; none or "read write" both
    state: str | None
    resource: str  # always this server's /mcp resource once validated


def validate_authorization_request() -> AuthorizationRequest:
    raise NotImplementedError  # implemented by the protocol half


def approve(
    request: AuthorizationRequest,
    *,
    tenant_id: int,
    via_key_id: int | None,
    rights: GrantRights,
) -> Response:
    raise NotImplementedError  # implemented by the protocol half


def deny(request: AuthorizationRequest) -> Response:
    raise NotImplementedError  # implemented by the protocol half
