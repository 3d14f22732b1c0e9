"""Tenants and their Order Desk stores: create, find, list, remove, rotate.

Every lookup of a store goes through a tenant, so one tenant can never name another's store.
The plaintext API key of a store exists only inside `open_store_key`'s caller, for one call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import peewee

from orderdesk_mcp.auth import format_store_ids, parse_store_ids
from orderdesk_mcp.db import lookups
from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.lookups import StoreRow
from orderdesk_mcp.db.models import ApiKey, Store, Tenant
from orderdesk_mcp.vault import Vault, VaultError

_TENANT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_STORE_ID_RE = re.compile(r"[1-9][0-9]{0,19}", re.ASCII)  # fullmatch: "$" passes "12\n"


class TenancyError(ValueError):
    """Bad input for a tenant or store operation; the message says what to do."""


def validate_tenant_name(name: str) -> str:
    if not _TENANT_NAME_RE.fullmatch(name):
        raise TenancyError(
            f"tenant name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_store_id(store_id: str) -> str:
    store_id = str(store_id).strip()
    if not _STORE_ID_RE.fullmatch(store_id):
        raise TenancyError(
            f"store id {store_id!r} is not an Order Desk store id: it must be digits only, "
            "with no leading zero "
            "(Store Settings → API in Order Desk shows it)"
        )
    return store_id


def validate_alias(alias: str) -> str:
    if not _ALIAS_RE.fullmatch(alias):
        raise TenancyError(
            f"alias {alias!r} is not allowed: use 1-40 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return alias


def create_tenant(name: str, vault_salt: bytes) -> Tenant:
    validate_tenant_name(name)
    try:
        with database.atomic():
            return Tenant.create(name=name, kdf_salt=vault_salt)
    except peewee.IntegrityError:
        raise TenancyError(f"a tenant named {name!r} already exists") from None


def get_tenant(name: str) -> Tenant:
    tenant = Tenant.get_or_none(Tenant.name == name)
    if tenant is None:
        raise TenancyError(f"no tenant named {name!r}; `orderdesk-mcp tenant list` shows them")
    return tenant


def list_tenants() -> list[Tenant]:
    return list(Tenant.select().order_by(Tenant.name))


def disable_tenant(name: str) -> Tenant:
    tenant = get_tenant(name)
    tenant.disabled = True
    tenant.save()
    return tenant


def find_store_row(tenant_id: int, ref: str | None) -> StoreRow | None:
    """The tenant's store named by alias (first) or Order Desk store id; None = its default
    store. Runs on every tool call, hence the prepared SQL and plain rows of db/lookups.py."""
    if ref is None:
        return lookups.default_store(tenant_id)
    return lookups.store_by_alias(tenant_id, ref) or lookups.store_by_store_id(tenant_id, ref)


def find_store(tenant_id: int, ref: str | None) -> Store | None:
    """Like `find_store_row`, as a model instance (with its tenant) for operator commands."""
    row = find_store_row(tenant_id, ref)
    if row is None:
        return None
    store: Store | None = (
        Store.select(Store, Tenant).join(Tenant).where(Store.id == row.id).get_or_none()
    )
    return store


def require_store(tenant: Tenant, ref: str | None) -> Store:
    """`find_store` for the tenant, or TenancyError naming what was not found."""
    store = find_store(tenant.id, ref)
    if store is None:
        raise TenancyError(f"tenant {tenant.name!r} has no store {ref or '(default)'!r}")
    return store


def list_stores(tenant_id: int | None = None) -> list[Store]:
    query = Store.select(Store, Tenant).join(Tenant)
    if tenant_id is not None:
        query = query.where(Store.tenant == tenant_id)
    return list(query.order_by(Tenant.name, Store.alias))


def validate_store_api_key(api_key: str) -> str:
    # The key travels in an HTTP header: printable ASCII only, as the client itself checks.
    if not api_key or any(ord(c) < 33 or ord(c) > 126 for c in api_key):
        raise TenancyError(
            "the Order Desk API key is empty or contains spaces or characters an API key "
            "never has; copy it again from Order Desk (Store Settings → API)"
        )
    return api_key


def check_new_store(
    tenant: Tenant, *, store_id: str, api_key: str, alias: str | None
) -> tuple[str, str]:
    """The store id and alias `add_store` would save, or TenancyError saying why it would not.

    Callers that test the credentials with Order Desk first call this before the test, so a
    taken alias never costs an upstream request.
    """
    store_id = validate_store_id(store_id)
    alias = validate_alias(alias or store_id)
    validate_store_api_key(api_key)
    if Store.get_or_none((Store.tenant == tenant) & (Store.alias == alias)) is not None:
        raise TenancyError(
            f"tenant {tenant.name!r} already has a store with alias {alias!r}; "
            "choose another alias or remove that store first"
        )
    return store_id, alias


def add_store(
    tenant: Tenant,
    *,
    store_id: str,
    api_key: str,
    vault: Vault,
    alias: str | None = None,
    base_url: str | None = None,
    make_default: bool = False,
) -> Store:
    """Register a store; its key is sealed with the row id as associated data."""
    with database.atomic():
        store_id, alias = check_new_store(tenant, store_id=store_id, api_key=api_key, alias=alias)
        first = not Store.select().where(Store.tenant == tenant).exists()
        if make_default and not first:
            Store.update(is_default=False).where(Store.tenant == tenant).execute()
        store = Store.create(
            tenant=tenant,
            alias=alias,
            store_id=store_id,
            sealed_api_key=b"",
            base_url=base_url,
            is_default=make_default or first,
        )
        store.sealed_api_key = vault.seal(
            api_key, tenant_salt=bytes(tenant.kdf_salt), tenant_id=tenant.id, store_row_id=store.id
        )
        store.save()
    return store


def remove_store(tenant: Tenant, ref: str) -> Store:
    store = require_store(tenant, ref)
    with database.atomic():
        store.delete_instance()
        _forget_store_in_keys(tenant, store.id)
        if store.is_default:
            successor = find_store(tenant.id, None)
            if successor is not None:
                successor.is_default = True
                successor.save()
    return store


def store_of_tenant(tenant: Tenant, store_row_id: int) -> Store | None:
    """The tenant's store with this row id; None for another tenant's (or no) store."""
    store: Store | None = (
        Store.select(Store, Tenant)
        .join(Tenant)
        .where((Store.id == store_row_id) & (Store.tenant == tenant.id))
        .get_or_none()
    )
    return store


def set_default_store(tenant: Tenant, ref: str) -> Store:
    """Make the store (alias or store id) the tenant's default: tools use it when no store
    is named."""
    store = require_store(tenant, ref)
    with database.atomic():
        Store.update(is_default=False).where(
            (Store.tenant == tenant) & (Store.id != store.id)
        ).execute()
        Store.update(is_default=True).where(Store.id == store.id).execute()
    store.is_default = True
    return store


def replace_store_key(store: Store, api_key: str, vault: Vault) -> Store:
    """Seal a new Order Desk API key for the store in place of its old one."""
    validate_store_api_key(api_key)
    tenant = store.tenant
    store.sealed_api_key = vault.seal(
        api_key, tenant_salt=bytes(tenant.kdf_salt), tenant_id=tenant.id, store_row_id=store.id
    )
    Store.update(sealed_api_key=store.sealed_api_key).where(Store.id == store.id).execute()
    return store


def _forget_store_in_keys(tenant: Tenant, store_row_id: int) -> None:
    """Drop a removed store from the keys and grants narrowed to it.

    SQLite may hand the removed row id to the tenant's next store, which such a key must not
    reach. A key left with no store is narrowed to "0", never a row id: it reaches nothing
    (an empty column would read as "every store").
    """
    narrowed = ApiKey.select(ApiKey.id, ApiKey.store_ids).where(
        (ApiKey.tenant == tenant) & ApiKey.store_ids.is_null(False)
    )
    for key in narrowed:
        store_ids = parse_store_ids(key.store_ids) or frozenset()
        if store_row_id in store_ids:
            remaining = store_ids - {store_row_id}
            ApiKey.update(store_ids=format_store_ids(remaining) if remaining else "0").where(
                ApiKey.id == key.id
            ).execute()


def open_store_key(store: Store | StoreRow, vault: Vault) -> str:
    if isinstance(store, StoreRow):
        return vault.open(
            store.sealed_api_key,
            tenant_salt=store.tenant_kdf_salt,
            tenant_id=store.tenant_id,
            store_row_id=store.id,
        )
    tenant = store.tenant
    return vault.open(
        bytes(store.sealed_api_key),
        tenant_salt=bytes(tenant.kdf_salt),
        tenant_id=tenant.id,
        store_row_id=store.id,
    )


def rotate_master_key(old: Vault, new: Vault) -> int:
    """Re-seal every store key under a new master key, all or nothing; returns the count."""
    stores: Sequence[Store] = list(Store.select(Store, Tenant).join(Tenant))
    with database.atomic():
        for store in stores:
            plaintext = open_store_key(store, old)
            resealed = new.seal(
                plaintext,
                tenant_salt=bytes(store.tenant.kdf_salt),
                tenant_id=store.tenant.id,
                store_row_id=store.id,
            )
            if (
                new.open(
                    resealed,
                    tenant_salt=bytes(store.tenant.kdf_salt),
                    tenant_id=store.tenant.id,
                    store_row_id=store.id,
                )
                != plaintext
            ):
                raise VaultError(f"re-sealed key of store row {store.id} did not verify")
            Store.update(sealed_api_key=resealed).where(Store.id == store.id).execute()
    return len(stores)
