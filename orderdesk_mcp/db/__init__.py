"""The database: Peewee models, connection handling and numbered migrations."""

from orderdesk_mcp.db.connection import database, open_database
from orderdesk_mcp.db.models import (
    ApiKey,
    AuditEvent,
    McpSession,
    SchemaVersion,
    Store,
    Tenant,
)

__all__ = [
    "ApiKey",
    "AuditEvent",
    "McpSession",
    "SchemaVersion",
    "Store",
    "Tenant",
    "database",
    "open_database",
]
