"""How many tool calls may run at once: in the process, per tenant, per tenant's store.

Waitress has one task queue and a fixed set of worker threads for every request. A tool call
can hold its thread for seconds (Order Desk's rate limit, a slow reply), so without a bound one
tenant's burst puts every thread to sleep and everyone else, `/health` included, queues behind
it. Calls over a bound are not queued: they get a busy result at once, with a retry hint, and
the thread is free again in microseconds. The process-wide bound leaves two threads that never
run tool calls, so health checks, metrics and session requests always find a thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from orderdesk_mcp.mcp.tools._base import Busy, StoreRef, StoreResolver
from orderdesk_mcp.orderdesk import OrderDeskClient

# Threads kept free of tool calls, for /health*, /metrics and the cheap MCP requests.
RESERVED_THREADS = 2
RETRY_AFTER_SECONDS = 2


@dataclass(frozen=True)
class AdmissionLimits:
    total: int
    per_tenant: int
    per_store: int

    @classmethod
    def for_threads(cls, threads: int, *, per_tenant: int, per_store: int) -> AdmissionLimits:
        total = max(1, threads - RESERVED_THREADS)
        return cls(total=total, per_tenant=min(per_tenant, total), per_store=per_store)


class Admission:
    """Counts running calls under one lock; entering past a bound raises Busy."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._running: Counter[Hashable] = Counter()

    def _take(self, keys: Sequence[tuple[Hashable, int, str]]) -> None:
        with self._lock:
            for key, bound, what in keys:
                if self._running[key] >= bound:
                    raise Busy(
                        f"{what} ({bound} at once); nothing was done. Retry in "
                        f"{RETRY_AFTER_SECONDS} seconds, or wait for your other calls to finish.",
                        retry_after=RETRY_AFTER_SECONDS,
                    )
            for key, _bound, _what in keys:
                self._running[key] += 1

    def _give_back(self, keys: Sequence[Hashable]) -> None:
        with self._lock:
            for key in keys:
                self._running[key] -= 1
                if self._running[key] <= 0:
                    del self._running[key]

    @contextmanager
    def call(self, tenant: Hashable) -> Iterator[AdmittedCall]:
        """Admit one call of `tenant` (Busy when the process or the tenant is at its bound);
        the store slot is taken when the call resolves its store."""
        keys: list[Hashable] = ["total", ("tenant", tenant)]
        self._take(
            [
                ("total", self.limits.total, "This server is running as many tool calls as it can"),
                (
                    ("tenant", tenant),
                    self.limits.per_tenant,
                    "This account already has as many tool calls running as it may",
                ),
            ]
        )
        admitted = AdmittedCall(self, tenant)
        try:
            yield admitted
        finally:
            self._give_back(keys + admitted.store_keys)

    def running(self) -> int:
        with self._lock:
            return self._running["total"]


class AdmittedCall:
    """One admitted call; `store()` takes its slot on the store it turns out to use."""

    def __init__(self, admission: Admission, tenant: Hashable) -> None:
        self._admission = admission
        self._tenant = tenant
        self.store_keys: list[Hashable] = []

    def store(self, store_id: str) -> None:
        key = ("store", self._tenant, store_id)
        if key in self.store_keys:
            return
        self._admission._take(
            [
                (
                    key,
                    self._admission.limits.per_store,
                    f"Order Desk store {store_id} already has as many of your tool calls "
                    "running as it may",
                )
            ]
        )
        self.store_keys.append(key)


class AdmittedResolver:
    """A tenant's resolver whose `resolve` also takes the call's slot on that store."""

    def __init__(self, inner: StoreResolver, admitted: AdmittedCall) -> None:
        self._inner = inner
        self._admitted = admitted

    def stores(self) -> Sequence[StoreRef]:
        return self._inner.stores()

    def resolve(self, store: str | None) -> tuple[StoreRef, OrderDeskClient]:
        ref, client = self._inner.resolve(store)
        self._admitted.store(ref.store_id)
        return ref, client
