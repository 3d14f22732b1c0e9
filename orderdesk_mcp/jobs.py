"""Outcomes of the operator jobs the CLI runs (backups, uploads, maintenance), kept in the
database so the server can export them on /metrics: monitoring then sees a job that stopped
succeeding even though the server itself never runs it.

`detail` is one plain sentence for the operator (what failed and what to do); never put a
secret, a URL with credentials or an exception's repr in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee

from orderdesk_mcp.db.models import JobRun, utcnow

KEEP_PER_KIND = 200
"""Older rows of a kind are deleted when a new one is recorded: the history is for looking
back a few months, the metrics need only the newest."""

MAX_DETAIL = 500


@dataclass(frozen=True)
class JobOutcome:
    kind: str
    outcome: str
    started: dt.datetime
    finished: dt.datetime
    detail: str
    size_bytes: int | None


def record_job(
    db: peewee.Database,
    kind: str,
    *,
    ok: bool,
    started: dt.datetime,
    detail: str = "",
    size_bytes: int | None = None,
) -> None:
    """Record one run of `kind` that began at `started` (naive UTC) and ended now."""
    with db.bind_ctx([JobRun]), db.atomic():
        JobRun.create(
            kind=kind,
            started=started,
            finished=utcnow(),
            outcome="ok" if ok else "failed",
            detail=detail[:MAX_DETAIL],
            size_bytes=size_bytes,
        )
        stale = (
            JobRun.select(JobRun.id)
            .where(JobRun.kind == kind)
            .order_by(JobRun.finished.desc(), JobRun.id.desc())
            .offset(KEEP_PER_KIND)
        )
        JobRun.delete().where(JobRun.id.in_([row.id for row in stale])).execute()


def newest_outcomes(db: peewee.Database) -> dict[str, tuple[JobOutcome | None, JobOutcome | None]]:
    """Per kind: (newest run, newest successful run)."""
    found: dict[str, tuple[JobOutcome | None, JobOutcome | None]] = {}
    with db.bind_ctx([JobRun]):
        kinds = [row.kind for row in JobRun.select(JobRun.kind).distinct()]
        for kind in kinds:
            newest = _newest(JobRun.kind == kind)
            newest_ok = _newest((JobRun.kind == kind) & (JobRun.outcome == "ok"))
            found[kind] = (newest, newest_ok)
    return found


def _newest(condition: peewee.Expression) -> JobOutcome | None:
    row = (
        JobRun.select().where(condition).order_by(JobRun.finished.desc(), JobRun.id.desc()).first()
    )
    if row is None:
        return None
    return JobOutcome(row.kind, row.outcome, row.started, row.finished, row.detail, row.size_bytes)
