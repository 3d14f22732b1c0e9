"""Who may call /mcp, and what they reach: the strategy the HTTP blueprint is given.

`TenantAccess` (the default) checks tenant API keys and keeps sessions and the audit trail in
the database. Local mode swaps in `orderdesk_mcp.mcp.local.LocalAccess`; the blueprint is the
same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orderdesk_mcp.auth import AuthenticatedKey, verify_token
from orderdesk_mcp.mcp.audit import AuditSink, DatabaseAudit
from orderdesk_mcp.mcp.registry import StoreResolver
from orderdesk_mcp.mcp.sessions import (
    DEFAULT_MAX_SESSIONS_PER_KEY,
    DatabaseSessionStore,
    SessionOwner,
    SessionStore,
)
from orderdesk_mcp.mcp.store_resolver import TenantStoreResolver
from orderdesk_mcp.oauth.tokens import verify_access_token
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import Vault


@dataclass(frozen=True)
class Caller:
    """An authenticated caller (never carries the token)."""

    tenant_id: int | None
    key_id: int | None
    identity: str  # what the per-key rate limit counts: the key's public id
    read_only: bool
    toolsets: frozenset[str] | None
    store_ids: frozenset[int] | None = None  # Store row ids the key reaches; None: all

    @property
    def session_owner(self) -> SessionOwner:
        return SessionOwner(tenant_id=self.tenant_id, key_id=self.key_id)


class AccessPolicy(Protocol):
    requires_token: bool
    sessions: SessionStore
    audit: AuditSink

    def authenticate(self, token: str | None) -> Caller | None:
        """The caller a bearer token belongs to; None when it is missing, wrong or revoked."""
        ...

    def resolver_for(self, caller: Caller) -> StoreResolver: ...


class TenantAccess:
    """Multi-tenant mode: `Authorization: Bearer odmcp_...` on every request."""

    requires_token = True

    def __init__(
        self,
        *,
        vault: Vault | None,
        machinery: UpstreamMachinery | None,
        default_base_url: str,
        session_ttl: int,
        max_sessions_per_key: int = DEFAULT_MAX_SESSIONS_PER_KEY,
        oauth_resource: str | None = None,
    ) -> None:
        self._vault = vault
        self._machinery = machinery
        self._default_base_url = default_base_url
        self.sessions: SessionStore = DatabaseSessionStore(session_ttl, max_sessions_per_key)
        self.audit: AuditSink = DatabaseAudit()
        # This server's /mcp resource URL when OAuth is on: access tokens must be bound to it.
        self._oauth_resource = oauth_resource

    def authenticate(self, token: str | None) -> Caller | None:
        key = verify_token(token)
        if key is None and token and self._oauth_resource is not None:
            key = _oauth_caller_key(token, self._oauth_resource)
        if key is None:
            return None
        return Caller(
            tenant_id=key.tenant_id,
            key_id=key.key_id,
            identity=key.public_id,
            read_only=key.read_only,
            toolsets=key.toolsets,
            store_ids=key.store_ids,
        )

    def resolver_for(self, caller: Caller) -> StoreResolver:
        if caller.tenant_id is None or self._vault is None or self._machinery is None:
            # A wiring bug (create_app always provides them): the client sees -32603.
            raise RuntimeError("tenant access needs a tenant, the vault and the client machinery")
        return TenantStoreResolver(
            caller.tenant_id,
            vault=self._vault,
            machinery=self._machinery,
            default_base_url=self._default_base_url,
            store_ids=caller.store_ids,
        )


def _oauth_caller_key(token: str, resource: str) -> AuthenticatedKey | None:
    """The grant's rights row an OAuth access token stands for (None: not a live token)."""
    verified = verify_access_token(token, resource)
    return verified.key if verified is not None else None


def tenant_access(services: Services) -> TenantAccess:
    """Multi-tenant access built from the process's services and settings."""
    settings = services.settings
    return TenantAccess(
        vault=services.vault,
        machinery=services.machinery,
        default_base_url=settings.orderdesk_api_base_url,
        session_ttl=settings.session_ttl,
        max_sessions_per_key=settings.max_sessions_per_key,
        oauth_resource=settings.public_url + "/mcp" if settings.public_url else None,
    )
