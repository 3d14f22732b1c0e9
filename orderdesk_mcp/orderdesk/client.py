"""OrderDeskClient: every Order Desk API v2 endpoint for one store.

The client owns the store's credentials and what a call means (ids, filters, bodies, which
cache entries a write makes stale); the shared ``UpstreamMachinery`` owns the cache, the rate
limit buckets, the coalescer and the retry policy. ``requests`` exceptions become our errors
here and nowhere else.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from orderdesk_mcp import __version__
from orderdesk_mcp.orderdesk.arguments import (
    MAX_HISTORY_NOTE_CHARS,
    checked_api_key,
    checked_base_url,
    checked_deadline,
    checked_id,
    checked_mapping,
    checked_rows,
    checked_store_id,
    encode_json,
    is_order_desk_id,
    order_filter_params,
    paging_params,
)
from orderdesk_mcp.orderdesk.cache import (
    API_KEY_HEADER,
    STORE_ID_HEADER,
    is_cacheable_body,
    listing_prefixes,
    record_prefixes,
)
from orderdesk_mcp.orderdesk.envelope import interpret_reply, scrub
from orderdesk_mcp.orderdesk.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    OrderDeskError,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)
from orderdesk_mcp.orderdesk.machinery import UpstreamCall, UpstreamMachinery
from orderdesk_mcp.orderdesk.merge import deep_merge
from orderdesk_mcp.orderdesk.order_body import merge_order_changes, order_put_body
from orderdesk_mcp.orderdesk.ratelimit import parse_retry_after, parse_tokens_remaining
from orderdesk_mcp.orderdesk.urls import request_url

USER_AGENT = f"orderdesk-mcp/{__version__}"
_INVENTORY_OWN_FIELDS = frozenset({"id", "date_added", "date_updated"})
# The id argument of each part of an order, as named in endpoint templates and errors.
_PART_ID_NAMES = {"order-items": "item_id", "shipments": "shipment_id"}


@dataclass
class _CallRecord:
    """What the call has done so far; becomes the UpstreamCall reported at its end."""

    method: str
    endpoint: str
    started: float
    status: int | None = None
    cache_hit: bool = False
    memory_hit: bool = False
    retries: int = 0
    tokens_remaining: int | None = None
    coalesced: bool = False
    rate_limited_waits: int = 0
    rate_limit_waited: float = field(default=0.0)
    # Whether sending it again cannot do more than sending it once: GET, and PUT/DELETE
    # unless the body adds something (an order PUT with lines without an id adds lines).
    repeatable: bool = True


class OrderDeskClient:
    """One Order Desk store: ``OrderDeskClient(store_id, api_key, base_url, machinery,
    deadline=None)``.

    ``deadline`` is how many seconds one call may wait for the rate limit; when the wait would
    be longer the call raises ``RateLimited`` (with ``retry_after``) instead of sleeping.
    Without it a call waits up to ``machinery.retry.max_rate_limit_wait``.

    Every method returns Order Desk's decoded JSON envelope as sent; reads take ``fresh=True``
    to skip the cache. A read that arrives while an identical read of the same store is in
    flight waits for it and shares its outcome (its reply or its error). Ids are str or int
    of digits (anything else: ``InvalidRequest`` before any request). Errors are the
    ``orderdesk_mcp.orderdesk.errors`` hierarchy.
    """

    def __init__(
        self,
        store_id: str,
        api_key: str,
        base_url: str,
        machinery: UpstreamMachinery,
        *,
        deadline: float | None = None,
    ) -> None:
        self.store_id = checked_store_id(store_id)
        self._api_key = checked_api_key(api_key)
        self.base_url = checked_base_url(base_url)
        self.machinery = machinery
        self.deadline = checked_deadline(deadline)
        self._upstream_gate: Callable[[], AbstractContextManager[None]] | None = None

    def with_deadline(self, seconds: float | None) -> OrderDeskClient:
        """A copy of this client whose calls wait at most ``seconds`` for the rate limit."""
        clone = copy.copy(self)
        clone.deadline = checked_deadline(seconds)
        return clone

    def with_upstream_gate(
        self, gate: Callable[[], AbstractContextManager[None]]
    ) -> OrderDeskClient:
        """A copy of this client that holds ``gate()`` around every request that may reach
        Order Desk (not around answers from the in-memory cache); the gate may raise Busy."""
        clone = copy.copy(self)
        clone._upstream_gate = gate
        return clone

    def _upstream_slot(self) -> AbstractContextManager[None]:
        return self._upstream_gate() if self._upstream_gate is not None else nullcontext()

    def __repr__(self) -> str:
        return (
            f"OrderDeskClient(store_id={self.store_id!r}, base_url={self.base_url!r}, "
            f"deadline={self.deadline!r})"
        )

    # --- store -----------------------------------------------------------------------------

    def test_connection(self) -> dict[str, Any]:
        """GET /test: checks the credentials; never cached."""
        return self._get("/test", "/test")

    def get_store(self, fresh: bool = False) -> dict[str, Any]:
        """GET /store: settings and the folder id → name map."""
        return self._get("/store", "/store", fresh=fresh)

    # --- orders ----------------------------------------------------------------------------

    def list_orders(
        self,
        *,
        limit: int | None = None,
        offset: int | None = None,
        fresh: bool = False,
        **filters: Any,
    ) -> dict[str, Any]:
        """GET /orders. ``filters`` are Order Desk's query parameters (``ORDER_LIST_FILTERS``);
        ``folder_id`` may be a list, dates may be ``datetime``/``date``; None values are left
        out. An unknown filter name raises InvalidRequest. A page fetched from Order Desk
        (without ``get_order_history``) also caches each order as its GET /orders/{id} reply,
        so reading a listed order costs no request; writes make both stale as usual."""
        params = paging_params(limit, offset)
        params.update(order_filter_params(filters))
        # A page of full orders answers later GET /orders/{id} too; history pages hold
        # records that differ from GET /orders/{id}, so they fill nothing.
        fill = None if params.get("get_order_history") == "1" else self._remember_listed_orders
        return self._get("/orders", "/orders", params=params, fresh=fresh, fill=fill)

    def get_order(self, order_id: str | int, fresh: bool = False) -> dict[str, Any]:
        """GET /orders/{id}."""
        oid = checked_id(order_id, "order_id")
        return self._get("/orders/{id}", f"/orders/{oid}", fresh=fresh)

    def create_order(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """POST /orders. A refused duplicate raises InvalidRequest naming the existing order."""
        body = checked_mapping(order, "order")
        return self._write("POST", "/orders", "/orders", body, stale=self._order_lists())

    def put_order(self, order_id: str | int, order: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /orders/{id}: replaces the whole order (fields left out become blank)."""
        oid = checked_id(order_id, "order_id")
        body = checked_mapping(order, "order")
        lines = body.get("order_items")
        # Order Desk adds a line that has no id: such a PUT is not safe to send twice.
        adds_lines = isinstance(lines, list) and any(
            not (isinstance(line, Mapping) and line.get("id") not in (None, "")) for line in lines
        )
        return self._write(
            "PUT",
            "/orders/{id}",
            f"/orders/{oid}",
            body,
            self._order_stale(oid),
            repeatable=not adds_lines,
        )

    def patch_order(
        self,
        order_id: str | int,
        changes: Mapping[str, Any],
        *,
        expected_date_updated: str | None = None,
    ) -> dict[str, Any]:
        """Read the order fresh, merge ``changes`` into it (``merge_order_changes``: order
        lines by ``id``) and PUT the result, minus what Order Desk owns (``order_put_body``).

        With ``expected_date_updated``, a read order whose ``date_updated`` differs raises
        Conflict (carrying the order as ``current``) and nothing is written. Order Desk has no
        concurrency token, so a change landing between our read and our PUT is not caught.
        Returns the PUT reply.
        """
        oid = checked_id(order_id, "order_id")
        patch = checked_mapping(changes, "changes")
        current = self._checked_record(
            "/orders/{id}", f"/orders/{oid}", "order", oid, expected_date_updated
        )
        return self.put_order(oid, order_put_body(merge_order_changes(current, patch)))

    def delete_order(self, order_id: str | int) -> dict[str, Any]:
        """DELETE /orders/{id} (permanent)."""
        oid = checked_id(order_id, "order_id")
        return self._write("DELETE", "/orders/{id}", f"/orders/{oid}", None, self._order_stale(oid))

    def add_order_history(
        self, order_id: str | int, note: str, source_name: str | None = None
    ) -> dict[str, Any]:
        """POST /orders/{id}/order-history: append a note (append-only, ≤ 1,800 characters)."""
        oid = checked_id(order_id, "order_id")
        if not isinstance(note, str) or not note.strip():
            raise InvalidRequest("note must be a non-empty string")
        if len(note) > MAX_HISTORY_NOTE_CHARS:
            raise InvalidRequest(
                f"note has {len(note)} characters; Order Desk keeps at most "
                f"{MAX_HISTORY_NOTE_CHARS}: shorten it or split it into several notes"
            )
        body: dict[str, Any] = {"note": note}
        if source_name is not None:
            if not isinstance(source_name, str):
                raise InvalidRequest("source_name must be a string")
            body["source_name"] = source_name
        return self._write(
            "POST",
            "/orders/{id}/order-history",
            f"/orders/{oid}/order-history",
            body,
            self._order_stale(oid),
        )

    def move_orders(
        self,
        order_ids: Sequence[str | int],
        *,
        folder_id: str | int | None = None,
        folder_name: str | None = None,
    ) -> dict[str, Any]:
        """POST /move-orders to ``folder_id`` or ``folder_name`` (exactly one). Moving fires
        the destination folder's rules."""
        if isinstance(order_ids, str | bytes) or not isinstance(order_ids, Sequence):
            raise InvalidRequest("order_ids must be a list of order ids")
        if not order_ids:
            raise InvalidRequest("order_ids is empty: give at least one order id to move")
        ids = [checked_id(value, "order_ids[]") for value in order_ids]
        if (folder_id is None) == (folder_name is None):
            raise InvalidRequest("give exactly one of folder_id or folder_name")
        body: dict[str, Any] = {"order_id_list": [int(value) for value in ids]}
        if folder_id is not None:
            body["destination_folder_id"] = int(checked_id(folder_id, "folder_id"))
        else:
            if not isinstance(folder_name, str) or not folder_name.strip():
                raise InvalidRequest("folder_name must be a folder's exact, non-empty name")
            body["destination_folder_name"] = folder_name
        stale = [p for oid in ids for p in self._order_stale(oid)]
        return self._write("POST", "/move-orders", "/move-orders", body, tuple(stale))

    # --- order items and shipments: the parts of one order --------------------------------

    def list_order_items(self, order_id: str | int, fresh: bool = False) -> dict[str, Any]:
        """GET /orders/{id}/order-items."""
        return self._read_part("order-items", order_id, None, fresh)

    def get_order_item(
        self, order_id: str | int, item_id: str | int, fresh: bool = False
    ) -> dict[str, Any]:
        """GET /orders/{id}/order-items/{item_id}."""
        return self._read_part("order-items", order_id, item_id, fresh)

    def add_order_item(self, order_id: str | int, item: Mapping[str, Any]) -> dict[str, Any]:
        """POST /orders/{id}/order-items (the order's totals are recomputed)."""
        return self._write_part("POST", "order-items", order_id, None, (item, "item"))

    def update_order_item(
        self, order_id: str | int, item_id: str | int, item: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PUT /orders/{id}/order-items/{item_id} (send every field: missing ones go blank)."""
        return self._write_part("PUT", "order-items", order_id, item_id, (item, "item"))

    def delete_order_item(self, order_id: str | int, item_id: str | int) -> dict[str, Any]:
        """DELETE /orders/{id}/order-items/{item_id}."""
        return self._write_part("DELETE", "order-items", order_id, item_id, None)

    def list_shipments(self, order_id: str | int, fresh: bool = False) -> dict[str, Any]:
        """GET /orders/{id}/shipments."""
        return self._read_part("shipments", order_id, None, fresh)

    def get_shipment(
        self, order_id: str | int, shipment_id: str | int, fresh: bool = False
    ) -> dict[str, Any]:
        """GET /orders/{id}/shipments/{shipment_id}."""
        return self._read_part("shipments", order_id, shipment_id, fresh)

    def add_shipment(self, order_id: str | int, shipment: Mapping[str, Any]) -> dict[str, Any]:
        """POST /orders/{id}/shipments (``tracking_number`` is required; "n/a" when none).
        An identical existing shipment makes Order Desk refuse it (InvalidRequest)."""
        return self._write_part("POST", "shipments", order_id, None, (shipment, "shipment"))

    def update_shipment(
        self, order_id: str | int, shipment_id: str | int, shipment: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PUT /orders/{id}/shipments/{shipment_id}."""
        return self._write_part("PUT", "shipments", order_id, shipment_id, (shipment, "shipment"))

    def delete_shipment(self, order_id: str | int, shipment_id: str | int) -> dict[str, Any]:
        """DELETE /orders/{id}/shipments/{shipment_id}."""
        return self._write_part("DELETE", "shipments", order_id, shipment_id, None)

    def _part_paths(
        self, part: str, order_id: str | int, part_id: str | int | None
    ) -> tuple[str, str, str]:
        """(endpoint template, path, order id) of /orders/{id}/<part>[/<part id>], ids checked
        in that order (the order first)."""
        oid = checked_id(order_id, "order_id")
        endpoint, path = f"/orders/{{id}}/{part}", f"/orders/{oid}/{part}"
        if part_id is not None:
            id_name = _PART_ID_NAMES[part]
            endpoint += f"/{{{id_name}}}"
            path += f"/{checked_id(part_id, id_name)}"
        return endpoint, path, oid

    def _read_part(
        self, part: str, order_id: str | int, part_id: str | int | None, fresh: bool
    ) -> dict[str, Any]:
        endpoint, path, _oid = self._part_paths(part, order_id, part_id)
        return self._get(endpoint, path, fresh=fresh)

    def _write_part(
        self,
        method: str,
        part: str,
        order_id: str | int,
        part_id: str | int | None,
        body: tuple[Mapping[str, Any], str] | None,
    ) -> dict[str, Any]:
        """A write to one part of an order; it makes the whole order stale (totals, lists)."""
        endpoint, path, oid = self._part_paths(part, order_id, part_id)
        data = checked_mapping(*body) if body is not None else None
        return self._write(method, endpoint, path, data, self._order_stale(oid))

    def add_shipments_batch(self, shipments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """POST /batch-shipments: a list of shipments, each with its ``order_id``. Check every
        entry of the reply's ``results``: one can fail while the call succeeds."""
        rows = checked_rows(shipments, "shipments")
        order_ids = [checked_id(row.get("order_id"), "shipments[].order_id") for row in rows]
        stale = [p for oid in dict.fromkeys(order_ids) for p in self._order_stale(oid)]
        return self._write("POST", "/batch-shipments", "/batch-shipments", rows, tuple(stale))

    # --- inventory -------------------------------------------------------------------------

    def list_inventory_items(
        self, *, code: str | Sequence[str] | None = None, fresh: bool = False
    ) -> dict[str, Any]:
        """GET /inventory-items: every item of the store, or those whose SKU is ``code`` (one
        SKU or several, sent as a comma list). ``code`` is the only filter Order Desk is known
        to honour, and the reply is not paged (docs/ORDERDESK.md ("Inventory items")). Note
        ``total_records`` is a numeric *string* here and may not count a ``code`` filter: count
        the items instead."""
        params: dict[str, str] = {}
        if code is not None:
            codes = [code] if isinstance(code, str) else list(code)
            if not codes or not all(isinstance(c, str) and c for c in codes):
                raise InvalidRequest("code must be a SKU or a list of non-empty SKUs")
            params["code"] = ",".join(codes)
        return self._get("/inventory-items", "/inventory-items", params=params, fresh=fresh)

    def get_inventory_item(self, item_id: str | int, fresh: bool = False) -> dict[str, Any]:
        """GET /inventory-items/{id}."""
        iid = checked_id(item_id, "item_id")
        return self._get("/inventory-items/{id}", f"/inventory-items/{iid}", fresh=fresh)

    def create_inventory_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """POST /inventory-items (``name`` and a unique ``code`` are required)."""
        body = checked_mapping(item, "item")
        stale = self._inventory_lists()
        return self._write("POST", "/inventory-items", "/inventory-items", body, stale)

    def put_inventory_item(self, item_id: str | int, item: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /inventory-items/{id}: replaces the whole item."""
        iid = checked_id(item_id, "item_id")
        body = checked_mapping(item, "item")
        path = f"/inventory-items/{iid}"
        return self._write("PUT", "/inventory-items/{id}", path, body, self._inventory_stale(iid))

    def patch_inventory_item(
        self,
        item_id: str | int,
        changes: Mapping[str, Any],
        *,
        expected_date_updated: str | None = None,
    ) -> dict[str, Any]:
        """Read, ``deep_merge`` and PUT an inventory item; ``expected_date_updated`` as in
        patch_order."""
        iid = checked_id(item_id, "item_id")
        patch = checked_mapping(changes, "changes")
        current = self._checked_record(
            "/inventory-items/{id}",
            f"/inventory-items/{iid}",
            "inventory_item",
            iid,
            expected_date_updated,
        )
        merged = deep_merge(current, patch)
        # Order Desk sets these itself; the id is in the URL.
        body = {key: value for key, value in merged.items() if key not in _INVENTORY_OWN_FIELDS}
        return self.put_inventory_item(iid, body)

    def delete_inventory_item(self, item_id: str | int) -> dict[str, Any]:
        """DELETE /inventory-items/{id}."""
        iid = checked_id(item_id, "item_id")
        path = f"/inventory-items/{iid}"
        return self._write(
            "DELETE", "/inventory-items/{id}", path, None, self._inventory_stale(iid)
        )

    def update_inventory_items_batch(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """PUT /batch-inventory-items: complete records, each with its ``id``."""
        rows = checked_rows(items, "items")
        ids = [checked_id(row.get("id"), "items[].id") for row in rows]
        stale = [p for iid in dict.fromkeys(ids) for p in self._inventory_stale(iid)]
        return self._write(
            "PUT", "/batch-inventory-items", "/batch-inventory-items", rows, tuple(stale)
        )

    # --- what a write makes stale ----------------------------------------------------------

    def _order_lists(self) -> tuple[str, ...]:
        return listing_prefixes(self.store_id, self.base_url + "/orders")

    def _order_stale(self, order_id: str) -> tuple[str, ...]:
        # The order, its items and shipments, and every order list (totals, folders, history).
        record = record_prefixes(self.store_id, f"{self.base_url}/orders/{order_id}")
        return record + self._order_lists()

    def _inventory_lists(self) -> tuple[str, ...]:
        return listing_prefixes(self.store_id, self.base_url + "/inventory-items")

    def _inventory_stale(self, item_id: str) -> tuple[str, ...]:
        record = record_prefixes(self.store_id, f"{self.base_url}/inventory-items/{item_id}")
        return record + self._inventory_lists()

    # --- read-merge-write ------------------------------------------------------------------

    def _checked_record(
        self,
        endpoint: str,
        path: str,
        record_key: str,
        record_id: str,
        expected_date_updated: str | None,
    ) -> dict[str, Any]:
        """The record read fresh; Conflict when ``expected_date_updated`` is given and differs.

        Replaces a second read right before the PUT: two reads milliseconds apart protected
        nothing, while the agent's own stamp catches every change since it looked.
        """
        current = self._record(endpoint, path, record_key)
        if expected_date_updated is None:
            return current
        now = current.get("date_updated")
        if now != expected_date_updated:
            raise Conflict(
                f"{record_key.replace('_', ' ')} {record_id} changed in Order Desk since it was "
                f"read: date_updated is {now!r}, not {expected_date_updated!r}; nothing was "
                "written",
                current=current,
                endpoint=endpoint,
                method="PUT",
            )
        return current

    def _record(self, endpoint: str, path: str, record_key: str) -> dict[str, Any]:
        envelope = self._get(endpoint, path, fresh=True)
        record = envelope.get(record_key)
        if not isinstance(record, dict):
            raise UpstreamError(
                f"Order Desk's reply has no {record_key!r} object", endpoint=endpoint, method="GET"
            )
        return record

    # --- calls -----------------------------------------------------------------------------

    def _get(
        self,
        endpoint: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        fresh: bool = False,
        fill: Callable[[bytes, int, str], None] | None = None,
    ) -> dict[str, Any]:
        """A cached GET. ``fill(body, generation, version)`` runs when a reply fetched from
        Order Desk was cached and no write of this store happened during the fetch."""
        machinery = self.machinery
        url = request_url(self.base_url, path, params)
        ttl = machinery.ttls.for_endpoint(endpoint)
        # The store's cache version in a server group ("" outside one). None: Redis does not
        # answer, so any cached reply may predate another process's write: use no cache.
        version = machinery.cache_version(self.store_id) if ttl > 0 else ""
        if version is None:
            ttl = 0
        key = machinery.cache.key_for(self.store_id, self._api_key, url, version or "")
        # requests-cache files replies under unversioned keys: in a group we file them.
        file_ourselves = bool(version)
        record = _CallRecord("GET", endpoint, machinery.clock())
        cached = ttl > 0 and not fresh
        if cached:
            remembered = machinery.remembered(key)
            if remembered is not None:
                record.cache_hit = record.memory_hit = True
                record.status = remembered.status
                self._report(record)
                return self._decode(remembered.body, endpoint, "GET", remembered.status)
        leader_record: list[_CallRecord] = []
        # Writes of this process bump the store's generation: a read asked after a write
        # must not join a flight that started before it, nor keep a reply that predates it.
        generation = machinery.generation(self.store_id)

        def fetch() -> bytes:
            leader_record.append(record)
            if cached:
                entry = machinery.cache.fresh_entry(key)
                if entry is not None:
                    record.cache_hit = True
                    status = record.status = entry.status_code
                    content = bytes(entry.content or b"")
                    lifetime = _seconds_left(entry.expires)
                    machinery.remember(self.store_id, generation, key, content, status, lifetime)
                    return content
            body = self._send(record, url, None, ttl=0 if file_ourselves else ttl)
            if file_ourselves and is_cacheable_body(record.status, body):
                machinery.cache.store_reply(key, url, body, ttl, self._headers(with_body=False))
            if ttl > 0:
                if machinery.generation(self.store_id) != generation:
                    # This reply may predate the write, and a read that began after the write
                    # may already have taken it from SQLite into memory: drop it from both.
                    machinery.invalidate(self.store_id, (key,))
                elif record.status == 200:  # what requests-cache stored (see is_cacheable_reply)
                    machinery.remember(self.store_id, generation, key, body, 200, ttl)
                    if fill is not None:
                        fill(body, generation, version or "")
            machinery.prune_if_due()
            return body

        flight_key = f"{key}|{generation}|{'fresh' if fresh or ttl <= 0 else 'cached'}"
        # A slot for what may wait on Order Desk (the SQLite cache, a fetch, or a flight to
        # join); Busy there means nothing was sent, so nothing is reported.
        with self._upstream_slot():
            try:
                if version is None:
                    # Unversioned, a flight may have begun before another process's write.
                    body, shared = fetch(), False
                else:
                    body, shared = machinery.flights.run(flight_key, fetch)
            except OrderDeskError as exc:
                if not leader_record:
                    record.coalesced = True
                    record.status = exc.status
                self._report(record)
                raise
        if shared:
            record.coalesced = True
            record.status = 200
        self._report(record)
        return self._decode(body, endpoint, "GET", record.status or 200)

    def _remember_listed_orders(self, body: bytes, generation: int, version: str) -> None:
        """Cache each order of a GET /orders page as the reply GET /orders/{id} would give."""
        machinery = self.machinery
        ttl = machinery.ttls.for_endpoint("/orders/{id}")
        try:
            orders = json.loads(body).get("orders")
        except (ValueError, AttributeError, RecursionError):
            return
        if ttl <= 0 or not isinstance(orders, list):
            return
        replies: list[tuple[str, str, bytes]] = []
        for order in orders:
            order_id = order.get("id") if isinstance(order, dict) else None
            if isinstance(order_id, bool) or not isinstance(order_id, str | int):
                continue
            if not is_order_desk_id(str(order_id)):
                continue
            url = request_url(self.base_url, f"/orders/{order_id}", None)
            key = machinery.cache.key_for(self.store_id, self._api_key, url, version)
            reply = encode_json({"status": "success", "order": order}, "/orders/{id}", "GET")
            replies.append((key, url, reply))
        machinery.cache.store_replies(replies, ttl, self._headers(with_body=False))
        for key, _url, reply in replies:
            machinery.remember(self.store_id, generation, key, reply, 200, ttl)
        keys = [key for key, _url, _reply in replies]
        if keys and machinery.generation(self.store_id) != generation:
            # A write landed while we stored them: they may predate it (as in _get).
            machinery.invalidate(self.store_id, tuple(keys))

    def _write(
        self,
        method: str,
        endpoint: str,
        path: str,
        body: Any,
        stale: tuple[str, ...],
        *,
        repeatable: bool | None = None,
    ) -> dict[str, Any]:
        """Send a write. POST is never repeated blindly; PUT and DELETE are, unless
        `repeatable` is False."""
        data = encode_json(body, endpoint, method) if body is not None else None
        record = _CallRecord(method, endpoint, self.machinery.clock())
        record.repeatable = method != "POST" if repeatable is None else repeatable
        with self._upstream_slot():  # Busy here: nothing was sent
            try:
                reply = self._send(record, self.base_url + path, data, ttl=0)
            except UpstreamUnavailable as exc:
                if method != "POST" or exc.write_may_have_happened:
                    self.machinery.after_write(self.store_id, stale)
                raise
            finally:
                self._report(record)
        self.machinery.after_write(self.store_id, stale)
        return self._decode(reply, endpoint, method, record.status or 200)

    def _decode(self, body: bytes, endpoint: str, method: str, status: int) -> dict[str, Any]:
        return interpret_reply(
            status,
            "application/json",
            body,
            method=method,
            endpoint=endpoint,
            secrets=self._secrets(),
        )

    def _secrets(self) -> tuple[str, ...]:
        return (self._api_key,)

    def _report(self, record: _CallRecord) -> None:
        machinery = self.machinery
        machinery.report(
            UpstreamCall(
                store_id=self.store_id,
                method=record.method,
                endpoint=record.endpoint,
                status=record.status,
                duration_ms=max(0.0, (machinery.clock() - record.started) * 1000.0),
                cache_hit=record.cache_hit,
                retries=record.retries,
                tokens_remaining=record.tokens_remaining,
                coalesced=record.coalesced,
                rate_limited_waits=record.rate_limited_waits,
                memory_hit=record.memory_hit,
            )
        )

    def _headers(self, with_body: bool) -> dict[str, str]:
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            STORE_ID_HEADER: self.store_id,
            API_KEY_HEADER: self._api_key,
        }
        if with_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _send(self, record: _CallRecord, url: str, data: bytes | None, *, ttl: int) -> bytes:
        """Send one logical request with the rate limit, 429 waits and retries applied; return
        the body of a successful reply or raise the mapped error."""
        machinery = self.machinery
        policy = machinery.retry
        bucket = machinery.buckets.for_store(self.store_id)
        budget = self.deadline if self.deadline is not None else policy.max_rate_limit_wait
        method, endpoint = record.method, record.endpoint
        while True:
            left = budget - record.rate_limit_waited
            wait = bucket.reserve(max(0.0, left))
            if wait is None:
                needed = bucket.wait_needed()
                raise RateLimited(
                    f"Order Desk's rate limit for store {self.store_id} needs a {needed:.1f} s "
                    f"wait, more than this call may wait ({max(0.0, left):.1f} s left); "
                    "try again shortly",
                    retry_after=needed,
                    endpoint=endpoint,
                    method=method,
                )
            if wait > 0:
                machinery.sleep(wait)
                record.rate_limit_waited += wait
            try:
                response = self._transmit(method, url, data, ttl)
            except requests.RequestException as exc:
                unsent = _surely_unsent(exc)
                if (record.repeatable or unsent) and record.retries < policy.max_retries:
                    record.retries += 1
                    machinery.sleep(machinery.backoff(record.retries))
                    continue
                raise self._unreachable(exc, record, unsent) from None
            record.status = response.status_code
            remaining = parse_tokens_remaining(response.headers.get("X-Tokens-Remaining"))
            if remaining is not None:
                record.tokens_remaining = remaining
                bucket.observe_remaining(remaining)
            status = response.status_code
            if status == 429:
                retry_after = parse_retry_after(response.headers.get("X-Retry-After"))
                if retry_after is None:
                    retry_after = machinery.backoff(record.rate_limited_waits + 1)
                # Every caller of the store waits it out (every process, with Redis).
                bucket.block(retry_after)
                left = budget - record.rate_limit_waited
                if record.rate_limited_waits < policy.max_429_retries and retry_after <= left:
                    record.rate_limited_waits += 1
                    machinery.sleep(retry_after)
                    record.rate_limit_waited += retry_after
                    continue
            elif 500 <= status < 600 and record.repeatable:
                if record.retries < policy.max_retries:
                    record.retries += 1
                    machinery.sleep(machinery.backoff(record.retries))
                    continue
            elif 300 <= status < 400:
                raise self._redirected(response, record)
            content = response.content
            try:
                interpret_reply(
                    status,
                    response.headers.get("Content-Type"),
                    content,
                    secrets=self._secrets(),
                    retry_after=_retry_after_of(response, machinery.backoff(1)),
                    endpoint=endpoint,
                    method=method,
                )
            except UpstreamUnavailable as exc:
                if method != "GET":
                    # Even a repeatable write whose retries ran out may have landed on an
                    # attempt whose reply was lost.
                    raise UpstreamUnavailable(
                        f"{exc.message}; the write may or may not have happened: check (for "
                        "example list the order's records) before sending it again",
                        status=exc.status,
                        write_may_have_happened=True,
                        endpoint=endpoint,
                        method=method,
                    ) from None
                raise
            except NotFound as exc:
                if method == "DELETE" and record.retries > 0:
                    # The attempt that failed in transit may have been the one that deleted it.
                    raise NotFound(
                        f"{exc.message}; an earlier attempt of this DELETE, whose reply was "
                        "lost, may already have removed it",
                        status=exc.status,
                        endpoint=endpoint,
                        method=method,
                    ) from None
                raise
            return content

    def _transmit(self, method: str, url: str, data: bytes | None, ttl: int) -> requests.Response:
        session = self.machinery.session()
        options: dict[str, Any] = {}
        if method == "GET" and ttl > 0:
            # Always fetch, then store for ttl seconds: fresh hits were served before we got here.
            options = {"force_refresh": True, "expire_after": ttl}
        return session.request(
            method,
            url,
            data=data,
            headers=self._headers(with_body=data is not None),
            timeout=self.machinery.timeouts,
            allow_redirects=False,  # a redirect would carry the API key to another address
            **options,
        )

    def _unreachable(
        self, exc: requests.RequestException, record: _CallRecord, unsent: bool
    ) -> UpstreamUnavailable:
        attempts = record.retries + 1
        what = _describe_transport_error(exc, self.machinery.timeouts)
        message = f"Order Desk could not be reached: {what} (after {attempts} attempt(s))"
        may_have_happened = record.method != "GET" and not unsent
        if may_have_happened:
            message += (
                "; the write may or may not have happened: check (for example list the "
                "order's records) before sending it again"
            )
        return UpstreamUnavailable(
            scrub(message, self._secrets()),
            endpoint=record.endpoint,
            method=record.method,
            write_may_have_happened=may_have_happened,
        )

    def _redirected(self, response: requests.Response, record: _CallRecord) -> UpstreamError:
        location = scrub(response.headers.get("Location", "?"), self._secrets())[:200]
        return UpstreamError(
            f"Order Desk answered HTTP {response.status_code} redirecting to {location}; "
            "set the store's base URL to the final address (redirects are not followed, so "
            "the API key is never sent anywhere else)",
            status=response.status_code,
            endpoint=record.endpoint,
            method=record.method,
        )


# --- transport error translation ---------------------------------------------------------------


def _surely_unsent(exc: requests.RequestException) -> bool:
    """True when the request never left: no connection was made, so a POST may be resent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        return isinstance(reason, NewConnectionError)
    return False


def _describe_transport_error(exc: requests.RequestException, timeouts: tuple[float, float]) -> str:
    # Our own words: exception texts carry URLs and internals we do not want in messages.
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {timeouts[0]:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"no answer within {timeouts[1]:g} s"
    if _surely_unsent(exc):
        return "the connection was refused or the host is unreachable"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed or was dropped before a reply"
    return f"the exchange failed ({type(exc).__name__})"


def _seconds_left(expires: dt.datetime | None) -> float:
    """Seconds until a cached entry's wall-clock expiry (requests-cache keeps it in UTC)."""
    if expires is None:
        return math.inf
    return (expires - dt.datetime.now(dt.UTC)).total_seconds()


def _retry_after_of(response: requests.Response, fallback: float) -> float:
    parsed = parse_retry_after(response.headers.get("X-Retry-After"))
    return fallback if parsed is None else parsed
