"""`make bench`: our server against the official SDK's server, side by side, on loopback.

    .venv/bin/python -m scripts.bench.run [--quick] [--out docs/bench/latest.json]
    .venv/bin/python -m scripts.bench.run --eras-only [--quick]   # docs/bench/eras.json

Starts the sandbox (demo seed), our server twice (`orderdesk-mcp serve`, production settings,
temporary data dirs: one with 1 tenant, one with 10,001 tenants for the authentication run)
and the reference server (official `mcp` SDK, MCPServer, stateless JSON responses, answering
from memory with the JSON our `get_order`/`list_orders` returned). Each throughput scenario
runs ours, reference, ours, reference and adds the two rounds up; the same is done for our
cached get_order through self-describing 2026-07-28 requests against a 2025-11-25 session
(`--eras-only` runs just that). Everything stops at the end;
every run is bounded in time and request count. Then the upstream requests per workflow
(scripts/bench/workflows.py, docs/bench/workflows.json) and the cross-tenant latency under a
burst (scripts/bench/fairness.py, docs/bench/fairness.json), and the upstream efficiency of
2 and 4 serve processes sharing Redis (scripts/bench/group_upstream.py,
docs/bench/group_upstream.json).
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench.fairness import DEFAULT_OUT as FAIRNESS_OUT
from scripts.bench.fairness import print_table as print_fairness
from scripts.bench.fairness import run as run_fairness
from scripts.bench.group_upstream import DEFAULT_OUT as GROUP_UPSTREAM_OUT
from scripts.bench.group_upstream import print_table as print_group_upstream
from scripts.bench.group_upstream import run as run_group_upstream
from scripts.bench.loadgen import (
    LoadResult,
    McpCallError,
    McpConnection,
    StatelessConnection,
    run_load,
)
from scripts.bench.processes import (
    ROOT,
    ManagedProcess,
    machine,
    start_our_server,
    start_reference_server,
    start_sandbox,
)
from scripts.bench.stack import (
    SERVER_ENV,
    StoreRef,
    add_filler_tenants,
    add_tenants,
    init_data_dir,
)
from scripts.bench.upstream import bucket_excess, order_ids, reset_store, store_stats
from scripts.bench.workflows import DEFAULT_OUT as WORKFLOWS_OUT
from scripts.bench.workflows import print_table as print_workflows
from scripts.bench.workflows import run_workflows, write_results

CACHED_STORE = StoreRef("400001", f"sk_bench_{secrets.token_hex(6)}", "cached")
GOVERNOR_STORE = StoreRef("400002", f"sk_bench_{secrets.token_hex(6)}", "governor")
COALESCE_STORE = StoreRef("400003", f"sk_bench_{secrets.token_hex(6)}", "coalesce")
BUCKET_CAPACITY = 20
REFILL_PER_SECOND = 3.0
FILLER_TENANTS = 10_000
BUSY_RETRIES = 400
BUSY_RETRY_SECONDS = 0.5
DEFAULT_OUT = ROOT / "docs" / "bench" / "latest.json"
ERAS_OUT = ROOT / "docs" / "bench" / "eras.json"
ERA_CONCURRENCY = (1, 10)


@dataclass(frozen=True)
class Durations:
    throughput_s: float
    auth_s: float
    governor_calls: int
    coalesced_calls: int

    @classmethod
    def for_mode(cls, quick: bool) -> Durations:
        if quick:
            return cls(throughput_s=2.0, auth_s=2.0, governor_calls=40, coalesced_calls=20)
        return cls(throughput_s=6.0, auth_s=6.0, governor_calls=200, coalesced_calls=50)


class Target:
    """One server under test: how to connect a worker and what to send.

    `connection` is the protocol era: McpConnection opens a 2025-11-25 session (initialize),
    StatelessConnection sends self-describing 2026-07-28 requests (after one server/discover).
    """

    def __init__(
        self,
        name: str,
        url: str,
        token: str | None,
        connection: type[McpConnection] = McpConnection,
    ) -> None:
        self.name = name
        self.url = url
        self.token = token
        self.connection = connection

    def connect(self) -> McpConnection:
        connection = self.connection(self.url, self.token, timeout=120)
        connection.initialize()
        return connection


def tool_request(
    target: Target, tool: str, arguments: dict[str, Any]
) -> Callable[[int], Callable[[], None]]:
    def make(_index: int) -> Callable[[], None]:
        connection = target.connect()
        return lambda: _discard(connection.call_tool(tool, arguments))

    return make


def method_request(target: Target, method: str) -> Callable[[int], Callable[[], None]]:
    def make(_index: int) -> Callable[[], None]:
        connection = target.connect()
        return lambda: _discard(connection.request(method, {}))

    return make


def initialize_request(target: Target) -> Callable[[int], Callable[[], None]]:
    """A whole handshake per request (initialize + notifications/initialized)."""

    def make(_index: int) -> Callable[[], None]:
        connection = McpConnection(target.url, target.token, timeout=120)
        return lambda: _discard(connection.initialize())

    return make


def _discard(_value: object) -> None:
    return None


def merge_rounds(rounds: list[LoadResult]) -> dict[str, Any]:
    """Two alternating rounds as one figure: summed requests and time, worst tail, mean p50."""
    requests = sum(r.requests for r in rounds)
    errors = sum(r.errors for r in rounds)
    elapsed = sum(r.elapsed_s for r in rounds)
    good = requests - errors
    return {
        "concurrency": rounds[0].concurrency,
        "requests": requests,
        "errors": errors,
        "rps": round(good / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(sum(r.p50_ms for r in rounds) / len(rounds), 3),
        "p90_ms": round(max(r.p90_ms for r in rounds), 3),
        "p99_ms": round(max(r.p99_ms for r in rounds), 3),
        "max_ms": round(max(r.max_ms for r in rounds), 3),
        "error_samples": [s for r in rounds for s in r.error_samples][:3],
    }


def compare(
    label: str,
    ours: Target,
    reference: Target,
    make: Callable[[Target], Callable[[int], Callable[[], None]]],
    concurrency: int,
    duration_s: float,
    names: tuple[str, str] = ("ours", "reference"),
) -> dict[str, Any]:
    """ours, reference, ours, reference; the rps ratio is ours / reference.

    `names` label the two sides in the row (the era comparison runs two targets of ours).
    """
    first, second = names
    results: dict[str, list[LoadResult]] = {first: [], second: []}
    for _round in range(2):
        for key, target in ((first, ours), (second, reference)):
            result = run_load(
                f"{label} {target.name}",
                concurrency,
                make(target),
                duration_s=duration_s / 2,
                max_requests=200_000,
                warmup_requests=3,
            )
            results[key].append(result)
    merged = {key: merge_rounds(value) for key, value in results.items()}
    reference_rps = merged[second]["rps"]
    ratio = round(merged[first]["rps"] / reference_rps, 2) if reference_rps else None
    print(
        f"  {label:<28} c={concurrency:<3} {first} {merged[first]['rps']:>7.1f} rps "
        f"p50 {merged[first]['p50_ms']:.2f} ms | {second} {reference_rps:>7.1f} rps "
        f"p50 {merged[second]['p50_ms']:.2f} ms | ratio {ratio}",
        flush=True,
    )
    return {
        "label": label,
        "concurrency": concurrency,
        **merged,
        f"rps_ratio_{first}_to_{second}": ratio,
    }


def eras(url: str, token: str, order_id: str, duration_s: float) -> list[dict[str, Any]]:
    """Cached get_order on one server: 2026-07-28 stateless requests vs a 2025-11-25 session.

    Same server, key and order, alternating rounds; the ratio is stateless / session rps.
    """
    stateless = Target("2026-07-28", url, token, StatelessConnection)
    session = Target("2025-11-25", url, token)
    arguments = {"order_id": order_id}
    print("protocol eras (cached get_order, 2026-07-28 vs 2025-11-25 session):", flush=True)
    return [
        compare(
            "get_order cached",
            stateless,
            session,
            lambda t: tool_request(t, "get_order", arguments),
            concurrency,
            duration_s,
            names=("stateless", "session"),
        )
        for concurrency in ERA_CONCURRENCY
    ]


def fetch_fixtures(ours: Target, order_id: str, path: Path) -> None:
    """What our server returns for get_order and list_orders, for the reference to hold."""
    connection = ours.connect()
    order = connection.call_tool("get_order", {"order_id": order_id})["structuredContent"]
    listing = connection.call_tool("list_orders", {"limit": 20})["structuredContent"]
    connection.close()
    path.write_text(json.dumps({"orders": {order_id: order}, "list_orders": listing}))


def concurrent_calls(
    target: Target, store_alias: str, ids: list[str], label: str
) -> tuple[LoadResult, float]:
    """One get_order per id, all at once (one worker and session each); (result, seconds)."""
    next_id = iter(ids).__next__
    lock = threading.Lock()

    def make(_index: int) -> Callable[[], None]:
        # A connection per request (as behind nginx): waitress serves at most 100 connections
        # at once (its connection_limit), so 200 held keep-alive sockets would stall it.
        connection = target.connect()
        connection.close()

        def call() -> None:
            with lock:
                order_id = next_id()
            arguments = {"order_id": order_id, "store": store_alias}
            try:
                # Calls over the server's bounds are answered busy at once, with a retry hint;
                # a client retries them (bounded), so every call still reaches the governor.
                for _attempt in range(BUSY_RETRIES):
                    try:
                        connection.call_tool("get_order", arguments)
                        return
                    except McpCallError as error:
                        if "Retry in" not in str(error) and "then retry" not in str(error):
                            raise
                        time.sleep(BUSY_RETRY_SECONDS)
                connection.call_tool("get_order", arguments)
            finally:
                connection.close()

        return call

    result = run_load(
        label,
        len(ids),
        make,
        duration_s=600,
        max_requests=len(ids),
        warmup_requests=0,
        one_request_per_worker=True,
    )
    return result, result.elapsed_s


def governor(
    target: Target, base_url: str, admin_url: str, calls: int, coalesced: int
) -> dict[str, Any]:
    store = GOVERNOR_STORE
    ids = order_ids(base_url, store.store_id, store.api_key, calls)
    reset_store(admin_url, store.store_id)
    result, elapsed = concurrent_calls(target, store.alias, ids, "governor distinct")
    stats = store_stats(admin_url, store.store_id)
    minimum_s = max(0.0, (calls - BUCKET_CAPACITY) / REFILL_PER_SECOND)
    sustained = (calls - BUCKET_CAPACITY) / max(elapsed, 1e-9) if calls > BUCKET_CAPACITY else 0
    distinct = {
        "calls": calls,
        "errors": result.errors,
        "error_samples": result.error_samples[:3],
        "seconds": round(elapsed, 2),
        "theoretical_minimum_s": round(minimum_s, 2),
        "time_over_minimum": round(elapsed / minimum_s, 3) if minimum_s else None,
        "sustained_rps_after_burst": round(sustained, 2),
        "share_of_3_per_s": round(sustained / REFILL_PER_SECOND, 3),
        "upstream_requests": stats["served"],
        "upstream_429": stats["rejected_429"],
        "bucket_window_excess": round(bucket_excess(stats), 2),
    }
    print(f"  governor: {json.dumps(distinct)}", flush=True)
    coalesce = COALESCE_STORE
    (order_id,) = order_ids(base_url, coalesce.store_id, coalesce.api_key, 1)
    reset_store(admin_url, coalesce.store_id)
    same = [order_id] * coalesced
    result, elapsed = concurrent_calls(target, coalesce.alias, same, "governor identical")
    stats = store_stats(admin_url, coalesce.store_id)
    identical = {
        "calls": coalesced,
        "errors": result.errors,
        "seconds": round(elapsed, 2),
        "upstream_requests": stats["served"],
        "upstream_429": stats["rejected_429"],
    }
    print(f"  identical: {json.dumps(identical)}", flush=True)
    return {"distinct_uncached": distinct, "identical_concurrent": identical}


def auth_cost(one: Target, many: Target, order_id: str, duration_s: float) -> dict[str, Any]:
    """Cached get_order at concurrency 1 on a 1-tenant and a 10,001-tenant database."""
    rounds: dict[str, list[LoadResult]] = {"one": [], "many": []}
    arguments = {"order_id": order_id}
    for _round in range(2):
        for key, target in (("one", one), ("many", many)):
            rounds[key].append(
                run_load(
                    f"auth {key}",
                    1,
                    tool_request(target, "get_order", arguments),
                    duration_s=duration_s / 2,
                    max_requests=100_000,
                    warmup_requests=20,
                )
            )
    merged = {key: merge_rounds(value) for key, value in rounds.items()}
    ratio = round(merged["many"]["p50_ms"] / merged["one"]["p50_ms"], 3)
    rps_ratio = round(merged["many"]["rps"] / merged["one"]["rps"], 3)
    print(
        f"  auth: 1 tenant p50 {merged['one']['p50_ms']:.3f} ms, {FILLER_TENANTS + 1} tenants "
        f"p50 {merged['many']['p50_ms']:.3f} ms (ratio {ratio}); rps ratio {rps_ratio}",
        flush=True,
    )
    return {
        "tenants": [1, FILLER_TENANTS + 1],
        "one_tenant": merged["one"],
        "many_tenants": merged["many"],
        "p50_ratio_many_to_one": ratio,
        "rps_ratio_many_to_one": rps_ratio,
    }


def budgets(results: dict[str, Any]) -> dict[str, Any]:
    throughput = {row["label"] + f" c{row['concurrency']}": row for row in results["throughput"]}
    c1 = throughput["get_order cached c1"]
    c10 = throughput["get_order cached c10"]
    distinct = results["governor"]["distinct_uncached"]
    identical = results["governor"]["identical_concurrent"]
    return {
        "get_order_c1_ratio_at_least_1_5": (c1["rps_ratio_ours_to_reference"] or 0) >= 1.5,
        "get_order_c10_ratio_at_least_1_5": (c10["rps_ratio_ours_to_reference"] or 0) >= 1.5,
        "get_order_c1_p50_at_most_1_5_ms": c1["ours"]["p50_ms"] <= 1.5,
        "rss_after_load_at_most_80_mb": results["rss_mb"]["after_load"] <= 80,
        "governor_at_least_95_percent_of_3_per_s": distinct["share_of_3_per_s"] >= 0.95,
        "governor_zero_429": distinct["upstream_429"] == 0 and identical["upstream_429"] == 0,
        "identical_calls_one_upstream_request": identical["upstream_requests"] == 1,
        "auth_10000_tenants_within_10_percent": results["auth"]["p50_ratio_many_to_one"] <= 1.1,
    }


def run(quick: bool, out: Path) -> dict[str, Any]:
    durations = Durations.for_mode(quick)
    stores = [CACHED_STORE, GOVERNOR_STORE, COALESCE_STORE]
    running: list[ManagedProcess] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="orderdesk-bench-") as temp:
        work = Path(temp)
        try:
            sandbox, base_url, admin_url = start_sandbox(
                [(s.store_id, s.api_key, "demo") for s in stores], work
            )
            running.append(sandbox)
            print(f"sandbox at {base_url}", flush=True)
            one_dir, many_dir = work / "one-tenant", work / "many-tenants"
            init_data_dir(one_dir)
            (tenant,) = add_tenants(one_dir, [("bench", stores)], base_url)
            # The authentication pair: two fresh servers that differ only in tenant count.
            auth_dir = work / "auth-one-tenant"
            init_data_dir(auth_dir)
            (auth_tenant,) = add_tenants(auth_dir, [("bench", stores)], base_url)
            init_data_dir(many_dir)
            (many_tenant,) = add_tenants(many_dir, [("bench", stores)], base_url)
            add_filler_tenants(many_dir, FILLER_TENANTS)

            server, url, startup_s = start_our_server(one_dir, work, SERVER_ENV)
            running.append(server)
            time.sleep(1.0)
            rss_idle = server.rss_mb()
            print(f"our server at {url}: first /health 200 after {startup_s:.2f} s", flush=True)
            ours = Target("ours", url, tenant.token)
            (order_id,) = order_ids(base_url, CACHED_STORE.store_id, CACHED_STORE.api_key, 1)
            fixtures = work / "fixtures.json"
            fetch_fixtures(ours, order_id, fixtures)
            ref_process, ref_url, ref_startup_s = start_reference_server(fixtures, work)
            running.append(ref_process)
            reference = Target("reference", ref_url, None)
            print(f"reference at {ref_url}: accepting after {ref_startup_s:.2f} s", flush=True)

            arguments = {"order_id": order_id}
            list_arguments = {"limit": 20}
            scenarios: list[tuple[str, Callable[[Target], Any], int]] = [
                ("get_order cached", lambda t: tool_request(t, "get_order", arguments), 1),
                ("get_order cached", lambda t: tool_request(t, "get_order", arguments), 10),
                ("get_order cached", lambda t: tool_request(t, "get_order", arguments), 50),
                (
                    "list_orders 20 cached",
                    lambda t: tool_request(t, "list_orders", list_arguments),
                    1,
                ),
                (
                    "list_orders 20 cached",
                    lambda t: tool_request(t, "list_orders", list_arguments),
                    10,
                ),
                ("tools/list", lambda t: method_request(t, "tools/list"), 1),
                ("initialize", initialize_request, 1),
            ]
            print("throughput (ours vs reference, alternating rounds):", flush=True)
            throughput = [
                compare(label, ours, reference, make, concurrency, durations.throughput_s)
                for label, make, concurrency in scenarios
            ]
            era_rows = eras(url, tenant.token, order_id, durations.throughput_s)
            rss_after_load = server.rss_mb()

            one_server, one_url, _one_startup_s = start_our_server(
                auth_dir, work, SERVER_ENV, name="orderdesk-mcp-1-tenant"
            )
            running.append(one_server)
            many_server, many_url, many_startup_s = start_our_server(
                many_dir, work, SERVER_ENV, name="orderdesk-mcp-10k"
            )
            running.append(many_server)
            one = Target("ours-1", one_url, auth_tenant.token)
            many = Target("ours-10k", many_url, many_tenant.token)
            for target in (one, many):  # fill each server's cache
                _discard(target.connect().call_tool("get_order", arguments))
            auth = auth_cost(one, many, order_id, durations.auth_s)
            for process in (many_server, one_server):
                process.stop()
                running.remove(process)

            governed = governor(
                ours, base_url, admin_url, durations.governor_calls, durations.coalesced_calls
            )
            rss_end = server.rss_mb()
        finally:
            for process in reversed(running):
                process.stop()
    results: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "settings": {**SERVER_ENV, "threads": "8 (default)"},
        "startup_s": {
            "ours_first_health_200": round(startup_s, 3),
            "ours_10k_tenants_first_health_200": round(many_startup_s, 3),
            "reference_accepting": round(ref_startup_s, 3),
        },
        "rss_mb": {"idle": rss_idle, "after_load": rss_after_load, "end": rss_end},
        "throughput": throughput,
        "eras": era_rows,
        "auth": auth,
        "governor": governed,
        "run_seconds": round(time.perf_counter() - started, 1),
    }
    results["budgets"] = budgets(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def print_table(results: dict[str, Any]) -> None:
    print()
    print_rows("scenario", results["throughput"], ("ours", "reference"), ("ours", "ref"))
    print_eras(results["eras"])
    print(f"RSS (MB): {results['rss_mb']}")
    print(f"start-up (s): {results['startup_s']}")
    print(f"auth p50 ratio 10,001 vs 1 tenant: {results['auth']['p50_ratio_many_to_one']}")
    print(f"governor: {json.dumps(results['governor'])}")
    print("budgets:")
    for name, met in results["budgets"].items():
        print(f"  {'met   ' if met else 'MISSED'} {name}")
    print(f"run took {results['run_seconds']} s")


def print_rows(
    title: str, rows: list[dict[str, Any]], keys: tuple[str, str], shown: tuple[str, str]
) -> None:
    """rps, ratio and p50/p99 of the two sides of each compared row."""
    one, two = shown
    print(
        f"{title:<28} {'c':>3} {one + ' rps':>9} {two + ' rps':>9} {'ratio':>6} "
        f"{one + ' p50/p99 ms':>17} {two + ' p50/p99 ms':>17}"
    )
    for row in rows:
        a, b = row[keys[0]], row[keys[1]]
        ratio = row[f"rps_ratio_{keys[0]}_to_{keys[1]}"] or 0
        print(
            f"{row['label']:<28} {row['concurrency']:>3} {a['rps']:>9.1f} {b['rps']:>9.1f} "
            f"{ratio:>6.2f} "
            f"{a['p50_ms']:>8.2f}/{a['p99_ms']:<8.2f} {b['p50_ms']:>8.2f}/{b['p99_ms']:<8.2f}"
        )


def print_eras(rows: list[dict[str, Any]]) -> None:
    print_rows("eras", rows, ("stateless", "session"), ("2026", "2025"))


def run_eras_only(quick: bool, out: Path) -> dict[str, Any]:
    """Only the era comparison: the sandbox and one server of ours, nothing else."""
    durations = Durations.for_mode(quick)
    running: list[ManagedProcess] = []
    with tempfile.TemporaryDirectory(prefix="orderdesk-bench-") as temp:
        work = Path(temp)
        try:
            store = CACHED_STORE
            sandbox, base_url, _admin_url = start_sandbox(
                [(store.store_id, store.api_key, "demo")], work
            )
            running.append(sandbox)
            data_dir = work / "one-tenant"
            init_data_dir(data_dir)
            (tenant,) = add_tenants(data_dir, [("bench", [store])], base_url)
            server, url, _startup_s = start_our_server(data_dir, work, SERVER_ENV)
            running.append(server)
            (order_id,) = order_ids(base_url, store.store_id, store.api_key, 1)
            Target("ours", url, tenant.token).connect().call_tool(
                "get_order", {"order_id": order_id}
            )  # fills the cache
            rows = eras(url, tenant.token, order_id, durations.throughput_s)
        finally:
            for process in reversed(running):
                process.stop()
    results = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "settings": {**SERVER_ENV, "threads": "8 (default)"},
        "eras": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke check)")
    parser.add_argument("--out", type=Path, default=None, help=f"default {DEFAULT_OUT}")
    parser.add_argument(
        "--eras-only",
        action="store_true",
        help=f"only cached get_order at 2026-07-28 vs a 2025-11-25 session (default {ERAS_OUT})",
    )
    args = parser.parse_args()
    if args.eras_only:
        print()
        print_eras(run_eras_only(args.quick, args.out or ERAS_OUT)["eras"])
        return
    print_table(run(args.quick, args.out or DEFAULT_OUT))
    print("\nupstream requests per workflow:", flush=True)
    counts = run_workflows()
    print_workflows(counts)
    write_results(counts, WORKFLOWS_OUT)
    print("\ncross-tenant latency under a burst:", flush=True)
    print_fairness(run_fairness(FAIRNESS_OUT))
    print("\nupstream efficiency of a server group sharing Redis:", flush=True)
    print_group_upstream(run_group_upstream([2, 4], 30.0, GROUP_UPSTREAM_OUT))
    # Imported here: the multiprocess benchmark reuses this module's targets and stores.
    from scripts.bench import multiprocess

    print("\nseveral serve processes on one host (one run; --repeat and --base there):")
    multiprocess.print_summary(
        multiprocess.run(args.quick, 1, None, multiprocess.DEFAULT_OUT, only=[])
    )


if __name__ == "__main__":
    main()
