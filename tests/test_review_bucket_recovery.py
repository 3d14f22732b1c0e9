"""Review regression: the shared Order Desk bucket after a Redis outage.

During an outage each process spends its local share (3/s in total across the group), but
Redis's copy keeps refilling on its own clock (or expires, which reads as full). Taken as it
is on recovery, it would let the group send up to 18 calls at once into an Order Desk bucket
the fallbacks have been spending: a burst of upstream 429s after every outage under load.
"""

from __future__ import annotations

import pytest

from orderdesk_mcp.coordination.bucket import SharedBucketRegistry
from orderdesk_mcp.coordination.link import RedisLink
from tests.real_servers import RedisServer

STORE = "100001"
CLOSE = 0.05


def test_a_process_that_spent_its_fallback_share_does_not_find_a_full_bucket_after_recovery(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    link = RedisLink.from_url(redis_server.url, redis_prefix, retry_seconds=0.0)
    try:
        bucket = SharedBucketRegistry(link, members=lambda: 1).for_store(STORE)
        link.failed(ConnectionError("Redis stopped"))  # an outage as the breaker sees it
        fallback = bucket.fallback()  # what link.run answers from while Redis is down
        assert fallback.reserve(60.0) == pytest.approx(1 / 3, abs=CLOSE)  # a call it paid
        link.succeeded()  # Redis answers again; its key expired meanwhile (reads as full)
        # Not 18 tokens at once: the bucket restarts as the share left it, the call booked
        # on it included (-1 token: the next one is free in 2/3 s).
        assert bucket.reserve(0.0) is None
        assert bucket.wait_needed() == pytest.approx(2 / 3, abs=CLOSE)
        assert fallback is bucket.fallback()  # the outage's fallback is kept, not remade
        # Only once per outage: later calls queue on the shared bucket as it refills.
        assert bucket.reserve(60.0) == pytest.approx(2 / 3, abs=CLOSE)
        assert bucket.reserve(60.0) == pytest.approx(1.0, abs=CLOSE)
    finally:
        link.close()


def test_a_process_that_never_used_a_fallback_takes_the_shared_bucket_as_it_is(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    link = RedisLink.from_url(redis_server.url, redis_prefix, retry_seconds=0.0)
    try:
        bucket = SharedBucketRegistry(link, members=lambda: 1).for_store(STORE)
        assert bucket.reserve(0.0) == 0.0
    finally:
        link.close()
