"""Review regression: a serve process starting must not make the group's counters go down.

/metrics of a group sums every process's counter files. Deleting the files of a process that
has exited lowers that sum (say from 500 to 300), and Prometheus reads any decrease as a
counter reset: increase() and rate() then count the whole remaining 300 as new, so alerts
such as `increase(orderdesk_mcp_upstream_rate_limited_total[15m]) > 20` fire after an
ordinary restart of one instance.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from orderdesk_mcp.metrics_multiprocess import MULTIPROC_DIR_VARIABLE, prepare_process_dir

_COUNT_THEN_EXIT = """
from prometheus_client import Counter, Gauge
Counter("odmcp_review_calls", "calls").inc(7)
Gauge("odmcp_review_live", "live", multiprocess_mode="livesum").set(1)
"""


def _total(directory: Path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    value = registry.get_sample_value("odmcp_review_calls_total")
    return float(value or 0.0)


def test_a_starting_process_keeps_the_counts_of_processes_that_exited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {MULTIPROC_DIR_VARIABLE: str(directory)}
    for _ in range(2):  # two earlier processes of the group, both gone now
        subprocess.run([sys.executable, "-c", _COUNT_THEN_EXIT], env=env, check=True)
    assert _total(directory) == 14.0
    monkeypatch.setenv(MULTIPROC_DIR_VARIABLE, str(directory))
    prepare_process_dir()
    assert _total(directory) == 14.0  # never lower: no false counter reset
    # Gauges of processes that are gone are dropped: they describe processes, not totals.
    assert not list(directory.glob("gauge_*"))
