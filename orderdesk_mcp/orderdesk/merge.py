"""Deep merge of a partial record into a full one (Order Desk's PUT replaces the whole record)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new record: ``base`` with ``changes`` applied; neither input is modified.

    - a nested object in ``changes`` merges field by field into the same field of ``base``
      (an empty ``[]`` in ``base`` counts as an empty object: Order Desk's PHP writes empty maps
      as ``[]``);
    - ``None`` removes the field (a full-replace PUT then stores it blank);
    - anything else, lists included, replaces the old value.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            current = merged.get(key)
            start: Mapping[str, Any] = current if isinstance(current, Mapping) else {}
            merged[key] = deep_merge(start, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
