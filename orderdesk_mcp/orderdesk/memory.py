"""A small in-memory front for the SQLite reply cache: recent cached replies as raw bytes.

Keys are exactly the SQLite cache keys (``<store id>|<URL>?<query digest>|<credential tag>``),
so stores and credentials stay as separate here as there. Values are the reply body bytes and
status, never decoded JSON: every hit is decoded anew, so a caller that mutates what it got
cannot change what the next caller gets. An entry lives at most ``seconds`` (and never past
the SQLite entry it copies); the whole is an LRU bounded in entries and in bytes.

It knows nothing about other processes. Without Redis, another process's invalidation of the
shared SQLite file reaches this front only when the entry's ``seconds`` run out; in a server
group the keys end with the store's shared cache version (``generations.py``), so another
process's write makes the entries here unreachable at once (they age out of the LRU).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DEFAULT_MAX_ENTRIES = 2_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024
"""Replies larger than this are left to SQLite (a few big order lists would crowd out
hundreds of single orders)."""


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    body: bytes
    status: int
    expires: float
    """On the cache's clock (``time.monotonic`` unless a test passes its own)."""


class MemoryCache:
    """Thread-safe LRU of reply bytes: ``MemoryCache(seconds, max_entries, max_bytes,
    max_entry_bytes, clock)``. ``seconds`` 0 disables it (``get`` misses, ``put`` ignores)."""

    def __init__(
        self,
        seconds: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = max(0.0, float(seconds))
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, MemoryEntry] = OrderedDict()
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.seconds > 0 and self.max_entries > 0

    def get(self, key: str) -> MemoryEntry | None:
        """The entry under ``key`` if present and not expired (an expired one is dropped)."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.expires:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, body: bytes, status: int, lifetime: float) -> None:
        """Keep ``body`` for ``min(lifetime, seconds)`` seconds from now; ``lifetime`` is what is
        left of the SQLite entry's own life. Too-large bodies and spent lifetimes are skipped."""
        life = min(lifetime, self.seconds)
        if not self.enabled or life <= 0 or len(body) > self.max_entry_bytes:
            return
        entry = MemoryEntry(bytes(body), status, self._clock() + life)
        with self._lock:
            if key in self._entries:
                self._remove(key)
            self._entries[key] = entry
            self._bytes += len(entry.body)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._remove(oldest)

    def drop_prefixes(self, prefixes: Iterable[str]) -> int:
        """Forget every entry whose key starts with one of ``prefixes``; return how many."""
        wanted = tuple(prefix for prefix in prefixes if prefix)
        if not wanted:
            return 0
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(wanted)]
            for key in doomed:
                self._remove(key)
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry.body)
