"""Cache versions shared by a server group: how a write in one process reaches every cache.

Every cached reply of a store is filed under the store's *cache version* (``cache.py`` puts it
at the end of the key). A write makes a new version before it returns, so the next read
anywhere (any thread, process or host of the group) looks under a key nobody has filled yet
and fetches from Order Desk; entries under the old version are never found again and expire.
A reply fetched before the write is filed under the version its read started with, which is
already old: it cannot reach a later reader either.

Redis holds two kinds of short random tokens and nothing else (no reply, no key, no id but
the store's number)::

    <prefix>cache:epoch            one for the whole group
    <prefix>cache:gen:<store id>   one per store, replaced by every write to it

A version is ``<epoch>.<generation>``. Tokens are random rather than counters so that a Redis
that lost its data (a restart without persistence, an eviction) can never hand out an old
version again: a missing token is replaced by a new one.

When Redis does not answer, ``current`` returns None and callers bypass every cache (memory
and SQLite) until it answers again: correctness over speed. A background probe retries every
``retry_seconds``; the process that saw the outage replaces the epoch when Redis is back, so
entries cached before the outage (which may predate writes made during it) are never served.
Both the outage and the recovery are logged once.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 0.5
"""Redis answers a GET in well under a millisecond on a LAN: this long means it is not there."""

BUMP_ATTEMPTS = 2

RETRY_SECONDS = 1.0
"""How often a process that lost Redis checks whether it is back."""

_TOKEN_BYTES = 6  # 12 hex characters: new versions never meet old ones by chance


class CacheGenerations(Protocol):
    """The per-store cache versions of a server group (see the module docstring)."""

    def current(self, store_id: str) -> str | None:
        """The store's cache version; None when it cannot be known (do not use caches)."""

    def bump(self, store_id: str) -> None:
        """Give the store a new cache version (after a write to it landed, or may have)."""

    @property
    def available(self) -> bool:
        """False while versions cannot be read (caches are bypassed meanwhile)."""

    def close(self) -> None: ...


class RedisCacheGenerations:
    """``CacheGenerations`` in Redis: ``RedisCacheGenerations(client, prefix)`` over any
    ``redis.Redis`` (the process's link client, as ``UpstreamMachinery.from_settings`` does,
    or one of its own with ``owns_client``; replies may be bytes or text)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        retry_seconds: float = RETRY_SECONDS,
        owns_client: bool = False,
    ) -> None:
        self._redis = client
        self._owns_client = owns_client  # a shared client (a group link's) is closed by its owner
        self._epoch_key = f"{prefix}cache:epoch"
        self._gen_prefix = f"{prefix}cache:gen:"
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._down = False
        self._closed = threading.Event()

    @property
    def available(self) -> bool:
        """False while this process considers Redis down (caches are bypassed)."""
        return not self._down

    def current(self, store_id: str) -> str | None:
        if self._down:
            return None  # the probe thread brings it back; no request waits on a timeout
        gen_key = self._gen_prefix + store_id
        try:
            epoch, generation = (_text(v) for v in self._redis.mget(self._epoch_key, gen_key))
            if epoch is None:
                epoch = self._claim(self._epoch_key)
            if generation is None:
                generation = self._claim(gen_key)
        except redis.RedisError as exc:
            self._lost(exc)
            return None
        return f"{epoch}.{generation}"

    def bump(self, store_id: str) -> None:
        failure: redis.RedisError | None = None
        # Twice: until the new version is written, other processes may serve what the write
        # changed, so a lone timeout (a busy host) gets a second chance at once.
        for _attempt in range(BUMP_ATTEMPTS):
            if self._down:
                return  # the epoch is replaced when Redis is back, which covers this write
            try:
                self._redis.set(self._gen_prefix + store_id, _new_token())
            except redis.RedisError as exc:
                failure = exc
                continue
            return
        if failure is not None:
            self._lost(failure)

    def close(self) -> None:
        self._closed.set()
        if self._owns_client:
            self._redis.close()

    def _claim(self, key: str) -> str:
        """The token under ``key``, set to a new one if there is none (first use, lost data)."""
        token = _new_token()
        if self._redis.set(key, token, nx=True):
            return token
        # Another process set it first (SET NX GET would save this trip but needs Redis 7).
        return _text(self._redis.get(key)) or token

    def _lost(self, exc: redis.RedisError) -> None:
        with self._lock:
            if self._down or self._closed.is_set():
                return
            self._down = True
        # The class name only: texts of connection errors may name hosts; never the URL.
        log.warning(
            "Redis did not answer (%s): reply caches are bypassed, every read goes to Order "
            "Desk, until it answers again",
            type(exc).__name__,
        )
        threading.Thread(target=self._probe, name="cache-generations-probe", daemon=True).start()

    def _probe(self) -> None:
        """Until Redis answers: then replace the epoch (writes made meanwhile may not have
        bumped their store) and use the caches again."""
        while not self._closed.wait(self._retry_seconds):
            try:
                self._redis.set(self._epoch_key, _new_token())
            except redis.RedisError:
                continue
            with self._lock:
                self._down = False
            log.warning("Redis answers again: reply caches are used again (all entries renewed)")
            return


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast (short timeouts, no retries): callers have a safe answer."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def _new_token() -> str:
    return secrets.token_hex(_TOKEN_BYTES)


def _text(value: object) -> str | None:
    """A reply value as text (the client decodes replies; bytes only if handed another)."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
