"""Micro-benchmark of issue 4: cached `get_order` through waitress, and the size of tools/list.

    .venv/bin/python scripts/bench_mcp.py [--requests 2000] [--json]

Starts (all on loopback, all stopped at the end) the sandbox with the demo store, our server
(`orderdesk-mcp serve`, production settings, temp data dir with one tenant) and a bare waitress
app that answers a fixed JSON body. One client sends sequential requests on a keep-alive
connection. The server-side overhead of a cached `get_order` (authentication, session, rate
limiter, JSON-RPC, schema checks, cache lookup, audit write, JSON encoding) is its median minus
the bare waitress median: what waitress, the loopback round trip and this client cost is
subtracted. Tokens are approximated as bytes / 4.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout as `python scripts/bench_mcp.py`

from scripts.bench.loadgen import McpConnection, percentile  # noqa: E402
from scripts.bench.processes import (  # noqa: E402
    start_hello_server,
    start_our_server,
    start_sandbox,
)
from scripts.bench.stack import SERVER_ENV, StoreRef, add_tenants, init_data_dir  # noqa: E402

STORE_ID = "300001"
OVERHEAD_BUDGET_MS = 5.0
TOOLS_LIST_BUDGET_BYTES = 60 * 1024


def time_requests(send: Any, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        send()
        timings.append(time.perf_counter() - started)
    return sorted(timings)


def tools_list_bytes(connection: McpConnection) -> tuple[int, int]:
    """(bytes of every tools/list reply body, page count), following nextCursor."""
    total, pages, cursor = 0, 0, None
    while True:
        params = {"cursor": cursor} if cursor else {}
        message = {"jsonrpc": "2.0", "id": 1000 + pages, "method": "tools/list", "params": params}
        status, _headers, payload = connection.post(message)
        if status != 200:
            raise RuntimeError(f"tools/list: HTTP {status}")
        total += len(payload)
        pages += 1
        cursor = json.loads(payload)["result"].get("nextCursor")
        if not cursor:
            return total, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as temp:
        work = Path(temp)
        data_dir = work / "data"
        api_key = f"sk_bench_{secrets.token_hex(8)}"
        stopping = []
        try:
            sandbox, base_url, _admin = start_sandbox([(STORE_ID, api_key, "demo")], work)
            stopping.append(sandbox)
            init_data_dir(data_dir)
            (tenant,) = add_tenants(
                data_dir, [("bench", [StoreRef(STORE_ID, api_key, "demo")])], base_url
            )
            server, url, _startup = start_our_server(data_dir, work, SERVER_ENV)
            stopping.append(server)
            hello, hello_url = start_hello_server(work)
            stopping.append(hello)

            ours = McpConnection(url, tenant.token)
            ours.initialize()
            listing = ours.call_tool("list_orders", {"limit": 1})
            order_id = str(listing["structuredContent"]["orders"][0]["id"])
            ours.call_tool("get_order", {"order_id": order_id})  # fills the cache
            bare = McpConnection(hello_url)
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            for _ in range(200):  # warm both paths
                ours.call_tool("get_order", {"order_id": order_id})
                bare.post(ping)
            cached = time_requests(
                lambda: ours.call_tool("get_order", {"order_id": order_id}), args.requests
            )
            floor = time_requests(lambda: bare.post(ping), args.requests)
            list_bytes, pages = tools_list_bytes(ours)
            ours.close()
            bare.close()
        finally:
            for process in reversed(stopping):
                process.stop()
    median_ms = percentile(cached, 0.5) * 1000
    floor_ms = percentile(floor, 0.5) * 1000
    overhead_ms = median_ms - floor_ms
    report = {
        "requests": args.requests,
        "get_order_cached_median_ms": round(median_ms, 3),
        "get_order_cached_p99_ms": round(percentile(cached, 0.99) * 1000, 3),
        "bare_waitress_median_ms": round(floor_ms, 3),
        "bare_waitress_p99_ms": round(percentile(floor, 0.99) * 1000, 3),
        "server_side_overhead_median_ms": round(overhead_ms, 3),
        "overhead_budget_ms": OVERHEAD_BUDGET_MS,
        "overhead_budget_met": overhead_ms < OVERHEAD_BUDGET_MS,
        "tools_list_bytes": list_bytes,
        "tools_list_pages": pages,
        "tools_list_tokens_approx": list_bytes // 4,
        "tools_list_budget_bytes": TOOLS_LIST_BUDGET_BYTES,
        "tools_list_budget_met": list_bytes < TOOLS_LIST_BUDGET_BYTES,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    width = max(len(key) for key in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
