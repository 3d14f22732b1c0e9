"""Store resolvers: the tools' only way to a store, each scoped to ONE tenant.

Tenant isolation lives here: `TenantStoreResolver` looks stores up through the tenant's own
rows (tenancy.find_store_row), so another tenant's alias or store id simply does not exist for it.
A key or OAuth grant narrowed to some stores (`store_ids`) is a further filter on those rows:
a store outside it gets the same answer as a store that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from orderdesk_mcp.db import lookups
from orderdesk_mcp.db.lookups import StoreRow
from orderdesk_mcp.logging import register_secret
from orderdesk_mcp.mcp.echo import echo
from orderdesk_mcp.mcp.registry import StoreNotFound, StoreRef
from orderdesk_mcp.orderdesk import OrderDeskClient
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.tenancy import find_store_row, list_stores, open_store_key
from orderdesk_mcp.vault import Vault, VaultError

logger = logging.getLogger(__name__)

ADD_STORE_HINT = "register one with `orderdesk-mcp store add --tenant <name> --store-id <id>`"


def _not_found(ref: str | None, known: Sequence[StoreRef]) -> StoreNotFound:
    if not known:
        return StoreNotFound(f"no Order Desk store is registered for this tenant; {ADD_STORE_HINT}")
    names = ", ".join(ref_.describe() for ref_ in known)
    return StoreNotFound(
        f"store {echo(ref)} is not one of this tenant's stores; use an alias or store id from: "
        f"{names} (or omit `store` for the default)"
    )


class StoreKeyUnreadable(StoreNotFound):
    """The store exists but its saved API key does not open: a damaged row, or one sealed
    under another master key. Only this store is out of service; the operator must fix it."""

    outcome = "store_key_unreadable"


def _unreadable(row: StoreRow) -> StoreKeyUnreadable:
    # For the operator: ids only (the VaultError names no secret either).
    logger.warning(
        "the saved API key of store row %d (tenant %d, alias %s) does not open; run "
        "`orderdesk-mcp store verify` for that tenant and store, then remove and add it again",
        row.id,
        row.tenant_id,
        row.alias,
    )
    return StoreKeyUnreadable(
        f"Store '{row.alias}' (Order Desk store {row.store_id}) cannot be used: its saved API "
        "key cannot be opened on this server. Ask the server's operator to run `orderdesk-mcp "
        f"store verify --tenant <your tenant> {row.alias}` and, if that fails, to remove the "
        "store and add it again (`orderdesk-mcp store remove`, then `store add`). Other stores "
        "are not affected."
    )


class TenantStoreResolver:
    """The stores one tenant registered, with their keys opened from the vault per call.

    `store_ids` narrows it to some of them (Store row ids; None: all). For a narrowed caller
    the default store is the tenant's default when allowed, else the allowed store with the
    lowest row id.
    """

    def __init__(
        self,
        tenant_id: int,
        *,
        vault: Vault,
        machinery: UpstreamMachinery,
        default_base_url: str,
        store_ids: frozenset[int] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self._vault = vault
        self._machinery = machinery
        self._default_base_url = default_base_url
        self._allowed = store_ids

    def stores(self) -> Sequence[StoreRef]:
        rows = list_stores(self.tenant_id)
        if self._allowed is None:
            return [
                StoreRef(alias=row.alias, store_id=row.store_id, is_default=bool(row.is_default))
                for row in rows
            ]
        allowed = [row for row in rows if row.id in self._allowed]
        default = next((row for row in allowed if row.is_default), None) or min(
            allowed, key=lambda row: row.id, default=None
        )
        return [
            StoreRef(alias=row.alias, store_id=row.store_id, is_default=row is default)
            for row in allowed
        ]

    def resolve(self, store: str | None) -> tuple[StoreRef, OrderDeskClient]:
        ref = None if store is None else str(store).strip() or None
        if self._allowed is None:
            row = find_store_row(self.tenant_id, ref)
            is_default = row is not None and row.is_default
        else:
            row, is_default = self._find_allowed(ref, self._allowed)
        if row is None:
            raise _not_found(ref, self.stores())
        try:
            api_key = open_store_key(row, self._vault)
        except VaultError:
            raise _unreadable(row) from None
        # From now on this key is masked in any log line, whoever writes it.
        register_secret(api_key)
        client = OrderDeskClient(
            store_id=row.store_id,
            api_key=api_key,
            base_url=row.base_url or self._default_base_url,
            machinery=self._machinery,
        )
        return StoreRef(alias=row.alias, store_id=row.store_id, is_default=is_default), client

    def _find_allowed(
        self, ref: str | None, allowed: frozenset[int]
    ) -> tuple[StoreRow | None, bool]:
        """(the allowed store `ref` names, whether it is this caller's default store).

        The common cases cost what an unnarrowed lookup costs (one or two prepared SELECTs);
        only a miss reads the allowed rows one by one (a key reaches a handful of stores).
        """
        tenant_default = lookups.default_store(self.tenant_id)
        if tenant_default is not None and tenant_default.id not in allowed:
            tenant_default = None
        if ref is None:
            if tenant_default is not None:
                return tenant_default, True
            rows = self._allowed_rows(allowed)
            return (rows[0], True) if rows else (None, False)
        row = find_store_row(self.tenant_id, ref)
        if row is None or row.id not in allowed:
            # The prepared lookups return the first match of the whole tenant; look among
            # the allowed rows too (an alias first, then an Order Desk store id).
            rows = self._allowed_rows(allowed)
            row = next((r for r in rows if r.alias == ref), None) or next(
                (r for r in rows if r.store_id == ref), None
            )
            if row is None:
                return None, False
        if tenant_default is not None:
            return row, row.id == tenant_default.id
        rows = self._allowed_rows(allowed)
        return row, bool(rows) and rows[0].id == row.id

    def _allowed_rows(self, allowed: frozenset[int]) -> list[StoreRow]:
        found = (lookups.store_by_row_id(self.tenant_id, row_id) for row_id in sorted(allowed))
        return [row for row in found if row is not None]


class LocalStoreResolver:
    """Local mode: the single store named by ORDERDESK_STORE_ID / ORDERDESK_API_KEY."""

    def __init__(
        self, *, store_id: str, api_key: str, base_url: str, machinery: UpstreamMachinery
    ) -> None:
        self._ref = StoreRef(alias=store_id, store_id=store_id, is_default=True)
        self._api_key = api_key
        self._base_url = base_url
        self._machinery = machinery

    def stores(self) -> Sequence[StoreRef]:
        return [self._ref]

    def resolve(self, store: str | None) -> tuple[StoreRef, OrderDeskClient]:
        ref = None if store is None else str(store).strip() or None
        if ref is not None and ref != self._ref.store_id:
            raise _not_found(ref, [self._ref])
        client = OrderDeskClient(
            store_id=self._ref.store_id,
            api_key=self._api_key,
            base_url=self._base_url,
            machinery=self._machinery,
        )
        return self._ref, client
