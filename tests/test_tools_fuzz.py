"""Arbitrary JSON thrown at execute_tool for every tool: it answers, it never raises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderdesk_mcp.mcp.registry import ToolDef, all_tools, execute_tool
from orderdesk_mcp.mcp.results import MAX_RESULT_CHARS
from orderdesk_mcp.orderdesk import UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox
from tests.test_tools_sandbox import FAST_RETRY, MAIN, make_resolver, start_test_sandbox

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    # Values that look like real ids, names and dates, so some calls get past validation.
    st.sampled_from(["1000001", "1000300", "New", "Closed", "main", "empty", "2026-01-01"]),
    st.integers(min_value=0, max_value=1_000_400),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that (mostly) fit the small JSON Schema subset our tools use."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type", "object")
    if isinstance(kinds, list):
        return st.one_of(*(from_schema({**schema, "type": kind}) for kind in kinds))
    if kinds == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=20)
    if kinds == "integer":
        low = schema.get("minimum", -5)
        return st.integers(min_value=low, max_value=schema.get("maximum", low + 1_000_400))
    if kinds == "number":
        return st.floats(min_value=0, max_value=1000, allow_nan=False)
    if kinds == "boolean":
        return st.booleans()
    if kinds == "null":
        return st.none()
    if kinds == "array":
        return st.lists(
            from_schema(schema.get("items", {})),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
        )
    properties = schema.get("properties", {})
    if not properties:
        return st.dictionaries(st.text(max_size=10), SCALARS, max_size=3)
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: from_schema(properties[name]) for name in sorted(required)},
        optional={
            name: from_schema(sub) for name, sub in properties.items() if name not in required
        },
    )


def arguments_for(tool: ToolDef) -> st.SearchStrategy[Any]:
    """Mostly well-formed arguments (so handlers run), some noisy, some anything at all."""
    schema = {
        **tool.input_schema,
        "properties": {
            **tool.input_schema["properties"],
            "store": {"enum": ["main", "empty", "100001", "elsewhere"]},
        },
    }
    valid = from_schema(schema)
    names = [*sorted(tool.input_schema["properties"]), "bogus"]
    noisy = st.dictionaries(st.sampled_from(names), JSON, max_size=5)
    return st.one_of(valid, valid, valid, noisy, JSON)


@pytest.fixture(scope="module")
def fuzz_sandbox() -> Iterator[RunningSandbox]:
    with start_test_sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def fuzz_machinery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamMachinery]:
    # No client-side pacing: the sandbox's bucket is refilled before every example instead.
    cache = Path(tmp_path_factory.mktemp("fuzz")) / "http-cache.sqlite"
    upstream = UpstreamMachinery(
        cache, retry=FAST_RETRY, bucket_capacity=1_000_000, refill_per_second=1_000_000
    )
    yield upstream
    upstream.close()


@pytest.mark.parametrize("tool", all_tools(), ids=lambda tool: tool.name)
def test_execute_tool_never_raises(
    tool: ToolDef, fuzz_sandbox: RunningSandbox, fuzz_machinery: UpstreamMachinery
) -> None:
    resolver = make_resolver(fuzz_sandbox, fuzz_machinery)

    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(arguments=arguments_for(tool))
    def check(arguments: Any) -> None:
        fuzz_sandbox.store(MAIN.store_id).bucket.refill_completely()
        outcome = execute_tool(tool, arguments, resolver)
        result = outcome.result
        assert isinstance(result["isError"], bool)
        text = result["content"][0]["text"]
        assert text
        if result["isError"]:
            assert outcome.outcome != "ok"
            assert "Traceback" not in text
        else:
            assert json.loads(text) == result["structuredContent"]
            assert len(text) <= MAX_RESULT_CHARS

    check()
