"""The tool catalogue on its own: names, annotations, filters, schemas, argument errors."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from orderdesk_mcp.mcp.registry import (
    TOOLSETS,
    CatalogueError,
    StaticStoreResolver,
    ToolDef,
    all_tools,
    check_catalogue,
    execute_tool,
    find_tool,
    visible_tools,
)
from orderdesk_mcp.mcp.tools._base import CREATE, READ

SNAPSHOTS = Path(__file__).parent / "snapshots" / "tools"

# design.md's catalogue table: toolset, readOnly, destructive, idempotent.
DESIGN_TABLE = {
    "list_stores": ("store", True, False, True),
    "get_store": ("store", True, False, True),
    "test_connection": ("store", True, False, True),
    "list_orders": ("orders", True, False, True),
    "get_order": ("orders", True, False, True),
    "summarize_orders": ("orders", True, False, True),
    "create_order": ("orders", False, False, False),
    "update_order": ("orders", False, True, True),
    "delete_order": ("orders", False, True, True),
    "move_orders": ("orders", False, True, False),
    "add_order_note": ("orders", False, False, False),
    "list_order_items": ("items", True, False, True),
    "get_order_item": ("items", True, False, True),
    "add_order_item": ("items", False, False, False),
    "update_order_item": ("items", False, True, True),
    "delete_order_item": ("items", False, True, True),
    "list_shipments": ("shipments", True, False, True),
    "get_shipment": ("shipments", True, False, True),
    "add_shipment": ("shipments", False, False, False),
    "add_shipments_batch": ("shipments", False, False, False),
    "update_shipment": ("shipments", False, True, True),
    "delete_shipment": ("shipments", False, True, True),
    "list_inventory_items": ("inventory", True, False, True),
    "get_inventory_item": ("inventory", True, False, True),
    "create_inventory_item": ("inventory", False, False, False),
    "update_inventory_item": ("inventory", False, True, True),
    "update_inventory_items_batch": ("inventory", False, True, True),
    "delete_inventory_item": ("inventory", False, True, True),
}
NO_STORES = StaticStoreResolver([])


def tool(name: str) -> ToolDef:
    found = find_tool(name)
    assert found is not None, name
    return found


def error_text(name: str, arguments: Any) -> str:
    outcome = execute_tool(tool(name), arguments, NO_STORES)
    assert outcome.result["isError"] is True
    assert outcome.outcome == "invalid_arguments"
    text: str = outcome.result["content"][0]["text"]
    return text


def test_the_catalogue_is_design_md_table_with_its_annotations() -> None:
    listed = {t.name: t for t in all_tools()}
    assert set(listed) == set(DESIGN_TABLE)
    for name, (toolset, read_only, destructive, idempotent) in DESIGN_TABLE.items():
        notes = listed[name].annotations
        assert listed[name].toolset == toolset
        assert (notes.read_only, notes.destructive, notes.idempotent) == (
            read_only,
            destructive,
            idempotent,
        ), name
        assert notes.open_world is (name != "list_stores")


def test_order_is_stable_and_toolsets_are_known() -> None:
    assert [t.name for t in all_tools()] == [t.name for t in all_tools()]
    assert {t.toolset for t in all_tools()} == set(TOOLSETS)
    check_catalogue(all_tools())


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (lambda t: dataclasses.replace(t("update_order"), annotations=READ), "readOnlyHint"),
        (lambda t: dataclasses.replace(t("get_order"), annotations=CREATE), "readOnlyHint"),
        (lambda t: dataclasses.replace(t("get_order"), toolset="misc"), "unknown toolset"),
        (lambda t: dataclasses.replace(t("get_order"), name="get order!"), "name must be"),
        (
            lambda t: dataclasses.replace(
                t("delete_order"),
                input_schema={
                    **t("delete_order").input_schema,
                    "properties": {"order_id": {}, "store": {}},
                },
            ),
            "dry_run",
        ),
        (
            lambda t: dataclasses.replace(
                t("get_order"),
                input_schema={**t("get_order").input_schema, "additionalProperties": True},
            ),
            "additionalProperties",
        ),
        (
            lambda t: dataclasses.replace(
                t("get_order"),
                input_schema={"type": "object", "properties": {}, "additionalProperties": False},
            ),
            "store",
        ),
        (
            lambda t: dataclasses.replace(t("get_order"), output_schema={"type": "array"}),
            "outputSchema",
        ),
    ],
)
def test_check_catalogue_rejects_contradictions(broken: Any, complaint: str) -> None:
    changed = broken(tool)
    tools = [changed if t.name == changed.name else t for t in all_tools()]
    if changed.name not in {t.name for t in all_tools()}:
        tools.append(changed)
    with pytest.raises(CatalogueError, match=complaint):
        check_catalogue(tools)


def test_check_catalogue_rejects_a_duplicate_name() -> None:
    with pytest.raises(CatalogueError, match="declared twice"):
        check_catalogue([*all_tools(), tool("get_order")])


def test_read_only_callers_see_only_read_only_tools() -> None:
    read_only = visible_tools(read_only=True, toolsets=None)
    assert {t.name for t in read_only} == {n for n, row in DESIGN_TABLE.items() if row[1]}
    assert all(t.annotations.read_only for t in read_only)
    assert len(visible_tools(read_only=False, toolsets=None)) == len(DESIGN_TABLE)


def test_toolsets_narrow_the_list() -> None:
    chosen = visible_tools(read_only=False, toolsets=frozenset({"shipments", "store"}))
    assert {t.toolset for t in chosen} == {"shipments", "store"}
    assert "add_shipment" in {t.name for t in chosen}
    both = visible_tools(read_only=True, toolsets=frozenset({"inventory"}))
    assert {t.name for t in both} == {"list_inventory_items", "get_inventory_item"}
    assert visible_tools(read_only=False, toolsets=frozenset()) == []


def test_find_tool() -> None:
    assert tool("list_orders").name == "list_orders"
    assert find_tool("nope") is None


def test_tools_list_entries_are_mcp_shaped_and_small() -> None:
    entries = [t.to_mcp() for t in all_tools()]
    for entry in entries:
        assert set(entry) == {
            "name",
            "title",
            "description",
            "inputSchema",
            "outputSchema",
            "annotations",
        }
        assert entry["inputSchema"]["additionalProperties"] is False
        assert entry["inputSchema"]["properties"]["store"]["type"] == "string"
        assert "store" not in entry["inputSchema"].get("required", [])
        assert entry["outputSchema"]["type"] == "object"
        hints = entry["annotations"]
        assert {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} <= set(hints)
        assert len(entry["description"]) > 40
    size = len(json.dumps({"tools": entries}).encode())
    assert size < 60 * 1024, f"tools/list is {size} bytes"


def test_destructive_tools_take_dry_run_and_list_tools_page() -> None:
    for t in all_tools():
        properties = t.input_schema["properties"]
        if t.annotations.destructive and not t.name.endswith("_batch"):
            assert properties["dry_run"]["default"] is False, t.name
        if t.name.startswith("list_") and t.name != "list_stores":
            assert properties["limit"] == {**properties["limit"], "maximum": 100, "default": 20}
            assert "offset" in properties
            assert "fields" in properties
    assert "dry_run" in tool("update_inventory_items_batch").input_schema["properties"]


def test_schema_snapshots() -> None:
    """Each tool's tools/list entry is pinned; UPDATE_SNAPSHOTS=1 rewrites them on purpose."""
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    for t in all_tools():
        path = SNAPSHOTS / f"{t.name}.json"
        current = json.dumps(t.to_mcp(), indent=2, sort_keys=True) + "\n"
        if update:
            path.write_text(current, encoding="utf-8")
            continue
        assert path.exists(), f"no snapshot for {t.name}: run UPDATE_SNAPSHOTS=1 pytest"
        assert path.read_text(encoding="utf-8") == current, (
            f"{t.name} changed its schema; if on purpose, rerun with UPDATE_SNAPSHOTS=1"
        )
    stale = {p.stem for p in SNAPSHOTS.glob("*.json")} - {t.name for t in all_tools()}
    assert not stale, f"snapshots of tools that no longer exist: {sorted(stale)}"


# --- argument errors name the field and the fix ------------------------------------------


def test_limit_over_the_maximum() -> None:
    assert error_text("list_orders", {"limit": 500}) == (
        "Invalid arguments for list_orders: limit: 500 is greater than the maximum of 100; "
        "ask for at most 100 and page with offset."
    )


def test_unknown_argument_lists_the_real_ones() -> None:
    text = error_text("get_order", {"order_id": 1, "orderid": 1})
    assert "'orderid'" in text
    assert "order_id" in text
    assert "fields" in text


def test_missing_required_argument() -> None:
    assert "order_id: required but missing; pass it." in error_text("get_order", {})
    batch = error_text("add_shipments_batch", {"shipments": [{"order_id": 5}]})
    assert "tracking_number: required in shipments[0]" in batch


def test_wrong_types_dates_ids_and_enums() -> None:
    assert 'limit: expected integer, got a string "ten"' in error_text(
        "list_orders", {"limit": "ten"}
    )
    assert "use YYYY-MM-DD" in error_text("list_orders", {"added_from": "last week"})
    assert "list_orders(source_id=...)" in error_text("get_order", {"order_id": "#1001"})
    assert "use one of" in error_text("list_orders", {"order": "sideways"})
    assert "dry_run: expected boolean" in error_text(
        "delete_order", {"order_id": 1, "dry_run": "yes"}
    )


def test_long_values_are_not_repeated_whole() -> None:
    text = error_text("add_order_note", {"order_id": 1, "note": "n" * 5000})
    assert "note: " in text
    assert "longer than 1800 characters; shorten it" in text
    assert len(text) < 300
    many = error_text("move_orders", {"order_ids": list(range(1, 150)), "folder": "New"})
    assert "send at most 100 per call" in many
    empty = error_text("update_order", {"order_id": 1, "changes": {}})
    assert "changes: {} is empty; give at least one field." in empty


def test_arguments_must_be_an_object() -> None:
    assert "must be a JSON object" in error_text("list_orders", [1, 2])
    assert "must be a JSON object" in error_text("list_orders", "limit=5")


def test_null_arguments_mean_none() -> None:
    outcome = execute_tool(tool("list_orders"), None, NO_STORES)
    assert outcome.outcome == "store_not_found"


def test_an_unknown_store_is_a_tool_error_that_says_how_to_add_one() -> None:
    outcome = execute_tool(tool("get_order"), {"order_id": 1, "store": "eu"}, NO_STORES)
    assert outcome.result["isError"] is True
    assert outcome.outcome == "store_not_found"
    text = outcome.result["content"][0]["text"]
    assert "'eu'" in text
    assert "orderdesk-mcp store add" in text
    assert outcome.store is None
