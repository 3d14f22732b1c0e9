"""Local mode: one user, one store, on this machine (`serve --local` and `stdio`).

No tenant keys: the store comes from ORDERDESK_STORE_ID / ORDERDESK_API_KEY /
ORDERDESK_API_BASE_URL, sessions live in memory and tool calls are logged instead of
written to the audit table, so no database or master key is needed. Over HTTP the server
binds loopback only; the same blueprint serves it with `LocalAccess` swapped in.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, field

from flask import Flask

from orderdesk_mcp.app import create_app, observe_upstream_call
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.mcp import blueprint
from orderdesk_mcp.mcp.access import Caller
from orderdesk_mcp.mcp.audit import AuditSink, LogAudit
from orderdesk_mcp.mcp.dispatcher import Dispatcher
from orderdesk_mcp.mcp.registry import StoreResolver
from orderdesk_mcp.mcp.sessions import MemorySessionStore, SessionStore
from orderdesk_mcp.mcp.stdio import StdioSession, serve_stdio
from orderdesk_mcp.mcp.store_resolver import LocalStoreResolver
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.services import Services

LOCAL_CALLER = Caller(tenant_id=None, key_id=None, identity="local", read_only=False, toolsets=None)


class LocalModeError(ValueError):
    """Local mode cannot start; the message says which setting to fix."""


@dataclass(frozen=True)
class LocalStore:
    store_id: str
    api_key: str = field(repr=False)
    base_url: str


def local_store(settings: Settings) -> LocalStore:
    """The store local mode serves, or LocalModeError naming the missing variable."""
    store_id, api_key = settings.local_store_id, settings.local_api_key
    if not store_id or api_key is None or not api_key.reveal():
        missing = [
            name
            for name, present in (
                ("ORDERDESK_STORE_ID", bool(store_id)),
                ("ORDERDESK_API_KEY", api_key is not None and bool(api_key.reveal())),
            )
            if not present
        ]
        raise LocalModeError(
            "local mode needs " + " and ".join(missing) + " (your Order Desk store id and API "
            "key, from Store Settings → API in Order Desk)"
        )
    return LocalStore(
        store_id=store_id,
        api_key=api_key.reveal(),
        base_url=settings.orderdesk_api_base_url,
    )


def require_loopback(host: str) -> None:
    """Refuse to serve local mode (no authentication) on anything but a loopback address."""
    if host.lower() == "localhost":
        return
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise LocalModeError(
        f"local mode has no authentication, so it binds loopback only; {host!r} is not a "
        "loopback address (use 127.0.0.1, or run without --local behind nginx)"
    )


class LocalAccess:
    """Everyone who can reach the loopback port is the one local user."""

    requires_token = False

    def __init__(self, store: LocalStore, machinery: UpstreamMachinery, session_ttl: int) -> None:
        self._resolver = LocalStoreResolver(
            store_id=store.store_id,
            api_key=store.api_key,
            base_url=store.base_url,
            machinery=machinery,
        )
        self.sessions: SessionStore = MemorySessionStore(session_ttl)
        self.audit: AuditSink = LogAudit()

    def authenticate(self, token: str | None) -> Caller | None:
        return LOCAL_CALLER

    def resolver_for(self, caller: Caller) -> StoreResolver:
        return self._resolver


def create_local_app(settings: Settings) -> Flask:
    """The app for `serve --local`: the usual create_app, served as the local user.

    The database in the data dir is opened (and migrated) only for /health and /metrics;
    no master key is needed because no store key is sealed.
    """
    require_loopback(settings.host)
    store = local_store(settings)
    database = open_database(settings)
    apply_migrations(database)
    machinery = UpstreamMachinery.from_settings(settings, observer=observe_upstream_call)
    services = Services(settings=settings, database=database, vault=None, machinery=machinery)
    app = create_app(settings, services)
    blueprint.use_access(app, LocalAccess(store, machinery, settings.session_ttl))
    return app


def run_stdio(settings: Settings) -> None:
    """`orderdesk-mcp stdio`: serve the local user on stdin/stdout until stdin closes."""
    store = local_store(settings)
    machinery = UpstreamMachinery.from_settings(settings, observer=observe_upstream_call)
    try:
        session = StdioSession(
            Dispatcher(), LocalAccess(store, machinery, settings.session_ttl), LOCAL_CALLER
        )
        serve_stdio(session, sys.stdin, sys.stdout)
    finally:
        machinery.close()
