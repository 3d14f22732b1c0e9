"""Which backups to keep: one pure function over (name, created) pairs, used for the local
backup directory and the remote bucket alike.

By age (the default): the newest archive of each of the ORDERDESK_MCP_BACKUP_KEEP_DAILY most
recent days that have one, then the newest of each of the ORDERDESK_MCP_BACKUP_KEEP_WEEKLY
most recent ISO weeks (UTC) not already covered by a kept daily one. Counting days that have
an archive, rather than days back from today, means that backups which stopped running are
never aged away: the last good ones stay until new ones replace them. By count (`--keep N`):
the newest N. Either way the newest archive, and any name in `protect`, is always kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass

from orderdesk_mcp.config import Settings

Archive = tuple[str, dt.datetime]


@dataclass(frozen=True)
class RetentionPolicy:
    daily: int
    weekly: int
    count: int | None = None  # --keep N: the newest N, instead of daily and weekly

    @classmethod
    def from_settings(cls, settings: Settings, keep: int | None = None) -> RetentionPolicy:
        return cls(settings.backup_keep_daily, settings.backup_keep_weekly, keep)

    def describe(self) -> str:
        if self.count is not None:
            return f"the newest {self.count}"
        return f"{self.daily} daily and {self.weekly} weekly"

    def kept(self, archives: Iterable[Archive], protect: Collection[str] = ()) -> set[str]:
        return kept_names(
            archives, daily=self.daily, weekly=self.weekly, count=self.count, protect=protect
        )

    def doomed(self, archives: Iterable[Archive], protect: Collection[str] = ()) -> list[str]:
        """Names to delete, oldest first."""
        ordered = sorted(archives, key=lambda archive: (archive[1], archive[0]))
        keep = self.kept(ordered, protect)
        return [name for name, _ in ordered if name not in keep]


def _day(moment: dt.datetime) -> Hashable:
    return moment.date()


def _iso_week(moment: dt.datetime) -> Hashable:
    year, week, _ = moment.isocalendar()
    return (year, week)


def _newest_per_period(
    newest_first: list[Archive],
    period: Callable[[dt.datetime], Hashable],
    limit: int,
    already: set[str],
) -> set[str]:
    """The newest archive of each of the `limit` newest periods, skipping periods whose newest
    archive is `already` kept (those do not count towards the limit)."""
    chosen: set[str] = set()
    seen: set[Hashable] = set()
    for name, created in newest_first:
        if len(chosen) >= limit:
            break
        key = period(created)
        if key in seen:
            continue
        seen.add(key)
        if name not in already:
            chosen.add(name)
    return chosen


def kept_names(
    archives: Iterable[Archive],
    *,
    daily: int,
    weekly: int,
    count: int | None = None,
    protect: Collection[str] = (),
) -> set[str]:
    """The names to keep (see the module docstring); never empty when `archives` is not."""
    newest_first = sorted(archives, key=lambda archive: (archive[1], archive[0]), reverse=True)
    keep = {name for name, _ in newest_first[:1]} | set(protect)
    if count is not None:
        return keep | {name for name, _ in newest_first[:count]}
    keep |= _newest_per_period(newest_first, _day, daily, set())
    keep |= _newest_per_period(newest_first, _iso_week, weekly, keep)
    return keep & {name for name, _ in newest_first}
