"""Turning a handler's output (or its failure) into a bounded CallToolResult.

A result is at most MAX_RESULT_CHARS of JSON (~20,000 tokens). When it is bigger, the
largest lists are cut (and then the longest strings), and a `truncated` marker says what
was cut and how to ask for the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orderdesk_mcp.mcp.protocol import EncodedResult, compact_json

MAX_RESULT_CHARS = 80_000
# Leaves room for the marker itself once the data has been cut.
_TARGET_CHARS = MAX_RESULT_CHARS - 2_000
_LONG_STRING = 2_000
_MAX_CUTS = 200


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def success(structured: dict[str, Any]) -> dict[str, Any]:
    """A successful CallToolResult: structuredContent plus the same JSON as a text block."""
    text = to_json(structured)
    # Encoded once: the size check and the text block share it unless it must be cut.
    bounded = structured if len(text) <= MAX_RESULT_CHARS else bound(structured)
    if bounded is not structured:
        text = to_json(bounded)
    result = {
        "content": [{"type": "text", "text": text}],
        "structuredContent": bounded,
        "isError": False,
    }
    if not text.isascii() or "\x7f" in text:
        return result
    # ASCII-only, this text is also the reply encoder's JSON of structuredContent, so the
    # reply splices it in rather than encoding the data a second time. DEL is ASCII but the
    # reply encoder (ensure_ascii) writes it as \u007f: such a text is encoded as usual.
    return EncodedResult(
        result,
        '{"content":[{"type":"text","text":'
        + compact_json(text)
        + '}],"structuredContent":'
        + text
        + ',"isError":false}',
    )


def failure(message: str) -> dict[str, Any]:
    """A tool-level error the model can act on (never a protocol error)."""
    return {"content": [{"type": "text", "text": message}], "isError": True}


@dataclass
class _Cut:
    path: str
    kind: str  # "list" or "text"
    kept: int
    total: int


def bound(structured: dict[str, Any]) -> dict[str, Any]:
    """`structured` itself when small enough, else a copy with lists and long texts cut to fit."""
    if len(to_json(structured)) <= MAX_RESULT_CHARS:
        return structured
    value: dict[str, Any] = json.loads(to_json(structured))
    cuts: dict[str, _Cut] = {}
    for _ in range(_MAX_CUTS):
        excess = len(to_json(value)) - _TARGET_CHARS
        if excess <= 0 or not _cut_largest(value, cuts, excess):
            break
    top_list = _top_level_list(structured)
    marker: dict[str, Any] = {
        "message": _advice(top_list, cuts),
        "cuts": [
            {"path": cut.path, "kind": cut.kind, "kept": cut.kept, "total": cut.total}
            for cut in cuts.values()
        ],
    }
    if top_list is not None and top_list in cuts and "next_offset" in value:
        # The model pages on from what it actually got, not from what Order Desk sent.
        value["next_offset"] = int(value.get("offset") or 0) + cuts[top_list].kept
    value["truncated"] = marker
    return value


def _top_level_list(structured: dict[str, Any]) -> str | None:
    if "next_offset" not in structured:
        return None
    for key, item in structured.items():
        if isinstance(item, list):
            return key
    return None


def _advice(top_list: str | None, cuts: dict[str, _Cut]) -> str:
    parts = ["This result was cut to stay under ~20,000 tokens."]
    if top_list is not None and top_list in cuts:
        kept = cuts[top_list].kept
        parts.append(
            f"Only the first {kept} {top_list} are here; continue from next_offset, "
            f"ask for a smaller limit (e.g. {max(1, kept)}), or pass `fields` to get fewer fields."
        )
    else:
        parts.append("Pass `fields` to ask only for the fields you need.")
    return " ".join(parts)


def _cut_largest(value: Any, cuts: dict[str, _Cut], excess: int) -> bool:
    """Shorten the biggest list (or the longest text) anywhere in `value` by about `excess`
    characters, keeping as much as fits. False when nothing is left to cut."""
    best: tuple[int, Any, Any, str] | None = None  # (size, container, key, path)
    for container, key, path, item in _walk(value, ""):
        if isinstance(item, list) and item:
            size = len(to_json(item))
        elif isinstance(item, str) and len(item) > _LONG_STRING:
            size = len(item)
        else:
            continue
        if best is None or size > best[0]:
            best = (size, container, key, path)
    if best is None:
        return False
    size, container, key, path = best
    item = container[key]
    if isinstance(item, list):
        cut = cuts.setdefault(path, _Cut(path, "list", len(item), len(item)))
        # Drop about as many entries as the excess is worth, at least one.
        average = max(1, size // len(item))
        cut.kept = max(0, len(item) - max(1, -(-excess // average)))
        container[key] = item[: cut.kept]
    else:
        cut = cuts.setdefault(path, _Cut(path, "text", len(item), len(item)))
        cut.kept = max(_LONG_STRING // 2, len(item) - excess - 100)
        container[key] = item[: cut.kept] + " [...cut]"
    return True


def _walk(value: Any, path: str) -> Any:
    """Yield (container, key, path, item) for every value below `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield value, key, child, item
            yield from _walk(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            child = f"{path}[{index}]"
            yield value, index, child, item
            yield from _walk(item, child)
