"""MCP sessions: created by `initialize`, named by the `Mcp-Session-Id` header.

The id is 32 random bytes (URL-safe text, visible ASCII as the spec requires); only its
SHA-256 is stored, so a copy of the database cannot be used to ride a session. Each session
belongs to the key that opened it: any other key presenting the id gets "not found", exactly
like a made-up id. Idle sessions expire after the configured TTL; ended and expired rows are
deleted now and then. Each key holds at most `max_per_key` sessions: opening one more deletes
that key's least recently used ones, whose next request gets the usual unknown-session 404.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import peewee

from orderdesk_mcp.db.lookups import SessionRow, session_row
from orderdesk_mcp.db.models import McpSession, utcnow

SESSION_ID_BYTES = 32
# last_seen is written at most this often: an idle clock needs no per-request write.
LAST_SEEN_RESOLUTION = dt.timedelta(seconds=30)
# How often a process deletes ended and expired session rows.
PRUNE_INTERVAL = dt.timedelta(minutes=10)
# The setting's default (ORDERDESK_MCP_MAX_SESSIONS_PER_KEY); see config.py for the why.
DEFAULT_MAX_SESSIONS_PER_KEY = 20
# client_info as stored: the client's own description, bounded.
MAX_CLIENT_INFO_CHARS = 2000
# Fields kept when a client_info is too long; each cut short enough that the JSON still fits
# (json.dumps escapes a character to at most 6).
CLIENT_INFO_SUMMARY_FIELDS = ("name", "title", "version")
CLIENT_INFO_SUMMARY_FIELD_CHARS = 100

logger = logging.getLogger(__name__)


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def client_info_text(client_info: Any) -> str:
    """client_info as JSON of at most MAX_CLIENT_INFO_CHARS, always valid JSON.

    Cutting the JSON text would leave half a string or object; an oversized description is
    replaced by its name, title and version (each shortened) and `"truncated": true`.
    """
    info = client_info if isinstance(client_info, dict) else {}
    text = json.dumps(info, default=str)
    if len(text) <= MAX_CLIENT_INFO_CHARS:
        return text
    summary: dict[str, Any] = {
        name: str(info[name])[:CLIENT_INFO_SUMMARY_FIELD_CHARS]
        for name in CLIENT_INFO_SUMMARY_FIELDS
        if name in info
    }
    summary["truncated"] = True
    return json.dumps(summary)


@dataclass(frozen=True)
class SessionOwner:
    """Who a session belongs to (tenant None = the implicit tenant of local mode)."""

    tenant_id: int | None
    key_id: int | None


@dataclass(frozen=True)
class SessionState:
    protocol_version: str


class SessionStore(Protocol):
    def create(self, owner: SessionOwner, protocol_version: str, client_info: Any) -> str:
        """Open a session; returns the plaintext id (shown once, to the client)."""
        ...

    def get(self, session_id: str, owner: SessionOwner) -> SessionState | None:
        """The live session with that id owned by `owner`'s tenant, else None."""
        ...

    def end(self, session_id: str, owner: SessionOwner) -> bool:
        """End the session; False when there was no such live session for that owner."""
        ...


class DatabaseSessionStore:
    """Sessions in the mcp_session table, so every process behind the proxy sees them."""

    def __init__(self, ttl_seconds: int, max_per_key: int = DEFAULT_MAX_SESSIONS_PER_KEY) -> None:
        if max_per_key < 1:
            raise ValueError("max_per_key must be at least 1 (the session being opened)")
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.max_per_key = max_per_key
        self._next_prune = dt.datetime.min
        self._prune_lock = threading.Lock()

    def prune(self, now: dt.datetime) -> int:
        """Delete sessions that ended or went idle past the TTL; returns how many."""
        deleted: int = (
            McpSession.delete()
            .where(McpSession.ended.is_null(False) | (McpSession.last_seen < now - self.ttl))
            .execute()
        )
        return deleted

    def _prune_now_and_then(self, now: dt.datetime) -> None:
        # Every initialize adds a row; without this the table only grows.
        with self._prune_lock:
            if now < self._next_prune:
                return
            self._next_prune = now + PRUNE_INTERVAL
        self.prune(now)

    def create(self, owner: SessionOwner, protocol_version: str, client_info: Any) -> str:
        session_id = new_session_id()
        now = utcnow()
        self._prune_now_and_then(now)
        session_hash = hash_session_id(session_id)
        McpSession.create(
            id=session_hash,
            tenant=owner.tenant_id,
            api_key=owner.key_id,
            protocol_version=protocol_version,
            client_info=client_info_text(client_info),
            created=now,
            last_seen=now,
        )
        self.evict_beyond_cap(owner, keep=session_hash, now=now)
        return session_id

    def evict_beyond_cap(self, owner: SessionOwner, *, keep: str, now: dt.datetime) -> int:
        """Delete the owner's sessions beyond the cap, least recently used first; returns how
        many. `keep` (the session just opened) always stays; so do the owner's
        `max_per_key - 1` most recently used other live sessions. The owner's ended and
        expired rows go too.

        Runs after the insert, as one DELETE: concurrent initializes of one key each trim to
        the cap with no read-then-write race. last_seen moves in steps of
        LAST_SEEN_RESOLUTION, so "least recently used" is exact to that step (then oldest
        created goes first).
        """
        key_match = (
            McpSession.api_key.is_null()
            if owner.key_id is None
            else McpSession.api_key == owner.key_id
        )
        tenant_match = (
            McpSession.tenant.is_null()
            if owner.tenant_id is None
            else McpSession.tenant == owner.tenant_id
        )
        owned = tenant_match & key_match & (McpSession.id != keep)
        survivors = (
            McpSession.select(McpSession.id)
            .where(owned & McpSession.ended.is_null() & (McpSession.last_seen >= now - self.ttl))
            .order_by(McpSession.last_seen.desc(), McpSession.created.desc())
            .limit(self.max_per_key - 1)
        )
        evicted: int = McpSession.delete().where(owned & McpSession.id.not_in(survivors)).execute()
        return evicted

    def _live_row(self, session_hash: str, owner: SessionOwner) -> SessionRow | None:
        # A session is bound to the key that opened it: another key of the same tenant (or a
        # revoked key's successor) cannot ride it.
        # Runs on every request, hence the prepared SQL of db/lookups.py.
        row = session_row(session_hash, owner.tenant_id, owner.key_id)
        if row is None or row.ended is not None:
            return None
        if utcnow() - row.last_seen > self.ttl:
            McpSession.update(ended=utcnow()).where(McpSession.id == session_hash).execute()
            return None
        return row

    def get(self, session_id: str, owner: SessionOwner) -> SessionState | None:
        session_hash = hash_session_id(session_id)
        row = self._live_row(session_hash, owner)
        if row is None:
            return None
        now = utcnow()
        if now - row.last_seen > LAST_SEEN_RESOLUTION:
            try:
                McpSession.update(last_seen=now).where(McpSession.id == session_hash).execute()
            except peewee.PeeweeException as error:
                # A write-locked or full database must not fail the request itself: the touch
                # only feeds idle expiry and the per-key cap, and the next request retries it.
                logger.warning("could not touch an MCP session's last_seen (%s)", error)
        return SessionState(protocol_version=row.protocol_version)

    def end(self, session_id: str, owner: SessionOwner) -> bool:
        session_hash = hash_session_id(session_id)
        if self._live_row(session_hash, owner) is None:
            return False
        McpSession.update(ended=utcnow()).where(McpSession.id == session_hash).execute()
        return True


@dataclass
class _MemorySession:
    owner: SessionOwner
    protocol_version: str
    last_seen: dt.datetime


class MemorySessionStore:
    """Sessions in this process only: local mode serves one user from one process."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self._sessions: dict[str, _MemorySession] = {}
        self._lock = threading.Lock()

    def create(self, owner: SessionOwner, protocol_version: str, client_info: Any) -> str:
        session_id = new_session_id()
        with self._lock:
            self._forget_expired()
            self._sessions[hash_session_id(session_id)] = _MemorySession(
                owner, protocol_version, utcnow()
            )
        return session_id

    def _forget_expired(self) -> None:
        cutoff = utcnow() - self.ttl
        for key in [k for k, s in self._sessions.items() if s.last_seen < cutoff]:
            del self._sessions[key]

    def get(self, session_id: str, owner: SessionOwner) -> SessionState | None:
        with self._lock:
            self._forget_expired()
            session = self._sessions.get(hash_session_id(session_id))
            if session is None or session.owner.tenant_id != owner.tenant_id:
                return None
            session.last_seen = utcnow()
            return SessionState(protocol_version=session.protocol_version)

    def end(self, session_id: str, owner: SessionOwner) -> bool:
        with self._lock:
            key = hash_session_id(session_id)
            session = self._sessions.get(key)
            if session is None or session.owner.tenant_id != owner.tenant_id:
                return False
            del self._sessions[key]
            return True
