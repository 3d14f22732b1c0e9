"""What the PostgreSQL connection pool saves per request, measured side by side.

    .venv/bin/python -m scripts.bench.postgres_pool [--requests 2000]

Starts a throwaway PostgreSQL cluster (tests/real_servers.py), then runs the app's per-request
database pattern (connect, the API-key lookup, close) against two databases: a plain
PostgresqlDatabase, whose close ends the connection (a new TCP connection and authentication
per request), and the pooled database `open_database` uses, whose close hands it back.
Prints the median and p95 per request in milliseconds and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import peewee
from playhouse.pool import PooledPostgresqlDatabase

from orderdesk_mcp.db.connection import POSTGRES_POOL, postgres_database
from orderdesk_mcp.db.migrations import apply_migrations
from tests.real_servers import PostgresServer

LOOKUP = (
    "SELECT k.id, k.secret_hash, t.disabled FROM api_key AS k "
    "JOIN tenant AS t ON t.id = k.tenant_id WHERE k.public_id = %s"
)


def per_request_ms(database: peewee.Database, requests: int) -> list[float]:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        database.connect(reuse_if_open=True)
        database.execute_sql(LOOKUP, ("missing00000",)).fetchone()
        database.close()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database("bench")
        plain = postgres_database(url)
        with plain.connection_context():
            apply_migrations(plain)
        pooled_params = dict(plain.connect_params)
        pooled = PooledPostgresqlDatabase(
            plain.database,
            max_connections=8 + POSTGRES_POOL.extra_connections,
            stale_timeout=POSTGRES_POOL.stale_seconds,
            **pooled_params,
        )
        rounds = 4
        per_round = max(1, args.requests // rounds)
        runs: dict[str, Callable[[], list[float]]] = {
            "connect per request": lambda: per_request_ms(plain, per_round),
            "pooled (open_database)": lambda: per_request_ms(pooled, per_round),
        }
        # Interleave short rounds so background load on the machine hits both alike.
        results: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, run in runs.items():
                results[name] += run()
        medians = {}
        for name, samples in results.items():
            median, p95 = summary(samples)
            medians[name] = median
            print(f"{name:<24} median {median:6.3f} ms   p95 {p95:6.3f} ms")
        ratio = medians["connect per request"] / medians["pooled (open_database)"]
        print(f"pooled is {ratio:.1f}x faster per request")
        pooled.close_all()
    finally:
        server.close()


if __name__ == "__main__":
    main()
