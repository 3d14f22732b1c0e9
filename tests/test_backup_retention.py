"""Retention by day and week (and by count): the pure function behind local and remote
pruning, checked by examples and by properties over any set of archive times."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk_mcp.backup_retention import RetentionPolicy, kept_names

START = dt.datetime(2026, 1, 1, 3, 17)


def archives(*moments: dt.datetime) -> list[tuple[str, dt.datetime]]:
    return [(f"a-{moment.isoformat()}", moment) for moment in moments]


def test_only_the_newest_of_each_day_is_kept_by_the_daily_rule() -> None:
    day = START.replace(hour=0)
    made = archives(day.replace(hour=3), day.replace(hour=11), day.replace(hour=23))
    assert kept_names(made, daily=5, weekly=0) == {made[-1][0]}


def test_weekly_ones_reach_beyond_the_daily_ones() -> None:
    # One archive a day for 8 weeks; 3 daily, 2 weekly.
    made = archives(*(START + dt.timedelta(days=i) for i in range(56)))
    kept = kept_names(made, daily=3, weekly=2)
    newest = made[-1][1]
    daily = {name for name, moment in made if (newest - moment).days < 3}
    assert daily <= kept
    weekly = sorted(moment for name, moment in made if name in kept - daily)
    assert len(weekly) == 2
    # Each is the newest archive (the Sunday one) of an ISO week older than the daily ones.
    assert all(moment.isoweekday() == 7 for moment in weekly)


def test_backups_that_stopped_are_never_aged_away() -> None:
    # The last backup ran long ago: nothing newer replaces them, so the newest 30 days of
    # archives stay however old they are.
    made = archives(*(START - dt.timedelta(days=400 + i) for i in range(40)))
    assert len(kept_names(made, daily=30, weekly=0)) == 30


def test_count_override_and_protect() -> None:
    made = archives(*(START + dt.timedelta(hours=i) for i in range(10)))
    policy = RetentionPolicy(daily=30, weekly=12, count=3)
    assert policy.kept(made) == {name for name, _ in made[-3:]}
    assert policy.doomed(made) == [name for name, _ in made[:-3]]
    assert made[0][0] in policy.kept(made, protect=[made[0][0]])
    # Daily 0 and weekly 0 still keep the newest.
    assert kept_names(made, daily=0, weekly=0) == {made[-1][0]}


moments = st.lists(
    st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2026, 12, 31)),
    min_size=1,
    max_size=80,
    unique=True,
)


@settings(max_examples=300, deadline=None)
@given(moments, st.integers(0, 40), st.integers(0, 20))
def test_retention_properties(times: list[dt.datetime], daily: int, weekly: int) -> None:
    made = archives(*times)
    kept = kept_names(made, daily=daily, weekly=weekly)
    newest = max(made, key=lambda archive: archive[1])[0]
    assert newest in kept
    assert len(kept) <= daily + weekly + 1
    assert kept <= {name for name, _ in made}
    # Applying it again to what it kept deletes nothing more.
    survivors = [archive for archive in made if archive[0] in kept]
    assert kept_names(survivors, daily=daily, weekly=weekly) == kept
    # Order of the input does not matter.
    assert kept_names(list(reversed(made)), daily=daily, weekly=weekly) == kept


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(1, 100))
def test_count_keeps_exactly_the_newest_n(times: list[dt.datetime], count: int) -> None:
    made = archives(*times)
    kept = kept_names(made, daily=0, weekly=0, count=count)
    newest_first = sorted(made, key=lambda archive: archive[1], reverse=True)
    assert kept == {name for name, _ in newest_first[:count]}
