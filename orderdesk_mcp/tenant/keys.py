"""/tenant/keys (placeholder: filled in by the next commit)."""

from __future__ import annotations

from flask import Response

from orderdesk_mcp.db.models import Tenant
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.tenant.area import bp, render, tenant_page


@bp.route("/keys", methods=["GET"])
@tenant_page
def keys(*, session: BrowserSession, tenant: Tenant) -> Response:
    return render("tenant_message.html", title="keys", message="Coming soon.")
