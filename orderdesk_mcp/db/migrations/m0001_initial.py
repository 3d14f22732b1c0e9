"""Tenants, their API keys, their Order Desk stores and the audit trail."""

from __future__ import annotations

import peewee


def upgrade(db: peewee.Database) -> None:
    class Frozen(peewee.Model):
        pass

    class Tenant(Frozen):
        name = peewee.CharField(unique=True)
        kdf_salt = peewee.BlobField()
        created = peewee.DateTimeField()
        disabled = peewee.BooleanField(default=False)

        class Meta:
            table_name = "tenant"

    class ApiKey(Frozen):
        tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
        public_id = peewee.CharField(unique=True)
        secret_hash = peewee.CharField()
        scopes = peewee.CharField(default="read,write")
        label = peewee.CharField(default="")
        created = peewee.DateTimeField()
        last_used = peewee.DateTimeField(null=True)
        revoked = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "api_key"

    class Store(Frozen):
        tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
        alias = peewee.CharField()  # type: ignore[assignment]
        store_id = peewee.CharField()
        sealed_api_key = peewee.BlobField()
        base_url = peewee.CharField(null=True)
        is_default = peewee.BooleanField(default=False)
        created = peewee.DateTimeField()
        last_verified = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "store"
            indexes = ((("tenant", "alias"), True),)

    class AuditEvent(Frozen):
        time = peewee.DateTimeField(index=True)
        tenant = peewee.ForeignKeyField(Tenant, null=True, on_delete="SET NULL")
        api_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="SET NULL")
        action = peewee.CharField()
        store = peewee.CharField(null=True)
        arguments = peewee.TextField(default="{}")
        outcome = peewee.CharField()
        duration_ms = peewee.FloatField(default=0.0)
        upstream_calls = peewee.IntegerField(default=0)
        request_id = peewee.CharField(null=True)

        class Meta:
            table_name = "audit_event"

    tables = [Tenant, ApiKey, Store, AuditEvent]
    with db.bind_ctx(tables):
        db.create_tables(tables)
