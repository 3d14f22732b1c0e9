"""The tool catalogue: every tool, the toolset and read-only filters, and `execute_tool`.

Tools are declared in `tools/<toolset>.py`, each right above its handler. This module
collects them, checks at import that each tool's annotations agree with the read/write
lists below (so a write tool cannot slip into read-only mode), and runs a call:
validate the arguments, resolve the store, call the handler, turn every failure into a
tool result the model can act on, and bound the output.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.validators import extend

from orderdesk_mcp.mcp import results
from orderdesk_mcp.mcp.echo import bound_message, clip, echo_names
from orderdesk_mcp.mcp.tools import inventory, items, orders, shipments, store
from orderdesk_mcp.mcp.tools._base import (
    RecordChanged,
    StaticStoreResolver,
    StoreNotFound,
    StoreRef,
    StoreResolver,
    ToolAnnotations,
    ToolContext,
    ToolDef,
    ToolInputError,
)
from orderdesk_mcp.mcp.tools._common import ID_PATTERN
from orderdesk_mcp.orderdesk.errors import (
    AuthError,
    Busy,
    Conflict,
    InvalidRequest,
    NotFound,
    OrderDeskError,
    RateLimited,
    UpstreamUnavailable,
)

__all__ = [
    "TOOLSETS",
    "Busy",
    "CatalogueError",
    "StaticStoreResolver",
    "StoreNotFound",
    "StoreRef",
    "StoreResolver",
    "ToolAnnotations",
    "ToolContext",
    "ToolDef",
    "ToolOutcome",
    "all_tools",
    "check_catalogue",
    "execute_tool",
    "find_tool",
    "visible_tools",
]

TOOLSETS: dict[str, str] = {
    "store": "The tenant's stores: list them, read settings and folders, test credentials.",
    "orders": "Search, read, summarise, create, update, delete and move orders; add history notes.",
    "items": "Read and change the line items of one order.",
    "shipments": "Read and record shipments (tracking numbers), one order or many at once.",
    "inventory": "Read and change inventory items (SKUs, stock, prices).",
}

# The read/write split, written out a second time on purpose: the import-time check
# compares it with each tool's own annotation, so a mistake in either one fails loudly.
READ_ONLY_TOOLS = frozenset(
    {
        "list_stores",
        "get_store",
        "test_connection",
        "list_orders",
        "get_order",
        "summarize_orders",
        "list_order_items",
        "get_order_item",
        "list_shipments",
        "get_shipment",
        "list_inventory_items",
        "get_inventory_item",
    }
)
DESTRUCTIVE_TOOLS = frozenset(
    {
        "update_order",
        "delete_order",
        "move_orders",  # folder rules may e-mail customers or send orders to fulfilment
        "update_order_item",
        "delete_order_item",
        "update_shipment",
        "delete_shipment",
        "update_inventory_item",
        "update_inventory_items_batch",
        "delete_inventory_item",
    }
)
CLOSED_WORLD_TOOLS = frozenset({"list_stores"})

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class CatalogueError(RuntimeError):
    """The tool catalogue contradicts itself; raised at import so it never ships."""


def check_catalogue(tools: Iterable[ToolDef]) -> None:
    """Reject duplicate names, unknown toolsets and annotations that disagree with the lists."""
    seen: set[str] = set()
    problems: list[str] = []
    for tool in tools:
        name = tool.name
        if not _TOOL_NAME.fullmatch(name):
            problems.append(f"{name}: name must be 1-128 of A-Z a-z 0-9 _ . -")
        if name in seen:
            problems.append(f"{name}: declared twice")
        seen.add(name)
        if tool.toolset not in TOOLSETS:
            problems.append(f"{name}: unknown toolset {tool.toolset!r}")
        notes = tool.annotations
        if notes.read_only != (name in READ_ONLY_TOOLS):
            problems.append(
                f"{name}: readOnlyHint={notes.read_only} disagrees with READ_ONLY_TOOLS"
            )
        if notes.destructive != (name in DESTRUCTIVE_TOOLS):
            problems.append(
                f"{name}: destructiveHint={notes.destructive} disagrees with DESTRUCTIVE_TOOLS"
            )
        if notes.read_only and notes.destructive:
            problems.append(f"{name}: a read-only tool cannot be destructive")
        if notes.open_world == (name in CLOSED_WORLD_TOOLS):
            problems.append(f"{name}: openWorldHint={notes.open_world} disagrees with the lists")
        problems.extend(f"{name}: {problem}" for problem in _schema_problems(tool))
    if problems:
        raise CatalogueError("tool catalogue is inconsistent:\n  " + "\n  ".join(problems))


def _schema_problems(tool: ToolDef) -> list[str]:
    problems: list[str] = []
    schema = tool.input_schema
    properties = schema.get("properties", {})
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        problems.append("inputSchema must be an object with additionalProperties: false")
    if "store" not in properties:
        problems.append("inputSchema must take the optional `store`")
    if "store" in schema.get("required", []):
        problems.append("`store` must stay optional")
    destructive_named = tool.name.startswith("delete_")
    if (tool.annotations.destructive or destructive_named) and "dry_run" not in properties:
        problems.append("a destructive tool must accept dry_run")
    if tool.output_schema.get("type") != "object":
        problems.append("outputSchema must be an object schema")
    for label, candidate in (("inputSchema", schema), ("outputSchema", tool.output_schema)):
        try:
            Draft202012Validator.check_schema(candidate)
        except SchemaError as error:
            problems.append(f"{label} is not valid JSON Schema: {error}")
    return problems


def _collect() -> tuple[ToolDef, ...]:
    collected: list[ToolDef] = []
    for module in (store, orders, items, shipments, inventory):
        collected.extend(module.TOOLS)
    check_catalogue(collected)
    return tuple(collected)


_CATALOGUE = _collect()
_BY_NAME = {tool.name: tool for tool in _CATALOGUE}


@functools.lru_cache(maxsize=64)
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema `pattern` compiled so that `$` means what it means in ECMA 262, which JSON
    Schema patterns are written in: the very end of the string.

    jsonschema applies patterns with Python's re.search, whose `$` also matches before a final
    newline, so ^[1-9][0-9]{0,19}$ would pass "12\\n". Every `$` anchor (unescaped, outside a
    character class) becomes `\\Z`; clients applying the schema as ECMA get the same answer."""
    translated: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            translated.append(r"\Z")
            continue
        translated.append(char)
    return re.compile("".join(translated))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterable[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


ArgumentValidator = extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]
"""Draft 2020-12 with `pattern` applied as ECMA 262 does (see ecma_pattern)."""

_VALIDATORS = {tool.name: ArgumentValidator(tool.input_schema) for tool in _CATALOGUE}


def all_tools() -> list[ToolDef]:
    """Every tool, in a stable order (toolset by toolset, as declared)."""
    return list(_CATALOGUE)


def visible_tools(*, read_only: bool, toolsets: frozenset[str] | None) -> list[ToolDef]:
    """The tools a caller may see: writes dropped for read-only keys, narrowed to `toolsets`."""
    return [
        tool
        for tool in _CATALOGUE
        if (not read_only or tool.annotations.read_only)
        and (toolsets is None or tool.toolset in toolsets)
    ]


def find_tool(name: str) -> ToolDef | None:
    return _BY_NAME.get(name)


@dataclass
class ToolOutcome:
    """A finished call: the CallToolResult JSON, a short outcome label for audit and metrics."""

    result: dict[str, Any]
    outcome: str
    store: StoreRef | None


def execute_tool(
    tool: ToolDef, arguments: dict[str, Any] | None, resolver: StoreResolver
) -> ToolOutcome:
    """Run one tools/call. Bad input and upstream failures become isError results, never raises.

    A bug in a handler does raise; the dispatcher turns that into JSON-RPC -32603.
    """
    args: Any = {} if arguments is None else arguments
    if not isinstance(args, dict):
        return _failed(
            "invalid_arguments",
            f"Arguments for {tool.name} must be a JSON object of named arguments, "
            f"not {_json_type(args)}.",
        )
    problem = describe_invalid_arguments(tool, args)
    if problem is not None:
        return _failed("invalid_arguments", problem)

    store: StoreRef | None = None
    try:
        if tool.annotations.open_world:
            store, client = resolver.resolve(args.get("store"))
            context = ToolContext(store=store, client=client, resolver=resolver)
        else:
            context = ToolContext(store=None, client=None, resolver=resolver)
        structured = tool.handler(context, args)
    except StoreNotFound as error:
        # A subclass may name a more specific outcome (store_resolver.StoreKeyUnreadable).
        return _failed(getattr(error, "outcome", "store_not_found"), str(error), store)
    except ToolInputError as error:
        return _failed("invalid_arguments", str(error), store)
    except RecordChanged as error:
        return _failed("conflict", str(error), store)
    except Busy as error:
        return _failed("busy", error.message, store)
    except OrderDeskError as error:
        outcome, message = explain_upstream_error(tool, error, store)
        return _failed(outcome, message, store)
    return ToolOutcome(result=results.success(structured), outcome="ok", store=store)


def _failed(outcome: str, message: str, store: StoreRef | None = None) -> ToolOutcome:
    # Handlers' messages may name client input; none may repeat an oversized one whole.
    return ToolOutcome(result=results.failure(bound_message(message)), outcome=outcome, store=store)


# --- argument validation messages -------------------------------------------------------


def describe_invalid_arguments(tool: ToolDef, args: Mapping[str, Any]) -> str | None:
    """None when `args` fit the inputSchema, else one message naming the field and the fix."""
    errors = sorted(_VALIDATORS[tool.name].iter_errors(args), key=_error_order)
    if not errors:
        return None
    lines = [_describe(tool, error) for error in errors[:3]]
    more = f" (and {len(errors) - 3} more problems)" if len(errors) > 3 else ""
    return f"Invalid arguments for {tool.name}: " + " ".join(lines) + more


def _error_order(error: ValidationError) -> tuple[int, str]:
    return (len(error.absolute_path), "/".join(str(part) for part in error.absolute_path))


def _field_name(error: ValidationError) -> str:
    parts = [str(part) for part in error.absolute_path]
    if not parts:
        return "arguments"
    text = parts[0]
    for part in parts[1:]:
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


def _describe(tool: ToolDef, error: ValidationError) -> str:
    field = _field_name(error)
    kind = error.validator
    value = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "maximum" and field.endswith("limit"):
        most = error.validator_value
        fix = f"ask for at most {most} and page with offset"
        return f"{field}: {_short(value)} is greater than the maximum of {most}; {fix}."
    if kind == "additionalProperties":
        allowed = ", ".join(sorted(schema.get("properties", {})))
        extra = (
            sorted(set(value) - set(schema.get("properties", {})))
            if isinstance(value, dict)
            else []
        )
        unknown = echo_names(extra)
        return f"{field}: unknown argument(s) {unknown}; the arguments are: {allowed}."
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in str(error.message) else "?"
        where = "" if field == "arguments" else f" in {field}"
        return f"{missing}: required{where} but missing; pass it."
    if kind == "anyOf":
        # Ids, folders and the like are "a string of this form, or an integer": explain the
        # branch whose type fits the value, else list the types.
        fitting = [branch for branch in error.context or () if branch.validator != "type"]
        if fitting and any(b.get("pattern") == ID_PATTERN for b in schema.get("anyOf", ())):
            return _id_problem(field, value)
        if fitting:
            return _describe(tool, fitting[0])
        types = [str(b.validator_value) for b in error.context or () if b.validator == "type"]
        got = "null" if value is None else f"{_json_type(value)} {_short(value)}"
        return f"{field}: expected {' or '.join(types) or 'another type'}, got {got}."
    if kind == "type":
        wanted = error.validator_value
        names = " or ".join(wanted) if isinstance(wanted, list) else str(wanted)
        got = "null" if value is None else f"{_json_type(value)} {_short(value)}"
        return f"{field}: expected {names}, got {got}."
    if kind == "pattern" and field.endswith(("_from", "_to")):
        return (
            f"{field}: {_short(value)} is not a date; use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC)."
        )
    if kind == "pattern" and error.validator_value == ID_PATTERN:
        return _id_problem(field, value)
    if kind == "enum":
        allowed_values = error.validator_value
        listed = allowed_values if isinstance(allowed_values, list) else [allowed_values]
        choices = ", ".join(repr(choice) for choice in listed)
        return f"{field}: {_short(value)} is not allowed; use one of {choices}."
    reason = _LIMIT_REASONS.get(str(kind))
    if reason is not None:
        return f"{field}: {_short(value)} {reason.format(limit=error.validator_value)}."
    # jsonschema's own wording repeats the whole value: keep it short.
    return f"{field}: {clip(error.message, 200)}."


def _id_problem(field: str, value: Any) -> str:
    orders = field.endswith("order_id") or "order_ids" in field
    hint = (
        ", and find an order by its cart number with list_orders(source_id=...)" if orders else ""
    )
    return (
        f"{field}: {_short(value)} is not an Order Desk id; send Order Desk's internal numeric "
        f"id as digits with no leading zero, spaces or line breaks (e.g. 123456){hint}."
    )


_LIMIT_REASONS = {
    "maxLength": "is longer than {limit} characters; shorten it",
    "minLength": "is too short: give at least {limit} characters",
    "maxItems": "has too many entries; send at most {limit} per call and the rest in another",
    "minItems": "has too few entries: give at least {limit}",
    "maximum": "is greater than the maximum of {limit}",
    "minimum": "is less than the minimum of {limit}",
    "uniqueItems": "lists an entry twice; list each once",
    "minProperties": "is empty; give at least one field",
    "pattern": "does not have the expected form ({limit})",
}


def _short(value: Any) -> str:
    """A value as JSON, clipped so a message never repeats a whole long argument."""
    return clip(results.to_json(value))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- upstream failures as messages the model can act on ---------------------------------

_LOOKUP_HINTS = {
    "orders": "ids are Order Desk's internal ids, not the cart's order number; find an order "
    "by its cart number with list_orders(source_id=...)",
    "items": "order ids are Order Desk's internal ids (find one by cart number with "
    "list_orders(source_id=...)); list an order's line ids with list_order_items",
    "shipments": "order ids are Order Desk's internal ids (find one by cart number with "
    "list_orders(source_id=...)); list an order's shipment ids with list_shipments",
    "inventory": "inventory ids are Order Desk's internal ids; find an item by its SKU with "
    "list_inventory_items(code=...)",
    "store": "check the store with list_stores",
}


def explain_upstream_error(
    tool: ToolDef, error: OrderDeskError, store: StoreRef | None
) -> tuple[str, str]:
    """(outcome label, message) for an Order Desk failure."""
    where = store.describe() if store is not None else "the store"
    said = error.message.rstrip(".")
    if isinstance(error, AuthError):
        return (
            "auth_error",
            f"Order Desk rejected the stored credentials for {where}: {said}. The API key kept "
            "for this store is wrong or was revoked: run `orderdesk-mcp store verify`, then "
            "re-add the store with the right key (`orderdesk-mcp store add ... --api-key-stdin`).",
        )
    if isinstance(error, NotFound):
        return ("not_found", f"Not found in {where}: {said}. {_LOOKUP_HINTS[tool.toolset]}.")
    if isinstance(error, RateLimited):
        wait = max(1, round(error.retry_after or 1))
        return (
            "rate_limited",
            f"Order Desk's rate limit for {where} is exhausted; wait {wait} seconds, then retry "
            "the same call. Fewer, larger calls (limit up to 100) use the budget better.",
        )
    if isinstance(error, Conflict):
        return (
            "conflict",
            f"The record changed in Order Desk while {tool.name} was writing it ({said}). "
            "Nothing was overwritten: read it again, then retry with your changes.",
        )
    if isinstance(error, InvalidRequest):
        return (
            "invalid_request",
            f"Order Desk refused {tool.name} for {where}: {said}. Fix the arguments and retry.",
        )
    if isinstance(error, UpstreamUnavailable):
        if not tool.annotations.read_only and error.write_may_have_happened:
            return (
                "upstream_unavailable",
                f"Order Desk did not answer while {tool.name} was writing to {where} ({said}). "
                "The write may or may not have happened: read the record to check before "
                "retrying, so it is not done twice.",
            )
        return (
            "upstream_unavailable",
            f"Order Desk is unreachable for {where} right now ({said}); nothing was changed. "
            "Retry in a minute.",
        )
    return (
        "upstream_error",
        f"Order Desk failed on {tool.name} for {where}: {said}. Retry later; if it keeps "
        "failing, check Order Desk's status.",
    )
