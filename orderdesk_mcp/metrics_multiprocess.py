"""Prometheus multiprocess mode: one scrape of /metrics, through any serve process of a
host's group, counts what every process of that host did.

It is prometheus_client's own mode, switched on by the environment variable
`PROMETHEUS_MULTIPROC_DIR` (the systemd template unit sets it; it must be set before the
process starts, because prometheus_client picks its value store at import). Then every
counter and histogram lives in memory-mapped files in that directory, one set per process,
and /metrics adds them up with `MultiProcessCollector`. Without the variable nothing changes:
each app keeps its own in-memory registry (tests build several apps in one process).

What the files cannot hold is computed by the process that answers the scrape: the gauges
read at scrape time (sessions, backups, ...) and the build info. `group_registry` serves both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    """The shared metrics directory when multiprocess mode is on, else None."""
    value = os.environ.get(MULTIPROC_DIR_VARIABLE, "").strip()
    return Path(value) if value else None


class _GroupCollector(Collector):
    """Every process's counters and histograms from the files, then the families of `local`
    the files do not hold (scrape-time gauges, build info, any custom collector registered
    later). The files are read once per scrape and their names taken from that same read."""

    def __init__(self, local: CollectorRegistry, directory: Path) -> None:
        self._local = local
        self._shared = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        shared = list(self._shared.collect())  # type: ignore[no-untyped-call]
        yield from shared
        in_files = {family.name for family in shared}
        for family in self._local.collect():
            if family.name not in in_files and family.samples:
                yield family


def group_registry(local: CollectorRegistry, directory: Path) -> CollectorRegistry:
    """A registry exposing every process's counters and histograms from `directory`, plus
    what `local` computes at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GroupCollector(local, directory))
    return registry


def prepare_process_dir() -> None:
    """At `serve` start: create the directory and drop the gauge files of processes that
    are gone (a gauge describes a process, and a killed one never marked itself dead).

    Counter and histogram files of processes that are gone stay: /metrics sums every file,
    and dropping one would make the group's totals go down while the other processes keep
    counting. Prometheus reads any decrease as a counter reset and counts the whole
    remaining total as new in increase() and rate(), so restarting one instance would fire
    the 429 and rate-limit alerts. (A lone server's restart drops to zero, which rate()
    handles.) Those files are small and the directory is emptied at boot (/run).
    """
    directory = multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in directory.glob("gauge_*.db"):
        pid = _pid_of(path)
        if pid is not None and pid != os.getpid() and not _is_running(pid):
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                path.unlink()


def metrics_process_exit() -> None:
    """At `serve` exit: drop this process's live gauges (prometheus_client's bookkeeping)."""
    directory = multiprocess_dir()
    if directory is not None and directory.is_dir():
        mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]


def _pid_of(path: Path) -> int | None:
    # prometheus_client names its files <type>[_<mode>]_<pid>.db
    tail = path.stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
