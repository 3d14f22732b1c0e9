"""What `db maintain` costs beside a running server, and what it gives back (issue 15).

    .venv/bin/python -m scripts.bench.maintenance [--rows 100000] [--writes-per-second 50]

Builds a real database (the migrated schema, made as `init` makes it: incremental
auto-vacuum), fills `audit_event` with ``--rows`` rows of about 1 KB and deletes 90 % of them,
as a long retention period ending would. Then, on copies of that file:

- a writer thread stands in for the server: one small INSERT (its own connection, WAL,
  ``busy_timeout`` 5 s as the server's) ``--writes-per-second`` times a second, first with
  nothing else running (idle), then while the online `db maintain` runs; the figures are
  its write latencies side by side (median, p99, max);
- the online run's and the full run's duration and the file's size before and after.

In-process, no HTTP: the writer is what the server's audit writes meet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.maintenance import maintain

PAD = "x" * 900


def build(data_dir: Path, rows: int) -> Settings:
    data_dir.mkdir(parents=True)
    settings = load_settings({"ORDERDESK_MCP_DATA_DIR": str(data_dir)})
    database = open_database(settings)
    apply_migrations(database)
    database.close()
    moment = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    with closing(sqlite3.connect(settings.database_path)) as conn, conn:
        conn.executemany(
            "INSERT INTO audit_event (time, action, store, arguments, outcome, duration_ms, "
            "upstream_calls) VALUES (?, 'get_order', '100001', ?, 'ok', 1.0, 1)",
            ((moment, json.dumps({"n": n, "pad": PAD})) for n in range(rows)),
        )
        conn.execute("DELETE FROM audit_event WHERE id % 10 != 0")
        conn.execute("CREATE TABLE bench_writes (id INTEGER PRIMARY KEY, at REAL)")
    return settings


def write_latencies(path: Path, per_second: int, stop: threading.Event) -> list[float]:
    """Milliseconds per small committed INSERT, paced at `per_second`, until `stop`."""
    latencies: list[float] = []
    with closing(sqlite3.connect(path, timeout=5, isolation_level=None)) as conn:
        conn.execute("PRAGMA synchronous = NORMAL")
        interval = 1 / per_second
        while not stop.is_set():
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_writes (at) VALUES (?)", (time.time(),))
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(max(0.0, interval - (time.perf_counter() - started)))
    return latencies


def with_writer(
    path: Path, per_second: int, work: Callable[[], object] | float
) -> tuple[float, list[float]]:
    """Run `work()` (or sleep `work` seconds) beside the writer; its seconds and latencies."""
    stop = threading.Event()
    found: list[list[float]] = []
    writer = threading.Thread(
        target=lambda: found.append(write_latencies(path, per_second, stop)), daemon=True
    )
    writer.start()
    started = time.perf_counter()
    if callable(work):
        work()
    else:
        time.sleep(work)
    seconds = time.perf_counter() - started
    stop.set()
    writer.join()
    return seconds, found[0]


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{len(ordered)} writes, median {statistics.median(ordered):.2f} ms, "
        f"p99 {p99:.2f} ms, max {ordered[-1]:.2f} ms"
    )


def copy_of(template: Settings, data_dir: Path) -> Settings:
    shutil.copytree(template.data_dir, data_dir)
    return template.replace(data_dir=data_dir)


def size_change(before: int, settings: Settings) -> str:
    after = settings.database_path.stat().st_size
    return f"{before / 2**20:.1f} -> {after / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writes-per-second", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        template = build(Path(tmp) / "template", options.rows)
        size = template.database_path.stat().st_size
        print(f"database: {size / 2**20:.1f} MiB, 90 % of {options.rows} audit rows deleted")

        online = copy_of(template, Path(tmp) / "online")
        database = open_database(online)
        _, idle = with_writer(online.database_path, options.writes_per_second, 3.0)
        seconds, busy = with_writer(
            online.database_path,
            options.writes_per_second,
            lambda: maintain(online, database, full=False),
        )
        database.close()
        print(f"writer, idle:               {summary(idle)}")
        print(f"writer, during online run:  {summary(busy)}")
        print(f"online run: {seconds:.2f} s, {size_change(size, online)}")

        full = copy_of(template, Path(tmp) / "full")
        database = open_database(full)
        started = time.perf_counter()
        maintain(full, database, full=True)
        seconds = time.perf_counter() - started
        database.close()
        print(f"full run:   {seconds:.2f} s, {size_change(size, full)}")


if __name__ == "__main__":
    main()
