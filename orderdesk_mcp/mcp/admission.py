"""How many Order Desk requests may be in flight at once: in the process, per tenant, per
tenant's store.

Waitress has one task queue and a fixed set of worker threads for every request. A request to
Order Desk can hold its thread for seconds (the store's rate limit, a slow reply), so without a
bound one tenant's burst puts every thread to sleep and everyone else, `/health` included,
queues behind it. A call that would go over a bound is not queued: it gets a busy result at
once, with a retry hint, and its thread is free again in microseconds. The process-wide bound
leaves two threads that never wait on Order Desk, so health checks, metrics and session
requests always find a thread.

The slot is taken around each request that may reach Order Desk (a read the in-memory cache
cannot answer, or a write), not around the whole tool call: a call answered from memory holds
no slot, so a busy tenant never makes another tenant's cached reads busy.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from orderdesk_mcp.mcp.tools._base import StoreRef, StoreResolver
from orderdesk_mcp.orderdesk import OrderDeskClient
from orderdesk_mcp.orderdesk.errors import Busy

# Threads kept free of Order Desk requests, for /health*, /metrics and the cheap MCP requests.
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
    """Counts requests in flight under one lock; a slot past a bound raises Busy."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._running: Counter[Hashable] = Counter()

    @contextmanager
    def upstream(self, tenant: Hashable, store_id: str) -> Iterator[None]:
        """Hold one slot (server, tenant, tenant's store) while a request to Order Desk runs;
        Busy, with nothing sent, when any of the three is at its bound."""
        keys: Sequence[tuple[Hashable, int, str]] = (
            ("total", self.limits.total, "This server is running as many Order Desk requests as "
             "it can"),
            (("tenant", tenant), self.limits.per_tenant, "This account already has as many "
             "Order Desk requests running as it may"),
            (("store", tenant, store_id), self.limits.per_store, f"Order Desk store {store_id} "
             "already has as many of your requests running as it may"),
        )  # fmt: skip
        with self._hold(keys):
            yield

    @contextmanager
    def outbound(self) -> Iterator[None]:
        """Hold one process-wide slot for other slow outbound work (fetching an OAuth client
        metadata document), so it too stays off the threads kept for health checks."""
        with self._hold(
            (("total", self.limits.total, "This server is running as many outbound requests "
              "as it can"),)
        ):  # fmt: skip
            yield

    @contextmanager
    def _hold(self, keys: Sequence[tuple[Hashable, int, str]]) -> Iterator[None]:
        with self._lock:
            for key, bound, what in keys:
                if self._running[key] >= bound:
                    raise Busy(
                        f"{what} ({bound} at once); nothing was sent. Retry in "
                        f"{RETRY_AFTER_SECONDS} seconds, or wait for your other calls to finish.",
                        retry_after=RETRY_AFTER_SECONDS,
                    )
            for key, _bound, _what in keys:
                self._running[key] += 1
        try:
            yield
        finally:
            with self._lock:
                for key, _bound, _what in keys:
                    self._running[key] -= 1
                    if self._running[key] <= 0:
                        del self._running[key]

    def running(self) -> int:
        """Requests to Order Desk in flight in this process."""
        with self._lock:
            return self._running["total"]


class AdmittedResolver:
    """A tenant's resolver whose clients take an admission slot around every request that
    may reach Order Desk."""

    def __init__(self, inner: StoreResolver, admission: Admission, tenant: Hashable) -> None:
        self._inner = inner
        self._admission = admission
        self._tenant = tenant

    def stores(self) -> Sequence[StoreRef]:
        return self._inner.stores()

    def resolve(self, store: str | None) -> tuple[StoreRef, OrderDeskClient]:
        ref, client = self._inner.resolve(store)
        gate = partial(self._admission.upstream, self._tenant, ref.store_id)
        return ref, client.with_upstream_gate(gate)
