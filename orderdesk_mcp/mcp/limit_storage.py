"""`memory://` rate-limit counters without a new thread every few requests.

limits' MemoryStorage (what flask-limiter uses for memory://) frees expired entries from a
`threading.Timer` that fires once after 10 ms; the next hit after it fired starts another.
Under steady traffic that is a new thread every few requests (~60 us per request on
average, measured on the cached get_order path). `SweptMemoryStorage` frees them from one
long-lived daemon thread per storage instead, every SWEEP_SECONDS.

Counting is unchanged: every check compares the entries' own timestamps with the window,
so sweeping only frees memory; entries may outlive their window by up to SWEEP_SECONDS.
The storage is registered with limits under its own scheme (limits' documented way to add
a storage); `McpLimits` uses it for memory:// and passes any other URI (redis://...) as is.

A server group (ORDERDESK_MCP_REDIS_URL set, ORDERDESK_MCP_RATE_LIMIT_STORAGE left at
memory://) keeps the counters in its Redis, on the process's RedisLink pool and under the
group's key prefix, so a limit of N per minute counts across every process. While Redis does
not answer, `FallbackWindowLimiter` counts in this process's memory instead (each process
then allows up to N: a looser limit for a while, never a 500).
"""

from __future__ import annotations

import _thread
import hashlib
import logging
import math
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from limits import RateLimitItem
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from limits.util import WindowStats

from orderdesk_mcp.coordination.link import RedisLink, shared_link

if TYPE_CHECKING:
    from orderdesk_mcp.config import Settings

log = logging.getLogger(__name__)

SCHEME = "orderdesk-memory"
DEFAULT_STORAGE = "memory://"
SWEEP_SECONDS = 1.0
# The base class's private methods (name-mangled): the sweep, and the timer we replace.
_EXPIRE_EVENTS = "_MemoryStorage__expire_events"


class SweptMemoryStorage(MemoryStorage):
    """MemoryStorage whose expired entries are swept by one thread for its whole life."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (limits declares it an instance attribute)

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        # The base class makes a key's lock with threading.RLock, a Python function: two
        # threads meeting a new key can each make (and hold) a lock of their own, and both
        # count, one over the limit. _thread.RLock is made in C with the GIL held, so the
        # defaultdict creates exactly one lock per key.
        self.locks = defaultdict(_thread.RLock)
        # The thread holds only a weak reference: it ends once the storage is gone.
        self.sweeper = threading.Thread(
            target=_sweep_until_gone,
            args=(weakref.ref(self),),
            name="rate-limit-sweeper",
            daemon=True,
        )
        self.sweeper.start()

    def _MemoryStorage__schedule_expiry(self) -> None:
        """Called by the base class on every hit to restart its timer: the sweeper runs anyway."""


def memory_uri_to_swept(storage_uri: str) -> str:
    """memory://... becomes this module's scheme; any other storage URI stays as it is."""
    if storage_uri.startswith("memory://"):
        return SCHEME + storage_uri[len("memory") :]
    return storage_uri


def _sweep_until_gone(storage_ref: weakref.ref[SweptMemoryStorage]) -> None:
    while True:
        time.sleep(SWEEP_SECONDS)
        storage = storage_ref()
        if storage is None:
            return
        try:
            getattr(storage, _EXPIRE_EVENTS)()
        except Exception:
            # Keep sweeping: one failure must not leave expired counters in memory for good.
            log.exception("sweeping expired rate-limit counters failed")
        del storage


class WindowLimiter(Protocol):
    """What the limit checks use of a limits strategy (MovingWindowRateLimiter has it)."""

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


@dataclass(frozen=True)
class LimitStorage:
    """Where the counters live: a limits storage URI and its options, and the group's
    RedisLink when they live in its Redis (then with a memory fallback)."""

    uri: str
    options: dict[str, Any] = field(default_factory=dict)
    link: RedisLink | None = None


def limit_storage(storage: str | Settings) -> LimitStorage:
    """A storage URI as given, or the one the settings choose: the group's Redis when
    ORDERDESK_MCP_REDIS_URL is set and ORDERDESK_MCP_RATE_LIMIT_STORAGE is left at memory://
    (an explicit storage wins)."""
    if isinstance(storage, str):
        return LimitStorage(memory_uri_to_swept(storage))
    settings = storage
    link = shared_link(settings) if settings.rate_limit_storage == DEFAULT_STORAGE else None
    if link is None:
        return LimitStorage(memory_uri_to_swept(settings.rate_limit_storage))
    # The pool carries the address and password: the URI given to limits only picks its
    # Redis storage class, so the password never travels into another library's objects.
    options = {"connection_pool": link.client.connection_pool, "key_prefix": link.key("limits")}
    return LimitStorage("redis://", options, link)


def window_limiter(storage: LimitStorage, limiter: RateLimiter | None = None) -> WindowLimiter:
    """Moving windows on ``storage`` (``limiter``: one already built on it), falling back
    to memory while the group's Redis does not answer."""
    if limiter is None:
        limiter = MovingWindowRateLimiter(storage_from_string(storage.uri, **storage.options))
    if storage.link is None:
        return limiter
    return FallbackWindowLimiter(limiter, storage.link)


class FallbackWindowLimiter:
    """A moving-window limiter on the group's Redis that counts in this process's memory
    while Redis does not answer (the link's breaker decides), so an outage never turns a
    limit check into an error."""

    def __init__(self, shared: RateLimiter, link: RedisLink) -> None:
        self._shared = shared
        self._link = link
        self._local: MovingWindowRateLimiter | None = None
        self._local_lock = threading.Lock()

    def _fallback(self) -> MovingWindowRateLimiter:
        with self._local_lock:
            if self._local is None:  # made on first need: its storage runs a sweeper thread
                self._local = MovingWindowRateLimiter(SweptMemoryStorage())
            return self._local

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        shared_ids = _digests(identifiers)
        return self._link.run(
            lambda: self._shared.hit(item, *shared_ids, cost=cost),
            lambda: self._fallback().hit(item, *identifiers, cost=cost),
        )

    def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        shared_ids = _digests(identifiers)
        return self._link.run(
            lambda: self._shared.test(item, *shared_ids, cost=cost),
            lambda: self._fallback().test(item, *identifiers, cost=cost),
        )

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        shared_ids = _digests(identifiers)
        return self._link.run(
            lambda: self._shared.get_window_stats(item, *shared_ids),
            lambda: self._fallback().get_window_stats(item, *identifiers),
        )


def _digests(identifiers: tuple[str, ...]) -> tuple[str, ...]:
    """What names a counter in Redis: digests, so its keys show no client address, key id or
    tenant name typed at a sign-in (which may be a password typed in the wrong field)."""
    return tuple(hashlib.blake2b(part.encode(), digest_size=16).hexdigest() for part in identifiers)


class WindowCounters:
    """Moving-window counters in the rate-limit storage (memory:// swept as above, the
    operator's redis://..., or the server group's Redis: see ``limit_storage``), for the
    limits checked inside views: each call names the limit items and the identity, and says
    how long to wait when a window is full."""

    def __init__(self, storage: str | Settings, namespace: str) -> None:
        self._limiter = window_limiter(limit_storage(storage))
        self._namespace = namespace

    def wait(self, item: RateLimitItem, identity: str) -> int:
        """Seconds until `identity`'s window for `item` has room again (at least 1)."""
        stats = self._limiter.get_window_stats(item, self._namespace, identity)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def hit(self, checks: Iterable[tuple[RateLimitItem, str]]) -> int | None:
        """Count one event in each (item, identity) window, in order; at the first full one,
        stop and say how long to wait. Counting is the check (atomic in the storage), so
        requests at the same moment cannot all pass before any of them is counted."""
        for item, identity in checks:
            if not self._limiter.hit(item, self._namespace, identity):
                return self.wait(item, identity)
        return None

    def blocked(self, checks: Iterable[tuple[RateLimitItem, str]]) -> int | None:
        """The longest wait among the full windows (nothing counted), or None."""
        waits = [
            self.wait(item, identity)
            for item, identity in checks
            if not self._limiter.test(item, self._namespace, identity)
        ]
        return max(waits) if waits else None

    def note(self, checks: Iterable[tuple[RateLimitItem, str]]) -> None:
        """Count one event in every window, full or not."""
        for item, identity in checks:
            self._limiter.hit(item, self._namespace, identity)
