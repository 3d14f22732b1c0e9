"""The process-wide parts every OrderDeskClient shares: cache, buckets, coalescer, policy.

One ``UpstreamMachinery`` per process. Waitress serves requests on several threads and they all
share it: the SQLite cache backend and the per-store buckets are shared and locked, while each
thread gets its own ``CachedSession`` (``requests.Session`` is not promised to be thread-safe).

Read-your-writes has two layers. In the process, per-store generation counters guard reads in
flight (a reply fetched before a write of this process never enters a cache after it). In a
server group (``generations`` given, ORDERDESK_MCP_REDIS_URL set), every cache key also carries
the store's shared cache version (``generations.py``): ``after_write`` replaces it before the
write returns, so no process or host finds an entry cached before that write. When the
version cannot be read (Redis down), ``cache_version`` is None and reads bypass every cache.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import requests
from requests_cache import CachedSession

from orderdesk_mcp.orderdesk.cache import CacheTTLs, ResponseCache
from orderdesk_mcp.orderdesk.coalesce import SingleFlight
from orderdesk_mcp.orderdesk.generations import CacheGenerations, RedisCacheGenerations
from orderdesk_mcp.orderdesk.memory import MemoryCache, MemoryEntry
from orderdesk_mcp.orderdesk.ratelimit import (
    BUCKET_CAPACITY,
    REFILL_PER_SECOND,
    BucketRegistry,
    BucketSource,
)

if TYPE_CHECKING:
    from orderdesk_mcp.config import Settings
    from orderdesk_mcp.coordination.link import RedisLink

log = logging.getLogger(__name__)

DEFAULT_MEMORY_SECONDS = 2.0
"""How long a reply may be answered from memory without reading the SQLite cache."""

PRUNE_INTERVAL_S = 600.0
"""How often expired cache entries are deleted (entries nobody asks for again never expire
out of the file by themselves)."""


@dataclass(frozen=True)
class UpstreamCall:
    """What one client call did, reported to the observer when it ends (success or error).

    ``endpoint`` is the template (``/orders/{id}``), never a URL with ids. ``status`` is the
    last HTTP status seen (None: no reply at all). ``cache_hit``: served from the cache, no
    request sent (``memory_hit``: and answered from the in-memory front, SQLite not read).
    ``coalesced``: this call waited for an identical concurrent call and shared
    its reply. ``retries``: repeats after connection errors or 5xx. ``rate_limited_waits``:
    429 replies waited out. ``tokens_remaining``: Order Desk's last X-Tokens-Remaining.
    """

    store_id: str
    method: str
    endpoint: str
    status: int | None
    duration_ms: float
    cache_hit: bool
    retries: int
    tokens_remaining: int | None
    coalesced: bool
    rate_limited_waits: int
    memory_hit: bool = False


Observer = Callable[[UpstreamCall], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a call tries. All waits are bounded; tests pass tiny backoffs."""

    max_retries: int = 3
    """Repeats of a GET/PUT/DELETE after a connection error or a 5xx (never a POST that may
    have been received)."""
    backoff_base: float = 0.5
    """First backoff in seconds; it doubles per attempt up to ``backoff_cap``, then jitter."""
    backoff_cap: float = 8.0
    max_429_retries: int = 5
    """429 replies one call waits out before raising RateLimited."""
    max_rate_limit_wait: float = 60.0
    """Seconds one call may spend waiting for the rate limit when the caller set no deadline."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before repeat number ``attempt`` (1, 2, ...): half fixed, half random,
        so that many clients failing together do not come back together."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class UpstreamMachinery:
    """Shared transport state for every store of the process.

    ``UpstreamMachinery(cache_path, connect_timeout=5, read_timeout=30, ttls=CacheTTLs(),
    retry=RetryPolicy(), bucket_capacity=20, refill_per_second=3, observer=None,
    memory_seconds=2)``; or ``UpstreamMachinery.from_settings(settings, observer=None)``.
    ``clock``, ``sleep`` and ``rng`` exist so tests can pace time. Call ``close()`` (or use
    ``with``) at shutdown.

    ``memory`` is the in-memory front of the SQLite cache (see ``memory.py``): a reply
    cached in this process is answered from it for up to ``memory_seconds`` (0: never).
    ``invalidate`` clears it before returning, so this process always reads its own writes;
    without ``generations``, another process's writes reach it only when those seconds run
    out. With ``generations`` (a server group), ``after_write`` makes every process's cached
    replies of the store stale before returning. ``tag_salt`` keys the cache's credential tags
    (``Vault.cache_tag_salt``: the same in every process of the group); None: random.
    """

    def __init__(
        self,
        cache_path: Path,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        ttls: CacheTTLs | None = None,
        retry: RetryPolicy | None = None,
        bucket_capacity: float = BUCKET_CAPACITY,
        refill_per_second: float = REFILL_PER_SECOND,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        memory_seconds: float = DEFAULT_MEMORY_SECONDS,
        buckets: BucketSource | None = None,
        coordination: RedisLink | None = None,
        generations: CacheGenerations | None = None,
        tag_salt: bytes | None = None,
    ) -> None:
        self.cache = ResponseCache(Path(cache_path), tag_salt)
        self.generations = generations
        self.memory = MemoryCache(memory_seconds, clock=clock)
        self.timeouts = (connect_timeout, read_timeout)
        self.ttls = ttls or CacheTTLs()
        self.retry = retry or RetryPolicy()
        # The group's buckets in Redis when given, else this process's own.
        self.buckets: BucketSource = buckets or BucketRegistry(
            bucket_capacity, refill_per_second, clock
        )
        self.coordination = coordination
        """The server group's Redis (None: one process, everything kept in it)."""
        self.flights: SingleFlight[bytes] = SingleFlight()
        self.clock = clock
        self.sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._rng_lock = threading.Lock()
        self._observer = observer
        self._local = threading.local()
        self._sessions: list[CachedSession] = []
        self._sessions_lock = threading.Lock()
        self._generations: dict[str, int] = {}
        self._generations_lock = threading.Lock()
        self._closed = False
        self._prune_lock = threading.Lock()
        self._last_prune = clock()

    @classmethod
    def from_settings(
        cls, settings: Settings, observer: Observer | None = None, tag_salt: bytes | None = None
    ) -> UpstreamMachinery:
        """Build from ``Settings`` (cache path, timeouts, cache lifetimes, memory seconds, and
        how long a call may wait for the rate limit); with ORDERDESK_MCP_REDIS_URL, the
        store buckets and the cache versions are the group's, in Redis."""
        # Imported here: coordination builds on this package (ratelimit), not the reverse.
        from orderdesk_mcp.coordination.bucket import DEFAULT_MEMBERS, SharedBucketRegistry
        from orderdesk_mcp.coordination.link import shared_link
        from orderdesk_mcp.server_group import counted_group_size

        def members() -> int:
            # The live serve processes (heartbeat rows) share the fallback budget during a
            # Redis outage; before the first count, assume the default.
            return counted_group_size() or DEFAULT_MEMBERS

        link = shared_link(settings)
        return cls(
            settings.cache_path,
            retry=RetryPolicy(max_rate_limit_wait=settings.upstream_wait_seconds),
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            ttls=CacheTTLs(
                store=settings.cache_ttl_store,
                orders=settings.cache_ttl_orders,
                inventory=settings.cache_ttl_inventory,
            ),
            observer=observer,
            memory_seconds=settings.cache_memory_seconds,
            buckets=SharedBucketRegistry(link, members=members) if link is not None else None,
            coordination=link,
            # Over the link's client (one pool per process); the link closes it.
            generations=RedisCacheGenerations(link.client, link.prefix) if link else None,
            tag_salt=tag_salt,
        )

    def session(self) -> CachedSession:
        """This thread's CachedSession (created on first use) over the shared cache."""
        session: CachedSession | None = getattr(self._local, "session", None)
        if session is None:
            with self._sessions_lock:
                if self._closed:
                    raise RuntimeError("this UpstreamMachinery was closed")
                session = self.cache.new_session()
                self._sessions.append(session)
            self._local.session = session
        return session

    def backoff(self, attempt: int) -> float:
        with self._rng_lock:
            return self.retry.backoff(attempt, self._rng)

    def generation(self, store_id: str) -> int:
        """Counts a store's cache invalidations: a read that saw it change while in flight
        drops what it cached, since that reply may predate the write."""
        with self._generations_lock:
            return self._generations.get(store_id, 0)

    def invalidate(self, store_id: str, prefixes: tuple[str, ...]) -> None:
        """Delete the entries under ``prefixes`` from the SQLite cache and from memory."""
        # Before the delete: a read in flight drops what it stores in SQLite meanwhile.
        with self._generations_lock:
            self._bump_generation(store_id)
        self.cache.delete_prefixes(prefixes)
        # Again after it, under the lock ``remember`` checks: a reply read from SQLite before
        # the delete (or fetched before the write) can no longer enter memory.
        with self._generations_lock:
            self._bump_generation(store_id)
            self.memory.drop_prefixes(prefixes)

    def cache_version(self, store_id: str) -> str | None:
        """The store's cache version for keys: "" outside a server group; None when the
        group's version cannot be read (Redis down): then no cache may be read or filled."""
        if self.generations is None:
            return ""
        return self.generations.current(store_id)

    def after_write(self, store_id: str, prefixes: tuple[str, ...]) -> None:
        """A write of the store landed (or may have): give it a new shared cache version, so
        that no process of the group finds a reply cached before it, then ``invalidate``."""
        if self.generations is not None:
            self.generations.bump(store_id)
        self.invalidate(store_id, prefixes)

    def _bump_generation(self, store_id: str) -> None:
        """Caller holds ``_generations_lock``."""
        self._generations[store_id] = self._generations.get(store_id, 0) + 1

    def remembered(self, key: str) -> MemoryEntry | None:
        """The in-memory copy of the cached reply under ``key``, if still within its bound."""
        return self.memory.get(key)

    def remember(
        self, store_id: str, generation: int, key: str, body: bytes, status: int, lifetime: float
    ) -> None:
        """Keep a cached reply in memory for ``min(lifetime, memory_seconds)``, unless the
        store was invalidated since ``generation`` (the reply may predate that write)."""
        if not self.memory.enabled:
            return
        with self._generations_lock:
            if self._generations.get(store_id, 0) == generation:
                self.memory.put(key, body, status, lifetime)

    def prune_if_due(self) -> None:
        """Delete expired cache entries, at most once per PRUNE_INTERVAL_S."""
        now = self.clock()
        with self._prune_lock:
            if now - self._last_prune < PRUNE_INTERVAL_S:
                return
            self._last_prune = now
        self.cache.prune_expired()

    def report(self, call: UpstreamCall) -> None:
        """Hand ``call`` to the observer; an observer failure is logged, never raised."""
        if self._observer is None:
            return
        try:
            self._observer(call)
        except Exception:
            log.exception("the upstream-call observer failed on %s %s", call.method, call.endpoint)

    def close(self) -> None:
        with self._sessions_lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            # CacheMixin.close would close the shared backend too (autoclose is off anyway).
            requests.Session.close(session)
        self.cache.close()
        if self.generations is not None:
            self.generations.close()

    def __enter__(self) -> UpstreamMachinery:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"UpstreamMachinery(cache_path={str(self.cache.path)!r})"
