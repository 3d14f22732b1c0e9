"""The long-lived objects of one process, built once from the settings and shared by requests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import peewee
from flask import Flask

from orderdesk_mcp.config import Settings
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.vault import Vault

# Where create_app keeps the Services in app.extensions.
SERVICES_KEY = "orderdesk_mcp"


@dataclass
class Services:
    """What request handlers are handed: never read settings or globals behind this."""

    settings: Settings
    database: peewee.Database
    vault: Vault | None
    # The Order Desk client's shared cache, buckets and coalescer (one per process).
    machinery: UpstreamMachinery | None = None
    started_at: float = field(default_factory=time.time)

    def close(self) -> None:
        if self.machinery is not None:
            self.machinery.close()
        if not self.database.is_closed():
            self.database.close()


def get_services(app: Flask) -> Services:
    """The Services `create_app` gave `app` (blueprints look them up here, not in app.py)."""
    services: Services = app.extensions[SERVICES_KEY]
    return services
