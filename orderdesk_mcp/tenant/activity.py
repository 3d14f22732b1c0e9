"""/tenant/activity (placeholder: filled in by the next commit)."""

from __future__ import annotations

from flask import Response

from orderdesk_mcp.db.models import Tenant
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.tenant.area import bp, render, tenant_page


@bp.route("/activity", methods=["GET"])
@tenant_page
def activity(*, session: BrowserSession, tenant: Tenant) -> Response:
    return render("tenant_message.html", title="activity", message="Coming soon.")
