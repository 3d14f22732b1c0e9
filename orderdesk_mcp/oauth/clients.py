"""OAuth clients: dynamically registered ones (RFC 7591) and client ID metadata documents.

Both live in `OAuthClient` rows. `find_client` is the one lookup everything uses: a
client_id that is an https URL is a metadata document, fetched (cimd.py) when it is not
cached or its cache expired; any other client_id must have been registered here.
`Client` adapts a row to what Authlib asks of a client (its ClientMixin methods).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import current_app, has_app_context

from orderdesk_mcp.auth import hash_secret
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import OAuthClient, OAuthGrant, utcnow
from orderdesk_mcp.oauth import cimd
from orderdesk_mcp.oauth.cimd_gate import FetchBusy, gate
from orderdesk_mcp.oauth.metadata import CLIENT_AUTH_METHODS, SCOPES
from orderdesk_mcp.oauth.redirects import RedirectUriError, check_registrable, matches
from orderdesk_mcp.orderdesk.errors import Busy

logger = logging.getLogger(__name__)

REGISTERED = "registered"
METADATA_DOCUMENT = "metadata_document"
CLIENT_ID_PREFIX = "odc_"
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
MAX_REDIRECT_URIS = 10
MAX_CLIENT_NAME_CHARS = 100
APPLICATION_TYPES = ("web", "native")
# Open registration: registered clients that never got a grant, still within their
# ORDERDESK_MCP_OAUTH_UNUSED_CLIENT_DAYS, beyond which registration is refused until some
# expire (housekeeping deletes them) or get used.
MAX_UNUSED_REGISTRATIONS = 10_000


class ClientMetadataError(ValueError):
    """Client metadata that cannot be accepted (invalid_client_metadata / invalid_redirect_uri)."""

    def __init__(
        self, message: str, *, error: str = "invalid_client_metadata", status: int = 400
    ) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


class UnknownClientError(LookupError):
    """No usable client for this client_id; the message says why."""


class ClientLookupBusy(UnknownClientError):
    """A metadata document could not be fetched right now (every fetch slot busy)."""


class TemporarilyUnavailableError(OAuth2Error):  # type: ignore[misc]
    """At the token and revocation endpoints: try again shortly (no client was looked at)."""

    error = "temporarily_unavailable"
    status_code = 503


@dataclass
class Client:
    """An OAuthClient row as Authlib's ClientMixin."""

    row: OAuthClient
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: OAuthClient) -> Client:
        try:
            metadata = json.loads(row.metadata or "{}")
        except ValueError:
            metadata = {}
        return cls(row=row, metadata=metadata if isinstance(metadata, dict) else {})

    @property
    def client_id(self) -> str:
        return str(self.row.client_id)

    @property
    def name(self) -> str:
        name = self.metadata.get("client_name")
        return name if isinstance(name, str) and name.strip() else self.client_id

    @property
    def redirect_uris(self) -> list[str]:
        uris = self.metadata.get("redirect_uris")
        return [u for u in uris if isinstance(u, str)] if isinstance(uris, list) else []

    # --- Authlib's ClientMixin ------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(SCOPES)
        return " ".join(s for s in SCOPES if s in scope.split())

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return matches(redirect_uri, self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_hash
        if not stored or not client_secret.isascii():
            return False
        return hmac.compare_digest(hash_secret(client_secret), stored)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.row.auth_method)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        grant_types = self.metadata.get("grant_types") or list(DEFAULT_GRANT_TYPES)
        return grant_type in grant_types


def find_client(client_id: str | None, settings: Settings) -> Client | None:
    """The live client for `client_id` (fetching a metadata document if needed), or None.

    TemporarilyUnavailableError (an OAuth error Authlib answers with) when a metadata
    document would have to be fetched and no fetch slot is free.
    """
    try:
        return load_client(client_id, settings)
    except ClientLookupBusy as busy:
        raise TemporarilyUnavailableError(description=str(busy)) from None
    except UnknownClientError:
        return None


def load_client(client_id: str | None, settings: Settings) -> Client:
    """Like find_client, but the error says why there is no client."""
    if not client_id or len(client_id) > cimd.MAX_URL_CHARS:
        raise UnknownClientError("the request names no known client_id")
    row = OAuthClient.get_or_none(OAuthClient.client_id == client_id)
    if row is not None and row.revoked is not None:
        raise UnknownClientError("this client was revoked by the server's operator")
    if not cimd.is_metadata_document_url(client_id):
        if row is None or row.kind != REGISTERED:
            raise UnknownClientError(
                "unknown client_id: the client must register (dynamic client registration) or "
                "use an https client ID metadata document"
            )
        return Client.of(row)
    if row is not None and row.expires is not None and row.expires > utcnow():
        return Client.of(row)
    return _fetch_metadata_client(client_id, row, settings)


def _shared_slot() -> AbstractContextManager[object] | None:
    """One of the process-wide slots Order Desk requests take (mcp/admission.py)."""
    # Here, not at the top: the mcp package imports the oauth package.
    from orderdesk_mcp.mcp.blueprint import STATE_KEY

    state = current_app.extensions.get(STATE_KEY) if has_app_context() else None
    return state.admission.outbound() if state is not None else None


def _fetch_metadata_client(client_id: str, row: OAuthClient | None, settings: Settings) -> Client:
    remembered = gate.recent_failure(client_id)
    if remembered is not None:
        raise UnknownClientError(f"{remembered} (not fetched again for a few minutes)")
    try:
        with gate.slot(_shared_slot()):
            fetched = cimd.fetch_document(
                client_id, allow_private=settings.oauth_cimd_allow_private
            )
        metadata = _document_metadata(client_id, fetched.document)
    except (FetchBusy, Busy):
        logger.warning("client metadata fetch refused: every fetch slot is busy")
        raise ClientLookupBusy(FetchBusy().args[0]) from None
    except (cimd.MetadataDocumentError, ClientMetadataError) as error:
        logger.info("client metadata document refused: %s", error)
        gate.remember_failure(client_id, str(error), host_wide=getattr(error, "host_wide", False))
        raise UnknownClientError(str(error)) from None
    expires = utcnow() + dt.timedelta(seconds=fetched.cache_seconds)
    if row is None:
        row = OAuthClient.create(
            client_id=client_id,
            kind=METADATA_DOCUMENT,
            auth_method="none",
            metadata=json.dumps(metadata),
            expires=expires,
        )
    else:
        row.metadata = json.dumps(metadata)
        row.expires = expires
        row.save()
    return Client.of(row)


def _document_metadata(client_id: str, document: dict[str, Any]) -> dict[str, Any]:
    if document.get("client_id") != client_id:
        raise ClientMetadataError(
            "the client metadata document's client_id is not the URL it was fetched from"
        )
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        # A document is public: no shared secret can be tied to it.
        raise ClientMetadataError(
            "a client metadata document client must use token_endpoint_auth_method none"
        )
    return _checked_metadata(document, auth_method="none")


def _checked_metadata(raw: dict[str, Any], *, auth_method: str) -> dict[str, Any]:
    """The metadata we keep, validated; ClientMetadataError for anything unacceptable."""
    uris = raw.get("redirect_uris")
    if not _is_string_list(uris):
        raise ClientMetadataError(
            "redirect_uris must be a non-empty list of strings", error="invalid_redirect_uri"
        )
    if len(uris) > MAX_REDIRECT_URIS:
        raise ClientMetadataError(
            f"at most {MAX_REDIRECT_URIS} redirect_uris", error="invalid_redirect_uri"
        )
    try:
        redirect_uris = [check_registrable(uri) for uri in uris]
    except RedirectUriError as error:
        raise ClientMetadataError(str(error), error="invalid_redirect_uri") from None
    grant_types = raw.get("grant_types", list(DEFAULT_GRANT_TYPES))
    if not _is_string_list(grant_types) or not set(grant_types) <= set(DEFAULT_GRANT_TYPES):
        raise ClientMetadataError("grant_types may hold only authorization_code and refresh_token")
    response_types = raw.get("response_types", ["code"])
    if response_types != ["code"]:
        raise ClientMetadataError('response_types must be ["code"]')
    application_type = raw.get("application_type", "web")
    if application_type not in APPLICATION_TYPES:
        raise ClientMetadataError('application_type must be "web" or "native"')
    name = raw.get("client_name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_CLIENT_NAME_CHARS):
        raise ClientMetadataError(
            f"client_name must be a string of at most {MAX_CLIENT_NAME_CHARS} characters"
        )
    scope = raw.get("scope")
    if scope is not None and (not isinstance(scope, str) or not set(scope.split()) <= set(SCOPES)):
        raise ClientMetadataError("scope may hold only read and write")
    kept: dict[str, Any] = {
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "application_type": application_type,
        "token_endpoint_auth_method": auth_method,
    }
    if name is not None:
        kept["client_name"] = name.strip()
    if scope is not None:
        kept["scope"] = scope
    for optional in ("client_uri", "logo_uri", "software_id", "software_version"):
        value = raw.get(optional)
        if isinstance(value, str) and len(value) <= 500:
            kept[optional] = value
    return kept


def _is_string_list(value: Any) -> TypeGuard[list[str]]:
    """A non-empty JSON array of strings (anything else in it cannot be compared or hashed)."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class Registration:
    client: Client
    client_secret: str | None  # shown once in the registration response, stored hashed

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_id": self.client.client_id,
            "client_id_issued_at": int(self.client.row.created.replace(tzinfo=dt.UTC).timestamp()),
            **self.client.metadata,
        }
        if self.client_secret is not None:
            body["client_secret"] = self.client_secret
            body["client_secret_expires_at"] = 0
        return body


def register_client(raw: Any, settings: Settings) -> Registration:
    """Register a client from its RFC 7591 metadata (open registration)."""
    if not isinstance(raw, dict):
        raise ClientMetadataError("the registration body must be a JSON object")
    method = raw.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in CLIENT_AUTH_METHODS:
        raise ClientMetadataError(
            "token_endpoint_auth_method must be one of " + ", ".join(CLIENT_AUTH_METHODS)
        )
    metadata = _checked_metadata(raw, auth_method=method)
    _check_room_for_registration(settings)
    secret = None if method == "none" else secrets.token_urlsafe(32)
    row = OAuthClient.create(
        client_id=CLIENT_ID_PREFIX + secrets.token_urlsafe(16),
        kind=REGISTERED,
        secret_hash=hash_secret(secret) if secret is not None else None,
        auth_method=method,
        metadata=json.dumps(metadata),
        # Open registration: one that never gets a grant is deleted after this.
        expires=utcnow() + dt.timedelta(days=settings.oauth_unused_client_days),
    )
    return Registration(client=Client.of(row), client_secret=secret)


def unused_registrations(settings: Settings) -> int:
    """Registered clients that never got a grant and are not yet due for deletion."""
    since = utcnow() - dt.timedelta(days=settings.oauth_unused_client_days)
    return int(
        OAuthClient.select()
        .where(
            (OAuthClient.kind == REGISTERED)
            & OAuthClient.id.not_in(OAuthGrant.select(OAuthGrant.client))
            & (OAuthClient.created >= since)
        )
        .count()
    )


def _check_room_for_registration(settings: Settings) -> None:
    if unused_registrations(settings) < MAX_UNUSED_REGISTRATIONS:
        return
    logger.warning(
        "client registration refused: %d registered clients without a grant already",
        MAX_UNUSED_REGISTRATIONS,
    )
    raise ClientMetadataError(
        "this server holds as many unused client registrations as it allows; try again later",
        error="temporarily_unavailable",
        status=503,
    )
