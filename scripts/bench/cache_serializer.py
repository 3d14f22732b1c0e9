"""Reply-cache cost of JSON rows against the pickled rows of earlier versions (issue 10 item 14).

    .venv/bin/python -m scripts.bench.cache_serializer [--ops 2000] [--rounds 7]

For each serializer, a store (``ResponseCache.store_reply``: serialize + SQLite INSERT in WAL
mode) and a hit (``ResponseCache.fresh_entry``: SQLite SELECT + deserialize), each on its own
file in one temporary directory, on two replies: one order (``GET /orders/{id}``) and a page
of 50 orders (``GET /orders``). Rounds alternate the serializers so the machine's noise falls
on both alike; the figure is the median over rounds of the mean per operation. Also the
serializer alone (dumps/loads, no SQLite) and the stored row's size. In-process, no server.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from requests_cache.backends.sqlite import SQLiteCache
from requests_cache.serializers import SerializerPipeline, json_serializer, pickle_serializer

from orderdesk_mcp.orderdesk.cache import API_KEY_HEADER, STORE_ID_HEADER, ResponseCache

BASE = "https://app.orderdesk.me/api/v2"
HEADERS = {STORE_ID_HEADER: "100001", API_KEY_HEADER: f"sk_bench_{secrets.token_hex(6)}"}
SERIALIZERS: dict[str, SerializerPipeline] = {"pickle": pickle_serializer, "json": json_serializer}


def order(order_id: int) -> dict[str, object]:
    """An order shaped like Order Desk's (addresses, a few items, checkout data)."""
    address = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "",
        "address1": "12 Example Street",
        "address2": "Flat 3",
        "city": "London",
        "state": "",
        "postal_code": "N1 9GU",
        "country": "GB",
        "phone": "+44 20 7946 0000",
    }
    return {
        "id": str(order_id),
        "email": f"customer{order_id}@example.com",
        "shipping_method": "Standard",
        "quantity_total": 3,
        "weight_total": 1.2,
        "product_total": 59.97,
        "shipping_total": 4.99,
        "order_total": 64.96,
        "source_name": "Shopify",
        "date_added": "2026-05-01 10:11:12",
        "date_updated": "2026-05-02 09:08:07",
        "folder_id": 1,
        "shipping": address,
        "customer": address,
        "checkout_data": {"Gift Message": "Happy birthday"},
        "order_metadata": {"priority": "normal"},
        "order_items": [
            {
                "id": str(order_id * 10 + n),
                "name": f"T-shirt size {size}",
                "price": 19.99,
                "quantity": 1,
                "weight": 0.4,
                "code": f"TEE-{size}",
                "variation_list": {"Size": size, "Colour": "Blue"},
                "metadata": {},
            }
            for n, size in enumerate(("S", "M", "L"))
        ],
    }


def replies() -> dict[str, tuple[str, bytes]]:
    single = json.dumps({"status": "success", "order": order(42)}).encode()
    page = {"status": "success", "records_returned": 50, "total_records": 50}
    page["orders"] = [order(1000 + n) for n in range(50)]
    return {
        "one order": (f"{BASE}/orders/42", single),
        "50-order page": (f"{BASE}/orders?limit=50", json.dumps(page).encode()),
    }


def open_cache(path: Path, serializer: SerializerPipeline) -> ResponseCache:
    cache = ResponseCache(path)
    if serializer is not cache.backend.responses.serializer:
        # Earlier versions' backend: the same SQLiteCache with requests-cache's default.
        cache.backend.close()
        cache.backend = SQLiteCache(str(path), serializer=serializer, wal=True, busy_timeout=10_000)
    return cache


def per_op_us(work: Callable[[int], object], ops: int) -> float:
    started = time.perf_counter_ns()
    for n in range(ops):
        work(n)
    return (time.perf_counter_ns() - started) / ops / 1000


def measure_round(
    cache: ResponseCache, serializer: SerializerPipeline, keys: list[str], url: str, body: bytes
) -> dict[str, float]:
    """One round on one cache: ``len(keys)`` stores, as many hits, dumps and loads."""
    sample = cache.fresh_entry(keys[0])
    assert sample is not None
    row = serializer.dumps(sample)

    def store(n: int) -> None:
        cache.store_reply(keys[n], url, body, 300, HEADERS)

    def hit(n: int) -> None:
        assert cache.fresh_entry(keys[n]) is not None

    ops = len(keys)
    timings = {
        "store": per_op_us(store, ops),
        "hit": per_op_us(hit, ops),
        "dumps": per_op_us(lambda _n: serializer.dumps(sample), ops),
        "loads": per_op_us(lambda _n: serializer.loads(row), ops),
    }
    cache.delete_prefixes(["100001|"])
    cache.store_reply(keys[0], url, body, 300, HEADERS)  # the next round's sample
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=2000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ops = args.ops
    with tempfile.TemporaryDirectory() as temp:
        caches = {
            name: open_cache(Path(temp) / f"{name}.sqlite", s) for name, s in SERIALIZERS.items()
        }
        results: dict[tuple[str, str, str], list[float]] = {}
        sizes: dict[tuple[str, str], int] = {}
        for reply_name, (url, body) in replies().items():
            keys = [f"100001|{url}|{n}" for n in range(ops)]  # distinct rows: real INSERTs
            for name, cache in caches.items():
                cache.store_reply(keys[0], url, body, 300, HEADERS)
                entry = cache.fresh_entry(keys[0])
                assert entry is not None
                assert entry.content == body, name
                with cache.backend.responses.connection() as con:
                    (size,) = con.execute("SELECT LENGTH(value) FROM responses").fetchone()
                sizes[reply_name, name] = size
            for _ in range(args.rounds):
                for name, cache in caches.items():
                    timings = measure_round(cache, SERIALIZERS[name], keys, url, body)
                    for what, value in timings.items():
                        results.setdefault((reply_name, what, name), []).append(value)
            for cache in caches.values():
                cache.delete_prefixes(["100001|"])
        for cache in caches.values():
            cache.close()

    names = list(SERIALIZERS)
    print(f"{ops} operations x {args.rounds} rounds; median of the rounds' means, µs per op")
    print(f"| reply | operation | {' | '.join(names)} | json / pickle |")
    print(f"|---|---|{'---|' * len(names)}---|")
    for reply_name in replies():
        for what in ("store", "hit", "dumps", "loads"):
            medians = [statistics.median(results[reply_name, what, name]) for name in names]
            cells = " | ".join(f"{m:.1f}" for m in medians)
            print(f"| {reply_name} | {what} | {cells} | {medians[1] / medians[0]:.2f} × |")
        cells = " | ".join(f"{sizes[reply_name, name]:,} B" for name in names)
        ratio = sizes[reply_name, names[1]] / sizes[reply_name, names[0]]
        print(f"| {reply_name} | row size | {cells} | {ratio:.2f} × |")


if __name__ == "__main__":
    main()
