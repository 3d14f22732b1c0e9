"""Order Desk's per-store token bucket kept in Redis, shared by every process of the group.

The bucket is one hash per store, ``<prefix>bucket:<store id>`` with ``t`` (tokens, negative
while callers are queued) and ``s`` (the moment ``t`` is true at). One Lua script does every
operation atomically and reads the time from Redis (``TIME``), so all processes and hosts
share one clock. The semantics are ``LeakyBucket``'s: 3 tokens per second, 18 at most (see
SHARED_BUCKET_CAPACITY), a booking may take the count below zero so waiters queue in order;
after a 429 ``s`` lies in the future (no token, no refill before it), which makes every
process wait the X-Retry-After out. A full bucket is the same as no key, so each write sets
an expiry for when it would be full again.

While Redis does not answer, each store falls back to a ``LeakyBucket`` of this process with
the group's share of the budget (18 / members tokens, 3 / members per second, starting empty
because the shared one may have been spent), and returns to Redis when it answers again,
first lowering the shared count to what its share has left (see ``_hand_back_fallback``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from orderdesk_mcp.coordination.link import RedisLink
from orderdesk_mcp.orderdesk.ratelimit import (
    BUCKET_CAPACITY,
    REFILL_PER_SECOND,
    LeakyBucket,
    PerStore,
)

SHARED_BUCKET_CAPACITY = BUCKET_CAPACITY - 2
"""Order Desk's 20 less 2 tokens of headroom. Processes send on the slots the script gives
them, but under load a send lands up to a few hundred ms late, and a burst that lands late
and bunched could meet Order Desk's full bucket with more than it holds. Two tokens absorb
2/3 s of such scheduling jitter; the sustained rate (3/s) is unchanged."""

DEFAULT_MEMBERS = 4
"""Processes assumed to share a store's budget while Redis is down, until told the live count."""

_LONGEST_WAIT = 1e9  # what an unbounded max_wait becomes on its way into Lua

BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local op = ARGV[3]
local arg = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(saved[1]) or capacity
local stamp = tonumber(saved[2]) or now
local blocked = 0
if now > stamp then
  tokens = math.min(capacity, tokens + (now - stamp) * rate)
  stamp = now
else
  blocked = stamp - now
end
local result = 0
if op == 'reserve' then
  if tokens < 1 or blocked > 0 then
    result = blocked + math.max(0, (1 - tokens) / rate)
    if result > arg then
      return false
    end
  end
  tokens = tokens - 1
elseif op == 'wait' then
  return string.format('%.6f', blocked + math.max(0, (1 - tokens) / rate))
elseif op == 'observe' then
  tokens = math.min(tokens, arg)
elseif op == 'block' then
  tokens = math.min(tokens, 1)
  stamp = math.max(stamp, now + arg)
else
  return redis.error_reply('unknown bucket operation')
end
local full_in = (stamp - now) + (capacity - tokens) / rate
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 's', string.format('%.6f', stamp))
redis.call('EXPIRE', KEYS[1], string.format('%d', math.ceil(full_in) + 1))
return string.format('%.6f', result)
"""


class SharedBucket:
    """One store's bucket in Redis, with a local fallback while Redis is down."""

    def __init__(
        self,
        link: RedisLink,
        script: Callable[..., object],
        store_id: str,
        members: Callable[[], int],
        capacity: float = BUCKET_CAPACITY,
        refill_per_second: float = REFILL_PER_SECOND,
    ) -> None:
        self._link = link
        self._script = script
        self._key = link.key("bucket", store_id)
        self._members = members
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self._lock = threading.Lock()
        self._local: LeakyBucket | None = None
        self._local_outage = -1
        self._handed_back_outage = -1

    def _shared(self, op: str, argument: float) -> float | None:
        """Run the script (raises redis errors); its reply in seconds, None for "no token"."""
        self._hand_back_fallback()
        return self._run(op, argument)

    def _hand_back_fallback(self) -> None:
        """Once after each outage in which this process spent its local share: Redis's copy
        kept refilling on its own clock meanwhile (or expired, which reads as full), while
        the fallbacks spent Order Desk's real budget. Lower it to what the share has left
        (negative: calls already booked on it), so the group does not send a full bucket's
        worth at once into an Order Desk bucket that may be empty (a burst of 429s)."""
        with self._lock:
            local, outage = self._local, self._local_outage
            if local is None or outage == self._handed_back_outage:
                return
        self._run("observe", local.tokens())  # raises redis errors: tried again next call
        with self._lock:
            self._handed_back_outage = max(self._handed_back_outage, outage)

    def _run(self, op: str, argument: float) -> float | None:
        reply = self._script(
            keys=[self._key],
            args=[repr(self.capacity), repr(self.refill_per_second), op, repr(argument)],
        )
        return None if reply is None else float(_text(reply))

    def fallback(self) -> LeakyBucket:
        """This process's share of the budget, made empty at the start of each outage."""
        with self._lock:
            if self._local is None or self._local_outage != self._link.outages:
                share = max(1, _safe_count(self._members))
                self._local = LeakyBucket(
                    max(1.0, self.capacity / share), self.refill_per_second / share
                )
                self._local.observe_remaining(0)
                self._local_outage = self._link.outages
            return self._local

    def reserve(self, max_wait: float) -> float | None:
        """As ``LeakyBucket.reserve``: seconds to sleep (0.0: send now), or None."""
        bounded = max(0.0, max_wait if math.isfinite(max_wait) else _LONGEST_WAIT)
        return self._link.run(
            lambda: self._shared("reserve", bounded), lambda: self.fallback().reserve(max_wait)
        )

    def wait_needed(self) -> float:
        return self._link.run(
            lambda: self._shared("wait", 0.0) or 0.0, lambda: self.fallback().wait_needed()
        )

    def observe_remaining(self, remaining: int) -> None:
        self._link.run(
            lambda: self._shared("observe", float(remaining)),
            lambda: self.fallback().observe_remaining(remaining),
        )

    def block(self, seconds: float) -> None:
        self._link.run(
            lambda: self._shared("block", max(0.0, float(seconds))),
            lambda: self.fallback().block(seconds),
        )


class SharedBucketRegistry(PerStore[SharedBucket]):
    """``BucketRegistry`` for a server group: one SharedBucket per store id.

    ``members`` says how many processes share the budget (for the fallback's share); the
    default assumes DEFAULT_MEMBERS until the live count of the group is wired in.
    """

    def __init__(
        self,
        link: RedisLink,
        *,
        members: Callable[[], int] = lambda: DEFAULT_MEMBERS,
        capacity: float = SHARED_BUCKET_CAPACITY,
        refill_per_second: float = REFILL_PER_SECOND,
    ) -> None:
        script = link.client.register_script(BUCKET_SCRIPT)
        super().__init__(
            lambda store_id: SharedBucket(
                link, script, store_id, members, capacity, refill_per_second
            )
        )


def _text(reply: object) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _safe_count(members: Callable[[], int]) -> int:
    """The hook's answer; DEFAULT_MEMBERS when it fails (it may read the database)."""
    try:
        return int(members())
    except Exception:
        return DEFAULT_MEMBERS
