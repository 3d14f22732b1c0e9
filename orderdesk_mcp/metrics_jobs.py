"""/metrics gauges for the operator jobs the CLI runs (backup, upload, restore_test, maintain).

The server never runs these jobs; the CLI records each run in `job_run` (jobs.py) and this
collector reads the newest rows when Prometheus scrapes (a handful of indexed queries), so an
alert fires when a timer stops succeeding, even on a host that did not run it.

`last_backup_timestamp_seconds` is the one answer to "how old is the newest backup": the
newer of the newest archive in <data dir>/backups and the newest successful `backup` job. The
archive covers backups made before jobs were recorded (or by hand); the job row covers hosts
whose archives live elsewhere (another host of a PostgreSQL group, off-site only).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orderdesk_mcp.backup import latest_backup
from orderdesk_mcp.jobs import JobOutcome, newest_outcomes
from orderdesk_mcp.services import Services

log = logging.getLogger(__name__)

PREFIX = "orderdesk_mcp"
MAX_KINDS = 16
"""The CLI writes a few fixed kinds; a cap keeps a stray row from growing the series."""
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def unix_time(moment: dt.datetime) -> float:
    """A naive UTC datetime (as the models store them) as Unix time."""
    return moment.replace(tzinfo=dt.UTC).timestamp()


class JobMetrics(Collector):
    """Per job kind: when it last ran, whether that run succeeded, when it last succeeded."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterable[Metric]:
        try:
            outcomes = newest_outcomes(self._services.database)
        except Exception:
            # A failing query must not break the whole scrape; /health/ready reports it.
            log.warning("job outcomes could not be read for /metrics", exc_info=True)
            outcomes = {}
        kinds = sorted(kind for kind in outcomes if _KIND_RE.fullmatch(kind))[:MAX_KINDS]
        last_run = GaugeMetricFamily(
            f"{PREFIX}_job_last_run_timestamp_seconds",
            "When the newest run of each CLI job (backup, upload, restore_test, maintain) "
            "finished, ok or not (Unix time).",
            labels=["kind"],
        )
        last_ok = GaugeMetricFamily(
            f"{PREFIX}_job_last_run_ok",
            "1 if the newest run of the job succeeded, 0 if it failed.",
            labels=["kind"],
        )
        last_success = GaugeMetricFamily(
            f"{PREFIX}_job_last_success_timestamp_seconds",
            "When the newest successful run of the job finished (Unix time); absent if none.",
            labels=["kind"],
        )
        last_size = GaugeMetricFamily(
            f"{PREFIX}_job_last_success_size_bytes",
            "Bytes the newest successful run reported (archive or database size).",
            labels=["kind"],
        )
        for kind in kinds:
            newest, newest_ok = outcomes[kind]
            if newest is not None:
                last_run.add_metric([kind], unix_time(newest.finished))
                last_ok.add_metric([kind], 1.0 if newest.outcome == "ok" else 0.0)
            if newest_ok is not None:
                last_success.add_metric([kind], unix_time(newest_ok.finished))
                if newest_ok.size_bytes is not None:
                    last_size.add_metric([kind], float(newest_ok.size_bytes))
        yield from (last_run, last_ok, last_success, last_size)
        backup_time = self._last_backup_time(outcomes.get("backup", (None, None))[1])
        if backup_time is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_last_backup_timestamp_seconds",
                "When the newest backup was taken (Unix time): the newer of the newest archive "
                "in <data dir>/backups and the newest successful backup job; absent if none.",
                value=backup_time,
            )

    def _last_backup_time(self, newest_ok_backup: JobOutcome | None) -> float | None:
        candidates = []
        newest_archive = latest_backup(self._services.settings.backups_dir)
        if newest_archive is not None:
            candidates.append(unix_time(newest_archive.created))
        if newest_ok_backup is not None:
            candidates.append(unix_time(newest_ok_backup.finished))
        return max(candidates, default=None)


def register_job_metrics(registry: CollectorRegistry, services: Services) -> None:
    """Add the job gauges (and the backup age) to an app's registry (metrics.init_app)."""
    registry.register(JobMetrics(services))
