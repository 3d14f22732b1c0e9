"""Guards every update tool shares: fields `changes` may not name, and the stale-read check.

An agent reads a record, thinks, then asks for a change; meanwhile a person or an integration
may have changed the same record. `expected_date_updated` is the `date_updated` the agent saw:
when Order Desk's current value differs, nothing is written and the agent gets the current
stamp and the current values of the fields it wanted to change, so it can decide again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orderdesk_mcp.mcp.tools._base import RecordChanged, ToolInputError
from orderdesk_mcp.mcp.tools._common import (
    CHANGES_ARG,
    DRY_RUN_ARG,
    ORDER_ID_ARG,
    id_text,
    input_schema,
    record,
    written_record,
)
from orderdesk_mcp.orderdesk import OrderDeskClient, deep_merge
from orderdesk_mcp.orderdesk.errors import UpstreamError

EXPECTED_DATE_UPDATED_ARG: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 40,
    "description": "The date_updated you read (for lines and shipments: their order's). If it "
    "changed since, nothing is written and the current values come back.",
}

# Read-only on every record: Order Desk sets them, and an `id` in a batch body would write
# one record's fields over another's.
READ_ONLY_EVERYWHERE: dict[str, str] = {
    "id": "a record's id cannot change (name the record with the tool's id argument)",
    "date_added": "date_added is set by Order Desk",
    "date_updated": "date_updated is set by Order Desk (pass what you saw as "
    "expected_date_updated instead)",
}


def refuse_fields(changes: Mapping[str, Any], refused: Mapping[str, str], where: str) -> None:
    """ToolInputError naming every key of `changes` listed in `refused`, with its reason."""
    named = [f"{key} ({why})" for key, why in refused.items() if key in changes]
    if named:
        listed = "; ".join(named)
        raise ToolInputError(f"{where} cannot include {listed}. Nothing was written.")


def current_values(record: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The record's current values of the fields `changes` names (nested objects field by
    field), so a refused agent sees exactly what it would have overwritten."""
    found: dict[str, Any] = {}
    for key, wanted in changes.items():
        value = record.get(key)
        if isinstance(wanted, Mapping) and wanted and isinstance(value, Mapping):
            found[key] = current_values(value, wanted)
        else:
            found[key] = value
    return found


def require_unchanged(
    expected: str | None,
    stamp: Mapping[str, Any],
    *,
    what: str,
    record: Mapping[str, Any],
    changes: Mapping[str, Any],
) -> None:
    """Raise RecordChanged when `expected` is given and `stamp`'s date_updated differs.

    `stamp` is the record whose date_updated the agent saw (the order, for its lines and
    shipments); `record` holds the fields `changes` would overwrite.
    """
    if expected is None:
        return
    current = stamp.get("date_updated")
    if current == expected:
        return
    details = json.dumps(
        {"current_date_updated": current, "current_values": current_values(record, changes)},
        ensure_ascii=False,
        default=str,
    )
    raise RecordChanged(
        f"{what} changed in Order Desk since you read it: date_updated is now {current!r}, "
        f"not {expected!r}, so nothing was written. Current state: {details}. Decide again "
        "with these values and retry with expected_date_updated set to the new date_updated."
    )


def merge_or_preview(
    args: Mapping[str, Any],
    *,
    record_name: str,
    read_only_fields: Mapping[str, str],
    read: Callable[[], Mapping[str, Any]],
    write: Callable[[dict[str, Any]], Mapping[str, Any]],
    stamp: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An update tool's body: refuse read-only fields in `changes`, read the record fresh,
    check `expected_date_updated`, deep-merge, then preview (dry_run) or write it whole.

    `read_only_fields` (beside READ_ONLY_EVERYWHERE) are refused in `changes` and left out
    of the body. Order Desk blanks fields a PUT leaves out, so the whole merged record is
    sent. `stamp` reads the record whose date_updated the agent saw when it is not the
    record itself (an order line's or shipment's order); it is called only when
    expected_date_updated is given, so an unchecked update costs no extra request.
    """
    changes: Mapping[str, Any] = args["changes"]
    refused = {**READ_ONLY_EVERYWHERE, **read_only_fields}
    refuse_fields(changes, refused, "changes")
    current = record(read(), record_name)
    if current is None:
        # Order Desk blanks what a PUT leaves out: never write `changes` over an empty record.
        raise UpstreamError(
            f"Order Desk's reply has no {record_name!r} object; nothing was written",
            method="GET",
        )
    expected = args.get("expected_date_updated")
    if expected is not None:
        owner = stamp(current) if stamp is not None else current
        require_unchanged(
            expected, owner, what=record_name.replace("_", " "), record=current, changes=changes
        )
    merged = deep_merge(current, changes)
    if args.get("dry_run"):
        return {"dry_run": True, "would": {"action": "update", record_name: merged}}
    body = {key: value for key, value in merged.items() if key not in refused}
    envelope = write(body)
    stored, message = written_record(
        envelope,
        record_name,
        lambda: record(read(), record_name),
        what=record_name.replace("_", " "),
        check="a read of the record",
    )
    return {"dry_run": False, record_name: stored, "message": message}


def refuse_unwritable(
    changes: Mapping[str, Any],
    writable: Sequence[str],
    *,
    where: str,
    reasons: Mapping[str, str],
) -> None:
    """ToolInputError naming every key of `changes` that is not in `writable` (the fields
    Order Desk documents as writable on this record), with its reason from `reasons` or
    READ_ONLY_EVERYWHERE, and listing what may be changed."""
    fallback = "not a field Order Desk documents as writable"
    named = [
        f"{key} ({reasons.get(key) or READ_ONLY_EVERYWHERE.get(key) or fallback})"
        for key in changes
        if key not in writable
    ]
    if named:
        raise ToolInputError(
            f"{where} cannot include {'; '.join(named)}. Fields you can change: "
            f"{', '.join(writable)}. Nothing was written."
        )


def order_part_update_schema(part_id_name: str, part_id_arg: dict[str, Any]) -> dict[str, Any]:
    """The inputSchema of update_order_item and update_shipment (parts of one order)."""
    return input_schema(
        {
            "order_id": ORDER_ID_ARG,
            part_id_name: part_id_arg,
            "changes": CHANGES_ARG,
            "expected_date_updated": EXPECTED_DATE_UPDATED_ARG,
            "dry_run": DRY_RUN_ARG,
        },
        ["order_id", part_id_name, "changes"],
    )


def update_order_part(
    args: Mapping[str, Any],
    client: OrderDeskClient,
    *,
    record_name: str,
    writable: Sequence[str],
    reasons: Mapping[str, str],
    read_only_fields: Mapping[str, str],
    read: Callable[[], Mapping[str, Any]],
    write: Callable[[dict[str, Any]], Mapping[str, Any]],
) -> dict[str, Any]:
    """Update one line or shipment of an order: only documented writable fields, and
    expected_date_updated is the order's (a part has no date_updated of its own)."""
    refuse_unwritable(args["changes"], writable, where="changes", reasons=reasons)
    order_id = id_text(args["order_id"], "order_id")
    return merge_or_preview(
        args,
        record_name=record_name,
        read_only_fields=read_only_fields,
        read=read,
        write=write,
        stamp=lambda _part: record(client.get_order(order_id, fresh=True), "order") or {},
    )
