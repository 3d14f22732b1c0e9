"""Keeping client ID metadata fetches from tying up the server.

Anyone can name any https URL as a client_id, on unauthenticated requests, so:

- at most MAX_CONCURRENT_FETCHES run at once in the process, and each also takes one of the
  process-wide slots that Order Desk requests use (mcp/admission.py), so fetches and
  Order Desk requests together never take the threads kept for health checks; a request
  that finds no slot is told to try again at once instead of waiting;
- a failed fetch is remembered for FAILURE_SECONDS: the same URL (and, when the host itself
  failed: unresolvable, unreachable, too slow, other URLs on that host) is refused from
  memory until then, without another fetch.

State is per process, which is the unit whose threads it protects.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from urllib.parse import urlsplit

MAX_CONCURRENT_FETCHES = 2
FAILURE_SECONDS = 180
# Enough for every URL an attacker can try from one address in FAILURE_SECONDS at the
# /oauth/ rate limits; the oldest entries go first beyond it.
MAX_REMEMBERED_FAILURES = 2000
BUSY_MESSAGE = (
    "this server is busy fetching other client metadata documents; try again in a few seconds"
)


class FetchBusy(Exception):
    """No fetch slot free right now; nothing was fetched."""

    def __init__(self) -> None:
        super().__init__(BUSY_MESSAGE)


def _host_key(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        return f"host:{(parts.hostname or '').lower()}:{parts.port or 443}"
    except ValueError:
        return None


class FetchGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._failures: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def recent_failure(self, url: str) -> str | None:
        """Why `url` (or its host) failed within FAILURE_SECONDS, else None."""
        now = time.monotonic()
        with self._lock:
            for key in (f"url:{url}", _host_key(url)):
                if key is None or key not in self._failures:
                    continue
                until, reason = self._failures[key]
                if until > now:
                    return reason
                del self._failures[key]
        return None

    def remember_failure(self, url: str, reason: str, *, host_wide: bool) -> None:
        keys = [f"url:{url}"]
        host = _host_key(url) if host_wide else None
        if host is not None:
            keys.append(host)
        until = time.monotonic() + FAILURE_SECONDS
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
                self._failures[key] = (until, reason)
            while len(self._failures) > MAX_REMEMBERED_FAILURES:
                self._failures.popitem(last=False)

    def forget(self) -> None:
        """Drop every remembered failure (tests; an operator restarts instead)."""
        with self._lock:
            self._failures.clear()

    @contextmanager
    def slot(self, shared: AbstractContextManager[object] | None = None) -> Iterator[None]:
        """Hold a fetch slot (and `shared`, a process-wide one) or raise FetchBusy at once."""
        with self._lock:
            if self._running >= MAX_CONCURRENT_FETCHES:
                raise FetchBusy
            self._running += 1
        try:
            with ExitStack() as stack:
                if shared is not None:
                    stack.enter_context(shared)
                yield
        finally:
            with self._lock:
                self._running -= 1


gate = FetchGate()
