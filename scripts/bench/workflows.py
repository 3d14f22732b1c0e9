"""Upstream requests per workflow: what a task costs against Order Desk's 20 + 3/s bucket.

    .venv/bin/python -m scripts.bench.workflows [--out docs/bench/workflows.json]

(also run by `make bench`). Drives the real tools (`execute_tool` with a StaticStoreResolver,
a real OrderDeskClient) against the real sandbox over loopback HTTP, each workflow on a fresh
demo store and a cold cache, and counts the requests the sandbox served, by endpoint:

- "triage today's new orders": list_orders in folder New (limit 20), get_order for each
  listed order (the demo store has 17 in New), move_orders of them to Prepared;
- "stock count": update_inventory_items_batch of 50 items given by item_id, and the same by
  `code` when the tool's inputSchema accepts `code` in its entries (detected, so the script
  runs both before and after that change).

Counts, not times: they do not depend on the machine, though the runs wait for the sandbox's
bucket as a real store would make them.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orderdesk_mcp.mcp.registry import StaticStoreResolver, StoreRef, execute_tool, find_tool
from orderdesk_mcp.orderdesk import OrderDeskClient, UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox, SandboxStoreSpec, start_sandbox
from scripts.bench.processes import ROOT, machine

DEFAULT_OUT = ROOT / "docs" / "bench" / "workflows.json"
STORE = StoreRef(alias="bench", store_id="500001", is_default=True)
# A throwaway key for the in-process sandbox, new each run, like the other bench scripts.
API_KEY = f"sk_bench_{secrets.token_hex(6)}"
BATCH_TOOL = "update_inventory_items_batch"


class WorkflowError(RuntimeError):
    """A tool call of a workflow failed; the message carries the tool's own error text."""


@dataclass(frozen=True)
class WorkflowCount:
    workflow: str
    records: int  # orders or inventory items the workflow handled
    tool_calls: int
    upstream_gets: int
    upstream_writes: int
    upstream_total: int
    by_endpoint: dict[str, int]


@dataclass(frozen=True)
class Sizes:
    """How many orders the triage reads and how many items the stock count changes."""

    orders: int = 20
    items: int = 50


class ToolRunner:
    """One store's tools through execute_tool, counting the calls made."""

    def __init__(self, resolver: StaticStoreResolver) -> None:
        self.resolver = resolver
        self.calls = 0

    def __call__(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = find_tool(name)
        if tool is None:
            raise WorkflowError(f"no tool named {name!r} in this build")
        self.calls += 1
        result = execute_tool(tool, arguments, self.resolver).result
        if result.get("isError"):
            raise WorkflowError(f"{name} failed: {result['content'][0]['text']}")
        structured: dict[str, Any] = result["structuredContent"]
        return structured


def batch_accepts_code() -> bool:
    """Whether update_inventory_items_batch entries may name an item by `code`."""
    tool = find_tool(BATCH_TOOL)
    if tool is None:
        return False
    entry = tool.input_schema["properties"]["items"]["items"]
    return "code" in entry.get("properties", {})


# A workflow: calls tools (given the sandbox to pick records without an upstream read) and
# returns how many records it handled.
Workflow = Callable[[RunningSandbox, ToolRunner, Sizes], int]


def triage(_sandbox: RunningSandbox, run: ToolRunner, sizes: Sizes) -> int:
    listed = run("list_orders", {"folder": "New", "limit": sizes.orders})["orders"]
    if not listed:
        raise WorkflowError("the New folder is empty; the triage workflow needs new orders")
    ids = [order["id"] for order in listed]
    for order_id in ids:
        run("get_order", {"order_id": order_id})
    run("move_orders", {"order_ids": ids, "folder": "Prepared"})
    return len(ids)


def _stock_items(sandbox: RunningSandbox, count: int) -> list[dict[str, Any]]:
    """The first `count` inventory items, read from the sandbox's state (no upstream request)."""
    with sandbox.store(STORE.store_id).lock:
        items = [dict(item) for item in sandbox.store(STORE.store_id).inventory.values()]
    if len(items) < count:
        raise WorkflowError(f"the demo store has {len(items)} inventory items, fewer than {count}")
    return items[:count]


def stock_count(key: str) -> Workflow:
    """The stock count naming each item by `key` ("id" as item_id, or "code")."""
    entry_key = "item_id" if key == "id" else key

    def work(sandbox: RunningSandbox, run: ToolRunner, sizes: Sizes) -> int:
        items = _stock_items(sandbox, sizes.items)
        entries = [
            {entry_key: item[key], "changes": {"stock": index}} for index, item in enumerate(items)
        ]
        run(BATCH_TOOL, {"items": entries})
        return len(entries)

    return work


def measure(name: str, workflow: Workflow, sizes: Sizes, cache_dir: Path) -> WorkflowCount:
    """Run one workflow on a fresh demo store with a cold cache; count what the store served."""
    spec = SandboxStoreSpec(STORE.store_id, API_KEY, seed="demo")
    with start_sandbox([spec], host="127.0.0.1", port=0, threads=4) as sandbox:
        machinery = UpstreamMachinery(cache_dir / f"{name.replace(' ', '-')}.sqlite")
        try:
            client = OrderDeskClient(STORE.store_id, API_KEY, sandbox.base_url, machinery)
            runner = ToolRunner(StaticStoreResolver([(STORE, client)]))
            records = workflow(sandbox, runner, sizes)
            by_endpoint: dict[str, int] = dict(sandbox.stats(STORE.store_id)["by_endpoint"])
        finally:
            machinery.close()
    gets = sum(n for endpoint, n in by_endpoint.items() if endpoint.startswith("GET "))
    total = sum(by_endpoint.values())
    return WorkflowCount(
        name, records, runner.calls, gets, total - gets, total, dict(sorted(by_endpoint.items()))
    )


def run_workflows(sizes: Sizes | None = None) -> list[WorkflowCount]:
    """Every workflow once, each on its own fresh store and cold cache."""
    sizes = sizes or Sizes()
    workflows: list[tuple[str, Workflow]] = [
        (f"triage New (list limit {sizes.orders})", triage),
        (f"stock count {sizes.items} by item_id", stock_count("id")),
    ]
    if batch_accepts_code():
        workflows.append((f"stock count {sizes.items} by code", stock_count("code")))
    with tempfile.TemporaryDirectory(prefix="orderdesk-workflows-") as temp:
        return [measure(name, workflow, sizes, Path(temp)) for name, workflow in workflows]


def write_results(counts: list[WorkflowCount], out: Path) -> dict[str, Any]:
    results = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "batch_accepts_code": batch_accepts_code(),
        "workflows": [asdict(count) for count in counts],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def print_table(counts: list[WorkflowCount]) -> None:
    print(
        f"{'workflow':<30} {'records':>7} {'tool calls':>10} {'GETs':>6} {'writes':>7} {'total':>6}"
    )
    for count in counts:
        print(
            f"{count.workflow:<30} {count.records:>7} {count.tool_calls:>10} "
            f"{count.upstream_gets:>6} "
            f"{count.upstream_writes:>7} {count.upstream_total:>6}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    counts = run_workflows()
    print_table(counts)
    write_results(counts, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
