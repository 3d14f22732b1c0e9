"""All stores of one sandbox, and the credential check that picks the store of a request."""

from __future__ import annotations

import hmac

from orderdesk_mcp.sandbox.clock import Clock
from orderdesk_mcp.sandbox.emulation_choices import STATUS_BAD_CREDENTIALS
from orderdesk_mcp.sandbox.errors import ApiError
from orderdesk_mcp.sandbox.faults import FaultSettings
from orderdesk_mcp.sandbox.store import StoreState

# Compared against when the store id is unknown, so a wrong id costs as long as a wrong key.
_DUMMY_KEY = b"sandbox-dummy-key-for-constant-time-compare"


class SandboxState:
    """The stores, keyed by store id, sharing one monotonic clock."""

    def __init__(self, stores: list[StoreState], clock: Clock) -> None:
        self.clock = clock
        self.stores: dict[str, StoreState] = {}
        for store in stores:
            if store.store_id in self.stores:
                raise ValueError(f"store id {store.store_id} is listed twice")
            self.stores[store.store_id] = store

    def authenticate(self, store_id: str | None, api_key: str | None) -> StoreState:
        if not store_id or not api_key:
            raise ApiError(
                STATUS_BAD_CREDENTIALS,
                "Missing credentials: send the ORDERDESK-STORE-ID and ORDERDESK-API-KEY headers",
            )
        store = self.stores.get(store_id.strip())
        if store is None:
            hmac.compare_digest(api_key.encode(), _DUMMY_KEY)
            raise ApiError(STATUS_BAD_CREDENTIALS, "Invalid store ID or API key")
        if not store.key_matches(api_key):
            raise ApiError(STATUS_BAD_CREDENTIALS, "Invalid store ID or API key")
        return store

    def store_or_error(self, store_id: str) -> StoreState:
        store = self.stores.get(store_id)
        if store is None:
            raise ApiError(404, f"no store {store_id[:40]!r} in this sandbox")
        return store

    def set_faults(self, settings: FaultSettings, store_id: str | None = None) -> None:
        targets = [self.store_or_error(store_id)] if store_id else list(self.stores.values())
        for store in targets:
            store.faults.configure(settings)
