"""The reference: the same two read tools on the official `mcp` SDK (MCPServer, stateless JSON).

    python -m scripts.bench.reference_server --port 8123 --fixtures fixtures.json

`fixtures.json` holds what our server's `get_order` and `list_orders` returned (fetched once
from the sandbox by the harness): {"orders": {order_id: structuredContent}, "list_orders":
structuredContent}. The tools answer from memory, so this is the SDK's floor on a cache hit:
no authentication, no session store, no audit, no upstream cache lookup.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixtures", type=Path, required=True)
    args = parser.parse_args()
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
