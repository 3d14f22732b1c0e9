"""The shapes every tool shares: stores, annotations, the tool record and its call context.

These live below the registry so tool modules can import them without importing the
registry (which imports every tool module).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orderdesk_mcp.orderdesk import OrderDeskClient

Handler = Callable[["ToolContext", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class StoreRef:
    """One of the tenant's registered Order Desk stores. Never carries the API key."""

    alias: str
    store_id: str
    is_default: bool

    def describe(self) -> str:
        return f"'{self.alias}' (Order Desk store {self.store_id})"


class StoreNotFound(LookupError):
    """The named store is not one of this tenant's stores.

    The message says which stores exist for the tenant and how to add one.
    """


class StoreResolver(Protocol):
    """The tenant's stores, provided by the transport side and scoped to ONE tenant."""

    def stores(self) -> Sequence[StoreRef]: ...

    def resolve(self, store: str | None) -> tuple[StoreRef, OrderDeskClient]:
        """Alias or store id; None means the default store. Raises StoreNotFound."""
        ...


class StaticStoreResolver:
    """A resolver over a fixed list of stores and their clients (local mode, stdio, tests)."""

    def __init__(self, stores: Sequence[tuple[StoreRef, OrderDeskClient]]) -> None:
        self._stores = list(stores)

    def stores(self) -> Sequence[StoreRef]:
        return [ref for ref, _client in self._stores]

    def resolve(self, store: str | None) -> tuple[StoreRef, OrderDeskClient]:
        for ref, client in self._stores:
            if (store is None and ref.is_default) or store in (ref.alias, ref.store_id):
                return ref, client
        if store is None and len(self._stores) == 1:
            return self._stores[0]
        listing = ", ".join(f"{ref.alias} ({ref.store_id})" for ref, _client in self._stores)
        wanted = "No default store is set" if store is None else f"No store {store!r}"
        raise StoreNotFound(
            f"{wanted} for this tenant; the stores are: {listing or 'none yet'}. Pass one of "
            "them as `store`, or add a store with `orderdesk-mcp store add --tenant TENANT "
            "--store-id ID --api-key-stdin`."
        )


class ToolInputError(ValueError):
    """Arguments that pass the schema but make no sense (an unknown folder name, ...).

    The message says what was wrong and what to do; it becomes an isError tool result.
    """


class RecordChanged(Exception):
    """The record is not the version the caller read (its date_updated moved): nothing was
    written. The message carries the current date_updated and values; outcome "conflict"."""


@dataclass(frozen=True)
class ToolAnnotations:
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool

    def to_mcp(self) -> dict[str, bool]:
        return {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }


# The four shapes the catalogue uses; named so a tool's line says which one it is.
READ = ToolAnnotations(read_only=True, destructive=False, idempotent=True, open_world=True)
CREATE = ToolAnnotations(read_only=False, destructive=False, idempotent=False, open_world=True)
# Moving fires the destination folder's rules (e-mails, fulfilment) on every run: a repeat is
# not harmless, so a move is destructive and not idempotent.
MOVE = ToolAnnotations(read_only=False, destructive=True, idempotent=False, open_world=True)
OVERWRITE = ToolAnnotations(read_only=False, destructive=True, idempotent=True, open_world=True)


@dataclass
class ToolContext:
    """What a handler gets: the resolved store and its client (None for closed-world tools)."""

    store: StoreRef | None
    client: OrderDeskClient | None
    resolver: StoreResolver

    def orderdesk(self) -> tuple[StoreRef, OrderDeskClient]:
        if self.store is None or self.client is None:
            raise RuntimeError("this tool reaches Order Desk but was called without a store")
        return self.store, self.client


@dataclass(frozen=True)
class ToolDef:
    name: str
    title: str
    description: str
    toolset: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    annotations: ToolAnnotations
    handler: Handler = field(repr=False, compare=False)

    def to_mcp(self) -> dict[str, Any]:
        """The tools/list entry."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": {"title": self.title, **self.annotations.to_mcp()},
        }


def tool(
    *,
    name: str,
    title: str,
    toolset: str,
    annotations: ToolAnnotations,
    description: str,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
) -> Callable[[Handler], ToolDef]:
    """Declare a tool right above its handler: `@tool(...)` turns the function into a ToolDef."""

    def declare(handler: Handler) -> ToolDef:
        return ToolDef(
            name=name,
            title=title,
            description=" ".join(description.split()),
            toolset=toolset,
            input_schema=input_schema,
            output_schema=output_schema,
            annotations=annotations,
            handler=handler,
        )

    return declare
