"""/tenant/activity: the tenant's audit trail, newest first, 50 rows a page, filterable by
action (a tool name, or a sign-in or page action) and by outcome.

Only the columns that say what happened (time, action, store, outcome, duration): never the
arguments, which may hold what the tenant's customers wrote even after redaction.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from werkzeug.datastructures import MultiDict

from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.tenant import area
from orderdesk_mcp.tenant.area import bp, tenant_page

PER_PAGE = 50
MAX_PAGE = 1000  # 50,000 rows back is older than any retention worth paging through
MAX_CHOICES = 200


def parse_filters(args: MultiDict[str, str]) -> tuple[int, str, str]:
    """(page, action, outcome) from the query string, leniently: junk means "no filter" and
    page 1, so a hand-edited URL never errors."""
    raw_page = args.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 6 else 1
    page = min(max(page, 1), MAX_PAGE)
    action = args.get("action", "")[:100]
    outcome = args.get("outcome", "")[:40]
    return page, action, outcome


def _distinct(column: Any, tenant: Tenant) -> list[str]:
    query = (
        AuditEvent.select(column)
        .where(AuditEvent.tenant == tenant)
        .distinct()
        .order_by(column)
        .limit(MAX_CHOICES)
        .tuples()
    )
    return [str(row[0]) for row in query.iterator() if row[0]]


@bp.route("/activity", methods=["GET"])
@tenant_page
def activity(*, session: BrowserSession, tenant: Tenant) -> Response:
    page, action, outcome = parse_filters(request.args)
    query = AuditEvent.select().where(AuditEvent.tenant == tenant)
    if action:
        query = query.where(AuditEvent.action == action)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    # One row more than a page says whether there is a next page, without a COUNT.
    rows = list(
        query.order_by(AuditEvent.time.desc(), AuditEvent.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE + 1)
    )
    return area.render(
        "tenant_activity.html",
        rows=rows[:PER_PAGE],
        page=page,
        has_next=len(rows) > PER_PAGE and page < MAX_PAGE,
        action=action,
        outcome=outcome,
        actions=_distinct(AuditEvent.action, tenant),
        outcomes=_distinct(AuditEvent.outcome, tenant),
    )
