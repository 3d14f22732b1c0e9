"""cProfile of cached `get_order` calls in-process (Flask test client, real sandbox, real DB).

    .venv/bin/python -m scripts.bench.profile_get_order [--calls 2000] [--top 40] [--eras]

Prints the mean time per call without the profiler, then the profile sorted by cumulative
time. In-process means no waitress and no socket: what is left is the app's own work.
`--eras` instead times the same call through a 2025-11-25 session and as a stateless
2026-07-28 request, alternating five rounds of each (CPU time of this one thread, so other
processes on the machine barely move it).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from orderdesk_mcp.app import create_app
from orderdesk_mcp.config import load_settings
from orderdesk_mcp.sandbox import SandboxStoreSpec, start_sandbox
from scripts.bench.loadgen import (
    LATEST_PROTOCOL_VERSION,
    MODERN_PROTOCOL_VERSION,
    modern_params,
)
from scripts.bench.stack import SERVER_ENV, StoreRef, add_tenants, init_data_dir

STORE = StoreRef("300001", "sk_profile_300001", "demo")


def post(client: FlaskClient, headers: dict[str, str], message: dict[str, Any]) -> Any:
    return client.post("/mcp", json=message, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--eras", action="store_true", help="2026-07-28 vs 2025-11-25 session")
    args = parser.parse_args()
    spec = SandboxStoreSpec(STORE.store_id, STORE.api_key, seed="demo")
    with tempfile.TemporaryDirectory() as temp, start_sandbox([spec]) as sandbox:
        data_dir = Path(temp) / "data"
        init_data_dir(data_dir)
        (tenant,) = add_tenants(data_dir, [("profile", [STORE])], sandbox.base_url)
        settings = load_settings({**SERVER_ENV, "ORDERDESK_MCP_DATA_DIR": str(data_dir)})
        client = create_app(settings).test_client()
        headers = {
            "Authorization": f"Bearer {tenant.token}",
            "Accept": "application/json, text/event-stream",
            "Host": "127.0.0.1",
        }
        reply = post(
            client,
            headers,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": LATEST_PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "profile", "version": "1"},
                },
            },
        )
        headers["Mcp-Session-Id"] = reply.headers["Mcp-Session-Id"]
        headers["MCP-Protocol-Version"] = LATEST_PROTOCOL_VERSION
        post(client, headers, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        listing = post(
            client,
            headers,
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "list_orders", "arguments": {"limit": 1}},
            },
        )
        order_id = str(listing.json["result"]["structuredContent"]["orders"][0]["id"])
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_order", "arguments": {"order_id": order_id}},
        }
        for _ in range(100):  # fill the cache, warm everything
            post(client, headers, call)
        if args.eras:
            compare_eras(client, headers, call, args.calls)
            return
        started = time.perf_counter()
        for _ in range(args.calls):
            post(client, headers, call)
        per_call_ms = (time.perf_counter() - started) / args.calls * 1000
        print(f"in-process, no profiler: {per_call_ms:.3f} ms per cached get_order")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.calls):
            post(client, headers, call)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


def compare_eras(
    client: FlaskClient, session_headers: dict[str, str], call: dict[str, Any], calls: int
) -> None:
    """Mean CPU ms per cached get_order: a 2025-11-25 session vs stateless 2026-07-28."""
    stateless_headers = {
        key: value
        for key, value in session_headers.items()
        if key not in ("Mcp-Session-Id", "MCP-Protocol-Version")
    }
    stateless_headers.update(
        {
            "MCP-Protocol-Version": MODERN_PROTOCOL_VERSION,
            "Mcp-Method": "tools/call",
            "Mcp-Name": "get_order",
        }
    )
    stateless_call = {**call, "params": modern_params(call["params"])}
    assert "result" in post(client, stateless_headers, stateless_call).json
    eras = {
        "2025-11-25 session": (session_headers, call),
        "2026-07-28 stateless": (stateless_headers, stateless_call),
    }
    rounds: dict[str, list[float]] = {name: [] for name in eras}
    for _round in range(5):
        for name, (headers, message) in eras.items():
            started = time.thread_time()
            for _ in range(calls):
                post(client, headers, message)
            rounds[name].append(round((time.thread_time() - started) / calls * 1000, 3))
    for name, times in rounds.items():
        print(f"{name:<22} CPU ms per cached get_order: best {min(times):.3f}, rounds {times}")
    ratio = min(rounds["2026-07-28 stateless"]) / min(rounds["2025-11-25 session"])
    print(f"stateless / session (best rounds): {ratio:.3f}")


if __name__ == "__main__":
    main()
