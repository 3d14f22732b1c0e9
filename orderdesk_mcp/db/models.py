"""The tables of orderdesk-mcp, as they stand after the newest migration.

Times are naive UTC datetimes. Store API keys live only as sealed bytes (see vault.py);
tenant API keys only as a hash of their secret (see auth.py).
"""

from __future__ import annotations

import datetime as dt

import peewee

from orderdesk_mcp.db.connection import database


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = database


class SchemaVersion(BaseModel):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField()
    applied = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "schema_version"


class Tenant(BaseModel):
    id = peewee.AutoField()
    name = peewee.CharField(unique=True)
    # Salt of the per-tenant key derived from the master key (vault.py).
    kdf_salt = peewee.BlobField()
    created = peewee.DateTimeField(default=utcnow)
    disabled = peewee.BooleanField(default=False)

    class Meta:
        table_name = "tenant"


class ApiKey(BaseModel):
    id = peewee.AutoField()
    tenant = peewee.ForeignKeyField(Tenant, backref="api_keys", on_delete="CASCADE")
    public_id = peewee.CharField(unique=True)
    secret_hash = peewee.CharField()
    scopes = peewee.CharField(default="read,write")
    toolsets = peewee.CharField(null=True)
    label = peewee.CharField(default="")
    created = peewee.DateTimeField(default=utcnow)
    last_used = peewee.DateTimeField(null=True)
    revoked = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "api_key"


class Store(BaseModel):
    id = peewee.AutoField()
    tenant = peewee.ForeignKeyField(Tenant, backref="stores", on_delete="CASCADE")
    alias = peewee.CharField()  # type: ignore[assignment]  # shadows Model.alias(), unused here
    store_id = peewee.CharField()
    sealed_api_key = peewee.BlobField()
    base_url = peewee.CharField(null=True)
    is_default = peewee.BooleanField(default=False)
    created = peewee.DateTimeField(default=utcnow)
    last_verified = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "store"
        indexes = ((("tenant", "alias"), True),)


class AuditEvent(BaseModel):
    id = peewee.AutoField()
    time = peewee.DateTimeField(default=utcnow, index=True)
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


class McpSession(BaseModel):
    # The primary key is a SHA-256 of the session id: a copied database cannot replay sessions.
    id = peewee.CharField(primary_key=True)
    tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
    api_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
    protocol_version = peewee.CharField()
    client_info = peewee.TextField(default="{}")
    created = peewee.DateTimeField(default=utcnow)
    last_seen = peewee.DateTimeField(default=utcnow, index=True)
    ended = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "mcp_session"


class VaultCanary(BaseModel):
    # One row (id 1): a constant sealed with the master key; if it does not open, the key
    # configured is not the one this database's store keys were sealed with (vault_canary.py).
    id = peewee.IntegerField(primary_key=True)
    sealed = peewee.BlobField()
    created = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "vault_canary"


ALL_MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion,
    Tenant,
    ApiKey,
    Store,
    AuditEvent,
    McpSession,
    VaultCanary,
)
