"""Real `serve` processes sharing one Redis: one Order Desk budget per store across the group,
rate limits counted together, and a Redis outage survived.

Every test uses a fresh ORDERDESK_MCP_REDIS_PREFIX on the session's redis-server and its own
sandbox, whose counters say what Order Desk would have seen. Load is bounded (a deadline
and a finite list of order ids) and stops by itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from orderdesk_mcp.sandbox import RunningSandbox, max_window_excess
from tests.conftest import SANDBOX_DEMO_STORE
from tests.real_servers import RedisServer
from tests.redis_load import DistinctIds, LoadTally, hammer
from tests.server_group import ServeProcess, ServerGroup, mcp_post, open_session

pytestmark = pytest.mark.slow

HAMMER_SECONDS = 20.0
NO_KEY_LIMIT = "100000/minute"  # the per-key limit is not what these tests measure


def group_env(redis_server: RedisServer, prefix: str, **extra: str) -> dict[str, str]:
    return {
        "ORDERDESK_MCP_REDIS_URL": redis_server.url,
        "ORDERDESK_MCP_REDIS_PREFIX": prefix,
        "ORDERDESK_MCP_RATE_LIMIT": NO_KEY_LIMIT,
        **extra,
    }


def order_ids(sandbox: RunningSandbox) -> list[str]:
    return list(sandbox.store(SANDBOX_DEMO_STORE).orders)


def ready(served: ServeProcess) -> tuple[int, dict[str, Any]]:
    response = requests.get(f"{served.base}/health/ready", timeout=10)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def assert_answered_cleanly(tally: LoadTally, group: ServerGroup) -> None:
    logs = "\n".join(served.log_text() for served in group.processes)
    assert set(tally.http_statuses) == {200}, (tally, logs)
    assert not tally.transport_errors, (tally, logs)
    for text in tally.tool_errors:
        # Busy, or a wait longer than a call may take: both say when to come back.
        assert "try again" in text.lower() or "retry" in text.lower(), (text, logs)


def test_four_processes_stay_within_one_store_budget(
    tmp_path: Path, sandbox: RunningSandbox, redis_server: RedisServer, redis_prefix: str
) -> None:
    group = ServerGroup.prepare(tmp_path, sandbox, env=group_env(redis_server, redis_prefix))
    try:
        servers = group.start(4)
        ids = DistinctIds(order_ids(sandbox))
        sandbox.reset_stats()
        tally = hammer([served.url for served in servers], group.token, ids, HAMMER_SECONDS)
    finally:
        group.stop_all()
    stats = sandbox.stats(SANDBOX_DEMO_STORE)
    assert_answered_cleanly(tally, group)
    assert stats["rejected_429"] == 0, stats["rejected_429"]
    # No window of t seconds ever served more than 20 + 3t requests (Order Desk's bucket).
    assert max_window_excess(stats["served_at"]) <= 1e-6
    served_at = stats["served_at"]
    elapsed = max(served_at) - min(served_at)
    assert stats["served"] <= 20 + 3 * elapsed + 1e-6
    # The four processes really competed: far more than one bucket's worth was asked for.
    assert stats["served"] > 20 + 3 * 0.5 * HAMMER_SECONDS, stats["served"]
    assert tally.ok == stats["served"]


def test_a_per_key_limit_counts_across_two_processes(
    tmp_path: Path, sandbox: RunningSandbox, redis_server: RedisServer, redis_prefix: str
) -> None:
    env = group_env(redis_server, redis_prefix, ORDERDESK_MCP_RATE_LIMIT="4/minute")
    group = ServerGroup.prepare(tmp_path, sandbox, env=env)
    try:
        first, second = group.start(2)
        sessions = {served.url: open_session(served.url, group.token) for served in group.processes}
        statuses = []
        for served in (first, second, first, second, first, second):
            reply = mcp_post(
                served.url,
                group.token,
                {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                 "params": {"name": "list_stores", "arguments": {}}},
                sessions[served.url],
            )  # fmt: skip
            statuses.append(reply.status_code)
    finally:
        group.stop_all()
    # Four calls in a minute for the key, wherever they landed; then both processes refuse.
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_killing_redis_mid_load_keeps_answering_and_recovers(
    tmp_path: Path, sandbox: RunningSandbox, redis_server: RedisServer, redis_prefix: str
) -> None:
    group = ServerGroup.prepare(tmp_path, sandbox, env=group_env(redis_server, redis_prefix))
    bucket_key = f"{redis_prefix}bucket:{SANDBOX_DEMO_STORE}"
    probe = redis.Redis.from_url(redis_server.url)
    try:
        servers = group.start(2)
        urls = [served.url for served in servers]
        ids = DistinctIds(order_ids(sandbox))
        tally = hammer(urls, group.token, ids, 4.0)
        assert probe.exists(bucket_key) == 1  # the shared bucket in use
        redis_server.stop()
        try:
            during = hammer(urls, group.token, ids, 6.0)
            assert during.ok > 0, during  # served on the local fallback buckets
            for served in servers:
                status, body = ready(served)
                # Loopback sees the reason; nginx sees 200 and keeps sending traffic.
                assert status == 200, body
                assert body["status"] == "degraded"
                assert "Redis does not answer" in body["checks"]["redis"]["degraded"]
                assert redis_server.password not in str(body)
        finally:
            redis_server.start()
        # Back on Redis: the first calls after the breaker's pause use the shared bucket.
        time.sleep(2.5)
        after = hammer(urls, group.token, ids, 4.0)
        assert probe.exists(bucket_key) == 1
        for served in servers:
            status, body = ready(served)
            assert status == 200
            assert body["status"] == "ready", body
            metrics = requests.get(f"{served.base}/metrics", timeout=10).text
            assert "orderdesk_mcp_redis_up 1.0" in metrics
        logs = [served.log_text() for served in servers]
    finally:
        probe.close()
        group.stop_all()
    for phase in (tally, during, after):
        assert_answered_cleanly(phase, group)
    # The fallback shares (2 x 3/4 per second) left Order Desk's bucket room to spare.
    assert sandbox.stats(SANDBOX_DEMO_STORE)["rejected_429"] == 0
    for text in logs:
        assert text.count("Redis does not answer") == 1  # once per outage, not per call
        assert "Redis answers again" in text
        assert redis_server.password not in text
