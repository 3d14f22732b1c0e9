"""One tenant's burst never stalls another tenant or the health checks.

Ordering, not timing: tenant A's admitted calls are held upstream by the sandbox for
seconds; tenant B's cached call and /health must finish while they are still held.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee
import pytest
import requests
from flask import Flask

from orderdesk_mcp.background_server import BackgroundServer
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.mcp.admission import Admission, AdmissionLimits, AdmittedResolver
from orderdesk_mcp.mcp.blueprint import STATE_KEY
from orderdesk_mcp.mcp.registry import StaticStoreResolver, StoreRef
from orderdesk_mcp.orderdesk import OrderDeskClient
from orderdesk_mcp.orderdesk.errors import Busy
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault
from tests.conftest import SANDBOX_DEMO_STORE, McpTenant, make_mcp_app, make_mcp_tenant

HELD_MS = 10000  # how long the sandbox holds each of tenant A's calls (a wide margin)
BURST = 100


class Client:
    """A raw Streamable HTTP client: one session, JSON replies."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
            }
        )
        self._ids = itertools.count(1)
        reply = self.post(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "fairness", "version": "1"},
            },
        )
        self.http.headers["Mcp-Session-Id"] = reply.headers["Mcp-Session-Id"]
        self.http.headers["MCP-Protocol-Version"] = "2025-11-25"

    def post(self, method: str, params: dict[str, Any]) -> requests.Response:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        reply = self.http.post(self.url, json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.post(
            "tools/call", {"name": name, "arguments": arguments}
        ).json()["result"]
        return result


@dataclass
class Served:
    url: str
    app: Flask
    second: McpTenant


@pytest.fixture
def served(
    settings: Settings, db: peewee.Database, vault: Vault, sandbox: RunningSandbox
) -> Iterator[Served]:
    app = make_mcp_app(settings, db, vault)
    make_mcp_tenant("alpha", vault, sandbox)  # keeps tenant ids apart from "beta"
    second = make_mcp_tenant("beta", vault, sandbox)
    server = BackgroundServer(app, name="fairness", threads=settings.threads)
    try:
        yield Served(f"http://127.0.0.1:{server.port}", app, second)
    finally:
        sandbox.set_faults()
        server.stop()


def test_a_burst_from_one_tenant_never_stalls_another_or_health(
    served: Served, mcp_tenant: McpTenant, sandbox: RunningSandbox, settings: Settings
) -> None:
    alpha = Client(served.url + "/mcp", mcp_tenant.token)
    beta = Client(served.url + "/mcp", served.second.token)
    warmed = beta.call("get_store", {"store": "empty"})
    assert warmed["isError"] is False
    order_ids = sorted(sandbox.store(SANDBOX_DEMO_STORE).orders)[:BURST]
    sandbox.set_faults(SANDBOX_DEMO_STORE, latency_ms=HELD_MS)

    finished_admitted = threading.Event()

    def one_call(order_id: str) -> dict[str, Any]:
        result = alpha.call("get_order", {"order_id": order_id})
        if not result["isError"]:
            finished_admitted.set()
        return result

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        futures: list[Future[dict[str, Any]]] = [pool.submit(one_call, oid) for oid in order_ids]
        admission: Admission = served.app.extensions[STATE_KEY].admission
        bound = admission.limits.per_store
        # Wait until the burst has settled: the admitted calls held upstream, the rest answered.
        deadline = time.monotonic() + 30  # a safety net; this takes well under a second
        while time.monotonic() < deadline:
            if sum(f.done() for f in futures) >= BURST - bound and admission.running() == bound:
                break
            time.sleep(0.01)

        cached = beta.call("get_store", {"store": "empty"})
        health = requests.get(served.url + "/health", timeout=60)
        beta_done_while_alpha_held = not finished_admitted.is_set()
        results = [f.result(timeout=60) for f in futures]

    assert cached["isError"] is False
    assert health.status_code == 200
    assert beta_done_while_alpha_held, "tenant B waited for tenant A's held calls"
    busy = [r for r in results if r["isError"]]
    assert len(results) - len(busy) == bound
    assert all("Retry in" in r["content"][0]["text"] for r in busy)
    assert settings.max_calls_per_store == bound


# --- the bounds themselves -----------------------------------------------------------------


def test_bounds_per_tenant_per_store_and_in_total() -> None:
    admission = Admission(AdmissionLimits(total=3, per_tenant=2, per_store=1))
    with admission.upstream("t1", "10"):
        with pytest.raises(Busy, match="store 10"), admission.upstream("t1", "10"):
            pass
        with admission.upstream("t1", "11"):  # another store of the same tenant is fine
            with pytest.raises(Busy, match="account"), admission.upstream("t1", "12"):
                pass
            # The same store id of another tenant is fine too; then the server is full.
            with (
                admission.upstream("t2", "10"),
                pytest.raises(Busy, match="server"),
                admission.upstream("t3", "20"),
            ):
                pass
    assert admission.running() == 0
    with admission.upstream("t1", "10"):  # every slot came back
        assert admission.running() == 1


def test_a_cached_read_needs_no_slot(
    sandbox: RunningSandbox, sandbox_keys: dict[str, str], tmp_path: Path
) -> None:
    """Slots guard requests that may wait on Order Desk: with every slot taken, a read the
    in-memory cache answers still succeeds, and one that must go out is busy, unsent."""
    admission = Admission(AdmissionLimits(total=1, per_tenant=1, per_store=1))
    ref = StoreRef(alias="demo", store_id=SANDBOX_DEMO_STORE, is_default=True)
    with UpstreamMachinery(tmp_path / "cache.sqlite") as machinery:
        client = OrderDeskClient(
            SANDBOX_DEMO_STORE, sandbox_keys[SANDBOX_DEMO_STORE], sandbox.base_url, machinery
        )
        resolver = AdmittedResolver(StaticStoreResolver([(ref, client)]), admission, "t1")
        _ref, gated = resolver.resolve(None)
        gated.get_store()  # fills the cache, through a slot
        served = sandbox.stats(SANDBOX_DEMO_STORE)["served"]
        with admission.upstream("t1", SANDBOX_DEMO_STORE):  # another call holds the slot
            assert gated.get_store()["store"]["id"] == SANDBOX_DEMO_STORE
            with pytest.raises(Busy, match="nothing was sent"):
                gated.get_store(fresh=True)
        assert sandbox.stats(SANDBOX_DEMO_STORE)["served"] == served


def test_two_threads_are_kept_from_tool_calls() -> None:
    limits = AdmissionLimits.for_threads(8, per_tenant=16, per_store=3)
    assert (limits.total, limits.per_tenant) == (6, 6)
    assert AdmissionLimits.for_threads(1, per_tenant=4, per_store=3).total == 1


def test_the_upstream_wait_budget_comes_from_the_setting(settings: Settings) -> None:
    tuned = load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(settings.data_dir),
            "ORDERDESK_MCP_UPSTREAM_WAIT_SECONDS": "1.5",
        }
    )
    machinery = UpstreamMachinery.from_settings(tuned)
    try:
        assert machinery.retry.max_rate_limit_wait == 1.5
    finally:
        machinery.close()
