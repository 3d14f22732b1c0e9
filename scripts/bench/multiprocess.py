"""Several serve processes on one host: cached get_order at concurrency 10, side by side.

    .venv/bin/python -m scripts.bench.multiprocess [--quick] [--repeat 3] [--base /tmp/base]

Starts the sandbox, a throwaway redis-server, and on one data dir: two serve processes sharing
one port (ORDERDESK_MCP_REUSE_PORT, the template unit's default recipe), two more on a port
each, nginx in front of both pairs (one upstream per recipe), one lone process (the default,
no Redis), the SDK reference server as its users run it (one process) and with 2 uvicorn
workers. `--base DIR` also serves a lone process from another checkout (e.g. `git worktree
add /tmp/base <commit>`) for the before/after row. Each row alternates its two sides (a, b,
a, b) and reports the summed rps ratio; `--repeat` runs every row again for the spread.
Writes docs/bench/multiprocess.json. Bounded: every round is time- and count-limited.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.loadgen import LoadResult, run_load
from scripts.bench.processes import (
    PYTHON,
    ROOT,
    ManagedProcess,
    free_port,
    machine,
    start_reference_server,
    start_sandbox,
    wait_for_200,
    wait_for_port,
)
from scripts.bench.run import CACHED_STORE, Target, fetch_fixtures, merge_rounds, tool_request
from scripts.bench.stack import SERVER_ENV, add_tenants, init_data_dir
from scripts.bench.upstream import order_ids

DEFAULT_OUT = ROOT / "docs" / "bench" / "multiprocess.json"
CONCURRENCY = 10

NGINX_CONF = """
worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream shared_port {{ server 127.0.0.1:{shared}; keepalive 32; }}
    upstream port_each {{ {each} keepalive 32; }}
    server {{
        listen 127.0.0.1:{front_shared};
        location / {{
            proxy_pass http://shared_port;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
    server {{
        listen 127.0.0.1:{front_each};
        location / {{
            proxy_pass http://port_each;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""


def start_redis(work: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    password = secrets.token_hex(16)
    command = [
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--requirepass", password,
    ]  # fmt: skip
    process = ManagedProcess("redis", command, work)
    wait_for_port(port, process)
    return process, f"redis://:{password}@127.0.0.1:{port}/0"


def start_serve(
    name: str, port: int, env: dict[str, str], work: Path, cwd: Path = ROOT
) -> ManagedProcess:
    """One `orderdesk-mcp serve` on `port`, run from the checkout `cwd`; returns once it logged
    that it listens (on a shared port, /health may be answered by a sibling)."""
    command = [PYTHON, "-m", "orderdesk_mcp", "serve", "--port", str(port)]
    process = ManagedProcess(name, command, work, env=env, cwd=cwd)
    deadline = time.monotonic() + 60
    while "serving MCP on" not in process.log_path.read_text(errors="replace"):
        if process.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start; see {process.log_path}")
        time.sleep(0.05)
    wait_for_200(f"http://127.0.0.1:{port}/health", process)
    return process


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ORDERDESK_")}


def base_data_dir(base: Path, data_dir: Path, sandbox_url: str) -> str:
    """A data dir made by the other checkout's own CLI (its schema); returns the API key."""
    env = {**_environ(), "ORDERDESK_MCP_DATA_DIR": str(data_dir)}

    def cli(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [PYTHON, "-m", "orderdesk_mcp", *args],
            cwd=base, env=env, input=stdin, capture_output=True, text=True, timeout=120,
            check=True,
        )  # fmt: skip
        return done.stdout

    cli("init")
    token = str(json.loads(cli("tenant", "create", "bench", "--json"))["api_key"])
    store = CACHED_STORE
    cli("store", "add", "--tenant", "bench", "--store-id", store.store_id, "--alias",
        store.alias, "--api-key-stdin", "--base-url", sandbox_url, "--no-verify",
        stdin=store.api_key)  # fmt: skip
    return token


def start_nginx(work: Path, shared: int, each: list[int]) -> tuple[ManagedProcess, str, str]:
    root = work / "nginx"
    root.mkdir()
    front_shared, front_each = free_port(), free_port()
    servers = " ".join(f"server 127.0.0.1:{port};" for port in each)
    conf = root / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            root=root,
            shared=shared,
            each=servers,
            front_shared=front_shared,
            front_each=front_each,
        )
    )
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    process = ManagedProcess(
        "nginx", [binary, "-p", str(root), "-c", str(conf), "-g", "daemon off;"], work
    )
    wait_for_port(front_shared, process)
    wait_for_port(front_each, process)
    return (
        process,
        f"http://127.0.0.1:{front_shared}/mcp",
        f"http://127.0.0.1:{front_each}/mcp",
    )


class Measured(Target):
    """A target and the server processes behind it (their CPU time is measured)."""

    def __init__(self, name: str, url: str, token: str | None, pids: list[int]) -> None:
        super().__init__(name, url, token)
        self.pids = pids


def tree_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants so far."""
    ticks, seen, stack = 0, set(), list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            # Fields after the command name: state is the first, utime the 12th, stime the 13th.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{pid}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:  # gone meanwhile
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def alternate(
    label: str,
    first: Measured,
    second: Measured,
    arguments: dict[str, Any],
    rounds: int,
    round_s: float,
) -> dict[str, Any]:
    """first, second, first, second, ... `rounds` times each; summed rps and their ratio.

    Many short alternating rounds: on a machine shared with other work, a burst of foreign
    load then hits both sides alike instead of one side's only round.
    """
    results: dict[str, list[LoadResult]] = {first.name: [], second.name: []}
    cpu_s = {first.name: 0.0, second.name: 0.0}
    for _round in range(rounds):
        for target in (first, second):
            make = tool_request(target, "get_order", arguments)
            before = tree_cpu_seconds(target.pids)
            results[target.name].append(
                run_load(
                    f"{label} {target.name}",
                    CONCURRENCY,
                    make,
                    duration_s=round_s,
                    max_requests=200_000,
                    warmup_requests=3,
                )
            )
            # Includes connecting the workers (a handshake each): small next to the round.
            cpu_s[target.name] += tree_cpu_seconds(target.pids) - before
    merged = {name: merge_rounds(value) for name, value in results.items()}
    for name, value in merged.items():
        value["server_cpu_ms_per_call"] = (
            round(cpu_s[name] * 1000 / value["requests"], 2) if value["requests"] else None
        )
    a, b = merged[first.name]["rps"], merged[second.name]["rps"]
    ratio = round(a / b, 2) if b else None
    cpu_a = merged[first.name]["server_cpu_ms_per_call"]
    cpu_b = merged[second.name]["server_cpu_ms_per_call"]
    print(
        f"  {label:<40} {first.name} {a:>7.1f} rps {cpu_a} ms CPU/call | "
        f"{second.name} {b:>7.1f} rps {cpu_b} ms CPU/call | ratio {ratio}",
        flush=True,
    )
    return {
        "label": label,
        "concurrency": CONCURRENCY,
        "first": {"name": first.name, **merged[first.name]},
        "second": {"name": second.name, **merged[second.name]},
        "rps_ratio": ratio,
    }


def run(quick: bool, repeat: int, base: Path | None, out: Path, only: list[str]) -> dict[str, Any]:
    rounds, round_s = (2, 1.5) if quick else (6, 2.0)
    running: list[ManagedProcess] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="orderdesk-bench-mp-") as temp:
        work = Path(temp)
        try:
            store = CACHED_STORE
            stores = [(store.store_id, store.api_key, "demo")]
            sandbox, base_url, _admin = start_sandbox(stores, work)
            running.append(sandbox)
            redis, redis_url = start_redis(work)
            running.append(redis)
            data_dir = work / "data"
            init_data_dir(data_dir)
            (tenant,) = add_tenants(data_dir, [("bench", [store])], base_url)
            lone_dir = work / "lone"
            init_data_dir(lone_dir)
            (lone_tenant,) = add_tenants(lone_dir, [("bench", [store])], base_url)
            (order_id,) = order_ids(base_url, store.store_id, store.api_key, 1)

            group_env = {
                **SERVER_ENV,
                "ORDERDESK_MCP_DATA_DIR": str(data_dir),
                "ORDERDESK_MCP_REDIS_URL": redis_url,
                "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
            }
            shared = free_port()
            shared_env = {**group_env, "ORDERDESK_MCP_REUSE_PORT": "true"}
            on_shared = [start_serve(f"shared-{i}", shared, shared_env, work) for i in (1, 2)]
            each = [free_port(), free_port()]
            on_each = [
                start_serve(f"port-{i}", port, group_env, work) for i, port in enumerate(each, 1)
            ]
            running += on_shared + on_each
            lone_port = free_port()
            lone_env = {**SERVER_ENV, "ORDERDESK_MCP_DATA_DIR": str(lone_dir)}
            lone_process = start_serve("lone-after", lone_port, lone_env, work)
            running.append(lone_process)
            # The same lone server in Prometheus multiprocess mode (what the unit sets).
            files_dir = work / "lone-files"
            init_data_dir(files_dir)
            (files_tenant,) = add_tenants(files_dir, [("bench", [store])], base_url)
            files_port = free_port()
            files_env = {
                **SERVER_ENV,
                "ORDERDESK_MCP_DATA_DIR": str(files_dir),
                "PROMETHEUS_MULTIPROC_DIR": str(work / "lone-metrics"),
            }
            files_process = start_serve("lone-metric-files", files_port, files_env, work)
            running.append(files_process)
            nginx, via_nginx_shared, via_nginx_each = start_nginx(work, shared, each)
            running.append(nginx)

            def pids(*processes: ManagedProcess) -> list[int]:
                return [process.pid for process in processes]

            group = Measured(
                "2 processes, one port",
                f"http://127.0.0.1:{shared}/mcp",
                tenant.token,
                pids(*on_shared),
            )
            nginx_shared = Measured(
                "nginx -> one port", via_nginx_shared, tenant.token, pids(nginx, *on_shared)
            )
            nginx_each = Measured(
                "nginx -> port each", via_nginx_each, tenant.token, pids(nginx, *on_each)
            )
            lone = Measured(
                "lone (after)",
                f"http://127.0.0.1:{lone_port}/mcp",
                lone_tenant.token,
                pids(lone_process),
            )
            files = Measured(
                "lone, metric files",
                f"http://127.0.0.1:{files_port}/mcp",
                files_tenant.token,
                pids(files_process),
            )
            for target in (group, nginx_each, lone, files):  # fill the caches
                target.connect().call_tool("get_order", {"order_id": order_id})
            fixtures = work / "fixtures.json"
            fetch_fixtures(group, order_id, fixtures)
            ref_process, ref_url, _ = start_reference_server(fixtures, work)
            running.append(ref_process)
            ref2_process, ref2_url, _ = start_reference_server(fixtures, work, workers=2)
            running.append(ref2_process)
            reference = Measured("SDK, 1 process", ref_url, None, pids(ref_process))
            reference_2 = Measured("SDK, 2 workers", ref2_url, None, pids(ref2_process))

            pairs: list[tuple[str, Measured, Measured]] = [
                ("2 procs vs SDK", group, reference),
                ("2 procs vs SDK 2 workers", group, reference_2),
                ("nginx: port each vs one port", nginx_each, nginx_shared),
                ("port each via nginx vs direct one port", nginx_each, group),
                ("scaling: 2 procs vs lone", group, lone),
                ("lone: metric files vs in memory", files, lone),
            ]
            if base is not None:
                base_dir = work / "base"
                base_token = base_data_dir(base, base_dir, base_url)
                base_port = free_port()
                base_env = {**SERVER_ENV, "ORDERDESK_MCP_DATA_DIR": str(base_dir)}
                base_process = start_serve("lone-before", base_port, base_env, work, cwd=base)
                running.append(base_process)
                before = Measured(
                    "lone (before)",
                    f"http://127.0.0.1:{base_port}/mcp",
                    base_token,
                    pids(base_process),
                )
                before.connect().call_tool("get_order", {"order_id": order_id})
                pairs.append(("lone: after vs before", lone, before))

            arguments = {"order_id": order_id}
            rows: list[dict[str, Any]] = []
            for run_index in range(repeat):
                print(f"run {run_index + 1} of {repeat} (cached get_order, c={CONCURRENCY}):")
                for label, first, second in pairs:
                    if only and not any(word in label for word in only):
                        continue
                    row = alternate(label, first, second, arguments, rounds, round_s)
                    rows.append({"run": run_index + 1, **row})
        finally:
            for process in reversed(running):
                process.stop()
    results = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "settings": {**SERVER_ENV, "threads": "8 (default) per process"},
        "rows": rows,
        "summary": summarize(rows),
        "run_seconds": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per row label: the ratios of every run, their min, median and max."""
    ratios: dict[str, list[float]] = {}
    for row in rows:
        ratio = row["rps_ratio"]
        if ratio is not None:
            ratios.setdefault(row["label"], []).append(float(ratio))
    return {
        label: {
            "min": min(values),
            "median": sorted(values)[len(values) // 2],
            "max": max(values),
            "runs": len(values),
        }
        for label, values in ratios.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds (a smoke check)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every row (spread)")
    parser.add_argument("--base", type=Path, default=None, help="checkout for the 'before' row")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--only", action="append", default=[], help="run only rows whose label has this word"
    )
    args = parser.parse_args()
    print_summary(run(args.quick, args.repeat, args.base, args.out, args.only))


def print_summary(results: dict[str, Any]) -> None:
    print("\nratio (first / second), min / median / max over runs:")
    for label, spread in results["summary"].items():
        print(f"  {label:<40} {spread['min']:.2f} / {spread['median']:.2f} / {spread['max']:.2f}")


if __name__ == "__main__":
    main()
