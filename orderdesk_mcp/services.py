"""The long-lived objects of one process, built once from the settings and shared by requests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import peewee

from orderdesk_mcp.config import Settings
from orderdesk_mcp.vault import Vault


@dataclass
class Services:
    """What request handlers are handed: never read settings or globals behind this."""

    settings: Settings
    database: peewee.Database
    vault: Vault | None
    started_at: float = field(default_factory=time.time)
