"""The process's link to the Redis its server group shares, with a small circuit breaker.

Everything kept in Redis is coordination (bucket state, counters, cache generations), never
a reply body or a key, and every user of it has a local fallback. So an outage must cost
milliseconds, not a timeout per call: sockets time out quickly, and after a failure the
breaker sends callers straight to their fallback for ``RETRY_SECONDS`` before one of them
tries Redis again. The outage is logged once when it starts and once when it ends.

Error texts kept for /health/ready name the failure's kind and never the URL: it may carry
the AUTH password (``redis://:password@host``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from orderdesk_mcp.config import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 0.5
"""A healthy Redis on the LAN answers in well under a millisecond; half a second is an outage."""

RETRY_SECONDS = 2.0
"""After a failure, how long callers use their fallback before Redis is tried again."""

_MAX_ERROR_CHARS = 200

T = TypeVar("T")


@dataclass(frozen=True)
class LinkState:
    """What /health/ready and /metrics show: up or not, since when, why (sanitized)."""

    up: bool
    error: str | None
    down_since: float | None
    fallback_calls: int


class RedisLink:
    """One Redis client (one connection pool) for the whole process, and its breaker.

    ``client`` is a ``redis.Redis``; ``key(*parts)`` names a key under the group's prefix.
    ``run(shared, local)`` runs ``shared`` on Redis, or ``local`` (the caller's fallback)
    while Redis is down; callers that need more ask ``available()`` and report
    ``succeeded()`` or ``failed(exc)`` themselves.
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        secrets: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._secrets = tuple(secret for secret in secrets if secret)
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._up = True
        self._retry_at = 0.0
        self._down_since: float | None = None
        self._error: str | None = None
        self._fallback_calls = 0
        self.outages = 0
        """Counts outages; a fallback made during an earlier one is stale in a new one."""

    @classmethod
    def from_url(cls, url: str, prefix: str, *, retry_seconds: float = RETRY_SECONDS) -> RedisLink:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            # One quick repeat on a fresh connection (a pooled one may be dead after a Redis
            # restart), never redis-py's default backoff of seconds.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        password = client.connection_pool.connection_kwargs.get("password")
        return cls(client, prefix, secrets=(url, str(password or "")), retry_seconds=retry_seconds)

    def key(self, *parts: str) -> str:
        """``<prefix>part:part``: every key of the group lives under its prefix."""
        return self.prefix + ":".join(parts)

    def available(self) -> bool:
        """Whether to try Redis now: up, or down but due for another try."""
        if self._up:  # the common case, read without the lock
            return True
        with self._lock:
            if self._up or self._clock() >= self._retry_at:
                # Let this caller try; the others keep to the fallback until it reports.
                self._retry_at = self._clock() + self._retry_seconds
                return True
            return False

    def succeeded(self) -> None:
        if self._up:
            return
        with self._lock:
            if self._up:
                return
            down_for = self._clock() - (self._down_since or self._clock())
            self._up, self._down_since, self._error = True, None, None
        log.warning("Redis answers again after %.1f s; shared coordination resumed", down_for)

    def failed(self, exc: BaseException) -> None:
        """Redis failed a call: open the breaker; log only when an outage starts."""
        reason = self.describe(exc)
        with self._lock:
            self._retry_at = self._clock() + self._retry_seconds
            self._error = reason
            if not self._up:
                return
            self._up = False
            self._down_since = self._clock()
            self.outages += 1
        log.warning(
            "Redis does not answer (%s): using local fallbacks (conservative rate limits, "
            "per-process counters) until it does",
            reason,
        )

    def run(self, shared: Callable[[], T], local: Callable[[], T]) -> T:
        """``shared()`` (which talks to Redis) while Redis is available, else, or when it
        fails now, ``local()``: the caller's fallback, counted for /metrics."""
        if self.available():
            try:
                result = shared()
            except redis.RedisError as exc:
                self.failed(exc)
            else:
                self.succeeded()
                return result
        with self._lock:
            self._fallback_calls += 1
        return local()

    def healthy(self) -> bool:
        return self._up

    def state(self) -> LinkState:
        with self._lock:
            return LinkState(self._up, self._error, self._down_since, self._fallback_calls)

    def ping(self) -> bool:
        """Try Redis now, whatever the breaker says (readiness); reports the outcome."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            self.failed(exc)
            return False
        self.succeeded()
        return True

    def describe(self, exc: BaseException) -> str:
        """The failure's kind and message, without the URL or password, one short line."""
        text = f"{type(exc).__name__}: {exc}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())[:_MAX_ERROR_CHARS]

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisLink(prefix={self.prefix!r}, up={self._up})"


_links: dict[tuple[str, str], RedisLink] = {}
_links_lock = threading.Lock()


def shared_link(settings: Settings) -> RedisLink | None:
    """The process's RedisLink for ``settings`` (None when ORDERDESK_MCP_REDIS_URL is unset).

    One per URL and prefix for the whole process, like a connection pool: the bucket, the
    counters and the cache generations of every app built from those settings share it, and
    with it one view of whether Redis is up.
    """
    if settings.redis_url is None:
        return None
    url = settings.redis_url.reveal()
    with _links_lock:
        link = _links.get((url, settings.redis_prefix))
        if link is None:
            link = RedisLink.from_url(url, settings.redis_prefix)
            _links[(url, settings.redis_prefix)] = link
        return link
