"""Serving: real-clock limits under concurrency, consistent concurrent writes, clean stops."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from orderdesk_mcp.sandbox import (
    RunningSandbox,
    SandboxStoreSpec,
    max_window_excess,
    start_sandbox,
)
from tests.test_sandbox_api import DEMO, EMPTY, SAMPLE_ORDER, call, ok


def test_concurrent_burst_on_the_real_clock_stays_within_the_limit(
    sandbox: RunningSandbox,
) -> None:
    url = f"{sandbox.base_url}/test"
    headers = sandbox.headers(DEMO)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(
            pool.map(
                lambda _: requests.get(url, headers=headers, timeout=10).status_code, range(60)
            )
        )
    stats = sandbox.stats(DEMO)
    assert codes.count(200) == stats["served"]
    assert codes.count(429) == stats["rejected_429"]
    assert set(codes) <= {200, 429}
    assert 20 <= stats["served"] < 60
    assert max_window_excess(stats["served_at"]) <= 1e-9


def test_concurrent_creates_get_distinct_ids(sandbox: RunningSandbox) -> None:
    def create(index: int) -> str:
        body = {**SAMPLE_ORDER, "source_id": f"PAR-{index}"}
        order_id: str = ok(call(sandbox, "POST", "/orders", EMPTY, json=body))["order"]["id"]
        return order_id

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(create, range(12)))
    assert len(set(ids)) == 12
    listed = ok(call(sandbox, "GET", "/orders", EMPTY))
    assert listed["total_records"] == 12


def test_tokens_header_on_errors_of_a_known_store(sandbox: RunningSandbox) -> None:
    unrouted = call(sandbox, "GET", "/folders")
    assert unrouted.status_code == 404
    assert unrouted.headers["X-Tokens-Remaining"] == "20"
    missing = call(sandbox, "GET", "/orders/1")
    assert missing.status_code == 404
    assert missing.headers["X-Tokens-Remaining"] == "19"
    wrong_key = requests.get(
        f"{sandbox.base_url}/test",
        headers={"ORDERDESK-STORE-ID": DEMO, "ORDERDESK-API-KEY": "nope"},
        timeout=10,
    )
    assert wrong_key.status_code == 401
    assert "X-Tokens-Remaining" in wrong_key.headers
    stranger = requests.get(f"{sandbox.base_url}/test", timeout=10)
    assert "X-Tokens-Remaining" not in stranger.headers


def test_stop_closes_kept_alive_connections_and_frees_the_port() -> None:
    spec = SandboxStoreSpec("600001", "sk_stop", seed="empty")
    sb = start_sandbox([spec])
    session = requests.Session()
    assert session.get(f"{sb.base_url}/test", headers=sb.headers("600001"), timeout=10).ok
    sb.stop()
    sb.stop()  # a second stop is harmless
    with start_sandbox([spec], port=sb.port) as again:
        assert again.port == sb.port
        response = requests.get(
            f"{again.base_url}/test", headers=again.headers("600001"), timeout=10
        )
        assert response.ok
    session.close()
