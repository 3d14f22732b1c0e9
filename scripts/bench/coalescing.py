"""Would coalescing identical reads across processes pay? Counts what reaches Order Desk.

    .venv/bin/python -m scripts.bench.coalescing [--processes 4] [--burst 8] [--bursts 12]
                                                  [--latency-ms 150]

A server group of ``--processes`` real ``serve`` processes sharing a throwaway redis-server,
in front of the sandbox (its replies delayed by ``--latency-ms``, as Order Desk's are). Each
burst sends ``--burst`` identical ``get_order`` calls for an order nobody has read yet, all
at once, spread evenly over the processes. In-process single flight already folds the calls
that land in one process into one request; a cross-process scheme (a Redis lock per cache key,
the others waiting for the leader's entry) could at best fold the whole burst into one.
Printed: upstream requests per burst, and how many a perfect cross-process scheme would save.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

import requests

from orderdesk_mcp.sandbox import SandboxStoreSpec, start_sandbox
from scripts.bench.cache_coherence import start_redis
from scripts.bench.loadgen import CLIENT_INFO, JSON_ACCEPT, LATEST_PROTOCOL_VERSION
from scripts.bench.processes import ManagedProcess, start_our_server
from scripts.bench.stack import SERVER_ENV, StoreRef, add_tenants, init_data_dir

STORE = StoreRef("300001", "sk_coalesce_300001", "demo")


def open_session(url: str, token: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": JSON_ACCEPT}
    hello = {"protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {}}
    hello["clientInfo"] = CLIENT_INFO
    reply = requests.post(
        url,
        headers=headers,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        timeout=30,
    )
    reply.raise_for_status()
    headers["Mcp-Session-Id"] = reply.headers["Mcp-Session-Id"]
    headers["MCP-Protocol-Version"] = LATEST_PROTOCOL_VERSION
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    requests.post(url, headers=headers, json=note, timeout=30)
    return headers


def get_order(url: str, headers: dict[str, str], order_id: str) -> Any:
    call = {"name": "get_order", "arguments": {"order_id": order_id}}
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}
    return requests.post(url, headers=headers, json=body, timeout=60).text


def burst_call(gate: threading.Barrier, url: str, headers: dict[str, str], order_id: str) -> None:
    gate.wait()  # every call of the burst leaves together
    get_order(url, headers, order_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--bursts", type=int, default=12)
    parser.add_argument("--latency-ms", type=int, default=150)
    args = parser.parse_args()
    spec = SandboxStoreSpec(STORE.store_id, STORE.api_key, seed="demo")
    with tempfile.TemporaryDirectory() as temp, start_sandbox([spec]) as sandbox:
        root = Path(temp)
        data_dir = root / "data"
        init_data_dir(data_dir)
        (tenant,) = add_tenants(data_dir, [("bench", [STORE])], sandbox.base_url)
        redis_process, redis_url = start_redis(root)
        servers: list[ManagedProcess] = []
        try:
            env = {**SERVER_ENV, "ORDERDESK_MCP_REDIS_URL": redis_url}
            env["ORDERDESK_MCP_UPSTREAM_WAIT_SECONDS"] = "60"
            env["ORDERDESK_MCP_MAX_CALLS_PER_STORE"] = str(args.burst)
            env["ORDERDESK_MCP_MAX_CALLS_PER_TENANT"] = str(args.burst)
            urls = []
            for index in range(args.processes):
                process, url, _ = start_our_server(data_dir, root, env, name=f"serve-{index}")
                servers.append(process)
                urls.append(url)
            callers = [
                (urls[i % len(urls)], open_session(urls[i % len(urls)], tenant.token))
                for i in range(args.burst)
            ]
            listed = requests.get(
                f"{sandbox.base_url}/orders",
                params={"limit": 100},
                headers=sandbox.headers(STORE.store_id),
                timeout=30,
            ).json()["orders"]
            order_ids = [str(order["id"]) for order in listed][: args.bursts]
            sandbox.set_faults(STORE.store_id, latency_ms=args.latency_ms)
            per_burst = []
            for order_id in order_ids:
                before = sandbox.stats(STORE.store_id)["by_endpoint"]
                gate = threading.Barrier(len(callers))

                threads = [
                    threading.Thread(target=burst_call, args=(gate, url, headers, order_id))
                    for url, headers in callers
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                after = sandbox.stats(STORE.store_id)["by_endpoint"]
                per_burst.append(sum(after.values()) - sum(before.values()))
        finally:
            for process in servers:
                process.stop()
            redis_process.terminate()
            redis_process.wait(timeout=10)
    mean = statistics.mean(per_burst)
    print(
        json.dumps(
            {
                "processes": args.processes,
                "calls_per_burst": args.burst,
                "latency_ms": args.latency_ms,
                "upstream_per_burst": per_burst,
                "mean_upstream_per_burst": round(mean, 2),
                "best_cross_process": 1,
                "saved_per_burst_at_best": round(mean - 1, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
