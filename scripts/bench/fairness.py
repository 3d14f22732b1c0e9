"""Cross-tenant latency under a burst: does one tenant's flood slow another tenant or /health?

    .venv/bin/python -m scripts.bench.fairness [--out docs/bench/fairness.json]

Starts the sandbox and `orderdesk-mcp serve` (production settings) as subprocesses. Tenant B's
cached get_store and GET /health are timed first on an idle server, then while tenant A has
100 uncached get_order calls in flight, each held upstream by the sandbox for HOLD_MS. Bounded:
one burst, a fixed number of samples, everything stopped at the end (about 20 s).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scripts.bench.loadgen import McpConnection
from scripts.bench.processes import ROOT, start_our_server, start_sandbox
from scripts.bench.stack import SERVER_ENV, StoreRef, add_tenants, init_data_dir
from scripts.bench.upstream import order_ids

BURST_STORE = StoreRef("500001", f"sk_bench_{secrets.token_hex(6)}", "burst")
QUIET_STORE = StoreRef("500002", f"sk_bench_{secrets.token_hex(6)}", "quiet")
BURST = 100
HOLD_MS = 4000
SAMPLES = 20
DEFAULT_OUT = ROOT / "docs" / "bench" / "fairness.json"


def set_latency(admin_url: str, store_id: str, latency_ms: int) -> None:
    body = json.dumps({"store_id": store_id, "latency_ms": latency_ms}).encode()
    request = urllib.request.Request(f"{admin_url}/faults", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def timed_ms(action: Any) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def health(url: str) -> None:
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()


def sample(quiet: McpConnection, health_url: str) -> dict[str, float]:
    """Median and worst of SAMPLES cached calls and health checks, one after another."""
    cached = [
        timed_ms(lambda: quiet.call_tool("get_store", {"store": "quiet"})) for _ in range(SAMPLES)
    ]
    checks = [timed_ms(lambda: health(health_url)) for _ in range(SAMPLES)]
    return {
        "cached_call_p50_ms": round(statistics.median(cached), 2),
        "cached_call_max_ms": round(max(cached), 2),
        "health_p50_ms": round(statistics.median(checks), 2),
        "health_max_ms": round(max(checks), 2),
    }


def run(out: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="odmcp-fairness-") as temp:
        work = Path(temp)
        stores = [(s.store_id, s.api_key, "demo") for s in (BURST_STORE, QUIET_STORE)]
        sandbox, base_url, admin_url = start_sandbox(stores, work)
        server = None
        try:
            data_dir = work / "data"
            init_data_dir(data_dir)
            noisy, calm = add_tenants(
                data_dir, [("noisy", [BURST_STORE]), ("calm", [QUIET_STORE])], base_url
            )
            # SERVER_ENV turns the per-address connection cap off: the 100 burst connections
            # all come from 127.0.0.1, as they would from nginx (exempt from that cap).
            server, mcp_url, _startup = start_our_server(data_dir, work, SERVER_ENV)
            health_url = mcp_url.removesuffix("/mcp") + "/health"
            quiet = McpConnection(mcp_url, calm.token, timeout=120)
            quiet.initialize()
            quiet.call_tool("get_store", {"store": "quiet"})  # warm the cache
            idle = sample(quiet, health_url)

            ids = order_ids(base_url, BURST_STORE.store_id, BURST_STORE.api_key, BURST)
            set_latency(admin_url, BURST_STORE.store_id, HOLD_MS)
            outcomes: list[bool] = []
            lock = threading.Lock()

            # One session for the whole burst (sessions per key are capped), one connection
            # per call.
            opener = McpConnection(mcp_url, noisy.token, timeout=120)
            opener.initialize()

            def one(order_id: str) -> None:
                connection = McpConnection(mcp_url, noisy.token, timeout=120)
                connection.session_id = opener.session_id
                connection.protocol_version = opener.protocol_version
                result = connection.request(
                    "tools/call", {"name": "get_order", "arguments": {"order_id": order_id}}
                )
                with lock:
                    outcomes.append(bool(result.get("isError")))
                connection.close()

            with ThreadPoolExecutor(max_workers=BURST) as pool:
                futures = [pool.submit(one, order_id) for order_id in ids]
                time.sleep(0.5)  # let the burst reach the server before sampling
                during = sample(quiet, health_url)
                for future in futures:
                    future.result(timeout=300)
            set_latency(admin_url, BURST_STORE.store_id, 0)
        finally:
            if server is not None:
                server.stop()
            sandbox.stop()
    results = {
        "burst_calls": BURST,
        "held_upstream_ms": HOLD_MS,
        "idle": idle,
        "during_burst": during,
        "burst_busy_answers": sum(outcomes),
        "burst_served": len(outcomes) - sum(outcomes),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def print_table(results: dict[str, Any]) -> None:
    held = results["held_upstream_ms"]
    print(f"tenant A: {results['burst_calls']} uncached calls, each held {held} ms upstream")
    print(f"  served {results['burst_served']}, answered busy {results['burst_busy_answers']}")
    print(f"{'tenant B / health':<28}{'idle':>12}{'during burst':>16}")
    for key in ("cached_call_p50_ms", "cached_call_max_ms", "health_p50_ms", "health_max_ms"):
        print(f"{key:<28}{results['idle'][key]:>12}{results['during_burst'][key]:>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    print_table(run(parser.parse_args().out))


if __name__ == "__main__":
    main()
