"""`create_app(settings)`: the one place that wires blueprints, limiter, logging and metrics."""

from __future__ import annotations

from flask import Flask

from orderdesk_mcp import body_limit, errors, health, metrics
from orderdesk_mcp import logging as request_logging
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db import connection
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.mcp import blueprint as mcp_blueprint
from orderdesk_mcp.mcp.audit import note_upstream_call
from orderdesk_mcp.oauth import blueprint as oauth_blueprint
from orderdesk_mcp.oauth import pages as oauth_pages
from orderdesk_mcp.orderdesk.machinery import UpstreamCall, UpstreamMachinery
from orderdesk_mcp.services import SERVICES_KEY, Services, get_services
from orderdesk_mcp.tenant import area as tenant_area
from orderdesk_mcp.vault import Vault

# get_services lives beside Services; re-exported for the callers that build the app here.
__all__ = ["build_services", "create_app", "get_services", "observe_upstream_call"]

# What `serve` and `demo` give waitress as max_request_body_size: above the app's own limit,
# so that an oversized body gets the app's JSON 413 (see body_limit.py).
MAX_REQUEST_BYTES = body_limit.SERVER_MAX_BODY_BYTES


def observe_upstream_call(call: UpstreamCall) -> None:
    """The client's one observer: the audit trail's per-call count, then the metrics."""
    note_upstream_call(call)
    metrics.observe_upstream(call)


def build_services(settings: Settings) -> Services:
    vault = Vault.from_settings(settings)
    # Cache tags keyed from the master key: every process of the group shares entries.
    machinery = UpstreamMachinery.from_settings(
        settings, observer=observe_upstream_call, tag_salt=vault.cache_tag_salt()
    )
    return Services(
        settings=settings, database=open_database(settings), vault=vault, machinery=machinery
    )


def create_app(settings: Settings, services: Services | None = None) -> Flask:
    app = Flask("orderdesk_mcp")
    app.extensions[SERVICES_KEY] = services or build_services(settings)
    request_logging.init_app(app)
    errors.init_app(app)
    connection.init_app(app)
    metrics.init_app(app)
    body_limit.init_app(app)  # after metrics: a refused body is timed and counted too
    health.init_app(app)
    mcp_blueprint.init_app(app)
    oauth_blueprint.init_app(app)  # only when ORDERDESK_MCP_PUBLIC_URL is set
    oauth_pages.init_app(app)
    tenant_area.init_app(app)  # /tenant/*: 404 unless OAuth is on and ORDERDESK_MCP_TENANT_PAGES
    return app
