"""Clocks: the sandbox reads monotonic time through one callable so tests can drive it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Returns monotonic seconds (like time.monotonic)."""

system_clock: Clock = time.monotonic


class ManualClock:
    """A clock that only moves when told to: rate-limit tests run without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
