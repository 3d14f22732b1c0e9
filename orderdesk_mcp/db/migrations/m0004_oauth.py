"""OAuth 2.1 sign-in: tenant passwords, per-key stores, clients, grants, codes, tokens,
browser sign-in sessions and one-time invites."""

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

    class OAuthClient(peewee.Model):
        id = peewee.AutoField()
        client_id = peewee.CharField(unique=True)
        kind = peewee.CharField()
        secret_hash = peewee.CharField(null=True)
        auth_method = peewee.CharField(default="none")
        metadata = peewee.TextField(default="{}")
        created = peewee.DateTimeField()
        last_used = peewee.DateTimeField(null=True)
        expires = peewee.DateTimeField(null=True, index=True)
        revoked = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "oauth_client"

    class OAuthGrant(peewee.Model):
        id = peewee.AutoField()
        public_id = peewee.CharField(unique=True)
        tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
        client = peewee.ForeignKeyField(OAuthClient, on_delete="CASCADE")
        api_key = peewee.ForeignKeyField(ApiKey, on_delete="CASCADE")
        via_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
        resource = peewee.CharField()
        redirect_uri = peewee.CharField()
        created = peewee.DateTimeField()
        last_used = peewee.DateTimeField(null=True)
        revoked = peewee.DateTimeField(null=True)
        revoked_reason = peewee.CharField(null=True)

        class Meta:
            table_name = "oauth_grant"

    class OAuthCode(peewee.Model):
        code_hash = peewee.CharField(primary_key=True)
        client = peewee.ForeignKeyField(OAuthClient, on_delete="CASCADE")
        tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
        via_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
        redirect_uri = peewee.CharField()
        scope = peewee.CharField()
        store_ids = peewee.CharField(null=True)
        toolsets = peewee.CharField(null=True)
        code_challenge = peewee.CharField()
        resource = peewee.CharField()
        created = peewee.DateTimeField()
        expires = peewee.DateTimeField(index=True)
        used = peewee.DateTimeField(null=True)
        grant = peewee.ForeignKeyField(OAuthGrant, null=True, on_delete="CASCADE")

        class Meta:
            table_name = "oauth_code"

    class OAuthToken(peewee.Model):
        id = peewee.AutoField()
        token_hash = peewee.CharField(unique=True)
        kind = peewee.CharField()
        grant = peewee.ForeignKeyField(OAuthGrant, on_delete="CASCADE")
        created = peewee.DateTimeField()
        expires = peewee.DateTimeField(index=True)
        revoked = peewee.DateTimeField(null=True)
        rotated = peewee.DateTimeField(null=True)
        scope = peewee.CharField(default="read write")

        class Meta:
            table_name = "oauth_token"

    class WebSession(peewee.Model):
        id = peewee.CharField(primary_key=True)
        tenant = peewee.ForeignKeyField(Tenant, null=True, on_delete="CASCADE")
        via_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
        created = peewee.DateTimeField()
        last_seen = peewee.DateTimeField()
        signed_in = peewee.DateTimeField(null=True)
        expires = peewee.DateTimeField(index=True)

        class Meta:
            table_name = "web_session"

    class TenantInvite(peewee.Model):
        token_hash = peewee.CharField(primary_key=True)
        tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
        created = peewee.DateTimeField()
        expires = peewee.DateTimeField()
        used = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "tenant_invite"

    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("tenant", "password_hash", peewee.CharField(null=True)),
        migrator.add_column("api_key", "kind", peewee.CharField(default="key")),
        migrator.add_column("api_key", "store_ids", peewee.CharField(null=True)),
        # The tenant's activity page reads one tenant's audit rows, newest first.
        migrator.add_index("audit_event", ("tenant_id", "time"), False),
    )
    tables = [OAuthClient, OAuthGrant, OAuthCode, OAuthToken, WebSession, TenantInvite]
    with db.bind_ctx([Tenant, ApiKey, *tables]):
        db.create_tables(tables)
