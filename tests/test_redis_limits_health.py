"""A server group's rate-limit counters in Redis, /health/ready's redis check and the Redis
metrics, in-process on the real app with a real redis-server (or an address where none
listens, for the outage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peewee
import pytest
from flask import Flask
from limits import parse

from orderdesk_mcp.app import create_app
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.coordination.link import shared_link
from orderdesk_mcp.mcp.limit_storage import WindowCounters, limit_storage
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import Vault
from tests.real_servers import RedisServer, free_port

OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}
DEAD_PASSWORD = "dead-redis-password-4411"


def group_settings(data_dir: Path, redis_url: str, prefix: str, **extra: str) -> Settings:
    return load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_LOG_FORMAT": "text",
            "ORDERDESK_MCP_REDIS_URL": redis_url,
            "ORDERDESK_MCP_REDIS_PREFIX": prefix,
            **extra,
        }
    )


@pytest.fixture
def live_settings(settings: Settings, redis_server: RedisServer, redis_prefix: str) -> Settings:
    return group_settings(settings.data_dir, redis_server.url, redis_prefix)


@pytest.fixture
def dead_settings(settings: Settings, redis_prefix: str) -> Settings:
    """Redis configured at a loopback port where nothing listens: an outage from the start."""
    url = f"redis://:{DEAD_PASSWORD}@127.0.0.1:{free_port()}/0"
    return group_settings(settings.data_dir, url, redis_prefix)


def app_for(settings: Settings, db: peewee.Database, vault: Vault) -> Flask:
    return create_app(settings, Services(settings=settings, database=db, vault=vault))


def ready(app: Flask, **environ: str) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/health/ready", environ_base=environ)
    body: dict[str, Any] = response.get_json()
    return response.status_code, body


def test_counters_of_two_processes_count_together_under_the_group_prefix(
    live_settings: Settings, redis_prefix: str
) -> None:
    item = parse("3/minute")
    first = WindowCounters(live_settings, "test")
    second = WindowCounters(live_settings, "test")
    assert first.hit([(item, "key-a")]) is None
    assert second.hit([(item, "key-a")]) is None
    assert first.hit([(item, "key-a")]) is None
    waited = second.hit([(item, "key-a")])
    assert waited is not None
    assert 1 <= waited <= 60
    assert first.blocked([(item, "key-a")]) is not None
    assert second.hit([(item, "key-b")]) is None  # another identity, its own window
    link = shared_link(live_settings)
    assert link is not None
    keys = [k.decode() if isinstance(k, bytes) else k for k in link.client.keys(f"{redis_prefix}*")]
    assert keys
    assert all(key.startswith(f"{redis_prefix}limits:") for key in keys)
    # Counters are named by digests: no address, key id or typed name shows in Redis.
    assert not [key for key in keys if "key-a" in key or "key-b" in key or "test" in key]


def test_an_explicit_rate_limit_storage_wins_over_the_group_redis(
    settings: Settings, redis_server: RedisServer, redis_prefix: str
) -> None:
    explicit = group_settings(
        settings.data_dir,
        redis_server.url,
        redis_prefix,
        ORDERDESK_MCP_RATE_LIMIT_STORAGE="redis://127.0.0.1:6399/3",
    )
    chosen = limit_storage(explicit)
    assert chosen.uri == "redis://127.0.0.1:6399/3"
    assert chosen.link is None
    grouped = limit_storage(group_settings(settings.data_dir, redis_server.url, redis_prefix))
    assert grouped.link is not None
    assert redis_server.password not in repr(grouped)  # the pool carries it, not the URI
    assert limit_storage(settings).link is None  # no Redis: memory, as before


def test_counters_keep_counting_in_memory_while_redis_is_down(dead_settings: Settings) -> None:
    item = parse("2/minute")
    counters = WindowCounters(dead_settings, "test")
    assert counters.hit([(item, "key-a")]) is None
    assert counters.hit([(item, "key-a")]) is None
    assert counters.hit([(item, "key-a")]) is not None
    assert counters.blocked([(item, "key-a")]) is not None
    link = shared_link(dead_settings)
    assert link is not None
    assert not link.healthy()


@pytest.mark.sqlite_only  # builds its app on the data dir's SQLite file
def test_ready_lists_redis_when_the_group_redis_answers(
    live_settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    status, body = ready(app_for(live_settings, db, vault))
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["redis"] == {"ok": True}


@pytest.mark.sqlite_only  # builds its app on the data dir's SQLite file
def test_a_redis_outage_leaves_the_process_ready_but_degraded_and_says_why(
    dead_settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    app = app_for(dead_settings, db, vault)
    status, body = ready(app)
    assert status == 200, body  # not 503: every process would leave nginx at once
    assert body["status"] == "degraded"
    assert body["degraded"] == ["redis"]
    reason = body["checks"]["redis"]["degraded"]
    assert "Redis does not answer" in reason
    assert "local fallbacks" in reason
    assert DEAD_PASSWORD not in reason
    # Outside this machine (no admin token): that it is degraded, not the details.
    status, body = ready(app, **OUTSIDE)
    assert status == 200
    assert body["checks"]["redis"] == {"ok": True, "degraded": True}


def test_the_rest_of_the_app_answers_with_redis_down(
    dead_settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    app = app_for(dead_settings, db, vault)
    client = app.test_client()
    # /mcp counts the failed authentication in the (fallback) counters: a clean 401.
    reply = client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": "Bearer odmcp_not_a_key", "Accept": "application/json"},
    )
    assert reply.status_code == 401
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "orderdesk_mcp_redis_up 0.0" in metrics
    fallback_lines = [
        line
        for line in metrics.splitlines()
        if line.startswith("orderdesk_mcp_redis_fallback_calls_total ")
    ]
    assert fallback_lines
    assert float(fallback_lines[0].split()[1]) >= 1
    assert DEAD_PASSWORD not in metrics


def test_metrics_show_redis_up_for_a_live_group(
    live_settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    metrics = app_for(live_settings, db, vault).test_client().get("/metrics")
    assert "orderdesk_mcp_redis_up 1.0" in metrics.get_data(as_text=True)


def test_no_redis_metrics_or_check_without_redis(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    app = app_for(settings, db, vault)
    assert "redis" not in ready(app)[1]["checks"]
    assert "orderdesk_mcp_redis_up" not in app.test_client().get("/metrics").get_data(as_text=True)
