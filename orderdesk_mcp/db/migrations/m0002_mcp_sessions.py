"""MCP sessions in the database (any process can serve any request) and per-key toolsets."""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate


def upgrade(db: peewee.Database) -> None:
    class Tenant(peewee.Model):
        class Meta:
            table_name = "tenant"

    class ApiKey(peewee.Model):
        class Meta:
            table_name = "api_key"

    class McpSession(peewee.Model):
        id = peewee.CharField(primary_key=True)
        tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
        api_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
        protocol_version = peewee.CharField()
        client_info = peewee.TextField(default="{}")
        created = peewee.DateTimeField()
        last_seen = peewee.DateTimeField(index=True)
        ended = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "mcp_session"

    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.add_column("api_key", "toolsets", peewee.CharField(null=True)))
    with db.bind_ctx([Tenant, ApiKey, McpSession]):
        db.create_tables([McpSession])
