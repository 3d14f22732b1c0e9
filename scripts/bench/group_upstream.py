"""Upstream efficiency of a server group: N serve processes sharing one Redis drive one store.

    .venv/bin/python -m scripts.bench.group_upstream [--processes 2 4] [--seconds 30]
                                                    [--out docs/bench/group_upstream.json]

Starts the sandbox and a throwaway redis-server (Debian's, loopback, with AUTH), then for each
N: N `orderdesk-mcp serve` processes on one data dir (ORDERDESK_MCP_REDIS_URL set, production
settings), two workers per process calling get_order with distinct order ids (each an
uncached upstream read) for the given seconds, on a fresh store of its own. The sandbox's own
counters give what Order Desk would have seen: the sustained rate after the first 10 s (the
bucket's burst left out) as a share of 3/s, 429s, and the worst window against 20 + 3/s.
Bounded: fixed duration and order ids; everything stops at the end.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from orderdesk_mcp.orderdesk.ratelimit import REFILL_PER_SECOND
from scripts.bench.loadgen import McpCallError, McpConnection
from scripts.bench.processes import (
    ROOT,
    ManagedProcess,
    free_port,
    machine,
    start_our_server,
    start_sandbox,
    wait_for_port,
)
from scripts.bench.stack import SERVER_ENV, StoreRef, add_tenants, init_data_dir
from scripts.bench.upstream import bucket_excess, order_ids, reset_store, store_stats

DEFAULT_OUT = ROOT / "docs" / "bench" / "group_upstream.json"
WORKERS_PER_PROCESS = 2
WARMUP_SECONDS = 10.0
"""Left out of the sustained rate: the bucket's initial burst and the ramp-up."""
BUSY_PAUSE_SECONDS = 0.1


def start_redis(log_dir: Path) -> tuple[ManagedProcess, str]:
    """redis-server on a free loopback port with a random password: (process, URL)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: `make system-deps` installs Debian's")
    port, password = free_port(), secrets.token_hex(16)
    process = ManagedProcess(
        "redis",
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password,
         "--save", "", "--appendonly", "no", "--dir", str(log_dir)],
        log_dir,
    )  # fmt: skip
    wait_for_port(port, process)
    return process, f"redis://:{password}@127.0.0.1:{port}/0"


def drive(urls: list[str], token: str, ids: list[str], seconds: float) -> dict[str, int]:
    """Workers call get_order with the ids (each once) until `seconds` pass."""
    pending = iter(ids)
    lock = threading.Lock()
    tally = {"ok": 0, "busy_or_waiting": 0}
    deadline = time.monotonic() + seconds

    def work(url: str) -> None:
        connection = McpConnection(url, token, timeout=60)
        connection.initialize()
        while time.monotonic() < deadline:
            with lock:
                order_id = next(pending, None)
            if order_id is None:
                return
            try:
                connection.call_tool("get_order", {"order_id": order_id})
                outcome = "ok"
            except McpCallError:
                outcome = "busy_or_waiting"
            with lock:
                tally[outcome] += 1
            if outcome != "ok":
                time.sleep(BUSY_PAUSE_SECONDS)
        connection.close()

    threads = [
        threading.Thread(target=work, args=(url,), daemon=True)
        for url in urls
        for _ in range(WORKERS_PER_PROCESS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return tally


def sustained_rate(served_at: list[float]) -> float:
    """Requests per second served after the warm-up (the burst and ramp-up left out)."""
    times = sorted(served_at)
    if not times:
        return 0.0
    start = times[0] + WARMUP_SECONDS
    later = [moment for moment in times if moment >= start]
    if len(later) < 2:
        return 0.0
    return (len(later) - 1) / (later[-1] - later[0])


def group_store(processes: int) -> StoreRef:
    return StoreRef(f"6000{processes:02d}", f"sk_bench_{secrets.token_hex(6)}", "group")


def one_group(
    store: StoreRef, processes: int, seconds: float, work: Path, urls: tuple[str, str, str]
) -> dict[str, Any]:
    base_url, admin_url, redis_url = urls
    data_dir = work / f"data-{processes}"
    init_data_dir(data_dir)
    (tenant,) = add_tenants(data_dir, [(f"group{processes}", [store])], base_url)
    env = {
        **SERVER_ENV,
        "ORDERDESK_MCP_REDIS_URL": redis_url,
        "ORDERDESK_MCP_REDIS_PREFIX": f"bench{processes}:",
    }
    servers: list[ManagedProcess] = []
    try:
        mcp_urls = []
        for index in range(processes):
            name = f"serve-{processes}-{index}"
            server, url, _startup = start_our_server(data_dir, work, env, name=name)
            servers.append(server)
            mcp_urls.append(url)
        ids = order_ids(base_url, store.store_id, store.api_key, 300)
        reset_store(admin_url, store.store_id)  # counters cleared, bucket full
        tally = drive(mcp_urls, tenant.token, ids, seconds)
    finally:
        for server in servers:
            server.stop()
    stats = store_stats(admin_url, store.store_id)
    rate = sustained_rate(stats["served_at"])
    served_at = stats["served_at"]
    span = max(served_at) - min(served_at) if served_at else 0.0
    return {
        "processes": processes,
        "seconds": seconds,
        "calls_ok": tally["ok"],
        "calls_busy_or_waiting": tally["busy_or_waiting"],
        "upstream_requests": stats["served"],
        "upstream_429": stats["rejected_429"],
        "sustained_rps_after_warmup": round(rate, 3),
        "share_of_3_per_s": round(rate / REFILL_PER_SECOND, 3),
        "served_span_s": round(span, 2),
        "bucket_window_excess": round(bucket_excess(stats), 2),
    }


def run(process_counts: list[int], seconds: float, out: Path) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory(prefix="odmcp-group-") as temp:
        work = Path(temp)
        stores = {count: group_store(count) for count in process_counts}
        sandbox, base_url, admin_url = start_sandbox(
            [(store.store_id, store.api_key, "demo") for store in stores.values()], work
        )
        redis, redis_url = start_redis(work)
        try:
            for count, store in stores.items():
                urls = (base_url, admin_url, redis_url)
                result = one_group(store, count, seconds, work, urls)
                print(f"  {count} processes: {json.dumps(result)}", flush=True)
                runs.append(result)
        finally:
            redis.stop()
            sandbox.stop()
    results = {"machine": machine(), "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"{'processes':<11}{'upstream/s':>11}{'of 3/s':>8}{'429s':>6}{'excess':>8}{'ok':>6}")
    for row in results["runs"]:
        print(
            f"{row['processes']:<11}{row['sustained_rps_after_warmup']:>11}"
            f"{row['share_of_3_per_s']:>8.1%}{row['upstream_429']:>6}"
            f"{row['bucket_window_excess']:>8}{row['calls_ok']:>6}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    print_table(run(args.processes, args.seconds, args.out))


if __name__ == "__main__":
    main()
