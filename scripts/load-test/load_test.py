"""Issue 6's load test: a bounded mix of reads and writes from 50 clients for 5 minutes.

    .venv/bin/python scripts/load-test/load_test.py [--minutes 5] [--clients 50]

Everything runs on loopback and stops by itself: the sandbox (one demo store per tenant
store), our server (`orderdesk-mcp serve`, production settings, temporary data dir) and 50
client threads, each with its own keep-alive connection and MCP session, spread over 10
tenants with two stores each. Each client waits 100-300 ms between calls (a person-paced
agent, not a flood) and picks:

- reads, 80 %: get_order 50 %, list_orders 20 %, list_order_items 5 %, get_store 5 %;
- writes, 20 %: delete_order with dry_run 15 % (a write tool through the write path and
  audit, without a real write) and add_order_note 5 % (a real POST to the sandbox).

Why this mix: the sandbox enforces Order Desk's real limit of 20 + 3 requests/s per store, and
every real write clears the store's cache, so a write-heavy mix would measure the bucket, not
our server. With 20 stores and 5 % real writes the upstream stays within its budget and the
run mostly measures our server on cached reads.

Reported: HTTP 5xx count, other HTTP failures, tool errors, busy answers (calls over the
server's bounds on requests to Order Desk in flight, told to retry; audited like any call),
lost audit events (tool calls answered 200 minus AuditEvent rows counted afterwards), RSS at
minute 1 and at the end, and latency percentiles overall and per tool. Writes the JSON to
docs/bench/load-test.json.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # runnable from a checkout

from orderdesk_mcp.config import load_settings  # noqa: E402
from orderdesk_mcp.db.connection import open_database  # noqa: E402
from orderdesk_mcp.db.models import AuditEvent  # noqa: E402
from scripts.bench.loadgen import McpCallError, McpConnection, percentile  # noqa: E402
from scripts.bench.processes import start_our_server, start_sandbox  # noqa: E402
from scripts.bench.stack import (  # noqa: E402
    SERVER_ENV,
    StoreRef,
    TenantRef,
    add_tenants,
    init_data_dir,
)
from scripts.bench.upstream import order_ids, reset_store, store_stats  # noqa: E402

TENANTS = 10
ORDERS_PER_STORE = 5
MIX: list[tuple[str, float]] = [
    ("get_order", 0.50),
    ("list_orders", 0.20),
    ("list_order_items", 0.05),
    ("get_store", 0.05),
    ("delete_order_dry_run", 0.15),
    ("add_order_note", 0.05),
]
WRITES = {"delete_order_dry_run", "add_order_note"}
MAX_REQUESTS = 500_000
DEFAULT_OUT = ROOT / "docs" / "bench" / "load-test.json"


@dataclass
class Tally:
    """What every client adds to, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    http_5xx: int = 0
    http_other: int = 0
    tool_errors: Counter[str] = field(default_factory=Counter)
    # Calls over the server's bounds on calls at once, answered "busy ... Retry in N seconds":
    # the intended answer to a burst, counted apart from real tool errors.
    busy: Counter[str] = field(default_factory=Counter)
    tool_calls_answered: int = 0
    sent: int = 0
    samples: list[str] = field(default_factory=list)


def arguments_for(operation: str, store: StoreRef, ids: list[str], rng: random.Random) -> Any:
    order_id = rng.choice(ids)
    base = {"store": store.alias}
    if operation == "get_order":
        return "get_order", {**base, "order_id": order_id}
    if operation == "list_orders":
        return "list_orders", {**base, "limit": 20}
    if operation == "list_order_items":
        return "list_order_items", {**base, "order_id": order_id}
    if operation == "get_store":
        return "get_store", base
    if operation == "delete_order_dry_run":
        return "delete_order", {**base, "order_id": order_id, "dry_run": True}
    return "add_order_note", {**base, "order_id": order_id, "note": "load test note"}


def client(
    index: int,
    url: str,
    tenant: TenantRef,
    ids: dict[str, list[str]],
    deadline: float,
    tally: Tally,
) -> None:
    rng = random.Random(index)
    operations = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    connection = McpConnection(url, tenant.token, timeout=120)
    connection.initialize()
    while time.monotonic() < deadline:
        with tally.lock:
            if tally.sent >= MAX_REQUESTS:
                break
            tally.sent += 1
        operation = rng.choices(operations, weights)[0]
        store = rng.choice(tenant.stores)
        tool, arguments = arguments_for(operation, store, ids[store.store_id], rng)
        message = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        }
        started = time.perf_counter()
        try:
            status, _headers, payload = connection.post(message)
        except (OSError, McpCallError) as error:
            with tally.lock:
                tally.http_other += 1
                tally.samples.append(f"{operation}: {error}")
            continue
        elapsed = time.perf_counter() - started
        with tally.lock:
            if status >= 500:
                tally.http_5xx += 1
                tally.samples.append(f"{operation}: HTTP {status} {payload[:200]!r}")
            elif status != 200:
                tally.http_other += 1
                tally.samples.append(f"{operation}: HTTP {status} {payload[:200]!r}")
            else:
                tally.tool_calls_answered += 1
                tally.latencies.setdefault(operation, []).append(elapsed)
                result = json.loads(payload).get("result", {})
                text = result.get("content", [{}])[0].get("text", "")
                if result.get("isError") and "Retry in" in text:
                    tally.busy[operation] += 1
                elif result.get("isError"):
                    tally.tool_errors[operation] += 1
                    if len(tally.samples) < 20:
                        tally.samples.append(f"{operation}: tool error: {text[:200]}")
        time.sleep(rng.uniform(0.1, 0.3))
    connection.close()


def latency_summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.5) * 1000, 2),
        "p90_ms": round(percentile(ordered, 0.9) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 2),
    }


def count_audit_events(data_dir: Path) -> int:
    database = open_database(load_settings({"ORDERDESK_MCP_DATA_DIR": str(data_dir)}))
    try:
        return int(AuditEvent.select().where(AuditEvent.action.startswith("tools/call")).count())
    finally:
        database.close()


def run(minutes: float, clients: int, out: Path) -> dict[str, Any]:
    tenants_spec = [
        (
            f"load-{t:02d}",
            [
                StoreRef(f"5{t:02d}00{s}", f"sk_load_{secrets.token_hex(6)}", f"store{s}")
                for s in (1, 2)
            ],
        )
        for t in range(TENANTS)
    ]
    stores = [store for _, pair in tenants_spec for store in pair]
    duration_s = minutes * 60
    with tempfile.TemporaryDirectory(prefix="orderdesk-load-") as temp:
        work = Path(temp)
        data_dir = work / "data"
        sandbox, base_url, admin_url = start_sandbox(
            [(s.store_id, s.api_key, "demo") for s in stores], work
        )
        server = None
        try:
            ids = {
                s.store_id: order_ids(base_url, s.store_id, s.api_key, ORDERS_PER_STORE)
                for s in stores
            }
            for store in stores:
                reset_store(admin_url, store.store_id)
            init_data_dir(data_dir)
            tenants = add_tenants(data_dir, tenants_spec, base_url)
            server, url, _startup = start_our_server(data_dir, work, SERVER_ENV)
            tally = Tally()
            started = time.monotonic()
            deadline = started + duration_s
            threads = [
                threading.Thread(
                    target=client,
                    args=(i, url, tenants[i % len(tenants)], ids, deadline, tally),
                    daemon=True,
                )
                for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            rss: list[tuple[float, float]] = []
            while time.monotonic() < deadline:
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
                rss.append((round(time.monotonic() - started, 1), server.rss_mb()))
                print(
                    f"  t={rss[-1][0]:>5.0f} s  rss {rss[-1][1]} MB  sent {tally.sent}", flush=True
                )
            for thread in threads:
                thread.join(max(1.0, 130.0))
            elapsed = time.monotonic() - started
            upstream = {s.store_id: store_stats(admin_url, s.store_id) for s in stores}
        finally:
            if server is not None:
                server.stop()
            sandbox.stop()
        audit_rows = count_audit_events(data_dir)
    minute_1 = next((mb for t, mb in rss if t >= 60), rss[0][1])
    minute_end = rss[-1][1]
    everything = [v for values in tally.latencies.values() for v in values]
    results = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clients": clients,
        "tenants": TENANTS,
        "stores": len(stores),
        "seconds": round(elapsed, 1),
        "mix": dict(MIX),
        "requests": tally.sent,
        "tool_calls_answered": tally.tool_calls_answered,
        "rps": round(tally.tool_calls_answered / elapsed, 1),
        "http_5xx": tally.http_5xx,
        "http_other_failures": tally.http_other,
        "tool_errors": dict(tally.tool_errors),
        "busy_answers": dict(tally.busy),
        "audit_events_counted": audit_rows,
        "audit_events_lost": tally.tool_calls_answered - audit_rows,
        "rss_mb_minute_1": minute_1,
        "rss_mb_end": minute_end,
        "rss_growth_minute_1_to_end_percent": round((minute_end - minute_1) / minute_1 * 100, 1),
        "rss_samples": rss,
        "latency_all": latency_summary(everything),
        "latency_by_operation": {op: latency_summary(v) for op, v in tally.latencies.items()},
        "upstream_requests": sum(s["served"] for s in upstream.values()),
        "upstream_429": sum(s["rejected_429"] for s in upstream.values()),
        "samples": tally.samples[:10],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not 0 < args.minutes <= 30 or not 0 < args.clients <= 500:
        parser.error("--minutes must be in (0, 30] and --clients in (0, 500]")
    results = run(args.minutes, args.clients, args.out)
    summary = {k: v for k, v in results.items() if k not in ("rss_samples", "mix")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
