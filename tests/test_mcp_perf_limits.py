"""flask-limiter after tuning: no per-request hooks on the served app, the same per-key limits."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest
from flask import Flask
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp import blueprint, limit_storage
from orderdesk_mcp.mcp.limit_storage import SweptMemoryStorage, memory_uri_to_swept
from orderdesk_mcp.vault import Vault
from tests.conftest import McpTenant, make_mcp_app
from tests.test_mcp_http import McpHttp, error_of


def _hook_owners(app: Flask) -> list[str]:
    hooks = [
        *app.before_request_funcs.get(None, []),
        *app.after_request_funcs.get(None, []),
        *app.teardown_request_funcs.get(None, []),
    ]
    owners = []
    for hook in hooks:
        target = getattr(hook, "func", hook)  # functools.partial keeps the function in .func
        owners.append(getattr(target, "__module__", "") or "")
    return owners


def test_the_served_app_runs_no_flask_limiter_hook(mcp_app: Flask) -> None:
    owners = _hook_owners(mcp_app)
    assert owners, "the app's own hooks (request id, metrics, database) are expected"
    assert not [owner for owner in owners if owner.startswith("flask_limiter")]
    assert "limiter" not in mcp_app.extensions


def test_per_key_limits_still_count_each_key_on_its_own(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="4/minute"), db, vault)
    writer = McpHttp(app.test_client(), mcp_tenant.token)
    writer.initialize()  # protocol requests: not calls
    assert [writer.call("list_stores").status_code for _ in range(5)] == [200] * 4 + [429]
    assert "rate limit" in error_of(writer.call("list_stores"))["message"]
    reader = McpHttp(app.test_client(), mcp_tenant.read_only_token)
    reader.initialize()
    assert reader.call("list_stores").status_code == 200
    # Another app (another process, in production) keeps its own memory:// counters.
    fresh = McpHttp(
        make_mcp_app(settings.replace(rate_limit="4/minute"), db, vault).test_client(),
        mcp_tenant.token,
    )
    fresh.initialize()
    assert fresh.call("list_stores").status_code == 200
    assert blueprint.state(app).limits.hit_key("someone") is None


# --- memory:// counters swept by one thread ----------------------------------------------------


def test_memory_uri_uses_the_swept_storage_and_other_uris_stay(mcp_app: Flask) -> None:
    storage = blueprint.state(mcp_app).limits._limiter.storage
    assert isinstance(storage, SweptMemoryStorage)
    assert memory_uri_to_swept("memory://") == "orderdesk-memory://"
    assert memory_uri_to_swept("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_hits_start_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[threading.Timer] = []
    real_timer = threading.Timer

    def counting_timer(*args: Any, **kwargs: Any) -> threading.Timer:
        timer = real_timer(*args, **kwargs)
        started.append(timer)
        return timer

    swept = MovingWindowRateLimiter(SweptMemoryStorage())
    monkeypatch.setattr(threading, "Timer", counting_timer)
    item = parse("100/minute")
    for _ in range(4):
        time.sleep(0.02)  # longer than the base class's 10 ms timer: it would start another
        assert swept.hit(item, "key", "a")
    assert started == []


def test_the_same_hits_are_allowed_and_refused_as_with_limits_own_storage() -> None:
    item = parse("5/second")
    own = MovingWindowRateLimiter(MemoryStorage())
    swept = MovingWindowRateLimiter(SweptMemoryStorage())
    for key in ("a", "b"):
        assert [own.hit(item, key) for _ in range(8)] == [swept.hit(item, key) for _ in range(8)]
    assert own.get_window_stats(item, "a").remaining == swept.get_window_stats(item, "a").remaining


def test_expired_entries_are_swept_and_the_sweeper_ends_with_its_storage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limit_storage, "SWEEP_SECONDS", 0.05)
    storage = SweptMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("3/second")
    assert all(limiter.hit(item, "k") for _ in range(3))
    assert not limiter.hit(item, "k")
    deadline = time.monotonic() + 5
    while any(storage.events.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(storage.events.values())  # swept once the one-second window passed
    assert limiter.hit(item, "k")
    sweeper = storage.sweeper
    del limiter, storage
    # Collect until it ends: a collection that lands while the sweeper briefly holds its
    # strong reference frees nothing, and the storage sits in a reference cycle.
    deadline = time.monotonic() + 5
    while sweeper.is_alive() and time.monotonic() < deadline:
        gc.collect()
        sweeper.join(timeout=0.1)
    assert not sweeper.is_alive()
