"""Every tool schema stays inside the subset strict clients accept (one type per schema).

Gemini-style function declarations and the MCP Inspector's --strict mode reject a
`"type": [...]` list and want a type beside every enum; alternatives go through anyOf.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orderdesk_mcp.mcp.registry import all_tools

# Keywords whose value is a schema, a list of schemas, or a name -> schema map.
_ONE_SCHEMA = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs")


def walk(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    yield where, schema
    for keyword in _ONE_SCHEMA:
        if isinstance(schema.get(keyword), dict):
            yield from walk(schema[keyword], f"{where}.{keyword}")
    for keyword in _SCHEMA_LISTS:
        for index, branch in enumerate(schema.get(keyword) or ()):
            yield from walk(branch, f"{where}.{keyword}[{index}]")
    for keyword in _SCHEMA_MAPS:
        for name, child in (schema.get(keyword) or {}).items():
            yield from walk(child, f"{where}.{name}")


SCHEMAS = [
    (f"{tool.name}.{kind}", schema)
    for tool in all_tools()
    for kind, schema in (("inputSchema", tool.input_schema), ("outputSchema", tool.output_schema))
]


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=[name for name, _ in SCHEMAS])
def test_every_schema_node_has_one_type_or_alternatives(name: str, schema: dict[str, Any]) -> None:
    for where, node in walk(schema, name):
        kind = node.get("type")
        assert not isinstance(kind, list), f"{where}: a type list; use anyOf instead"
        if "enum" in node:
            assert isinstance(kind, str), f"{where}: an enum needs its type beside it"
        if "anyOf" in node:
            assert kind is None, f"{where}: anyOf with a type of its own"
            for branch in node["anyOf"]:
                assert isinstance(branch.get("type"), str), f"{where}: an anyOf branch lacks type"
        else:
            assert isinstance(kind, str), f"{where}: no type"


def test_the_walk_sees_nested_schemas() -> None:
    """Guard the guard: a type list deep inside a batch entry is found."""
    nested = {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {"type": ["string", "integer"]}}},
    }
    kinds = [node.get("type") for _where, node in walk(nested, "x")]
    assert ["string", "integer"] in kinds
