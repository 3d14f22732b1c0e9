"""The Redis link on /metrics: whether this process reaches the group's Redis, and how many
calls its fallbacks answered instead (each a bucket or rate-limit operation)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orderdesk_mcp.coordination.link import RedisLink


class RedisLinkCollector(Collector):
    """Read at scrape time from the link, which counts for itself (no hook per call)."""

    def __init__(self, link: RedisLink, prefix: str) -> None:
        self._link = link
        self._prefix = prefix

    def collect(self) -> Iterable[Metric]:
        state = self._link.state()
        yield GaugeMetricFamily(
            f"{self._prefix}_redis_up",
            "1 while this process reaches the server group's Redis, 0 while it runs on local "
            "fallbacks.",
            value=1.0 if state.up else 0.0,
        )
        yield CounterMetricFamily(
            f"{self._prefix}_redis_fallback_calls",
            "Bucket and rate-limit operations answered by this process's local fallback "
            "because Redis did not answer.",
            value=float(state.fallback_calls),
        )
