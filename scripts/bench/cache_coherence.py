"""What shared cache versions cost a cached read, measured side by side in one run.

    .venv/bin/python -m scripts.bench.cache_coherence [--rounds 5] [--base DIR]

Three variants, each in a fresh worker process, alternating round by round so that other load
on the machine falls on all of them alike:

- ``before``: the source tree at ``--base`` (default: an export of the commit this branch
  started from, ``git merge-base HEAD main``), no Redis: the single-process default as it was;
- ``after``: this tree, no Redis: the single-process default now;
- ``after+redis``: this tree in a server group (ORDERDESK_MCP_REDIS_URL set, a throwaway
  redis-server on loopback): one Redis round trip per cached read.

Each worker times cached ``get_order`` two ways: a whole MCP ``tools/call`` through the Flask
test client (no socket, as ``profile_get_order``), and ``OrderDeskClient.get_order`` alone
(the cache path and nothing else). Wall time counts the Redis round trip (a wait, not CPU);
CPU time is this thread's. Medians over the rounds, and ratios to ``before``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[2]
MCP_CALLS = 1000
CLIENT_CALLS = 5000
STORE_ID, API_KEY = "300001", "sk_bench_300001"


def worker() -> None:
    """Runs in the tree under test (PYTHONPATH): prints one JSON line of timings."""
    from orderdesk_mcp.app import create_app
    from orderdesk_mcp.config import load_settings
    from orderdesk_mcp.orderdesk import OrderDeskClient
    from orderdesk_mcp.sandbox import SandboxStoreSpec, start_sandbox
    from scripts.bench.loadgen import LATEST_PROTOCOL_VERSION
    from scripts.bench.stack import SERVER_ENV, StoreRef, add_tenants, init_data_dir

    store = StoreRef(STORE_ID, API_KEY, "demo")
    spec = SandboxStoreSpec(STORE_ID, API_KEY, seed="demo")
    with tempfile.TemporaryDirectory() as temp, start_sandbox([spec]) as sandbox:
        data_dir = Path(temp) / "data"
        init_data_dir(data_dir)
        (tenant,) = add_tenants(data_dir, [("bench", [store])], sandbox.base_url)
        env = {**SERVER_ENV, "ORDERDESK_MCP_DATA_DIR": str(data_dir)}
        if os.environ.get("BENCH_REDIS_URL"):
            env["ORDERDESK_MCP_REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        settings = load_settings(env)
        app = create_app(settings)
        http = app.test_client()
        headers = {
            "Authorization": f"Bearer {tenant.token}",
            "Accept": "application/json, text/event-stream",
            "Host": "127.0.0.1",
        }

        def post(message: dict[str, Any]) -> Any:
            return http.post("/mcp", json=message, headers=headers)

        hello = {"protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {}}
        hello["clientInfo"] = {"name": "bench", "version": "1"}
        reply = post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        headers["Mcp-Session-Id"] = reply.headers["Mcp-Session-Id"]
        headers["MCP-Protocol-Version"] = LATEST_PROTOCOL_VERSION
        post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        machinery = app.extensions["orderdesk_mcp"].machinery
        client = OrderDeskClient(STORE_ID, API_KEY, sandbox.base_url, machinery)
        order_id = str(client.list_orders(limit=1)["orders"][0]["id"])
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_order", "arguments": {"order_id": order_id}},
        }
        for _ in range(200):
            assert "result" in post(call).json
            client.get_order(order_id)
        timings = {}
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(MCP_CALLS):
            post(call)
        timings["mcp_wall_ms"] = (time.perf_counter() - wall) / MCP_CALLS * 1e3
        timings["mcp_cpu_ms"] = (time.thread_time() - cpu) / MCP_CALLS * 1e3
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(CLIENT_CALLS):
            client.get_order(order_id)
        timings["client_wall_us"] = (time.perf_counter() - wall) / CLIENT_CALLS * 1e6
        timings["client_cpu_us"] = (time.thread_time() - cpu) / CLIENT_CALLS * 1e6
        print(json.dumps(timings))


def export_base(target: Path) -> Path:
    """The source tree of the commit this branch started from, exported with git archive."""
    base = subprocess.run(
        ["git", "merge-base", "HEAD", "main"], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", base], cwd=HERE, capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    print(f"before = {base[:12]} (exported to {target})")
    return target


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is missing (the Makefile installs Debian's)")
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def run_worker(tree: Path, redis_url: str | None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERDESK_")}
    env["PYTHONPATH"] = str(tree)  # the tree's orderdesk_mcp and scripts win over this one
    if redis_url:
        env["BENCH_REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, __file__, "--worker"],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
    )
    timings: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", type=Path, help="source tree of 'before' (default: merge-base)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    with tempfile.TemporaryDirectory() as temp:
        base = args.base or export_base(Path(temp) / "base")
        redis_process, redis_url = start_redis(Path(temp))
        variants = {"before": (base, None), "after": (HERE, None), "after+redis": (HERE, redis_url)}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        try:
            for round_ in range(args.rounds):
                for name, (tree, url) in variants.items():
                    results[name].append(run_worker(tree, url))
                print(f"round {round_ + 1}/{args.rounds} done", flush=True)
        finally:
            redis_process.terminate()
            redis_process.wait(timeout=10)
    metrics = ("mcp_wall_ms", "mcp_cpu_ms", "client_wall_us", "client_cpu_us")
    medians = {
        name: {m: statistics.median(r[m] for r in runs) for m in metrics}
        for name, runs in results.items()
    }
    print(f"\nmedians of {args.rounds} rounds (ratio to before)")
    print(f"{'variant':<12}" + "".join(f"{m:>22}" for m in metrics))
    for name, values in medians.items():
        cells = [f"{values[m]:.3f} ({values[m] / medians['before'][m]:.2f}x)" for m in metrics]
        print(f"{name:<12}" + "".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
