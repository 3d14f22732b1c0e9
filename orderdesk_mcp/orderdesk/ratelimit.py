"""The client side of Order Desk's rate limit: a leaky bucket per store, and its two headers.

Order Desk gives each store a bucket of 20 tokens refilled at 3 per second; a request costs one
token; every reply says ``X-Tokens-Remaining``; an empty bucket answers 429 with
``X-Retry-After`` seconds (reference §3). We keep the same bucket on our side so that we wait
instead of being refused, and we lower it whenever Order Desk reports fewer tokens than we
thought (another process may use the same store).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

BUCKET_CAPACITY = 20
REFILL_PER_SECOND = 3.0

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)

MAX_TOKENS_HEADER = 1_000_000
"""Larger X-Tokens-Remaining values are junk, not a bucket."""

MAX_RETRY_AFTER_HEADER = 86_400.0
"""Larger X-Retry-After values are junk; the caller's wait limits apply to sane ones anyway."""


class LeakyBucket:
    """One store's bucket, shared by every thread of the process.

    ``reserve(max_wait)`` takes a token now or books the next free one and says how long to
    sleep for it; bookings queue up fairly because the token count may go below zero.
    """

    def __init__(
        self,
        capacity: float = BUCKET_CAPACITY,
        refill_per_second: float = REFILL_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or refill_per_second <= 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._last = clock()

    def _refill(self) -> float:
        """Bring the count up to now; returns the seconds a 429 block still lasts."""
        now = self._clock()
        if now <= self._last:
            # Blocked after a 429 (``_last`` in the future), or a clock that stood still.
            return self._last - now
        elapsed = now - self._last
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)
        self._last = now
        return 0.0

    def _wait(self, blocked: float) -> float:
        return blocked + max(0.0, (1 - self._tokens) / self.refill_per_second)

    def reserve(self, max_wait: float) -> float | None:
        """Take one token; return the seconds to sleep before sending (0.0: send now).

        Returns None, and books nothing, when the wait would exceed ``max_wait``.
        """
        with self._lock:
            blocked = self._refill()
            if self._tokens >= 1 and not blocked:
                self._tokens -= 1
                return 0.0
            wait = self._wait(blocked)
            if wait > max_wait:
                return None
            self._tokens -= 1
            return wait

    def wait_needed(self) -> float:
        """Seconds until a token would be free (0.0 when one is free now); books nothing."""
        with self._lock:
            return self._wait(self._refill())

    def observe_remaining(self, remaining: int) -> None:
        """Order Desk says ``remaining`` tokens are left: never believe we have more."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, float(remaining))

    def block(self, seconds: float) -> None:
        """Order Desk answered 429 and said to wait ``seconds``: its bucket has one token
        then (X-Retry-After is the wait for one), whatever ours thought; no token before,
        and the refill starts only then."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 1.0)
            self._last = max(self._last, self._clock() + max(0.0, seconds))

    def tokens(self) -> float:
        """Tokens available now (negative while callers are queued)."""
        with self._lock:
            self._refill()
            return self._tokens


class UpstreamBucket(Protocol):
    """What the client needs of a store's bucket: LeakyBucket here, or one kept in Redis
    for a group of processes (orderdesk_mcp/coordination/bucket.py)."""

    def reserve(self, max_wait: float) -> float | None: ...

    def wait_needed(self) -> float: ...

    def observe_remaining(self, remaining: int) -> None: ...

    def block(self, seconds: float) -> None: ...


class BucketSource(Protocol):
    def for_store(self, store_id: str) -> UpstreamBucket: ...


BucketT = TypeVar("BucketT")


class PerStore(Generic[BucketT]):
    """One bucket per store id, made by ``make(store_id)`` on first use; thread-safe."""

    def __init__(self, make: Callable[[str], BucketT]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._buckets: dict[str, BucketT] = {}

    def for_store(self, store_id: str) -> BucketT:
        with self._lock:
            bucket = self._buckets.get(store_id)
            if bucket is None:
                bucket = self._make(store_id)
                self._buckets[store_id] = bucket
            return bucket


class BucketRegistry(PerStore[LeakyBucket]):
    """One LeakyBucket per store id, created on first use; thread-safe."""

    def __init__(
        self,
        capacity: float = BUCKET_CAPACITY,
        refill_per_second: float = REFILL_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(lambda _store_id: LeakyBucket(capacity, refill_per_second, clock))


def parse_tokens_remaining(raw: str | None) -> int | None:
    """X-Tokens-Remaining as a whole number of tokens, or None when absent or junk."""
    value = _parse_number(raw)
    if value is None or value > MAX_TOKENS_HEADER:
        return None
    return math.floor(value)


def parse_retry_after(raw: str | None) -> float | None:
    """X-Retry-After in seconds, or None when absent or junk (then the caller backs off)."""
    value = _parse_number(raw)
    if value is None or value > MAX_RETRY_AFTER_HEADER:
        return None
    return value


def _parse_number(raw: str | None) -> float | None:
    if raw is None:
        return None
    text = raw.strip()
    if len(text) > 32 or not _DECIMAL.fullmatch(text):
        return None
    return float(text)
