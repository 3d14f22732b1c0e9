"""/tenant/activity: the tenant's audit trail, newest first, 50 rows a page, filterable by
action (a tool name, or a sign-in or page action) and by outcome.

Only the columns that say what happened (time, action, store, outcome, duration): never the
arguments, which may hold what the tenant's customers wrote even after redaction.
"""

from __future__ import annotations

from flask import Response, request
from werkzeug.datastructures import MultiDict

from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.mcp.registry import all_tools
from orderdesk_mcp.oauth import events
from orderdesk_mcp.oauth.invite_page import AUDIT_INVITE_USED
from orderdesk_mcp.oauth.sign_in import AUDIT_SIGN_IN, AUDIT_SIGN_IN_FAILED
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.tenant import area
from orderdesk_mcp.tenant.area import bp, tenant_page

PER_PAGE = 50
# Paged by OFFSET over the (tenant_id, time) index: 100 pages (5,000 rows back) bounds what
# one request may skip; older rows are for the operator's `audit` command.
MAX_PAGE = 100
# What the page's own actions record (area.audit_tenant_action adds the "tenant." prefix).
PAGE_ACTIONS = (
    "tenant.key.create",
    "tenant.key.revoke",
    "tenant.grant.revoke",
    "tenant.password.change",
    "tenant.sign_out",
    "tenant.sign_out_everywhere",
    "tenant.store.add",
    "tenant.store.add_refused",
    "tenant.store.add_unchecked",
    "tenant.store.key",
    "tenant.store.key_refused",
    "tenant.store.key_unchecked",
    "tenant.store.default",
    "tenant.store.remove",
)
OAUTH_ACTIONS = (
    AUDIT_SIGN_IN,
    AUDIT_SIGN_IN_FAILED,
    AUDIT_INVITE_USED,
    events.GRANT,
    events.REFRESH,
    events.REVOKE,
    events.REFRESH_REUSE,
    events.CODE_REUSE,
)
# The outcomes tool calls, OAuth and these pages record (mcp/registry.py, mcp/dispatcher.py).
OUTCOMES = (
    "ok",
    "pending",  # a write whose row was never completed: it may have happened (mcp/audit.py)
    "refused",
    "unchecked",
    "not_found",
    "invalid_arguments",
    "invalid_request",
    "auth_error",
    "rate_limited",
    "busy",
    "conflict",
    "upstream_unavailable",
    "upstream_error",
    "store_key_unreadable",
    "internal_error",
)


def parse_filters(args: MultiDict[str, str]) -> tuple[int, str, str]:
    """(page, action, outcome) from the query string, leniently: junk means "no filter" and
    page 1, so a hand-edited URL never errors."""
    raw_page = args.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 6 else 1
    page = min(max(page, 1), MAX_PAGE)
    action = args.get("action", "")[:100]
    outcome = args.get("outcome", "")[:40]
    return page, action, outcome


def action_choices() -> list[str]:
    """The filter's actions: a fixed list (every tool, the OAuth and page actions), never read
    from the audit rows, so building the form costs nothing however long the trail is."""
    tools = sorted(f"tools/call {tool.name}" for tool in all_tools())
    return [*tools, *sorted(OAUTH_ACTIONS), *sorted(PAGE_ACTIONS)]


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
        actions=action_choices(),
        outcomes=OUTCOMES,
    )
