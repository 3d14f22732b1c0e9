"""The long-lived objects of one process, built once from the settings and shared by requests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import peewee

from orderdesk_mcp.config import Settings
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.vault import Vault


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
