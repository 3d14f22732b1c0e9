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
    # Argon2id string (nacl.pwhash) of the sign-in password; None: no password sign-in.
    password_hash = peewee.CharField(null=True)

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
    # "key": a bearer key an operator or tenant made; "oauth": the rights of one OAuth grant
    # (never has a usable secret; its tokens live in oauth_token).
    kind = peewee.CharField(default="key")
    # Comma-separated Store row ids this key may reach; None: all the tenant's stores.
    store_ids = peewee.CharField(null=True)

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
        # The tenant's activity page: one tenant's rows, newest first.
        indexes = ((("tenant", "time"), False),)


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


class OAuthClient(BaseModel):
    id = peewee.AutoField()
    # A random id (dynamic registration, RFC 7591) or the https URL of a client ID metadata
    # document (the document is cached in `metadata`).
    client_id = peewee.CharField(unique=True)
    kind = peewee.CharField()  # "registered" | "metadata_document"
    secret_hash = peewee.CharField(null=True)  # SHA-256 of the client secret (confidential)
    auth_method = peewee.CharField(default="none")  # token_endpoint_auth_method
    metadata = peewee.TextField(default="{}")  # JSON: client_name, redirect_uris, ...
    created = peewee.DateTimeField(default=utcnow)
    last_used = peewee.DateTimeField(null=True)
    # Registered: deleted after this if it never got a grant; document: refetch after this.
    expires = peewee.DateTimeField(null=True, index=True)
    revoked = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "oauth_client"


class OAuthGrant(BaseModel):
    """One tenant's consent to one client: its rights live in an ApiKey row of kind "oauth"."""

    id = peewee.AutoField()
    public_id = peewee.CharField(unique=True)  # what operators and tenants see and revoke
    tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
    client = peewee.ForeignKeyField(OAuthClient, on_delete="CASCADE")
    api_key = peewee.ForeignKeyField(ApiKey, on_delete="CASCADE")
    # The tenant API key pasted at sign-in, if that is how the tenant signed in: revoking it
    # revokes this grant, and the grant never exceeds its rights.
    via_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
    resource = peewee.CharField()
    redirect_uri = peewee.CharField()
    created = peewee.DateTimeField(default=utcnow)
    last_used = peewee.DateTimeField(null=True)
    revoked = peewee.DateTimeField(null=True)
    revoked_reason = peewee.CharField(null=True)
    # The foreign keys' raw ids peewee provides, declared for the type checker.
    tenant_id: int
    client_id: int
    api_key_id: int
    via_key_id: int | None

    class Meta:
        table_name = "oauth_grant"


class OAuthCode(BaseModel):
    code_hash = peewee.CharField(primary_key=True)  # SHA-256 of the code
    client = peewee.ForeignKeyField(OAuthClient, on_delete="CASCADE")
    tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
    via_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
    redirect_uri = peewee.CharField()
    scope = peewee.CharField()  # "read" or "read write"
    store_ids = peewee.CharField(null=True)
    toolsets = peewee.CharField(null=True)
    code_challenge = peewee.CharField()
    resource = peewee.CharField()
    created = peewee.DateTimeField(default=utcnow)
    expires = peewee.DateTimeField(index=True)
    used = peewee.DateTimeField(null=True)
    # Set at exchange: a second use of the code revokes what the first one got.
    grant = peewee.ForeignKeyField(OAuthGrant, null=True, on_delete="CASCADE")
    # The foreign keys' raw ids peewee provides, declared for the type checker.
    client_id: int
    tenant_id: int
    via_key_id: int | None
    grant_id: int | None

    class Meta:
        table_name = "oauth_code"


class OAuthToken(BaseModel):
    id = peewee.AutoField()
    token_hash = peewee.CharField(unique=True)  # SHA-256 of the opaque token
    kind = peewee.CharField()  # "access" | "refresh"
    grant = peewee.ForeignKeyField(OAuthGrant, on_delete="CASCADE")
    created = peewee.DateTimeField(default=utcnow)
    expires = peewee.DateTimeField(index=True)
    revoked = peewee.DateTimeField(null=True)
    # Refresh tokens: when it was exchanged for a new pair (a second use is reuse).
    rotated = peewee.DateTimeField(null=True)
    # "read" or "read write": an access token may be narrower than its grant (a refresh
    # that asked for less); a refresh token carries the grant's scope.
    scope = peewee.CharField(default="read write")

    class Meta:
        table_name = "oauth_token"


class WebSession(BaseModel):
    """A browser's sign-in session for /oauth/authorize (and the tenant pages)."""

    id = peewee.CharField(primary_key=True)  # SHA-256 of the cookie value
    tenant = peewee.ForeignKeyField(Tenant, null=True, on_delete="CASCADE")
    via_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="CASCADE")
    created = peewee.DateTimeField(default=utcnow)
    last_seen = peewee.DateTimeField(default=utcnow)
    signed_in = peewee.DateTimeField(null=True)
    expires = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "web_session"


class TenantInvite(BaseModel):
    token_hash = peewee.CharField(primary_key=True)  # SHA-256 of the one-time token
    tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE")
    created = peewee.DateTimeField(default=utcnow)
    expires = peewee.DateTimeField()
    used = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "tenant_invite"


class ServerHeartbeat(BaseModel):
    """One live `serve` process of the server group, on any host (see server_group.py).

    A process writes its row at start, refreshes ``last_seen`` every few seconds and deletes
    it at a clean stop; a row whose ``last_seen`` is older than the staleness limit is a
    process that died. `restore` and `rotate-master-key` refuse while any row is fresh.
    """

    server_id = peewee.CharField(primary_key=True)  # random per process start
    hostname = peewee.CharField()
    pid = peewee.IntegerField()
    listen = peewee.CharField(default="")  # host:port as the process listens
    version = peewee.CharField(default="")
    started = peewee.DateTimeField(default=utcnow)
    last_seen = peewee.DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "server_heartbeat"


class JobRun(BaseModel):
    """The outcome of one operator job the CLI ran (backup, upload, maintenance, ...).

    The server exports the newest of each kind on /metrics, so monitoring sees a backup or an
    upload that stopped succeeding. ``detail`` is a short plain sentence, never a secret.
    """

    id = peewee.AutoField()
    kind = peewee.CharField(index=True)  # e.g. backup, upload, maintain
    started = peewee.DateTimeField(default=utcnow)
    finished = peewee.DateTimeField(default=utcnow)
    outcome = peewee.CharField()  # "ok" or "failed"
    detail = peewee.TextField(default="")
    size_bytes = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "job_run"
        indexes = ((("kind", "finished"), False),)


ALL_MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion,
    Tenant,
    ApiKey,
    Store,
    AuditEvent,
    McpSession,
    VaultCanary,
    OAuthClient,
    OAuthGrant,
    OAuthCode,
    OAuthToken,
    WebSession,
    TenantInvite,
    ServerHeartbeat,
    JobRun,
)
