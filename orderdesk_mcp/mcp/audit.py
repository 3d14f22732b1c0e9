"""The audit trail of tool calls, and the per-call count of Order Desk requests behind it.

`count_upstream_calls()` opens a counter for the current call (a contextvar, so concurrent
requests on other threads never mix); `note_upstream_call` is the Order Desk client's observer
callback and adds one to whichever counter is open. `prune_audit_events` applies the
retention (ORDERDESK_MCP_AUDIT_RETENTION_DAYS) to tool-call rows.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import peewee

from orderdesk_mcp import metrics
from orderdesk_mcp.db.lookups import complete_audit_event, insert_audit_event
from orderdesk_mcp.db.models import AuditEvent
from orderdesk_mcp.orderdesk.machinery import UpstreamCall

logger = logging.getLogger(__name__)

# Argument names that may carry credentials or card data (an order's cc_number); matched as
# substrings, case-insensitively.
SECRET_NAME_PARTS = (
    "key",
    "secret",
    "token",
    "password",
    "authorization",
    "cc_number",
    "cvv",
    "cvc",
)
REDACTED = "[redacted]"
# The audit table is for "who did what", not a copy of every payload.
MAX_ARGUMENTS_CHARS = 4000


class _Counter:
    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0


_current_counter: contextvars.ContextVar[_Counter | None] = contextvars.ContextVar(
    "orderdesk_mcp_upstream_counter", default=None
)


@contextmanager
def count_upstream_calls() -> Iterator[_Counter]:
    """Count the Order Desk requests made inside the block (read `.calls` afterwards)."""
    counter = _Counter()
    token = _current_counter.set(counter)
    try:
        yield counter
    finally:
        _current_counter.reset(token)


def note_upstream_call(call: UpstreamCall) -> None:
    """Observer for the Order Desk client: counts calls that really reached Order Desk."""
    counter = _current_counter.get()
    if counter is not None and not call.cache_hit and not call.coalesced:
        counter.calls += 1


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


# Deeper than any MCP message the transports accept; a bound, so redaction never recurses away.
MAX_REDACT_DEPTH = 80
TOO_DEEP = "[nested too deep to record]"


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of `value` with every field whose name looks like a credential masked."""
    if isinstance(value, dict | list) and depth >= MAX_REDACT_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {
            key: REDACTED if is_secret_name(str(key)) else redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, depth + 1) for item in value]
    return value


def arguments_text(arguments: dict[str, Any] | None) -> str:
    """The JSON stored in the audit row: redacted and bounded."""
    text = json.dumps(redact(arguments or {}), sort_keys=True, default=str)
    if len(text) > MAX_ARGUMENTS_CHARS:
        return json.dumps({"truncated": True, "prefix": text[:MAX_ARGUMENTS_CHARS]})
    return text


@dataclass(frozen=True)
class ToolCallRecord:
    """One tools/call, as the audit trail keeps it."""

    tenant_id: int | None
    key_id: int | None
    tool: str
    store: str | None
    arguments: dict[str, Any] | None
    outcome: str
    duration_ms: float
    upstream_calls: int
    request_id: str
    # What was called: tools/call (tool = the tool's name) or resources/read (tool = the URI).
    method: str = "tools/call"


PENDING = "pending"
"""The outcome of a write's row from before the write is sent until its outcome is known; a
row left pending means the call's outcome could not be recorded (check Order Desk)."""


class AuditUnavailable(Exception):
    """The audit row of a write could not be written, so the write was not sent."""


class AuditSink(Protocol):
    def record(self, call: ToolCallRecord) -> None:
        """Keep a finished call (reads): a failure is logged and counted, never raised."""
        ...

    def begin(self, call: ToolCallRecord) -> int | None:
        """Keep a write as pending before it is sent; AuditUnavailable when that fails."""
        ...

    def complete(self, pending: int | None, call: ToolCallRecord) -> None:
        """Fill in a pending write's outcome: a failure is logged and counted, never raised."""
        ...


# What a failing audit write looks like: a locked or full database, or a broken file.
_STORAGE_ERRORS = (peewee.PeeweeException, OSError)


def _unrecorded(call: ToolCallRecord, error: BaseException) -> None:
    metrics.record_audit_failure("unrecorded")
    logger.error(
        "audit row for %s %s could not be written (%s): the call ran with outcome %s",
        call.method,
        call.tool,
        type(error).__name__,
        call.outcome,
        extra={"request_id": call.request_id},
    )


class DatabaseAudit:
    """Writes one AuditEvent row per tool call (multi-tenant mode)."""

    def record(self, call: ToolCallRecord) -> None:
        try:
            self._insert(call, returning_id=False)
        except _STORAGE_ERRORS as error:
            _unrecorded(call, error)

    def begin(self, call: ToolCallRecord) -> int | None:
        try:
            return self._insert(call, returning_id=True)
        except _STORAGE_ERRORS as error:
            metrics.record_audit_failure("write_refused")
            logger.error(
                "audit row for %s %s could not be written (%s): the write was not sent",
                call.method,
                call.tool,
                type(error).__name__,
                extra={"request_id": call.request_id},
            )
            raise AuditUnavailable(str(type(error).__name__)) from None

    def complete(self, pending: int | None, call: ToolCallRecord) -> None:
        if pending is None:
            self.record(call)
            return
        try:
            complete_audit_event(
                pending,
                store=call.store,
                outcome=call.outcome,
                duration_ms=round(call.duration_ms, 3),
                upstream_calls=call.upstream_calls,
            )
        except _STORAGE_ERRORS as error:
            _unrecorded(call, error)

    @staticmethod
    def _insert(call: ToolCallRecord, *, returning_id: bool) -> int | None:
        # Every tool call writes one, hence the prepared SQL of db/lookups.py.
        return insert_audit_event(
            returning_id=returning_id,
            tenant_id=call.tenant_id,
            key_id=call.key_id,
            action=f"{call.method} {call.tool}",
            store=call.store,
            arguments=arguments_text(call.arguments),
            outcome=call.outcome,
            duration_ms=round(call.duration_ms, 3),
            upstream_calls=call.upstream_calls,
            request_id=call.request_id,
        )


class LogAudit:
    """Logs tool calls (local mode and stdio, which need no database)."""

    def begin(self, call: ToolCallRecord) -> int | None:
        # A log line cannot be made durable ahead of the write; the finished call is logged.
        return None

    def complete(self, pending: int | None, call: ToolCallRecord) -> None:
        self.record(call)

    def record(self, call: ToolCallRecord) -> None:
        logger.info(
            "%s %s outcome=%s store=%s upstream_calls=%d duration_ms=%.1f",
            call.method,
            call.tool,
            call.outcome,
            call.store,
            call.upstream_calls,
            call.duration_ms,
            extra={"request_id": call.request_id, "arguments": arguments_text(call.arguments)},
        )


# --- retention --------------------------------------------------------------------------

# Operator actions (admin_audit.py) carry this prefix; prune keeps them.
ADMIN_PREFIX = "admin:"
# Rows deleted per statement: each batch holds SQLite's write lock only briefly, so tool calls
# (which write audit and session rows) wait milliseconds, not the length of the whole prune.
PRUNE_BATCH_ROWS = 1000


@dataclass(frozen=True)
class AuditPruneResult:
    """What one prune did."""

    cutoff: dt.datetime  # naive UTC: tool-call rows older than this were deleted
    deleted: int
    batches: int
    # Operator-action rows older than the cutoff, kept on purpose.
    admin_rows_kept: int


def prune_audit_events(
    cutoff: dt.datetime, *, batch_rows: int = PRUNE_BATCH_ROWS
) -> AuditPruneResult:
    """Delete tool-call audit rows older than `cutoff` (naive UTC), `batch_rows` at a time.

    Operator actions (`admin:*`) are never deleted: they are few (a handful a day at most)
    and are the record of who changed tenants, keys, stores and the master key, which an
    incident review may need long after the tool calls stop mattering.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    old_tool_calls = (AuditEvent.time < cutoff) & ~AuditEvent.action.startswith(ADMIN_PREFIX)
    deleted = batches = 0
    while True:
        # One statement per batch, committed on its own (no surrounding transaction).
        batch = (
            AuditEvent.select(AuditEvent.id)
            .where(old_tool_calls)
            .order_by(AuditEvent.time)
            .limit(batch_rows)
        )
        count: int = AuditEvent.delete().where(AuditEvent.id.in_(batch)).execute()
        if count:
            deleted += count
            batches += 1
        if count < batch_rows:
            break
    kept = (
        AuditEvent.select()
        .where((AuditEvent.time < cutoff) & AuditEvent.action.startswith(ADMIN_PREFIX))
        .count()
    )
    return AuditPruneResult(cutoff=cutoff, deleted=deleted, batches=batches, admin_rows_kept=kept)
