"""Deep merge of a partial record into a full one (Order Desk's PUT replaces the whole record)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), without recursion.

    Records come from Order Desk, where anyone can store arbitrarily deep metadata; a
    recursive copy would fail on them long before JSON decoding does.
    """
    if not isinstance(value, Mapping | list):
        return value
    root: Any = {} if isinstance(value, Mapping) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, item in pairs:
            child: Any = item
            if isinstance(item, Mapping | list):
                child = {} if isinstance(item, Mapping) else []
                stack.append((item, child))
            if isinstance(target, dict):
                target[key] = child
            else:
                target.append(child)
    return root


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new record: ``base`` with ``changes`` applied; neither input is modified.

    - a nested object in ``changes`` merges field by field into the same field of ``base``
      (an empty ``[]`` in ``base`` counts as an empty object: Order Desk's PHP writes empty maps
      as ``[]``);
    - ``None`` removes the field (a full-replace PUT then stores it blank);
    - anything else, lists included, replaces the old value.
    """
    merged: dict[str, Any] = json_copy(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            current = merged.get(key)
            start: Mapping[str, Any] = current if isinstance(current, Mapping) else {}
            merged[key] = deep_merge(start, value)
        else:
            merged[key] = json_copy(value)
    return merged
