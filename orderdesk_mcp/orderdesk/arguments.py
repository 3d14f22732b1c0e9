"""Checks of everything a caller passes to the client, before any request is built.

Each check raises InvalidRequest with one sentence saying what was wrong and what to send;
ids are validated here so that nothing but digits ever reaches a URL path.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orderdesk_mcp.orderdesk.envelope import MAX_MESSAGE_CHARS
from orderdesk_mcp.orderdesk.errors import InvalidRequest

ORDER_LIST_FILTERS = frozenset(
    {
        "folder_id",
        "folder_name",
        "source_id",
        "source_name",
        "search_start_date",
        "search_end_date",
        "search_start_date_local",
        "search_end_date_local",
        "modified_start_date",
        "modified_end_date",
        "email",
        "customer_id",
        "customer_first_name",
        "customer_last_name",
        "customer_company",
        "customer_address1",
        "customer_phone",
        "shipping_first_name",
        "shipping_last_name",
        "shipping_company",
        "shipping_address1",
        "shipping_phone",
        "get_order_history",
        "order_by",
        "order",
    }
)
"""Query parameters GET /orders understands (reference §6.2), besides limit and offset."""

MAX_LIST_LIMIT = 500
MAX_HISTORY_NOTE_CHARS = 1800
"""Order Desk caps a note at ~2,000 characters including its date and author (reference §6.7)."""

_BASE_URL = re.compile(
    r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?",
    re.ASCII,
)
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def _shown(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**36:
        return "a number of more than 36 digits"  # repr of a huge int is slow or refused
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


MAX_ID_DIGITS = 20
_ID = re.compile(r"[1-9][0-9]{0,19}", re.ASCII)
"""An Order Desk id as it must travel: ASCII digits, no leading zero, not 0, 1-20 of them."""


def is_order_desk_id(text: str) -> bool:
    """True when `text` is an id exactly as Order Desk writes it (fullmatch: no "12\\n")."""
    return _ID.fullmatch(text) is not None


def _canonical_id(value: Any) -> str | None:
    """`value` as its one canonical text, or None when it is not an id.

    Nothing is repaired: "007", " 12", "12\\n" and full-width digits are refused rather than
    turned into 7 or 12, so each record has one spelling in URLs and cache keys, and a value a
    caller did not mean cannot quietly reach another record."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # Range first: str() of a huge int is slow, and refused past 4,300 digits.
        text = str(value) if 1 <= value < 10**MAX_ID_DIGITS else ""
    elif isinstance(value, str):
        text = value
    else:
        return None
    return text if is_order_desk_id(text) else None


def id_rule(name: str, value: Any, example: str = "e.g. 123456") -> str:
    """The one sentence that refuses `value` as the id `name`."""
    return (
        f"{name} must be an Order Desk id written as plain digits with no leading zero, "
        f"spaces or line breaks (1 to {MAX_ID_DIGITS} digits, not 0), {example}; "
        f"got {_shown(value)}"
    )


def checked_id(value: Any, name: str) -> str:
    """An Order Desk id as its canonical digits; an int >= 1 or such a string, else refused."""
    text = _canonical_id(value)
    if text is None:
        raise InvalidRequest(id_rule(name, value))
    return text


def checked_store_id(value: Any) -> str:
    text = _canonical_id(value)
    if text is None:
        raise InvalidRequest(id_rule("store_id", value, "as Store Settings → API shows it"))
    return text


def checked_api_key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("api_key must be the store's non-empty Order Desk API key")
    if any(ord(ch) < 33 or ord(ch) > 126 for ch in value):
        # Never echo the key itself, not even in part.
        raise InvalidRequest(
            "api_key contains spaces or characters that cannot travel in an HTTP header; "
            "copy it again from Order Desk's Store Settings → API"
        )
    return value


def checked_base_url(value: Any) -> str:
    text = value.strip().rstrip("/") if isinstance(value, str) else ""
    if not _BASE_URL.fullmatch(text):
        raise InvalidRequest(
            f"base_url must look like https://app.orderdesk.me/api/v2, got {_shown(value)}"
        )
    return text


def checked_deadline(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidRequest(f"deadline must be a number of seconds >= 0, got {_shown(value)}")
    return float(value)


def checked_mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{name} must be a JSON object (dict), got {type(value).__name__}")
    return dict(value)


def checked_rows(value: Any, name: str) -> list[dict[str, Any]]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise InvalidRequest(f"{name} must be a list of JSON objects")
    if not value:
        raise InvalidRequest(f"{name} is empty: give at least one")
    return [checked_mapping(row, f"{name}[]") for row in value]


def paging_params(limit: Any, offset: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    if limit is not None:
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_LIST_LIMIT
        ):
            raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
        params["limit"] = str(limit)
    if offset is not None:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidRequest("offset must be a whole number >= 0")
        params["offset"] = str(offset)
    return params


def order_filter_params(filters: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(name for name in filters if name not in ORDER_LIST_FILTERS)
    if unknown:
        raise InvalidRequest(
            f"unknown order filter {unknown[0]!r}; use one of: "
            + ", ".join(sorted(ORDER_LIST_FILTERS))
        )
    params: dict[str, str] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if name == "folder_id":
            params[name] = _folder_ids(value)
        elif name == "get_order_history":
            params[name] = "1" if value in (True, 1, "1", "true") else "0"
        elif name == "order":
            if not isinstance(value, str) or value.lower() not in ("asc", "desc"):
                raise InvalidRequest("order must be 'asc' or 'desc'")
            params[name] = value.upper()
        elif isinstance(value, dt.datetime):
            # Order Desk's date filters are UTC (the *_local ones: the store's zone, naive).
            aware = value.tzinfo is not None and not name.endswith("_local")
            moment = value.astimezone(dt.UTC) if aware else value
            params[name] = moment.strftime(_DATE_FORMAT)
        elif isinstance(value, dt.date):
            params[name] = value.isoformat()
        elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            params[name] = str(value)
        else:
            raise InvalidRequest(f"filter {name} must be a string, got {type(value).__name__}")
    return params


def _folder_ids(value: Any) -> str:
    if isinstance(value, str) and "," in value:
        value = [part for part in value.split(",") if part.strip()]
    values: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
    ids = [checked_id(item, "folder_id") for item in values]
    if not ids:
        raise InvalidRequest("folder_id is empty: give a folder id or a list of them")
    return ",".join(ids)


def encode_json(body: Any, endpoint: str, method: str) -> bytes:
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(
            f"the request body cannot be sent as JSON ({str(exc)[:MAX_MESSAGE_CHARS]}); use "
            "only strings, numbers, booleans, null, lists and objects",
            endpoint=endpoint,
            method=method,
        ) from None
    return text.encode("utf-8")
