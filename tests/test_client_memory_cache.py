"""The cached-read fast path: URLs built without ``requests``' prepare, and the in-memory
front cache before the SQLite cache (real sandbox, real SQLite files)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import example, given
from hypothesis import strategies as st
from requests_cache.models.response import CachedResponse

from orderdesk_mcp.orderdesk import AuthError, OrderDeskClient, UpstreamCall, UpstreamMachinery
from orderdesk_mcp.orderdesk.memory import MemoryCache
from orderdesk_mcp.orderdesk.urls import request_url
from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE

DEMO = SANDBOX_DEMO_STORE
EMPTY = SANDBOX_EMPTY_STORE

# --- URL building ---------------------------------------------------------------------------

BASE_URLS = st.from_regex(
    r"\Ahttps?://(?:[A-Za-z0-9.-]{1,20}|\[[0-9a-f:]{2,12}\])(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]{0,20})?\Z"
)
PATHS = st.sampled_from(
    ["/orders", "/orders/42", "/orders/7/order-items/9", "/inventory-items", "/store", "/test"]
)
PARAMS = st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=6)


def prepared(url: str, params: dict[str, str]) -> str | None:
    return requests.Request("GET", url, params=params).prepare().url


@given(PARAMS)
@example({"a b": "c&d=e+f/g", "": "", "é": "日本", "x": ""})
@example({"~._-": "%41%7e", "q": "a%zz?#[]"})
def test_the_url_is_the_one_requests_would_send(params: dict[str, str]) -> None:
    base = "http://127.0.0.1:8123/api/v2"
    assert request_url(base, "/orders", params) == prepared(base + "/orders", params)


@given(BASE_URLS, PATHS, PARAMS)
@example("http://EXAMPLE.com:0080/api/../v2", "/orders/1", {"k": "v"})
@example("https://app.orderdesk.me", "/store", {})
def test_any_accepted_base_url_gives_the_same_url_as_requests(
    base: str, path: str, params: dict[str, str]
) -> None:
    try:
        expected = prepared(base + path, params)
    except (requests.RequestException, UnicodeError, ValueError) as refused:
        # requests refuses it: the builder falls back to requests and refuses it the same way
        with pytest.raises(type(refused)):
            request_url(base, path, params)
        return
    assert request_url(base, path, params) == expected


def test_a_lone_surrogate_is_refused_as_requests_refuses_it() -> None:
    base = "http://127.0.0.1:8123/api/v2"
    with pytest.raises(UnicodeEncodeError):
        prepared(base + "/orders", {"search": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        request_url(base, "/orders", {"search": "\ud800"})


# --- the in-memory front cache: unit rules ------------------------------------------------------


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_entries_expire_after_the_bound_or_the_sqlite_lifetime_whichever_is_first() -> None:
    clock = Clock()
    memory = MemoryCache(2, clock=clock)
    memory.put("1|a?|t", b"{}", 200, lifetime=30)
    memory.put("1|b?|t", b"{}", 200, lifetime=0.5)
    memory.put("1|c?|t", b"{}", 200, lifetime=0)
    assert memory.get("1|c?|t") is None
    clock.advance(0.5)
    assert memory.get("1|a?|t") is not None
    assert memory.get("1|b?|t") is None
    clock.advance(1.5)
    assert memory.get("1|a?|t") is None
    assert len(memory) == 0


def test_zero_seconds_keeps_nothing() -> None:
    memory = MemoryCache(0)
    memory.put("1|a?|t", b"{}", 200, lifetime=30)
    assert not memory.enabled
    assert memory.get("1|a?|t") is None
    assert len(memory) == 0


def test_the_lru_holds_its_entry_and_byte_bounds() -> None:
    memory = MemoryCache(60, max_entries=3, max_bytes=100, max_entry_bytes=40)
    for name in "abc":
        memory.put(f"1|{name}?|t", b"x" * 10, 200, lifetime=30)
    assert memory.get("1|a?|t") is not None  # a is now the most recent: b goes first
    memory.put("1|d?|t", b"x" * 10, 200, lifetime=30)
    assert len(memory) == 3
    assert memory.get("1|b?|t") is None
    assert {k for k in "acd" if memory.get(f"1|{k}?|t")} == set("acd")

    memory.put("1|big?|t", b"x" * 41, 200, lifetime=30)  # over max_entry_bytes: skipped
    assert memory.get("1|big?|t") is None
    for name in "efgh":
        memory.put(f"1|{name}?|t", b"x" * 35, 200, lifetime=30)
    assert memory.total_bytes <= 100
    assert len(memory) == 2  # 3 x 35 bytes would be 105
    assert memory.get("1|h?|t") is not None
    assert memory.get("1|g?|t") is not None
    memory.put("1|h?|t", b"y" * 5, 200, lifetime=30)  # replacing an entry frees its bytes
    assert memory.total_bytes == 40


def test_drop_prefixes_forgets_only_what_starts_with_them() -> None:
    memory = MemoryCache(60)
    for key in ("1|u/orders/5?x|t", "1|u/orders/5/shipments?x|t", "1|u/orders/50?x|t", "2|u?|t"):
        memory.put(key, b"{}", 200, lifetime=30)
    assert memory.drop_prefixes(("1|u/orders/5?", "1|u/orders/5/", "")) == 2
    assert memory.get("1|u/orders/50?x|t") is not None
    assert memory.get("2|u?|t") is not None


def test_many_threads_keep_the_lru_consistent() -> None:
    memory = MemoryCache(60, max_entries=50, max_bytes=2_000, max_entry_bytes=200)

    def worker(seed: int) -> None:
        for i in range(300):
            key = f"{seed % 3}|k{(seed * 7 + i) % 90}?|t"
            memory.put(key, b"z" * ((i * 13) % 120), 200, lifetime=30)
            memory.get(key)
            if i % 50 == 0:
                memory.drop_prefixes((f"{seed % 3}|k1",))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(memory) <= 50
    assert memory.total_bytes <= 2_000
    held = [memory.get(f"{s}|k{n}?|t") for s in range(3) for n in range(90)]
    assert memory.total_bytes == sum(len(entry.body) for entry in held if entry is not None)


# --- the front cache in the client, against the sandbox ------------------------------------------


class Calls(list[UpstreamCall]):
    def __call__(self, call: UpstreamCall) -> None:
        self.append(call)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def calls() -> Calls:
    return Calls()


def new_machinery(
    path: Path, clock: Clock, memory_seconds: float = 2, observer: Calls | None = None
) -> UpstreamMachinery:
    # A big bucket: the hand-moved clock never refills it.
    return UpstreamMachinery(
        path,
        connect_timeout=2.0,
        read_timeout=5.0,
        bucket_capacity=1_000,
        clock=clock,
        observer=observer,
        memory_seconds=memory_seconds,
    )


@pytest.fixture
def machinery(tmp_path: Path, clock: Clock, calls: Calls) -> Iterator[UpstreamMachinery]:
    with new_machinery(tmp_path / "http-cache.sqlite", clock, observer=calls) as shared:
        yield shared


@pytest.fixture
def demo(
    sandbox: RunningSandbox, sandbox_keys: dict[str, str], machinery: UpstreamMachinery
) -> OrderDeskClient:
    return OrderDeskClient(DEMO, sandbox_keys[DEMO], sandbox.base_url, machinery)


class SqliteReads:
    """Counts reads of the SQLite cache (wraps ResponseCache.fresh_entry)."""

    def __init__(self, machinery: UpstreamMachinery, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = machinery.cache.fresh_entry

        def counting(key: str) -> CachedResponse | None:
            self.count += 1
            return original(key)

        monkeypatch.setattr(machinery.cache, "fresh_entry", counting)


def served(sandbox: RunningSandbox, endpoint: str = "GET /orders/{id}", store: str = DEMO) -> int:
    count: int = sandbox.stats(store)["by_endpoint"].get(endpoint, 0)
    return count


def an_order_id(client: OrderDeskClient) -> str:
    # A history page caches no orders, so the order's first read still reaches Order Desk.
    order_id: str = client.list_orders(limit=1, get_order_history=True, offset=3)["orders"][0]["id"]
    return order_id


def trackings(envelope: dict[str, Any]) -> list[str]:
    return [entry["tracking_number"] for entry in envelope["order"].get("order_shipments", [])]


def ship(client: OrderDeskClient, order_id: str, tracking: str) -> None:
    client.add_shipment(order_id, {"tracking_number": tracking, "carrier_code": "USPS"})


def test_a_second_read_is_answered_from_memory_without_reading_sqlite(
    demo: OrderDeskClient,
    machinery: UpstreamMachinery,
    sandbox: RunningSandbox,
    calls: Calls,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order_id = an_order_id(demo)
    reads = SqliteReads(machinery, monkeypatch)
    first = demo.get_order(order_id)
    assert (reads.count, served(sandbox)) == (1, 1)
    second = demo.get_order(order_id)
    assert second == first
    assert (reads.count, served(sandbox)) == (1, 1)
    assert (calls[-1].cache_hit, calls[-1].memory_hit) == (True, True)

    # Past the memory bound, within the SQLite lifetime: SQLite answers and refills memory.
    clock.advance(2.5)
    assert demo.get_order(order_id) == first
    assert (reads.count, served(sandbox)) == (2, 1)
    assert (calls[-1].cache_hit, calls[-1].memory_hit) == (True, False)
    # The refill is bounded by the memory seconds again, not by what SQLite has left.
    machinery.cache.delete_prefixes((f"{DEMO}|",))
    assert demo.get_order(order_id) == first
    assert (reads.count, served(sandbox)) == (2, 1)
    clock.advance(2.0)
    assert demo.get_order(order_id)["order"] == first["order"]
    assert (reads.count, served(sandbox)) == (3, 2)  # both caches missed: upstream


def test_each_hit_gets_its_own_decoded_copy(demo: OrderDeskClient) -> None:
    order_id = an_order_id(demo)
    mine = demo.get_order(order_id)
    mine["order"]["email"] = "mutated@example.com"
    mine["order"]["shipping"]["city"] = "Nowhere"
    again = demo.get_order(order_id)
    assert again["order"]["email"] != "mutated@example.com"
    again["order"]["shipping"]["city"] = "Elsewhere"
    assert demo.get_order(order_id)["order"]["shipping"]["city"] not in ("Nowhere", "Elsewhere")


def test_a_write_through_this_machinery_is_read_at_once(
    demo: OrderDeskClient, sandbox: RunningSandbox, calls: Calls
) -> None:
    order_id = an_order_id(demo)
    demo.get_order(order_id)
    demo.get_order(order_id)
    demo.list_orders(limit=5)
    assert served(sandbox) == 1
    ship(demo, order_id, "written here")
    assert "written here" in trackings(demo.get_order(order_id))
    assert served(sandbox) == 2
    assert calls[-1].cache_hit is False
    demo.list_orders(limit=5)
    assert calls[-1].cache_hit is False  # the order lists were dropped too


@pytest.mark.parametrize("memory_seconds", [2, 0])
def test_another_process_writing_is_seen_after_the_bound_or_at_once_when_off(
    tmp_path: Path,
    sandbox: RunningSandbox,
    sandbox_keys: dict[str, str],
    clock: Clock,
    memory_seconds: int,
) -> None:
    shared_file = tmp_path / "http-cache.sqlite"
    key = sandbox_keys[DEMO]
    with (
        new_machinery(shared_file, clock, memory_seconds) as ours,
        new_machinery(shared_file, Clock()) as theirs,
    ):
        reader = OrderDeskClient(DEMO, key, sandbox.base_url, ours)
        writer = OrderDeskClient(DEMO, key, sandbox.base_url, theirs)
        order_id = an_order_id(reader)
        assert "from elsewhere" not in trackings(reader.get_order(order_id))
        ship(writer, order_id, "from elsewhere")  # also deletes our SQLite entry
        seen_now = "from elsewhere" in trackings(reader.get_order(order_id))
        assert seen_now is (memory_seconds == 0)
        clock.advance(1.9)
        assert ("from elsewhere" in trackings(reader.get_order(order_id))) is seen_now
        clock.advance(0.1)
        assert "from elsewhere" in trackings(reader.get_order(order_id))


def test_stores_and_api_keys_never_share_a_memory_entry(
    demo: OrderDeskClient,
    machinery: UpstreamMachinery,
    sandbox: RunningSandbox,
    sandbox_keys: dict[str, str],
) -> None:
    empty = OrderDeskClient(EMPTY, sandbox_keys[EMPTY], sandbox.base_url, machinery)
    for _ in range(2):
        assert demo.get_store()["store"]["id"] == DEMO
        assert empty.get_store()["store"]["id"] == EMPTY
    assert served(sandbox, "GET /store", DEMO) == served(sandbox, "GET /store", EMPTY) == 1

    order_id = an_order_id(demo)
    demo.get_order(order_id)
    url = f"{sandbox.base_url}/orders/{order_id}"
    owner_key = machinery.cache.key_for(DEMO, sandbox_keys[DEMO], url)
    guessed_key = machinery.cache.key_for(DEMO, "sk_guessed_wrong_key", url)
    assert machinery.remembered(owner_key) is not None
    assert machinery.remembered(guessed_key) is None
    guesser = OrderDeskClient(DEMO, "sk_guessed_wrong_key", sandbox.base_url, machinery)
    with pytest.raises(AuthError):
        guesser.get_order(order_id)
    assert machinery.remembered(guessed_key) is None  # errors are never remembered


def test_fresh_reads_bypass_memory_and_refresh_it(
    tmp_path: Path,
    sandbox: RunningSandbox,
    sandbox_keys: dict[str, str],
    clock: Clock,
    calls: Calls,
) -> None:
    shared_file = tmp_path / "http-cache.sqlite"
    key = sandbox_keys[DEMO]
    with (
        new_machinery(shared_file, clock, observer=calls) as ours,
        new_machinery(shared_file, Clock()) as theirs,
    ):
        reader = OrderDeskClient(DEMO, key, sandbox.base_url, ours)
        order_id = an_order_id(reader)
        reader.get_order(order_id)
        ship(OrderDeskClient(DEMO, key, sandbox.base_url, theirs), order_id, "late")
        assert "late" not in trackings(reader.get_order(order_id))  # memory, within the bound
        assert "late" in trackings(reader.get_order(order_id, fresh=True))
        assert calls[-1].cache_hit is False
        assert "late" in trackings(reader.get_order(order_id))
        assert (calls[-1].cache_hit, calls[-1].memory_hit) == (True, True)
        assert served(sandbox) == 2


def test_a_reply_read_before_a_write_never_enters_memory(
    demo: OrderDeskClient,
    machinery: UpstreamMachinery,
    sandbox: RunningSandbox,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order_id = an_order_id(demo)
    demo.get_order(order_id)
    clock.advance(2.5)  # memory expired, SQLite still fresh
    original = machinery.cache.fresh_entry
    wrote: list[bool] = []

    def read_then_someone_writes(key: str) -> CachedResponse | None:
        entry = original(key)
        if not wrote:
            wrote.append(True)  # the write lands between the SQLite read and the memory fill
            ship(demo, order_id, "raced")
        return entry

    monkeypatch.setattr(machinery.cache, "fresh_entry", read_then_someone_writes)
    assert "raced" not in trackings(demo.get_order(order_id))  # the read began before the write
    assert "raced" in trackings(demo.get_order(order_id))
    assert served(sandbox) == 2


def test_a_generation_that_moved_refuses_the_fill(machinery: UpstreamMachinery) -> None:
    before = machinery.generation(DEMO)
    machinery.invalidate(DEMO, (f"{DEMO}|x",))
    machinery.remember(DEMO, before, f"{DEMO}|x?|t", b"{}", 200, 30)
    assert machinery.remembered(f"{DEMO}|x?|t") is None
    now = machinery.generation(DEMO)
    machinery.remember(DEMO, now, f"{DEMO}|x?|t", b"{}", 200, 30)
    assert machinery.remembered(f"{DEMO}|x?|t") is not None
    machinery.invalidate(DEMO, (f"{DEMO}|x",))
    assert machinery.remembered(f"{DEMO}|x?|t") is None


def test_a_read_overlapping_a_writes_delete_never_enters_memory(
    demo: OrderDeskClient,
    machinery: UpstreamMachinery,
    sandbox: RunningSandbox,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader that starts after the write began (so it sees the new generation) but reads
    SQLite before the write's delete holds the old reply: it must not reach memory."""
    order_id = an_order_id(demo)
    demo.get_order(order_id)
    clock.advance(2.5)  # memory expired, SQLite still fresh
    read_done, write_done = threading.Event(), threading.Event()
    outcome: list[list[str]] = []
    read_sqlite = machinery.cache.fresh_entry
    delete = machinery.cache.delete_prefixes

    def reader() -> None:
        outcome.append(trackings(demo.get_order(order_id)))

    reader_thread = threading.Thread(target=reader)

    def slow_sqlite_read(key: str) -> CachedResponse | None:
        entry = read_sqlite(key)
        if threading.current_thread() is reader_thread:
            read_done.set()
            write_done.wait(timeout=10)  # fill memory only once the write has returned
        return entry

    def delete_after_the_read(prefixes: Any) -> int:
        if not reader_thread.is_alive() and not read_done.is_set():
            reader_thread.start()
            read_done.wait(timeout=10)
        return delete(prefixes)

    monkeypatch.setattr(machinery.cache, "fresh_entry", slow_sqlite_read)
    monkeypatch.setattr(machinery.cache, "delete_prefixes", delete_after_the_read)
    ship(demo, order_id, "overlap")
    write_done.set()
    reader_thread.join(timeout=10)
    assert not reader_thread.is_alive()
    assert len(outcome) == 1
    assert "overlap" not in outcome[0]  # it read the old reply: fine while the write ran
    assert "overlap" in trackings(demo.get_order(order_id))
    assert served(sandbox) == 2


def test_a_reply_saved_after_a_write_is_not_kept_in_memory_by_a_later_reader(
    demo: OrderDeskClient,
    machinery: UpstreamMachinery,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reader R fetches the old order; a write completes before requests-cache saves R's reply;
    R2, started after the write, finds that reply in SQLite. Later reads must not get it."""
    order_id = an_order_id(demo)
    backend = machinery.cache.backend
    original_save = backend.save_response
    seen_by_r2: list[list[str]] = []
    intercepted: list[bool] = []

    def save_late(response: Any, cache_key: str | None = None, expires: Any = None) -> None:
        if intercepted or not str(response.url).endswith(f"/orders/{order_id}"):
            original_save(response, cache_key, expires)
            return
        intercepted.append(True)
        ship(demo, order_id, "written")  # the write completes while R still holds its reply
        original_save(response, cache_key, expires)
        later = threading.Thread(
            target=lambda: seen_by_r2.append(trackings(demo.get_order(order_id)))
        )
        later.start()
        later.join(10)

    monkeypatch.setattr(backend, "save_response", save_late)
    assert "written" not in trackings(demo.get_order(order_id))  # R: began before the write
    assert seen_by_r2, "the second reader did not run"
    assert "written" in trackings(demo.get_order(order_id))  # long after the write returned
