"""Read-your-writes across processes and hosts: several UpstreamMachinery objects (each one
process's), on separate or shared SQLite cache files, sharing cache versions through a real
redis-server; the real sandbox over HTTP behind them."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orderdesk_mcp.orderdesk import (
    AuthError,
    CacheTTLs,
    OrderDeskClient,
    RetryPolicy,
    UpstreamMachinery,
)
from orderdesk_mcp.orderdesk.cache import cache_key
from orderdesk_mcp.orderdesk.generations import RedisCacheGenerations, redis_client
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault, generate_master_key
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_KEYS
from tests.real_servers import RedisServer

DEMO = SANDBOX_DEMO_STORE
LONG_TTLS = CacheTTLs(store=300, orders=300, inventory=300)
TOKEN = re.compile(r"[0-9a-f]{12}")


class Group:
    """Machineries ("processes") built on demand; all closed at the end."""

    def __init__(self, tmp: Path, redis_url: str, prefix: str, sandbox: RunningSandbox) -> None:
        self.tmp = tmp
        self.redis_url = redis_url
        self.prefix = prefix
        self.sandbox = sandbox
        self.salt = Vault(generate_master_key()).cache_tag_salt()
        self.built: list[UpstreamMachinery] = []

    def machinery(
        self, cache_file: str, *, salt: bytes | None = None, client: redis.Redis | None = None
    ) -> UpstreamMachinery:
        client = client or redis_client(self.redis_url)
        machinery = UpstreamMachinery(
            self.tmp / cache_file,
            ttls=LONG_TTLS,
            memory_seconds=60,  # far longer than the test: only versions can make it stale
            retry=RetryPolicy(max_retries=0, backoff_base=0.01),
            generations=RedisCacheGenerations(
                client, self.prefix, retry_seconds=0.05, owns_client=True
            ),
            tag_salt=self.salt if salt is None else salt,
        )
        self.built.append(machinery)
        return machinery

    def client(self, machinery: UpstreamMachinery) -> OrderDeskClient:
        return OrderDeskClient(DEMO, SANDBOX_KEYS[DEMO], self.sandbox.base_url, machinery)

    def served(self) -> int:
        return int(self.sandbox.stats(DEMO)["served"])

    def close(self) -> None:
        for machinery in self.built:
            machinery.close()


@pytest.fixture
def group(
    tmp_path: Path, redis_server: RedisServer, redis_prefix: str, sandbox: RunningSandbox
) -> Iterator[Group]:
    built = Group(tmp_path, redis_server.url, redis_prefix, sandbox)
    yield built
    built.close()


def first_order_id(client: OrderDeskClient) -> str:
    return str(client.list_orders(limit=1)["orders"][0]["id"])


def tracking_numbers(client: OrderDeskClient, order_id: str) -> list[str]:
    return [s["tracking_number"] for s in client.list_shipments(order_id)["shipments"]]


def ship(client: OrderDeskClient, order_id: str, tracking: str) -> None:
    client.add_shipment(order_id, {"tracking_number": tracking, "carrier_code": "UPS"})


def wait_until(condition: Any, seconds: float = 15.0) -> None:
    """Wait (bounded) for something the code does in the background."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


# --- two hosts: separate cache files, one Redis --------------------------------------------


def test_a_write_on_one_host_makes_the_other_hosts_caches_stale_before_it_returns(
    group: Group,
) -> None:
    host_a = group.client(group.machinery("a.sqlite"))
    host_b = group.client(group.machinery("b.sqlite"))
    order_id = first_order_id(host_a)
    for round_ in range(15):
        before = tracking_numbers(host_b, order_id)
        served = group.served()
        assert tracking_numbers(host_b, order_id) == before  # from B's cache
        assert group.served() == served
        ship(host_a, order_id, f"AB{round_:04d}")
        assert tracking_numbers(host_b, order_id) == [*before, f"AB{round_:04d}"]


def test_orders_of_a_listed_page_are_cached_under_the_version_and_go_stale_with_it(
    group: Group,
) -> None:
    host_a = group.client(group.machinery("a.sqlite"))
    host_b = group.client(group.machinery("b.sqlite"))
    listed = host_b.list_orders(limit=5)["orders"]
    order_id = str(listed[0]["id"])
    served = group.served()
    assert host_b.get_order(order_id)["order"] == listed[0]  # filled by the page
    assert group.served() == served
    host_a.put_order(order_id, {**listed[0], "email": "changed@example.com"})
    assert host_b.get_order(order_id)["order"]["email"] == "changed@example.com"


def test_a_client_that_answers_bytes_shares_the_same_versions(group: Group) -> None:
    """A redis.Redis without decode_responses (as a shared link may be) fits as well."""
    raw = redis.Redis.from_url(group.redis_url, socket_timeout=0.5)
    host_a = group.client(group.machinery("a.sqlite", client=raw))
    host_b = group.client(group.machinery("b.sqlite"))
    order_id = first_order_id(host_b)
    before = tracking_numbers(host_b, order_id)
    assert tracking_numbers(host_a, order_id) == before
    ship(host_a, order_id, "BYTES")
    assert tracking_numbers(host_b, order_id) == [*before, "BYTES"]
    ship(host_b, order_id, "TEXT")
    assert tracking_numbers(host_a, order_id) == [*before, "BYTES", "TEXT"]


def test_a_reply_fetched_before_a_write_elsewhere_is_never_served_after_it(
    group: Group, sandbox: RunningSandbox
) -> None:
    # Two processes on one host (one file) and a third on another host.
    process_a = group.client(group.machinery("host1.sqlite"))
    process_b = group.client(group.machinery("host1.sqlite"))
    host_2 = group.client(group.machinery("host2.sqlite"))
    order_id = first_order_id(process_a)
    before = tracking_numbers(process_a, order_id)
    sandbox.set_faults(DEMO, latency_ms=400)
    try:
        # B's read reaches Order Desk before A's write does and is cached after it returned.
        slow_reads = [
            threading.Thread(target=tracking_numbers, args=(reader, order_id))
            for reader in (process_b, host_2)
        ]
        for thread in slow_reads:
            thread.start()
        time.sleep(0.15)
        ship(process_a, order_id, "INFLIGHT")
        for thread in slow_reads:
            thread.join(timeout=30)
    finally:
        sandbox.set_faults(DEMO)
    for reader in (process_a, process_b, host_2):
        assert tracking_numbers(reader, order_id) == [*before, "INFLIGHT"]


# --- one host: processes share the SQLite file and its entries ------------------------------


def test_processes_holding_one_master_key_share_cached_replies(group: Group) -> None:
    first = group.client(group.machinery("shared.sqlite"))
    second = group.client(group.machinery("shared.sqlite"))
    stranger = group.client(group.machinery("shared.sqlite", salt=b"\x01" * 32))
    order_id = first_order_id(first)
    first.get_order(order_id)
    served = group.served()
    second.get_order(order_id)  # read from the file the first one filled
    assert group.served() == served
    stranger.get_order(order_id)  # another master key: other tags, no shared entries
    assert group.served() == served + 1


def test_a_wrong_key_is_never_served_entries_another_process_cached(group: Group) -> None:
    owner = group.client(group.machinery("shared.sqlite"))
    guesser_machinery = group.machinery("shared.sqlite")
    guesser = OrderDeskClient(
        DEMO, "sk_guessed_wrong_key", group.sandbox.base_url, guesser_machinery
    )
    order_id = first_order_id(owner)
    owner.get_order(order_id)
    with pytest.raises(AuthError):  # Order Desk was asked, and refused
        guesser.get_order(order_id)


def test_the_tag_salt_comes_from_the_master_key_alone() -> None:
    key = generate_master_key()
    assert Vault(key).cache_tag_salt() == Vault(bytes(key)).cache_tag_salt()
    assert Vault(key).cache_tag_salt() != Vault(generate_master_key()).cache_tag_salt()
    # Unlike every key the vault derives for sealing.
    assert Vault(key).cache_tag_salt() not in {Vault(key).tenant_key(b"\0" * 16)}


# --- what Redis holds ---------------------------------------------------------------------


def test_redis_holds_tokens_only_never_replies(group: Group, redis_server: RedisServer) -> None:
    client = group.client(group.machinery("a.sqlite"))
    order_id = first_order_id(client)
    client.get_order(order_id)
    ship(client, order_id, "TOKENS-ONLY")
    client.get_order(order_id)
    spy = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = sorted(spy.scan_iter(match=f"{group.prefix}*"))
        assert keys == [f"{group.prefix}cache:epoch", f"{group.prefix}cache:gen:{DEMO}"]
        assert all(TOKEN.fullmatch(str(spy.get(key))) for key in keys)
    finally:
        spy.close()


def test_versions_lost_by_redis_are_never_handed_out_again(
    group: Group, redis_server: RedisServer
) -> None:
    host_a = group.client(group.machinery("a.sqlite"))
    order_id = first_order_id(host_a)
    host_a.get_order(order_id)
    spy = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        spy.delete(f"{group.prefix}cache:epoch", f"{group.prefix}cache:gen:{DEMO}")  # lost
    finally:
        spy.close()
    served = group.served()
    host_a.get_order(order_id)  # new tokens: what was cached before cannot be found
    assert group.served() == served + 1


# --- Redis down: correctness over speed --------------------------------------------------------


def test_while_redis_is_down_reads_skip_the_caches_and_stay_correct(
    group: Group, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    machinery_b = group.machinery("b.sqlite")
    versions_b = machinery_b.generations
    assert versions_b is not None
    machinery_a = group.machinery("a.sqlite")
    versions_a = machinery_a.generations
    assert versions_a is not None
    host_a = group.client(machinery_a)
    host_b = group.client(machinery_b)
    idle_c = group.client(group.machinery("c.sqlite"))
    order_id = first_order_id(host_a)
    before = tracking_numbers(host_b, order_id)
    tracking_numbers(idle_c, order_id)
    caplog.set_level(logging.WARNING, logger="orderdesk_mcp.orderdesk.generations")
    redis_server.stop()
    try:
        served = group.served()
        assert tracking_numbers(host_b, order_id) == before  # answered, from Order Desk
        assert group.served() == served + 1
        ship(host_a, order_id, "DURING-OUTAGE")  # its new version cannot be written
        for _ in range(3):
            assert tracking_numbers(host_b, order_id) == [*before, "DURING-OUTAGE"]
    finally:
        redis_server.start()
    # Each process that saw the outage renews the epoch when Redis answers it again.
    wait_until(lambda: versions_a.available and versions_b.available)
    after = [*before, "DURING-OUTAGE"]
    assert tracking_numbers(host_b, order_id) == after
    served = group.served()
    assert tracking_numbers(host_b, order_id) == after  # cached again
    assert group.served() == served
    assert tracking_numbers(idle_c, order_id) == after  # Redis lost everything it held
    lost = [r for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(lost) == 2  # once per process that saw it (A and B), not once per call
    assert all(redis_server.password not in r.getMessage() for r in caplog.records)


def test_entries_cached_before_an_outage_are_not_served_after_it(
    group: Group, redis_server: RedisServer
) -> None:
    """An outage that keeps Redis's data (a pause here; a partition or a restart with
    persistence alike): the version of a store written meanwhile was never replaced."""
    machinery_a = group.machinery("a.sqlite")
    versions_a = machinery_a.generations
    assert versions_a is not None
    host_a = group.client(machinery_a)
    idle_c = group.client(group.machinery("c.sqlite"))  # sees nothing of the outage
    order_id = first_order_id(host_a)
    before = tracking_numbers(idle_c, order_id)
    spy = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        spy.client_pause(2500, all=True)
        ship(host_a, order_id, "DURING-PAUSE")  # its new version times out
        assert not versions_a.available
        wait_until(lambda: versions_a.available)
    finally:
        spy.client_unpause()
        spy.close()
    # A renewed the epoch when Redis answered again: C's entry is unreachable.
    assert tracking_numbers(idle_c, order_id) == [*before, "DURING-PAUSE"]


# --- without Redis: as before ------------------------------------------------------------------


def test_without_redis_keys_and_versions_are_as_before(tmp_path: Path) -> None:
    with UpstreamMachinery(tmp_path / "cache.sqlite") as machinery:
        assert machinery.generations is None
        assert machinery.cache_version(DEMO) == ""
        url = "https://app.orderdesk.me/api/v2/orders/42"
        key = machinery.cache.key_for(DEMO, "k", url)
        assert key == cache_key(DEMO, url, machinery.cache.credential_tag(DEMO, "k"))
        assert key.count("|") == 2
