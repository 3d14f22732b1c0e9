"""Connecting a store: Order Desk checks a store id and API key (GET /test) before they are kept.

`store add`, `store verify` and the /tenant/stores page all go through these functions, so
one call decides whether credentials work and nothing unchecked is saved by mistake. The
plaintext key lives only in the caller's arguments for the one call; it is sealed at once.
"""

from __future__ import annotations

from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import Store, Tenant, utcnow
from orderdesk_mcp.orderdesk.client import OrderDeskClient
from orderdesk_mcp.orderdesk.errors import AuthError, OrderDeskError
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.tenancy import (
    TenancyError,
    add_store,
    check_new_store,
    replace_store_key,
    validate_store_api_key,
)
from orderdesk_mcp.vault import Vault


class StoreCheckFailed(TenancyError):
    """Order Desk refused the credentials (`refused`), or could not be asked (retry later).

    `upstream_message` is Order Desk's reason (the client scrubs keys from it); the surface
    phrases its own sentence around it.
    """

    def __init__(self, store_id: str, *, refused: bool, upstream_message: str) -> None:
        self.store_id = store_id
        self.refused = refused
        self.upstream_message = upstream_message
        if refused:
            text = f"Order Desk refused the credentials of store {store_id}: {upstream_message}"
        else:
            text = f"could not check store {store_id} with Order Desk: {upstream_message}"
        super().__init__(text)


def check_store_credentials(
    machinery: UpstreamMachinery, store_id: str, api_key: str, base_url: str
) -> None:
    """Call Order Desk GET /test with these credentials (never cached); raise StoreCheckFailed."""
    try:
        OrderDeskClient(store_id, api_key, base_url, machinery).test_connection()
    except AuthError as exc:
        raise StoreCheckFailed(store_id, refused=True, upstream_message=exc.message) from None
    except OrderDeskError as exc:
        raise StoreCheckFailed(store_id, refused=False, upstream_message=exc.message) from None


def mark_verified(store: Store) -> None:
    store.last_verified = utcnow()
    Store.update(last_verified=store.last_verified).where(Store.id == store.id).execute()


def connect_store(
    tenant: Tenant,
    *,
    store_id: str,
    api_key: str,
    vault: Vault,
    machinery: UpstreamMachinery | None,
    default_base_url: str,
    alias: str | None = None,
    base_url: str | None = None,
    make_default: bool = False,
) -> Store:
    """Check the input, test the credentials with Order Desk, then save the store sealed.

    Nothing is saved unless Order Desk accepted the key; a taken alias or a malformed store
    id is refused before any upstream request. `machinery` None saves the store unchecked
    (only the operator's `store add --no-verify` does that).
    """
    store_id, alias = check_new_store(tenant, store_id=store_id, api_key=api_key, alias=alias)
    if machinery is not None:
        check_store_credentials(machinery, store_id, api_key, base_url or default_base_url)
    with database.atomic():
        store = add_store(
            tenant,
            store_id=store_id,
            api_key=api_key,
            vault=vault,
            alias=alias,
            base_url=base_url,
            make_default=make_default,
        )
        if machinery is not None:
            mark_verified(store)
    return store


def change_store_key(
    store: Store,
    api_key: str,
    *,
    vault: Vault,
    machinery: UpstreamMachinery,
    default_base_url: str,
) -> Store:
    """Test a new API key for the store with Order Desk, then seal it in place of the old one
    (which stays when the test fails)."""
    validate_store_api_key(api_key)
    check_store_credentials(machinery, store.store_id, api_key, store.base_url or default_base_url)
    with database.atomic():
        replace_store_key(store, api_key, vault)
        mark_verified(store)
    return store
