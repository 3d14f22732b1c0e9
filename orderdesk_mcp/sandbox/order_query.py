"""GET /orders query strings: parse the filters (reference §6.2), then filter, sort and page.

Filters combine with AND, date ranges are inclusive, unknown parameters are ignored and bad
values of known ones are a 400 that says what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from orderdesk_mcp.sandbox.emulation_choices import (
    LIMIT_ABOVE_MAX_IS_CLAMPED,
    LIST_DEFAULT_LIMIT,
    LIST_MAX_LIMIT,
    ORDER_BY_UNKNOWN_FIELD_IS_ERROR,
    TEXT_FILTERS_CASE_INSENSITIVE,
)
from orderdesk_mcp.sandbox.errors import invalid
from orderdesk_mcp.sandbox.fields import TIMESTAMP_FORMAT
from orderdesk_mcp.sandbox.records import ADDRESS_FIELDS, SORTABLE_ORDER_FIELDS

TOP_LEVEL_FILTERS = ("source_id", "source_name", "email", "customer_id")
ADDRESS_FILTER_FIELDS = ("first_name", "last_name", "company", "address1", "phone")
DATE_FILTERS = {
    # parameter: (order field, end of range?, local time?)
    "search_start_date": ("date_added", False, False),
    "search_end_date": ("date_added", True, False),
    "search_start_date_local": ("date_added", False, True),
    "search_end_date_local": ("date_added", True, True),
    "modified_start_date": ("date_updated", False, False),
    "modified_end_date": ("date_updated", True, False),
}

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACED = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$")
DATE_FORMATS_HELP = "YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or ISO 8601 (2024-01-31T12:00:00Z)"


def parse_date(raw: str, *, end_of_range: bool, zone: ZoneInfo | None = None) -> datetime:
    """One of the three date forms clients send, as an aware UTC datetime.

    A date-only end bound covers that whole day (inclusive). Naive values are UTC, or the
    store's zone when `zone` is given (the `_local` parameters).
    """
    text = raw.strip()
    try:
        if _DATE_ONLY.match(text):
            day = datetime.strptime(text, "%Y-%m-%d")
            moment = datetime.combine(day.date(), time(23, 59, 59) if end_of_range else time())
        elif _SPACED.match(text):
            moment = datetime.fromisoformat(text)
        elif "T" in text:
            moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        else:
            raise ValueError(text)
    except ValueError:
        raise invalid(f"bad date {raw[:40]!r}: use {DATE_FORMATS_HELP}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise invalid(f"date {raw[:40]!r} is out of range") from None


def _int_param(args: Mapping[str, str], name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise invalid(f"{name} must be a whole number, got {raw[:40]!r}") from None


def parse_limit_offset(args: Mapping[str, str]) -> tuple[int, int]:
    limit = _int_param(args, "limit", LIST_DEFAULT_LIMIT)
    offset = _int_param(args, "offset", 0)
    if limit < 1 or (limit > LIST_MAX_LIMIT and not LIMIT_ABOVE_MAX_IS_CLAMPED):
        raise invalid(f"limit must be between 1 and {LIST_MAX_LIMIT}")
    if offset < 0:
        raise invalid("offset must be 0 or more")
    return min(limit, LIST_MAX_LIMIT), offset


def _sort_field(raw: str | None) -> str:
    field = (raw or "date_added").strip() or "date_added"
    if field in SORTABLE_ORDER_FIELDS:
        return field
    prefix, _, rest = field.partition("_")
    if prefix in ("shipping", "customer") and rest in ADDRESS_FIELDS:
        return field
    if not ORDER_BY_UNKNOWN_FIELD_IS_ERROR:
        return "date_added"
    raise invalid(
        f"order_by {field[:40]!r} is not an order field; use a top-level field such as "
        "date_added, date_updated, order_total, source_id, or a flattened address field "
        "such as shipping_last_name"
    )


@dataclass(frozen=True)
class OrderQuery:
    folder_ids: frozenset[int] | None
    folder_name: str | None
    text_filters: tuple[tuple[str, str], ...]  # (top-level field, wanted value)
    address_filters: tuple[tuple[str, str, str], ...]  # (shipping|customer, field, value)
    date_bounds: tuple[tuple[str, bool, str], ...]  # (field, is end, bound as timestamp text)
    order_by: str
    descending: bool
    limit: int
    offset: int
    with_history: bool


def parse_order_query(args: Mapping[str, str], zone: ZoneInfo) -> OrderQuery:
    folder_ids: frozenset[int] | None = None
    raw_folders = args.get("folder_id")
    if raw_folders is not None and raw_folders.strip():
        try:
            folder_ids = frozenset(int(part) for part in raw_folders.split(",") if part.strip())
        except ValueError:
            raise invalid(
                "folder_id must be a folder id or a comma-separated list of ids (1004,1009)"
            ) from None
    bounds = []
    for name, (field, is_end, local) in DATE_FILTERS.items():
        raw = args.get(name)
        if raw is not None and raw.strip():
            moment = parse_date(raw, end_of_range=is_end, zone=zone if local else None)
            bounds.append((field, is_end, moment.strftime(TIMESTAMP_FORMAT)))
    direction = (args.get("order") or "DESC").strip().upper()
    if direction not in ("ASC", "DESC"):
        raise invalid("order must be ASC or DESC")
    limit, offset = parse_limit_offset(args)
    return OrderQuery(
        folder_ids=folder_ids,
        folder_name=(args.get("folder_name") or "").strip() or None,
        text_filters=tuple(
            (name, args[name].strip()) for name in TOP_LEVEL_FILTERS if args.get(name, "").strip()
        ),
        address_filters=tuple(
            (kind, field, args[f"{kind}_{field}"].strip())
            for kind in ("customer", "shipping")
            for field in ADDRESS_FILTER_FIELDS
            if args.get(f"{kind}_{field}", "").strip()
        ),
        date_bounds=tuple(bounds),
        order_by=_sort_field(args.get("order_by")),
        descending=direction == "DESC",
        limit=limit,
        offset=offset,
        with_history=(args.get("get_order_history") or "").strip().lower() in ("1", "true"),
    )


def _same_text(value: Any, wanted: str) -> bool:
    if TEXT_FILTERS_CASE_INSENSITIVE:
        return str(value).casefold() == wanted.casefold()
    return str(value) == wanted


def _matches(
    order: Mapping[str, Any], query: OrderQuery, folder_ids: frozenset[int] | None
) -> bool:
    if folder_ids is not None and order["folder_id"] not in folder_ids:
        return False
    for field, wanted in query.text_filters:
        if not _same_text(order.get(field, ""), wanted):
            return False
    for kind, field, wanted in query.address_filters:
        if not _same_text(order[kind].get(field, ""), wanted):
            return False
    for field, is_end, bound in query.date_bounds:
        value = order[field]
        if (value > bound) if is_end else (value < bound):
            return False
    return True


def _sort_value(order: Mapping[str, Any], field: str) -> tuple[int, float, str]:
    if field in order:
        value = order[field]
    else:
        kind, _, name = field.partition("_")
        value = order[kind].get(name, "")
    if field == "id":
        return (0, float(int(value)), "")
    if isinstance(value, int | float):
        return (0, float(value), "")
    return (1, 0.0, str(value).casefold())


def select_orders(
    orders: Iterable[Mapping[str, Any]], query: OrderQuery, folders: Mapping[int, str]
) -> tuple[int, list[Mapping[str, Any]]]:
    """(total matches, the requested page) for a parsed query."""
    folder_ids = query.folder_ids
    if query.folder_name is not None:
        named = frozenset(fid for fid, name in folders.items() if name == query.folder_name)
        folder_ids = named if folder_ids is None else folder_ids & named
    matched = [order for order in orders if _matches(order, query, folder_ids)]
    matched.sort(key=lambda order: int(order["id"]), reverse=query.descending)
    matched.sort(key=lambda order: _sort_value(order, query.order_by), reverse=query.descending)
    return len(matched), matched[query.offset : query.offset + query.limit]
