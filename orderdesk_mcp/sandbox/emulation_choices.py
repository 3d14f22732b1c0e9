"""Every place where the sandbox guesses what Order Desk does, in one file.

The reference (/work/shared/orderdesk-api.md) marks these facts [EMU] or "Uncertain". Each
constant below is one such choice, with why we made it; the code reads it, so a guess is
changed here and nowhere else.

Fixed choices (structural, not switches):
- Credentials are checked before the bucket, so a 401 costs no token (the bucket belongs to an
  authenticated store). Unrouted requests (404 unknown path, 405 wrong method) need no
  credentials and cost no token either. (api_context.authenticate_and_take_token)
- Injected drops, 5xx and forced 429s act like a proxy in front of Order Desk: they take no
  token, so a store's `served_at` only holds requests the emulated API really served.
  (middleware.SandboxMiddleware)
- X-Tokens-Remaining is on every reply to a known store id (including 401, 404 and 405); a reply
  to an unknown store id has no bucket to report and carries no such header. (app.tokens_header)
- X-Retry-After = max(1, ceil((1 - tokens) / rate)), whole seconds, as the reference's [EMU]
  algorithm says. (rate_limit.TokenBucket.take)
- PUT /batch-inventory-items validates every entry first and applies all or none; the per-item
  result format is undocumented, so an error names the failing index.
  (store.StoreState.batch_replace_inventory)
- GET /inventory-items honours only `code` (one SKU or a comma list, exact match) and returns
  every matching item in one reply: the docs list no parameters ("all the store's inventory
  items"); `code` is in a copy of the current docs and in a production client's comma list.
  `search`, `limit` and `offset` appear only in a generated spec, so they are ignored like any
  unknown parameter. Evidence: docs/ORDERDESK.md ("Inventory items").
  (api_inventory.list_inventory_items)
"""

from __future__ import annotations

from typing import Final

# --- HTTP status codes (reference §2.2, Uncertain 1) ------------------------------------------

STATUS_BAD_CREDENTIALS: Final = 401
"""Missing or wrong ORDERDESK-STORE-ID / ORDERDESK-API-KEY. Undocumented; [EMU] advice."""

STATUS_NOT_FOUND: Final = 404
"""Unknown order, item, shipment or inventory id, and unknown paths."""

STATUS_INVALID: Final = 400
"""Validation failures, bad JSON, bad query values, duplicates, "Shipment Not Added"."""

STATUS_METHOD_NOT_ALLOWED: Final = 405
"""PATCH (the docs call it invalid) and any other method a path does not serve."""

STATUS_RATE_LIMITED: Final = 429
"""The only documented status code."""

STATUS_INJECTED_FAULT: Final = 500
"""Status of a 5xx reply produced by fault injection (not an Order Desk fact)."""

# --- Rate limit (reference §3, Uncertain 2) --------------------------------------------------

BUCKET_CAPACITY: Final = 20
"""Documented "initial bucket size", treated as the capacity."""

BUCKET_REFILL_PER_SECOND: Final = 3.0
"""Documented refill rate."""

REJECTED_REQUESTS_COST_A_TOKEN: Final = False
"""Unknown upstream; the reference suggests no. A 429 leaves the bucket as it was."""


# --- Envelopes of undocumented replies (reference Uncertain 4) -------------------------------

TOO_MANY_REQUESTS_MESSAGE: Final = "Too Many Requests"
"""Body message of a 429 (the real body is undocumented)."""

# --- Orders (reference §6, Uncertain 8, 9, 12) -----------------------------------------------

DUPLICATE_ORDER_KEY: Final = ("source_id", "source_name")
"""A POST whose non-empty source_id and source_name match a stored order is refused (400) and
the message names the existing order id. Undocumented key; this is the [EMU] advice."""

NAME_FIELDS_ANY_ONE_SUFFICES: Final = True
"""The docs list six name fields and say "one of" them must be set; we accept any one of
first_name, last_name or company on either the shipping or the customer address."""

PUT_ORDER_HONOURS_FOLDER_ID: Final = False
"""The order keeps its folder on PUT; moving is /move-orders' job (usefulapi's observation)."""

ORDER_CARD_READ_ONLY_MASK: Final = True
"""`cc_number` is the card's write field and `cc_number_masked` its read-only read-back form
(Order Properties table; every sample reply). A body's `cc_number_masked` is ignored, so a PUT
without `cc_number` blanks the stored card: the documented "parts left out will be updated as
blank", applied to the one field whose read and write names differ. The harsher reading,
chosen so that a client which echoes the read-back order loses the card here as it may there."""

MOVE_RESULT_ONLY_FOR_MOVED_ORDERS: Final = True
"""/move-orders results hold one documented entry {order_id (int), message,
original_folder_id} per order moved and nothing else: an order id it cannot move (unknown)
gets no entry. How Order Desk reports such an id is undocumented; no per-result status is."""

PUT_ORDER_WITHOUT_ITEMS_KEEPS_ITEMS: Final = True
"""A PUT body with no `order_items` key keeps the stored items instead of deleting them all
(an order without items would be invalid). An explicit list is a full replacement."""

ORDER_BY_UNKNOWN_FIELD_IS_ERROR: Final = True
"""order_by accepts any top-level order field or a flattened address field
(`shipping_last_name`); anything else is a 400 that names the choices."""

TEXT_FILTERS_CASE_INSENSITIVE: Final = True
"""email, names, source and address filters are exact matches, ignoring case."""

LIMIT_ABOVE_MAX_IS_CLAMPED: Final = True
"""limit > 500 is served as 500 (a PHP service clamps rather than refusing); limit < 1 is a 400."""

LIST_DEFAULT_LIMIT: Final = 50
LIST_MAX_LIMIT: Final = 500

METHOD_OVERRIDES_ACCEPTED: Final = frozenset({"PUT"})
"""POST + X-HTTP-Method-Override: PUT is a PUT (2018 docs). Other overrides are ignored."""

HISTORY_MAX_ENTRIES: Final = 250
HISTORY_NOTE_MAX_CHARS: Final = 1800
"""The 2,000-character cap includes metadata; we refuse notes over 1,800 characters."""

MOVE_HISTORY_SOURCE: Final = "API"
"""Moves append {"source_name": "API", "note": "Order moved from <old> to <new>"}."""

# --- Items, shipments, inventory -------------------------------------------------------------

ITEM_NEEDS_NAME_OR_CODE: Final = True
"""An order line with neither name nor code is refused; the docs require nothing, but such a
line is meaningless and usually a client bug."""

DUPLICATE_SHIPMENT_KEY: Final = ("tracking_number", "carrier_code")
"""A shipment with the tracking number and carrier of one on the order is "Shipment Not Added"."""

SHIPMENT_CREATE_REPLY_INCLUDES_RECORD: Final = False
"""POST /orders/{id}/shipments answers only status, message and execution_time, as the docs'
sample and MindCloud's wrapper show (sparkweb/slate:source/includes/_shipments.md); a client
finds the new shipment by listing the order's shipments."""

BATCH_SHIPMENT_RESULT_FIELDS: Final = ("status", "message")
"""Each /batch-shipments result holds only what callers are seen reading: status and message,
in the order of the request (billymitchell/Orderdesk-Single-Order-Shipment:index.js). No
order_id or shipment_id: the only source for them is a test mock."""

SHIPMENT_DATE_SHIPPED_IS_SET_BY_ORDER_DESK: Final = True
"""date_shipped is not in the documented writable fields: a new shipment gets today's date
whatever the body says, and a PUT keeps the stored one (research §2: assume not writable)."""

SHIPMENT_ORDER_ITEMS_MUST_NAME_LINES: Final = True
"""A shipment's `order_items` (partial shipments; undocumented, one integrator sends
[{id|code, quantity}]) is stored as sent when each entry has an id or code and a quantity of 1
or more; an `id` that is not a line of the order is refused (400)."""

BATCH_BODY_MUST_BE_ARRAY: Final = True
"""Batch endpoints take a top-level JSON array (what every real caller sends); a wrapped
{"shipments": [...]} body is a 400 that says so."""

BATCH_MAX_ENTRIES: Final = 500
"""Undocumented maximum; larger batches are a 400."""


INVENTORY_LIST_TOTAL_RECORDS_IS_STRING: Final = True
"""`total_records` on /inventory-items is a numeric string, as in the docs and a live reply."""

INVENTORY_CREATE_REPLY_INCLUDES_RECORD: Final = False
"""POST /inventory-items replies with status, message ("Inventory Item Added") and
execution_time only, as the documented sample shows: no record, no id. Clients find the new
item by its code (docs/ORDERDESK.md ("Inventory items"))."""
