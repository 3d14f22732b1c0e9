"""Schema fragments and result helpers shared by every toolset, so a model learns them once."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from orderdesk_mcp.mcp.tools._base import ToolInputError
from orderdesk_mcp.orderdesk.arguments import checked_id
from orderdesk_mcp.orderdesk.errors import InvalidRequest, OrderDeskError

# --- input schema fragments -------------------------------------------------------------

MAX_LIMIT = 100
DEFAULT_LIMIT = 20

STORE_ARG: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "description": "Store alias or id (see list_stores); omit for the default store.",
}
LIMIT_ARG: dict[str, Any] = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_LIMIT,
    "default": DEFAULT_LIMIT,
    "description": "Records per call, 1-100 (default 20).",
}
OFFSET_ARG: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "default": 0,
    "description": "Records to skip: pass the previous result's next_offset.",
}
FIELDS_ARG: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 100},
    "minItems": 1,
    "maxItems": 50,
    "uniqueItems": True,
    "description": "Only these fields of each record (dotted paths, e.g. shipping.city; id "
    "is always kept): keeps results small.",
}
DRY_RUN_ARG: dict[str, Any] = {
    "type": "boolean",
    "default": False,
    "description": "true: return exactly what would change and write nothing.",
}
CHANGES_ARG: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "description": "Partial record deep-merged into the current one: nested objects merge "
    "field by field, null clears a field, lists replace the whole list.",
}


# Canonical only: no leading zero (so not 0), ASCII digits, nothing around them. The
# registry applies `$` as ECMA does (the very end), so "12\n" fails here too; id_text checks
# again in code (and refuses integers of more than 20 digits, left out here to keep
# tools/list small).
ID_PATTERN = "^[1-9][0-9]{0,19}$"


def id_arg(description: str) -> dict[str, Any]:
    """An Order Desk id: its internal numeric id, as a string or an integer."""
    return {
        "anyOf": [
            {"type": "string", "pattern": ID_PATTERN},
            {"type": "integer", "minimum": 1},
        ],
        "description": description,
    }


def one_of_types(*types: str, **keywords: Any) -> dict[str, Any]:
    """A value of any of `types`, as `anyOf` rather than a `"type": [...]` list, which clients
    with strict schema subsets (Gemini-style function declarations) do not accept."""
    return {"anyOf": [{"type": name} for name in types], **keywords}


ORDER_ID_ARG = id_arg("Order Desk's internal order id (not the cart's order number).")


def input_schema(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A tool's inputSchema: closed to unknown arguments, plus every tool's optional `store`."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**properties, "store": STORE_ARG},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


# --- output schema fragments ------------------------------------------------------------

RECORD: dict[str, Any] = {"type": "object"}
NULLABLE_RECORD: dict[str, Any] = one_of_types("object", "null")
TRUNCATED: dict[str, Any] = {
    "type": "object",
    "description": "Set when the result was cut: what was cut, how to get the rest.",
}


def output_schema(properties: Mapping[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**properties, "truncated": TRUNCATED},
        "required": list(required),
    }


def list_output(key: str) -> dict[str, Any]:
    """`{key: [...], total_records, offset, next_offset}`: the list convention."""
    return output_schema(
        {
            key: {"type": "array", "items": RECORD},
            "total_records": {"type": "integer"},
            "offset": {"type": "integer"},
            "next_offset": one_of_types("integer", "null"),
        },
        [key, "total_records", "next_offset"],
    )


def record_output(key: str) -> dict[str, Any]:
    return output_schema({key: RECORD}, [key])


def dry_run_output(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A destructive tool's result: either the dry run's `would` or the write's own fields."""
    return output_schema(
        {"dry_run": {"type": "boolean"}, "would": RECORD, **properties},
        ["dry_run"],
    )


def deleted_output(id_name: str) -> dict[str, Any]:
    """The outputSchema of a delete tool: a dry run's `would`, or what was deleted."""
    return dry_run_output(
        {
            "deleted": {"type": "boolean"},
            id_name: {"type": "string"},
            "message": {"type": "string"},
        }
    )


def delete_or_preview(
    args: Mapping[str, Any],
    *,
    record_name: str,
    id_name: str,
    id_value: str,
    read: Callable[[], Mapping[str, Any]],
    delete: Callable[[], Mapping[str, Any]],
) -> dict[str, Any]:
    """A delete tool's body: dry_run reads the record that would go; otherwise delete it."""
    if args.get("dry_run"):
        current = record(read(), record_name) or {}
        return {"dry_run": True, "would": {"action": "delete", record_name: current}}
    envelope = delete()
    return {"dry_run": False, "deleted": True, id_name: id_value, "message": message_of(envelope)}


# --- Order Desk quirks, normalised once -----------------------------------------------

# PHP sends an empty map as [] (orderdesk-api.md 2.1); models should always see an object.
_MAP_FIELDS = frozenset(
    {"checkout_data", "order_metadata", "variation_list", "metadata", "settings", "folders"}
)


# Order Desk's empty-map quirk sits a few levels down; below this, values pass through as
# they came, so a deeply nested record (anyone can store one) cannot exhaust the stack.
MAX_NORMALISE_DEPTH = 32


def normalise(value: Any) -> Any:
    """`value` with every `[]` empty map turned into `{}`, changed in place and returned.

    In place, because what it gets is always freshly decoded for this call (the client decodes
    every reply, cached or not): copying a 20-order page cost more than decoding it."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if depth >= MAX_NORMALISE_DEPTH:
            continue
        if isinstance(node, dict):
            for key, item in node.items():
                if item == [] and key in _MAP_FIELDS:
                    node[key] = {}
                elif isinstance(item, (dict, list)):
                    pending.append((item, depth + 1))
        elif isinstance(node, list):
            pending.extend((item, depth + 1) for item in node if isinstance(item, (dict, list)))
    return value


def as_int(value: Any, default: int = 0) -> int:
    """Order Desk counts arrive as ints or numeric strings (inventory total_records)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            return default
    return default


def as_money(value: Any) -> float:
    """Money arrives as numbers or strings ("1.70"); anything unreadable counts as 0."""
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return 0.0
    return 0.0


def id_text(value: str | int, name: str = "id") -> str:
    """An id argument as its canonical digits: refused, never repaired ("007" is not 7)."""
    try:
        return checked_id(value, name)
    except InvalidRequest as error:
        raise ToolInputError(f"{error}.") from None


def records(envelope: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The list under `key` in an Order Desk envelope, normalised; missing means empty."""
    found = envelope.get(key)
    if not isinstance(found, list):
        return []
    return [normalise(item) for item in found if isinstance(item, dict)]


def record(envelope: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    found = envelope.get(key)
    return normalise(found) if isinstance(found, dict) else None


def written_record(
    envelope: Mapping[str, Any],
    key: str,
    lookup: Callable[[], Any],
    *,
    what: str,
    check: str,
    missing: str | None = None,
) -> tuple[Any, str]:
    """(record, message) after a write Order Desk reported done: the record its reply carries
    under `key`, else the one `lookup` reads back, with Order Desk's message.

    A failed read-back (its rate limit, a timeout) leaves the record None and says so in the
    message: the write stands, and turning it into an error would make a retrying agent write
    twice, so the message says not to repeat it and to check with `check`. `missing` is said
    when the read-back finds nothing.
    """
    message = message_of(envelope)
    found = record(envelope, key)
    if found is not None:
        return found, message
    try:
        found = lookup()
    except OrderDeskError as error:
        said = error.message.rstrip(".")
        note: str | None = (
            f"Order Desk reported the write done, but reading the {what} back failed ({said}). "
            f"Do not send the write again: check with {check} first."
        )
    else:
        note = missing if found is None else None
    return found, f"{message} ({note})".strip() if note else message


def message_of(envelope: Mapping[str, Any]) -> str:
    message = envelope.get("message")
    return message if isinstance(message, str) else ""


# --- projection and paging --------------------------------------------------------------


def project(item: Mapping[str, Any], fields: Iterable[str] | None) -> dict[str, Any]:
    """Keep only `fields` (dotted paths) of one record, plus its id. Missing fields are left out."""
    if not fields:
        return dict(item)
    kept: dict[str, Any] = {}
    for path in ["id", *fields]:
        parts = path.split(".")
        source: Any = item
        for part in parts:
            if not isinstance(source, Mapping) or part not in source:
                break
            source = source[part]
        else:
            target = kept
            for part in parts[:-1]:
                existing = target.get(part)
                if not isinstance(existing, dict):
                    existing = target[part] = {}
                target = existing
            target[parts[-1]] = source
    return kept


def project_all(items: Iterable[Mapping[str, Any]], fields: Iterable[str] | None) -> list[Any]:
    chosen = list(fields) if fields else None
    return [project(item, chosen) for item in items]


def page(key: str, items: list[Any], total: int, offset: int) -> dict[str, Any]:
    """The list convention: the page, the total and where the next page starts (None at the end)."""
    following = offset + len(items)
    return {
        key: items,
        "total_records": max(total, following),
        "offset": offset,
        "next_offset": following if items and following < total else None,
    }


def slice_page(key: str, items: list[dict[str, Any]], args: Mapping[str, Any]) -> dict[str, Any]:
    """Page a list Order Desk returns whole (an order's items or shipments) the same way."""
    limit = int(args.get("limit", DEFAULT_LIMIT))
    offset = int(args.get("offset", 0))
    chosen = project_all(items[offset : offset + limit], args.get("fields"))
    return page(key, chosen, len(items), offset)


# [0-9], not \d: Python's \d also matches other scripts' digits, which Order Desk would refuse.
DATE_ARG_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?([.][0-9]+)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?(?:[.][0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_DATE_HELP = (
    "use YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS], or ISO 8601 with Z or an offset "
    "(2026-03-01T10:30:00Z, 2026-03-01T10:30:00-05:00)"
)


def date_arg(description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": DATE_ARG_PATTERN, "description": description}


def order_desk_time(value: str, *, end_of_day: bool, zone: dt.tzinfo = dt.UTC) -> str:
    """A date argument as Order Desk's UTC `YYYY-MM-DD HH:MM:SS`.

    A value with Z or an offset is that moment; a bare date or a time without an offset is
    wall-clock time in `zone` (UTC unless given). A bare date covers the whole day, so an end
    bound becomes 23:59:59 of it. Seconds' fractions are dropped.
    """
    match = _DATE.fullmatch(value.strip())
    if match is None:
        raise ToolInputError(f"{value[:40]!r} is not a date; {_DATE_HELP}.")
    year, month, day, hour, minute, second, offset = match.groups()
    if hour is None:
        hour, minute, second = ("23", "59", "59") if end_of_day else ("00", "00", "00")
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0)
        )
        if offset is None:
            aware = moment.replace(tzinfo=zone)
        elif offset in ("Z", "z"):
            aware = moment.replace(tzinfo=dt.UTC)
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            aware = moment.replace(tzinfo=dt.timezone(sign * delta))
        utc = aware.astimezone(dt.UTC)
        # Not strftime: glibc writes year 1 as "1", not "0001".
        return (
            f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        )
    except (ValueError, OverflowError) as exc:
        raise ToolInputError(
            f"{value[:40]!r} is not a real date and time ({exc}); {_DATE_HELP}."
        ) from None


def names_its_zone(value: str) -> bool:
    """True when a date argument carries Z or an offset, so no store zone is needed for it."""
    match = _DATE.fullmatch(value.strip())
    return match is not None and match.group(7) is not None
