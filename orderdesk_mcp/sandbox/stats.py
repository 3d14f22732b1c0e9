"""Per-store request counters, so tests can check what the sandbox really served."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class StoreStats:
    """Served/rejected counts, per-endpoint counts and the clock time of each served request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._served_at: list[float] = []
        self._by_endpoint: Counter[str] = Counter()
        self._rejected_429 = 0

    def record_served(self, endpoint: str, at: float) -> None:
        with self._lock:
            self._served_at.append(at)
            self._by_endpoint[endpoint] += 1

    def record_rejected(self) -> None:
        with self._lock:
            self._rejected_429 += 1

    def reset(self) -> None:
        with self._lock:
            self._served_at.clear()
            self._by_endpoint.clear()
            self._rejected_429 = 0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "served": len(self._served_at),
                "rejected_429": self._rejected_429,
                "by_endpoint": dict(self._by_endpoint),
                "served_at": list(self._served_at),
            }
