"""/metrics gauges for readiness: the checks of /health/ready, run when Prometheus scrapes.

An alert on `orderdesk_mcp_ready == 0` needs no blackbox exporter, and the per-check gauge
says which check failed. Each check is bounded (about a second at most, readiness.py), so a
scrape stays quick even when the database is locked.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orderdesk_mcp.readiness import READINESS_CHECKS
from orderdesk_mcp.services import Services

PREFIX = "orderdesk_mcp"


class ReadinessMetrics(Collector):
    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterable[Metric]:
        results = {name: check(self._services).ok for name, check in READINESS_CHECKS.items()}
        per_check = GaugeMetricFamily(
            f"{PREFIX}_readiness_check_ok",
            "1 if this /health/ready check passes (database, cache, master_key, disk_space).",
            labels=["check"],
        )
        for name, ok in results.items():
            per_check.add_metric([name], 1.0 if ok else 0.0)
        yield per_check
        yield GaugeMetricFamily(
            f"{PREFIX}_ready",
            "1 if /health/ready would answer 200 (every check passes), else 0.",
            value=1.0 if all(results.values()) else 0.0,
        )


def register_readiness_metrics(registry: CollectorRegistry, services: Services) -> None:
    registry.register(ReadinessMetrics(services))
