"""The reference: the same two read tools on the official `mcp` SDK (MCPServer, stateless JSON).

    python -m scripts.bench.reference_server --port 8123 --fixtures fixtures.json [--workers 2]

`fixtures.json` holds what our server's `get_order` and `list_orders` returned (fetched once
from the sandbox by the harness): {"orders": {order_id: structuredContent}, "list_orders":
structuredContent}. The tools answer from memory, so this is the SDK's floor on a cache hit:
no authentication, no session store, no audit, no upstream cache lookup.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer


def build_server(fixtures: dict[str, Any]) -> MCPServer[Any]:
    orders: dict[str, dict[str, Any]] = fixtures["orders"]
    list_result: dict[str, Any] = fixtures["list_orders"]
    server: MCPServer[Any] = MCPServer("reference-orderdesk", log_level="WARNING")

    @server.tool()
    def get_order(order_id: str, store: str | None = None) -> dict[str, Any]:
        """Read one order by its Order Desk id."""
        return orders[str(order_id)]

    @server.tool()
    def list_orders(limit: int = 20, offset: int = 0, store: str | None = None) -> dict[str, Any]:
        """List orders, newest first."""
        return list_result

    return server


FIXTURES_VARIABLE = "REFERENCE_FIXTURES"


def worker_app() -> Any:
    """The Starlette app of one uvicorn worker (`--workers N`): uvicorn imports it by name in
    each worker process, so the fixtures path comes through the environment."""
    fixtures = json.loads(Path(os.environ[FIXTURES_VARIABLE]).read_text())
    return build_server(fixtures).streamable_http_app(json_response=True, stateless_http=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixtures", type=Path, required=True)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (1: run as the SDK's own server.run does)",
    )
    args = parser.parse_args()
    if args.workers > 1:
        # How an SDK user scales out: the stateless app under uvicorn's process manager.
        os.environ[FIXTURES_VARIABLE] = str(args.fixtures.resolve())
        uvicorn.run(
            "scripts.bench.reference_server:worker_app",
            factory=True,
            host="127.0.0.1",
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
        return
    server = build_server(json.loads(args.fixtures.read_text()))
    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=args.port,
        json_response=True,
        stateless_http=True,
    )


if __name__ == "__main__":
    main()
