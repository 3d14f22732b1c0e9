"""Tenant API keys: what MCP clients send as `Authorization: Bearer odmcp_<public id>_<secret>`.

The secret is 32 random bytes, so a plain SHA-256 is enough to store it (no password hashing
on the request path); lookup is by the public id (one indexed row) and the comparison is
constant-time, whatever the number of tenants.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

import peewee

from orderdesk_mcp.db.lookups import api_key_by_public_id
from orderdesk_mcp.db.models import ApiKey, Tenant, utcnow

TOKEN_PREFIX = "odmcp"  # noqa: S105 - a public prefix, not a secret
SECRET_BYTES = 32
SCOPES = ("read", "write")
TOOLSETS = ("orders", "items", "shipments", "inventory", "store")
_TOKEN_RE = re.compile(r"^odmcp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# Hash compared when the public id is unknown, so a miss costs the same as a hit.
_DUMMY_HASH = hashlib.sha256(b"orderdesk-mcp-dummy").hexdigest()
# last_used is a hint for operators; writing it on every request would serialise all readers.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)
# A tenant's live bearer keys (OAuth grants' rights rows are not counted): far more than any
# merchant uses, few enough that a stolen session cannot fill the table or the keys page.
MAX_LIVE_KEYS = 100
# Control and format characters (C0/C1 controls such as U+009B, bidi overrides such as
# U+202E, zero-width ones) and line/paragraph separators: they would reach an operator's
# terminal through `key list`, or make a label read differently from what it holds.
UNSAFE_TEXT_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


class AuthError(Exception):
    """A tenant key cannot be issued (bad scope, unknown tenant, ...)."""


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    public_id: str
    token: str  # shown once, never stored


@dataclass(frozen=True)
class AuthenticatedKey:
    """Who is calling: the tenant and the key's rights (never the secret)."""

    key_id: int
    public_id: str
    tenant_id: int
    tenant_name: str
    scopes: frozenset[str]
    toolsets: frozenset[str] | None
    store_ids: frozenset[int] | None = None  # Store row ids; None: all the tenant's stores

    @property
    def read_only(self) -> bool:
        return "write" not in self.scopes


def hash_secret(secret: str) -> str:
    # UTF-8, not ASCII: a presented credential is outside input, and a non-ASCII one must be
    # a plain miss (every secret we issue is ASCII, so its hash is unchanged).
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """Split a well-formed token into (public id, secret); None for anything else."""
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        return None
    return match.group(1), match.group(2)


def parse_toolsets(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - set(TOOLSETS))
    if unknown:
        raise AuthError(f"unknown toolset {unknown[0]!r}; choose from {', '.join(TOOLSETS)}")
    return names


def parse_store_ids(text: str | None) -> frozenset[int] | None:
    """The Store row ids a key is narrowed to ("3,7"); None when it reaches every store."""
    if not text:
        return None
    return frozenset(int(part) for part in text.split(",") if part.strip())


def format_store_ids(store_ids: frozenset[int] | None) -> str | None:
    """The ApiKey.store_ids column for these ids (the inverse of parse_store_ids)."""
    if store_ids is None:
        return None
    return ",".join(str(row_id) for row_id in sorted(store_ids))


def has_unsafe_characters(text: str) -> bool:
    """Whether `text` holds a character of UNSAFE_TEXT_CATEGORIES."""
    return any(unicodedata.category(char) in UNSAFE_TEXT_CATEGORIES for char in text)


def check_label(label: str) -> None:
    """AuthError when a key's label holds control or formatting characters."""
    if has_unsafe_characters(label):
        raise AuthError("the label cannot hold control or formatting characters; use plain text")


def live_keys(tenant: Tenant) -> peewee.ModelSelect[ApiKey]:
    """The tenant's bearer keys that are not revoked (OAuth grants' rights rows excluded)."""
    return ApiKey.select().where(
        (ApiKey.tenant == tenant) & (ApiKey.kind == "key") & ApiKey.revoked.is_null()
    )


def live_key_count(tenant: Tenant) -> int:
    """How many bearer keys of the tenant are not revoked."""
    count: int = live_keys(tenant).count()
    return count


def issue_key(
    tenant: Tenant,
    *,
    read_only: bool = False,
    label: str = "",
    toolsets: str | None = None,
    store_ids: frozenset[int] | None = None,
) -> IssuedKey:
    """Create a key for a tenant; the token in the result is the only copy of the secret.

    `store_ids` (Store row ids of this tenant) narrows the key to those stores; None: all.
    """
    narrowed = parse_toolsets(toolsets)
    if store_ids is not None and not store_ids:
        # An empty list stored as "" would read back as "every store".
        raise AuthError("a key narrowed to stores needs at least one store")
    check_label(label)
    if live_key_count(tenant) >= MAX_LIVE_KEYS:
        raise AuthError(
            f"tenant {tenant.name!r} already has {MAX_LIVE_KEYS} API keys, the most it may "
            "have; revoke one it no longer uses first"
        )
    public_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")
    row = ApiKey.create(
        tenant=tenant,
        public_id=public_id,
        secret_hash=hash_secret(secret),
        scopes="read" if read_only else "read,write",
        toolsets=",".join(sorted(narrowed)) if narrowed else None,
        store_ids=format_store_ids(store_ids),
        label=label,
    )
    return IssuedKey(
        key_id=row.id, public_id=public_id, token=f"{TOKEN_PREFIX}_{public_id}_{secret}"
    )


def verify_token(token: str | None) -> AuthenticatedKey | None:
    """The key a bearer token belongs to, or None when it is malformed, unknown or revoked."""
    if not token:
        return None
    parts = parse_token(token)
    if parts is None:
        return None
    public_id, secret = parts
    # Runs on every request, hence the prepared SQL of db/lookups.py.
    row = api_key_by_public_id(public_id)
    expected = row.secret_hash if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(hash_secret(secret), expected) or row is None:
        return None
    # An OAuth grant's rights row is never a bearer key (its secret was never shown anyway).
    if row.revoked is not None or row.tenant_disabled or row.kind != "key":
        return None
    now = utcnow()
    if row.last_used is None or now - row.last_used > LAST_USED_RESOLUTION:
        ApiKey.update(last_used=now).where(ApiKey.id == row.id).execute()
    return AuthenticatedKey(
        key_id=row.id,
        public_id=row.public_id,
        tenant_id=row.tenant_id,
        tenant_name=row.tenant_name,
        scopes=frozenset(row.scopes.split(",")),
        toolsets=parse_toolsets(row.toolsets),
        store_ids=parse_store_ids(row.store_ids),
    )


def revoke_key(public_id: str) -> ApiKey:
    row = ApiKey.get_or_none(ApiKey.public_id == public_id)
    if row is None:
        raise AuthError(f"no API key with id {public_id!r}; `orderdesk-mcp key list` shows them")
    if row.revoked is None:
        row.revoked = utcnow()
        row.save()
    return row
