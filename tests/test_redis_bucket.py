"""The Order Desk token bucket kept in Redis (coordination/bucket.py) against LeakyBucket.

A real redis-server (the session's `redis_server`, each test under a fresh key prefix);
two RedisLink instances stand for two processes. Waits are compared with a tolerance: the
script reads Redis's clock, which moves on by microseconds between two calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderdesk_mcp.coordination.bucket import (
    SHARED_BUCKET_CAPACITY,
    SharedBucket,
    SharedBucketRegistry,
)
from orderdesk_mcp.coordination.link import RedisLink
from orderdesk_mcp.orderdesk.client import OrderDeskClient
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.orderdesk.ratelimit import LeakyBucket
from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_KEYS
from tests.real_servers import RedisServer, free_port

STORE = "100001"
TICK = 1 / 3  # seconds per token at 3/s
CLOSE = 0.05  # Redis's clock moves on between calls; a few ms, never this much
FULL = int(SHARED_BUCKET_CAPACITY)  # 18: Order Desk's 20 less the group's headroom


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def link(redis_server: RedisServer, redis_prefix: str) -> Iterator[RedisLink]:
    made = RedisLink.from_url(redis_server.url, redis_prefix)
    yield made
    made.close()


@pytest.fixture
def other_link(redis_server: RedisServer, redis_prefix: str) -> Iterator[RedisLink]:
    """A second process's link to the same Redis and prefix."""
    made = RedisLink.from_url(redis_server.url, redis_prefix)
    yield made
    made.close()


def shared(link: RedisLink) -> SharedBucket:
    return SharedBucketRegistry(link).for_store(STORE)


def test_a_full_bucket_gives_its_tokens_at_once_then_none_without_waiting(
    link: RedisLink,
) -> None:
    local = LeakyBucket(FULL, clock=FrozenClock())
    bucket = shared(link)
    assert [bucket.reserve(0.0) for _ in range(FULL)] == [local.reserve(0.0) for _ in range(FULL)]
    assert bucket.reserve(0.0) is None
    assert local.reserve(0.0) is None
    assert bucket.wait_needed() == pytest.approx(local.wait_needed(), abs=CLOSE)


def test_waiters_queue_one_refill_tick_apart_like_the_local_bucket(link: RedisLink) -> None:
    local = LeakyBucket(FULL, clock=FrozenClock())
    bucket = shared(link)
    for _ in range(FULL):
        bucket.reserve(0.0)
        local.reserve(0.0)
    waits = [bucket.reserve(60.0) for _ in range(5)]
    expected = [local.reserve(60.0) for _ in range(5)]
    assert waits == pytest.approx(expected, abs=CLOSE)
    assert expected == pytest.approx([TICK * n for n in range(1, 6)])
    # A booking that would wait longer than allowed books nothing.
    assert bucket.reserve(1.0) is None
    assert bucket.wait_needed() == pytest.approx(6 * TICK, abs=CLOSE)


def test_the_bucket_refills_at_3_per_second(link: RedisLink) -> None:
    bucket = shared(link)
    bucket.observe_remaining(0)
    assert bucket.reserve(0.0) is None
    waited = bucket.wait_needed()
    assert waited == pytest.approx(TICK, abs=CLOSE)
    time.sleep(waited + 0.02)
    assert bucket.reserve(0.0) == 0.0


def test_observed_remaining_only_lowers_the_count(link: RedisLink) -> None:
    bucket = shared(link)
    bucket.observe_remaining(500)  # more than we think: ignored
    assert [bucket.reserve(0.0) for _ in range(10)] == [0.0] * 10
    bucket.observe_remaining(3)  # fewer than our 10: lowered to 3
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0] * 3
    assert bucket.reserve(0.0) is None


def test_two_processes_share_one_bucket(link: RedisLink, other_link: RedisLink) -> None:
    mine, theirs = shared(link), shared(other_link)
    taken = [mine.reserve(0.0) for _ in range(9)] + [theirs.reserve(0.0) for _ in range(9)]
    assert taken == [0.0] * FULL
    assert mine.reserve(0.0) is None
    assert theirs.reserve(0.0) is None
    # Their booking queues behind mine.
    assert mine.reserve(60.0) == pytest.approx(TICK, abs=CLOSE)
    assert theirs.reserve(60.0) == pytest.approx(2 * TICK, abs=CLOSE)


def test_a_429_block_holds_every_process_until_retry_after(
    link: RedisLink, other_link: RedisLink
) -> None:
    local = LeakyBucket(FULL, clock=FrozenClock())
    local.block(5.0)
    mine, theirs = shared(link), shared(other_link)
    mine.block(5.0)
    assert theirs.wait_needed() == pytest.approx(local.wait_needed(), abs=CLOSE)
    assert local.wait_needed() == pytest.approx(5.0)
    assert theirs.reserve(4.0) is None
    assert local.reserve(4.0) is None
    # After the block one token is there (X-Retry-After waits for one), then the refill.
    assert theirs.reserve(60.0) == pytest.approx(local.reserve(60.0), abs=CLOSE)
    assert mine.reserve(60.0) == pytest.approx(local.reserve(60.0), abs=CLOSE)
    assert local.wait_needed() == pytest.approx(5.0 + 2 * TICK)


def test_the_key_lives_only_until_the_bucket_would_be_full_again(link: RedisLink) -> None:
    bucket = shared(link)
    bucket.reserve(0.0)
    key = link.key("bucket", STORE)
    assert key.startswith(link.prefix)
    assert 1 <= link.client.ttl(key) <= 2  # one token refills in 1/3 s, plus a second
    bucket.block(30.0)
    assert 30 <= link.client.ttl(key) <= 38


def test_without_redis_the_bucket_is_this_process_s_share_and_starts_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "pw-never-shown-9271"
    nowhere = RedisLink.from_url(f"redis://:{password}@127.0.0.1:{free_port()}/0", "t:")
    bucket = SharedBucketRegistry(nowhere, members=lambda: 4).for_store(STORE)
    with caplog.at_level(logging.WARNING, logger="orderdesk_mcp.coordination.link"):
        assert bucket.reserve(0.0) is None  # starts empty: the shared one may be spent
        # 18/4 tokens at 3/4 per second: one token every 4/3 s.
        assert bucket.wait_needed() == pytest.approx(4 / 3, abs=CLOSE)
        assert bucket.reserve(60.0) == pytest.approx(4 / 3, abs=CLOSE)
        assert bucket.reserve(60.0) == pytest.approx(8 / 3, abs=CLOSE)
    state = nowhere.state()
    assert not state.up
    assert state.fallback_calls == 4
    assert state.error is not None
    assert "Connection" in state.error
    assert password not in (state.error or "")
    assert password not in caplog.text
    warnings = [r for r in caplog.records if "Redis does not answer" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not per call


def test_an_outage_falls_back_and_redis_is_used_again_when_it_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer()
    server.start()
    try:
        link = RedisLink.from_url(server.url, "t:", retry_seconds=0.0)
        bucket = SharedBucketRegistry(link, members=lambda: 2).for_store(STORE)
        assert bucket.reserve(0.0) == 0.0
        assert link.healthy()
        server.stop()
        with caplog.at_level(logging.WARNING, logger="orderdesk_mcp.coordination.link"):
            assert bucket.reserve(0.0) is None  # the local share, empty at first
            assert not link.healthy()
            assert bucket.wait_needed() == pytest.approx(2 / 3, abs=CLOSE)  # 1.5/s
            server.start()
            # The shared bucket again. Redis lost its data (a full bucket), but it is first
            # lowered to what the local share had left: the fallback spent Order Desk's budget.
            assert bucket.reserve(60.0) is not None
            assert link.healthy()
        assert link.client.exists(link.key("bucket", STORE)) == 1
        tokens = link.client.hget(link.key("bucket", STORE), "t")
        assert isinstance(tokens, bytes)
        assert float(tokens) < FULL - 1
        messages = [r.getMessage() for r in caplog.records]
        assert sum("does not answer" in m for m in messages) == 1
        assert sum("answers again" in m for m in messages) == 1
        assert server.password not in caplog.text
        link.close()
    finally:
        server.close()


def test_a_new_outage_starts_a_new_empty_fallback() -> None:
    nowhere = RedisLink.from_url(f"redis://127.0.0.1:{free_port()}/0", "t:", retry_seconds=0.0)
    bucket = SharedBucketRegistry(nowhere, members=lambda: 1).for_store(STORE)
    assert bucket.reserve(0.0) is None  # the first outage
    first = bucket.fallback()
    assert bucket.fallback() is first
    nowhere.succeeded()  # Redis was back for a while
    assert bucket.reserve(0.0) is None  # and is gone again: a second outage
    assert nowhere.outages == 2
    assert bucket.fallback() is not first


def test_a_429_seen_by_one_process_makes_the_others_wait(
    tmp_path: Path, sandbox: RunningSandbox, link: RedisLink, other_link: RedisLink
) -> None:
    """The client's 429 handling blocks the shared bucket: while process A waits out
    X-Retry-After, process B's bucket already says to wait as long."""
    theirs = SharedBucketRegistry(other_link).for_store(SANDBOX_DEMO_STORE)
    seen_by_them: list[float] = []

    def sleep(seconds: float) -> None:
        seen_by_them.append(theirs.wait_needed())
        time.sleep(seconds)

    machinery = UpstreamMachinery(
        tmp_path / "cache.sqlite",
        buckets=SharedBucketRegistry(link),
        coordination=link,
        sleep=sleep,
    )
    client = OrderDeskClient(
        SANDBOX_DEMO_STORE, SANDBOX_KEYS[SANDBOX_DEMO_STORE], sandbox.base_url, machinery
    )
    order_id = next(iter(sandbox.store(SANDBOX_DEMO_STORE).orders))
    sandbox.set_faults(SANDBOX_DEMO_STORE, force_429=1)
    try:
        assert client.get_order(order_id, fresh=True)["order"]["id"] is not None
    finally:
        machinery.close()
    assert len(seen_by_them) == 1  # one 429 waited out (its X-Retry-After: 1 s)
    assert seen_by_them[0] == pytest.approx(1.0, abs=CLOSE)
    assert sandbox.stats(SANDBOX_DEMO_STORE)["rejected_429"] == 1
