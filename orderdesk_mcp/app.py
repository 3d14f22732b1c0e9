"""`create_app(settings)`: the one place that wires blueprints, limiter, logging and metrics."""

from __future__ import annotations

from flask import Flask

from orderdesk_mcp import health, metrics
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db import connection
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import Vault

SERVICES_KEY = "orderdesk_mcp"


def build_services(settings: Settings) -> Services:
    database = open_database(settings)
    return Services(settings=settings, database=database, vault=Vault.from_settings(settings))


def get_services(app: Flask) -> Services:
    services: Services = app.extensions[SERVICES_KEY]
    return services


def create_app(settings: Settings, services: Services | None = None) -> Flask:
    app = Flask("orderdesk_mcp")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.extensions[SERVICES_KEY] = services or build_services(settings)
    connection.init_app(app)
    metrics.init_app(app)
    health.init_app(app)
    return app
