"""Authlib's authorization server on our models: the code grant with PKCE, refresh rotation,
revocation (RFC 7009) and the client authentication methods none, client_secret_basic and
client_secret_post.

Authlib runs the protocol rules (parameter checks, client authentication, PKCE comparison,
scope narrowing on refresh, error bodies); this module supplies the storage hooks and the
rules it leaves to us: codes are single use (a second use revokes the grant the first one
made), refresh tokens rotate (a second use revokes the grant), every token is bound to this
server's /mcp resource, and a disabled tenant's grant issues nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Request, Response, current_app
from flask import request as flask_request

from orderdesk_mcp.auth import hash_secret, parse_store_ids, parse_toolsets
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import OAuthCode, OAuthGrant, OAuthToken, Tenant, utcnow
from orderdesk_mcp.oauth import events, tokens
from orderdesk_mcp.oauth.clients import Client, find_client
from orderdesk_mcp.oauth.grants import create_grant, revoke_grant
from orderdesk_mcp.oauth.metadata import (
    CLIENT_AUTH_METHODS,
    SCOPE_CHALLENGE,
    SCOPES,
    normalise_resource,
)
from orderdesk_mcp.oauth.rights import GrantRights

EXTENSION_KEY = "orderdesk_mcp.oauth.server"
# Authlib logs issued token dicts at DEBUG ("Issue token %r"): never let a debug log level
# put tokens in the logs.
logging.getLogger("authlib").setLevel(logging.INFO)


def _our_scopes(scope: str | None) -> str:
    """The scopes of ours in `scope`, in SCOPES order ("" when none): whatever order, extra
    spaces or other scopes the client sent."""
    asked = set((scope or "").split())
    return " ".join(s for s in SCOPES if s in asked)


def scope_text(scope: str | None) -> str:
    """ "read" or "read write", whatever order or extra spaces the client used."""
    return _our_scopes(scope) or "read"


def requested_scope(scope: str | None) -> str:
    """What an authorization request asks for, in our scopes: others are ignored (RFC 6749
    3.3 lets a server ignore scopes it does not know: clients send "openid", "claudeai",
    "offline_access" and the like), and nothing we know means everything, which the consent
    page lets the tenant narrow."""
    return _our_scopes(scope) or SCOPE_CHALLENGE


def grant_rights_of_code(code: OAuthCode) -> GrantRights:
    return GrantRights(
        read_only="write" not in code.scope.split(),
        store_ids=parse_store_ids(code.store_ids),
        toolsets=parse_toolsets(code.toolsets),
    )


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 2: the requested resource is not one this server issues tokens for."""

    error = "invalid_target"


@dataclass
class CodeRecord:
    """An OAuthCode row as Authlib's AuthorizationCodeMixin."""

    row: OAuthCode
    code_challenge_method: str = "S256"

    @property
    def code_challenge(self) -> str:
        return str(self.row.code_challenge)

    def get_redirect_uri(self) -> str:
        return str(self.row.redirect_uri)

    def get_scope(self) -> str:
        return str(self.row.scope)


@dataclass
class TokenRecord:
    """An OAuthToken row (with its grant) as Authlib's TokenMixin."""

    row: OAuthToken
    grant: OAuthGrant

    def check_client(self, client: Client) -> bool:
        return bool(self.grant.client_id == client.row.id)

    def get_scope(self) -> str:
        return str(self.row.scope)


class _Request(FlaskOAuth2Request):  # type: ignore[misc]
    """Authlib's Flask request, with the URI it checks for TLS taken from the public URL
    (behind nginx the app itself sees plain http)."""

    def __init__(self, request: Request, public_url: str, *, query_only: bool) -> None:
        OAuth2Request.__init__(
            self, method=request.method, uri=public_url + request.path, headers=request.headers
        )
        self._request = request
        self.payload = _QueryPayload(request) if query_only else FlaskOAuth2Payload(request)


class _QueryPayload(FlaskOAuth2Payload):  # type: ignore[misc]
    """The authorization request lives in the query string only: the sign-in and consent
    forms POST back to the same URL, and nothing about the client comes from a form field."""

    @property
    def data(self) -> Any:
        return self._request.args


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE, S256 only (OAuth 2.1); validate_authorization_request requires a challenge."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)
    server: OAuthServer

    def validate_token_request(self) -> None:
        super().validate_token_request()
        self.server.check_resource_parameter(self.request)

    def query_authorization_code(self, code: str, client: Client) -> CodeRecord | None:
        row = OAuthCode.get_or_none(OAuthCode.code_hash == hash_secret(code))
        if row is None:
            return None
        if row.used is not None:
            self._reused(row)
            return None
        if row.client_id != client.row.id or row.expires <= utcnow():
            return None
        claimed = (
            OAuthCode.update(used=utcnow())
            .where((OAuthCode.code_hash == row.code_hash) & OAuthCode.used.is_null())
            .execute()
        )
        return CodeRecord(row) if claimed == 1 else None

    @staticmethod
    def _reused(row: OAuthCode) -> None:
        # RFC 6749 4.1.2: a code used twice may have leaked; what it got is revoked.
        grant_id = row.grant_id
        if grant_id is None:
            # The first exchange has claimed the code but not made its grant yet (or failed):
            # withdraw the code, so that exchange finds it gone and issues nothing. If the
            # grant was written meanwhile, nothing is deleted and that grant is revoked.
            withdrawn = (
                OAuthCode.delete()
                .where((OAuthCode.code_hash == row.code_hash) & OAuthCode.grant.is_null())
                .execute()
            )
            if withdrawn == 0:
                grant_id = (
                    OAuthCode.select(OAuthCode.grant)
                    .where(OAuthCode.code_hash == row.code_hash)
                    .scalar()
                )
        grant = OAuthGrant.get_or_none(OAuthGrant.id == grant_id) if grant_id else None
        if grant is not None:
            revoke_grant(grant, "authorization code reused")
        events.record(
            events.CODE_REUSE,
            tenant_id=row.tenant_id,
            key_id=grant.api_key_id if grant is not None else None,
            outcome="refused",
            details={"grant": grant.public_id if grant is not None else None},
        )

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        # Kept (marked used) until it expires, so a second use is recognised as reuse.
        return None

    def authenticate_user(self, authorization_code: CodeRecord) -> Tenant | None:
        row = authorization_code.row
        tenant: Tenant | None = Tenant.get_or_none(Tenant.id == row.tenant_id)
        if tenant is None or tenant.disabled:
            return None
        # Revoking the API key the tenant signed in with revokes the grants made with it;
        # a code issued before the revocation must not make a new one afterwards.
        if row.via_key_id is not None and not tokens.key_is_live(row.via_key_id):
            return None
        return tenant


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: OAuthServer

    def validate_token_request(self) -> None:
        super().validate_token_request()
        self.server.check_resource_parameter(self.request)

    def _asked_scope(self) -> str | None:
        """The refresh request's `scope` in our scopes (others ignored); None: not narrowed."""
        return _our_scopes(self.request.payload.scope) or None

    def _validate_token_scope(self, token: TokenRecord) -> None:
        # Authlib's check, on our scopes only: "read offline_access" narrows to read.
        asked = self._asked_scope()
        if asked is not None and not set(asked.split()) <= set(token.get_scope().split()):
            raise InvalidScopeError()

    def issue_token(self, user: Tenant, refresh_token: TokenRecord) -> dict[str, Any]:
        token: dict[str, Any] = self.generate_token(
            user=user,
            scope=self._asked_scope() or refresh_token.get_scope(),
            include_refresh_token=self.INCLUDE_NEW_REFRESH_TOKEN,
        )
        return token

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        row = tokens.find_token(refresh_token, tokens.REFRESH)
        if row is None:
            return None
        grant: OAuthGrant = row.grant
        if row.rotated is not None:
            self.server.refresh_reused(grant)
            return None
        tenant: Tenant = grant.tenant
        if (
            row.revoked is not None
            or row.expires <= utcnow()
            or tokens.grant_end(grant) <= utcnow()
            or grant.revoked is not None
            or tenant.disabled
            or (grant.via_key_id is not None and not tokens.key_is_live(grant.via_key_id))
        ):
            return None
        return TokenRecord(row, grant)

    def authenticate_user(self, refresh_token: TokenRecord) -> Tenant:
        tenant: Tenant = refresh_token.grant.tenant
        return tenant

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        return None  # claimed (marked rotated) in save_token, before the new pair is stored


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(CLIENT_AUTH_METHODS)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        # The hint is only a hint (RFC 7009 2.1): the prefix says what the token is.
        row = tokens.find_token(token_string)
        return TokenRecord(row, row.grant) if row is not None else None

    def revoke_token(self, token: TokenRecord, request: OAuth2Request) -> None:
        if token.row.kind == tokens.REFRESH:
            # A refresh token stands for the whole grant: the client is signing out.
            revoke_grant(token.grant, "refresh token revoked by the client")
        else:
            tokens.revoke_token_row(token.row)
        events.record(
            events.REVOKE,
            tenant_id=token.grant.tenant_id,
            key_id=token.grant.api_key_id,
            details={"grant": token.grant.public_id, "token_kind": token.row.kind},
        )


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        if settings.public_url is None:
            raise RuntimeError("OAuthServer needs ORDERDESK_MCP_PUBLIC_URL")  # a wiring bug
        self.settings = settings
        self.public_url: str = settings.public_url
        self.scopes_supported = list(SCOPES)
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)

    # --- Authlib's hooks ---------------------------------------------------------------

    def query_client(self, client_id: str) -> Client | None:
        return find_client(client_id, self.settings)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _Request(flask_request, self.public_url, query_only=False)

    def authorization_request(self) -> OAuth2Request:
        return _Request(flask_request, self.public_url, query_only=True)

    def validate_requested_scope(self, scope: str | None) -> None:
        return None  # unknown scopes are ignored, not refused: see requested_scope()

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None  # no Flask signals: audit rows are written where things happen

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Response:
        response: Response = super().handle_response(status_code, payload, headers)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        issued = tokens.IssuedTokens(
            access_token=tokens.new_token(tokens.ACCESS_PREFIX),
            refresh_token=tokens.new_token(tokens.REFRESH_PREFIX)
            if include_refresh_token
            else None,
            expires_in=self.settings.oauth_access_token_seconds,
            scope=scope_text(scope),
        )
        return issued.response()

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        if request.refresh_token is not None:
            # Claimed before the transaction: a lost race revokes the grant, and that
            # revocation must not roll back with the refused request.
            grant = self._rotate(request.refresh_token)
            grant_type = "refresh_token"
        with database.atomic():
            if request.refresh_token is None:
                grant = self._grant_from_code(request.authorization_code, request.client)
                grant_type = "authorization_code"
            tokens.store_tokens(
                grant,
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                access_seconds=self.settings.oauth_access_token_seconds,
                refresh_days=self.settings.oauth_refresh_token_days,
                access_scope=token["scope"],
                refresh_scope=grant_scope(grant),
            )
        events.issued(grant_type)
        if grant_type == "refresh_token":
            events.record(
                events.REFRESH,
                tenant_id=grant.tenant_id,
                key_id=grant.api_key_id,
                details={"grant": grant.public_id, "scope": token["scope"]},
            )

    # --- our rules ---------------------------------------------------------------------

    def check_resource_parameter(self, request: OAuth2Request) -> None:
        """RFC 8707 at the token endpoint: a `resource` sent must be this server's."""
        for value in request.form.getlist("resource"):
            if normalise_resource(value, self.settings) is None:
                raise InvalidTargetError(
                    description="tokens here are for this server's /mcp resource only"
                )

    def _grant_from_code(self, code: CodeRecord, client: Client) -> OAuthGrant:
        row = code.row
        grant = create_grant(
            tenant_id=row.tenant_id,
            client=client.row,
            rights=grant_rights_of_code(row),
            via_key_id=row.via_key_id,
            resource=row.resource,
            redirect_uri=row.redirect_uri or client.get_default_redirect_uri() or "",
        )
        linked = OAuthCode.update(grant=grant).where(OAuthCode.code_hash == row.code_hash).execute()
        if linked != 1:
            # A second use of the code came while this exchange ran and withdrew the code
            # (CodeGrant._reused): this transaction rolls back, so nothing is issued.
            raise InvalidGrantError(description="authorization code reused; sign in again")
        events.record(
            events.GRANT,
            tenant_id=row.tenant_id,
            key_id=grant.api_key_id,
            details={
                "grant": grant.public_id,
                "client": client.client_id,
                "client_name": client.name,
                "scope": row.scope,
                "via_key": row.via_key_id is not None,
            },
        )
        return grant

    def _rotate(self, refresh_token: TokenRecord) -> OAuthGrant:
        if not tokens.claim_refresh(refresh_token.row):
            # Another request used it first: one of the two holders is not the client.
            self.refresh_reused(refresh_token.grant)
            raise InvalidGrantError(description="refresh token already used; sign in again")
        return refresh_token.grant

    def refresh_reused(self, grant: OAuthGrant) -> None:
        """A rotated refresh token came back: it leaked, so the whole grant goes (RFC 9700)."""
        revoke_grant(grant, "refresh token reused")
        events.record(
            events.REFRESH_REUSE,
            tenant_id=grant.tenant_id,
            key_id=grant.api_key_id,
            outcome="refused",
            details={"grant": grant.public_id},
        )


def grant_scope(grant: OAuthGrant) -> str:
    return "read" if "write" not in grant.api_key.scopes.split(",") else "read write"


def get_server(app: Any = None) -> OAuthServer:
    server: OAuthServer = (app or current_app).extensions[EXTENSION_KEY]
    return server
