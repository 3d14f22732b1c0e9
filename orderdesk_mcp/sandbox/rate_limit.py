"""Order Desk's per-store leaky bucket (reference §3) and checks of a request log against it."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from orderdesk_mcp.sandbox.clock import Clock
from orderdesk_mcp.sandbox.emulation_choices import (
    BUCKET_CAPACITY,
    BUCKET_REFILL_PER_SECOND,
    REJECTED_REQUESTS_COST_A_TOKEN,
)


@dataclass(frozen=True)
class BucketDecision:
    served: bool
    tokens_remaining: int
    retry_after_s: int
    at: float  # the clock reading the decision was made at


class TokenBucket:
    """Capacity 20, +3 tokens/s, one token per served request; refused requests cost nothing."""

    def __init__(
        self,
        clock: Clock,
        capacity: float = BUCKET_CAPACITY,
        refill_per_second: float = BUCKET_REFILL_PER_SECOND,
    ) -> None:
        self._clock = clock
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._tokens = float(capacity)
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)
        self._last = now

    def take(self) -> BucketDecision:
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return BucketDecision(True, math.floor(self._tokens), 0, self._last)
            if REJECTED_REQUESTS_COST_A_TOKEN:
                self._tokens = max(self._tokens - 1, -float(self.capacity))
            wait = math.ceil((1 - self._tokens) / self.refill_per_second)
            return BucketDecision(False, 0, max(1, wait), self._last)

    def peek(self) -> int:
        """Whole tokens available now, without taking one."""
        with self._lock:
            self._refill()
            return math.floor(self._tokens)

    def refill_completely(self) -> None:
        with self._lock:
            self._tokens = float(self.capacity)
            self._last = self._clock()


def max_window_excess(
    served_at: Sequence[float],
    capacity: float = BUCKET_CAPACITY,
    refill_per_second: float = BUCKET_REFILL_PER_SECOND,
) -> float:
    """Largest `count - (capacity + rate * t)` over every window of served requests.

    A log obeys the limit when the result is <= 0: no window of t seconds served more than
    capacity + rate*t requests. For the window from request i to request j the excess is
    (j - i + 1) - capacity - rate*(t_j - t_i) = f(j) - f(i) + 1 - capacity with
    f(k) = k - rate*t_k, so one pass with a running minimum of f finds the worst window.
    """
    times = sorted(served_at)
    worst = -float(capacity)
    lowest_f = math.inf
    for index, moment in enumerate(times):
        f = index - refill_per_second * moment
        lowest_f = min(lowest_f, f)
        worst = max(worst, f - lowest_f + 1 - capacity)
    return worst


def max_served_in_window(served_at: Sequence[float], window_s: float) -> int:
    """The most requests served within any window of `window_s` seconds (inclusive)."""
    times = sorted(served_at)
    best = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] > window_s:
            start += 1
        best = max(best, end - start + 1)
    return best
