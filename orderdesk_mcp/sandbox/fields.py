"""Reading JSON bodies the way a lenient PHP service does, and writing its type quirks back.

Every reader raises a 400 `ApiError` naming the field and what it must be.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from orderdesk_mcp.sandbox.errors import invalid

JsonObject = dict[str, Any]

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamp(moment: datetime) -> str:
    """Order Desk's `YYYY-MM-DD HH:MM:SS` in UTC."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def php_number(value: float) -> int | float:
    """PHP's json_encode writes 10.0 as 10; keep that, and trim float noise."""
    rounded = round(float(value), 4)
    if rounded.is_integer():
        return int(rounded)
    return rounded


def php_map(value: Mapping[str, Any]) -> dict[str, Any] | list[Any]:
    """An empty map serialises as [] (a PHP array); a non-empty one as an object."""
    return dict(value) if value else []


def read_text(body: Mapping[str, Any], key: str, where: str = "", default: str = "") -> str:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        raise invalid(f"{where}{key} must be a string, not true/false")
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(php_number(float(value)))
    raise invalid(f"{where}{key} must be a string")


def read_number(body: Mapping[str, Any], key: str, where: str = "", default: float = 0.0) -> float:
    value = body.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid(f"{where}{key} must be a number, not true/false")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise invalid(f"{where}{key} must be a number, got {value[:40]!r}") from None
    else:
        raise invalid(f"{where}{key} must be a number")
    if not math.isfinite(number) or abs(number) > 1e12:
        raise invalid(f"{where}{key} must be a finite number below 10^12")
    return number


def read_int(body: Mapping[str, Any], key: str, where: str = "", default: int = 0) -> int:
    number = read_number(body, key, where, float(default))
    if not number.is_integer():
        raise invalid(f"{where}{key} must be a whole number, got {php_number(number)}")
    return int(number)


def read_map(body: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
    """Accept an object, or [] / null for "empty" (what Order Desk itself sends back)."""
    value = body.get(key)
    if value is None or value == [] or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    raise invalid(f"{where}{key} must be an object (or [] when empty)")


def read_list(body: Mapping[str, Any], key: str, where: str = "") -> list[Any]:
    value = body.get(key)
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    raise invalid(f"{where}{key} must be an array")


def require_object(value: Any, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise invalid(f"{what} must be a JSON object")
    return value
