"""Order Desk ids are canonical before they are used: the tool schemas, the tools' own check
and the client's checked_id / checked_store_id each refuse "0", zero-padded ids, whitespace,
a final newline, non-ASCII digits and bools, so one record has one spelling in URLs and cache
keys (issue 10 item 12)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk_mcp.mcp.registry import (
    ArgumentValidator,
    StaticStoreResolver,
    describe_invalid_arguments,
    ecma_pattern,
    execute_tool,
    find_tool,
)
from orderdesk_mcp.mcp.resources import ResourceNotFound, read_resource
from orderdesk_mcp.mcp.tools._base import ToolContext, ToolDef, ToolInputError
from orderdesk_mcp.mcp.tools._common import ID_PATTERN, id_arg, id_text
from orderdesk_mcp.orderdesk import UpstreamMachinery
from orderdesk_mcp.orderdesk.arguments import checked_id, checked_store_id, is_order_desk_id
from orderdesk_mcp.orderdesk.errors import InvalidRequest
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.tenancy import (
    TenancyError,
    validate_alias,
    validate_store_id,
    validate_tenant_name,
)
from tests.test_tools_sandbox import FAST_RETRY, MAIN, make_resolver, start_test_sandbox

ID_SCHEMA = ArgumentValidator(id_arg("an id"))
MAX_ID = 10**20 - 1


def schema_accepts(value: Any) -> bool:
    return ID_SCHEMA.is_valid(value)


def client_accepts(value: Any) -> bool:
    try:
        checked_id(value, "order_id")
    except InvalidRequest:
        return False
    return True


def canonical(text: str) -> bool:
    return (
        text.isascii()
        and text.isdigit()
        and not text.startswith("0")
        and 1 <= len(text) <= 20
        and str(int(text)) == text
    )


# --- properties --------------------------------------------------------------------------

near_misses = st.one_of(
    st.text(max_size=24),
    st.text(alphabet="0123456789 \n\t\r\x0b\x0c\u00a0１２３٣", max_size=24),
    st.integers(min_value=0, max_value=MAX_ID).map(str).map(lambda s: s + "\n"),
)


@settings(max_examples=400)
@given(near_misses)
def test_any_string_the_schema_accepts_is_canonical_and_round_trips(text: str) -> None:
    if schema_accepts(text):
        assert canonical(text), repr(text)
        assert checked_id(text, "order_id") == text
        assert checked_store_id(text) == text
        assert id_text(text, "order_id") == text
        assert str(int(text)) == text
    # The schema and the client agree on every string.
    assert schema_accepts(text) == client_accepts(text) == canonical(text), repr(text)


@given(st.integers(min_value=1, max_value=MAX_ID))
def test_any_int_from_one_works_and_round_trips(number: int) -> None:
    assert schema_accepts(number)
    assert checked_id(number, "order_id") == str(number)
    assert checked_store_id(number) == str(number)
    assert int(id_text(number, "order_id")) == number
    # The same record as a string has the same spelling: one URL, one cache key.
    assert checked_id(str(number), "order_id") == checked_id(number, "order_id")


_WIDE = str.maketrans("0123456789", "０１２３４５６７８９")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
whitespace = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003", min_size=1, max_size=3)
ids = st.integers(min_value=1, max_value=10**15).map(str)
refused_strings = st.one_of(
    st.just("0"),
    st.text(alphabet="0", min_size=2, max_size=5),
    st.builds(lambda zeros, digits: zeros + digits, st.text("0", min_size=1, max_size=3), ids),
    st.builds(lambda space, digits: space + digits, whitespace, ids),
    st.builds(lambda digits, space: digits + space, ids, whitespace),
    ids.map(lambda digits: digits + "\n"),
    ids.map(lambda digits: digits.translate(_WIDE)),
    ids.map(lambda digits: digits.translate(_ARABIC_INDIC)),
    st.integers(min_value=10**20, max_value=10**30).map(str),
)


@settings(max_examples=300)
@given(refused_strings)
def test_zero_padding_whitespace_newlines_and_other_digits_are_refused_everywhere(
    text: str,
) -> None:
    assert not schema_accepts(text)
    with pytest.raises(InvalidRequest, match="no leading zero"):
        checked_id(text, "order_id")
    with pytest.raises(InvalidRequest, match="store_id must be"):
        checked_store_id(text)
    with pytest.raises(ToolInputError, match="order_id must be"):
        id_text(text, "order_id")


@pytest.mark.parametrize(
    "value",
    [0, -1, True, False, 10**20, 10**5000, 1.0, None, [1]],
    ids=["0", "-1", "True", "False", "10**20", "10**5000", "1.0", "None", "list"],
)
def test_other_values_are_refused_by_the_client(value: Any) -> None:
    with pytest.raises(InvalidRequest):
        checked_id(value, "order_id")
    with pytest.raises(InvalidRequest):
        checked_store_id(value)


def test_the_refusal_is_one_sentence_naming_the_value_shortened() -> None:
    with pytest.raises(InvalidRequest) as caught:
        checked_id("12\n", "order_id")
    message = str(caught.value)
    assert "'12\\n'" in message
    assert "e.g. 123456" in message
    assert ". " not in message.replace("e.g. ", "")
    with pytest.raises(InvalidRequest) as long:
        checked_id("1" * 500, "item_id")
    assert len(str(long.value)) < 300
    assert "..." in str(long.value)


# --- the schema --------------------------------------------------------------------------


def test_jsonschema_alone_would_pass_a_final_newline() -> None:
    # Why ArgumentValidator exists: jsonschema applies patterns with re.search, and Python's
    # `$` matches before a final "\n".
    assert re.search(ID_PATTERN, "12\n")
    assert not ecma_pattern(ID_PATTERN).search("12\n")


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^a$", "a", True),
        ("^a$", "a\n", False),
        (r"^a\$$", "a$", True),
        ("^[$]$", "$", True),
        ("^[a$]+$", "a$a", True),
        ("^a$|^b$", "b\n", False),
    ],
)
def test_ecma_pattern_changes_only_dollar_anchors(pattern: str, text: str, matches: bool) -> None:
    assert bool(ecma_pattern(pattern).search(text)) is matches


@pytest.mark.parametrize("value", ["0", "007", "7\n", " 7", "7 ", "７", 0, True])
def test_tools_refuse_bad_ids_with_one_message(value: Any) -> None:
    tool = find_tool("get_order")
    assert tool is not None
    problem = describe_invalid_arguments(tool, {"order_id": value})
    assert problem is not None
    assert problem.startswith("Invalid arguments for get_order: order_id: ")
    if not isinstance(value, bool):
        assert "no leading zero" in problem


def test_ids_inside_lists_and_objects_are_checked_too() -> None:
    move = find_tool("move_orders")
    batch = find_tool("add_shipments_batch")
    assert move is not None
    assert batch is not None
    problem = describe_invalid_arguments(move, {"order_ids": ["12", "012"], "folder": "New"})
    assert problem is not None
    assert "order_ids[1]" in problem
    shipment = {"order_id": "5\n", "tracking_number": "1Z"}
    problem = describe_invalid_arguments(batch, {"shipments": [shipment]})
    assert problem is not None
    assert "shipments[0].order_id" in problem


def test_store_ids_refused_when_added() -> None:
    assert validate_store_id(" 123 ") == "123"
    for bad in ("0123", "0", "12\n3", "１２"):
        with pytest.raises(TenancyError):
            validate_store_id(bad)
    assert is_order_desk_id("100001")
    assert not is_order_desk_id("100001\n")


# --- through execute_tool, a real client and the sandbox over HTTP ------------------------


@pytest.fixture
def sandbox_and_resolver(tmp_path: Path) -> Iterator[tuple[RunningSandbox, StaticStoreResolver]]:
    machinery = UpstreamMachinery(tmp_path / "http-cache.sqlite", retry=FAST_RETRY)
    try:
        with start_test_sandbox() as running:
            yield running, make_resolver(running, machinery)
    finally:
        machinery.close()


def tool(name: str) -> ToolDef:
    found = find_tool(name)
    assert found is not None
    return found


def served(sandbox: RunningSandbox) -> int:
    count: int = sandbox.stats(MAIN.store_id)["served"]
    return count


def test_bad_ids_never_reach_the_sandbox(
    sandbox_and_resolver: tuple[RunningSandbox, StaticStoreResolver],
) -> None:
    sandbox, resolver = sandbox_and_resolver
    get_order, list_orders = tool("get_order"), tool("list_orders")
    listed = execute_tool(list_orders, {"limit": 1}, resolver)
    order_id = str(listed.result["structuredContent"]["orders"][0]["id"])
    before = served(sandbox)

    for bad in ("0" + order_id, order_id + "\n", " " + order_id, order_id.translate(_WIDE), "0"):
        outcome = execute_tool(get_order, {"order_id": bad}, resolver)
        assert outcome.outcome == "invalid_arguments", bad
        assert "no leading zero" in outcome.result["content"][0]["text"]
        # A handler reached without the schema (a bug elsewhere) is stopped by id_text...
        store, client = resolver.resolve(None)
        context = ToolContext(store=store, client=client, resolver=resolver)
        with pytest.raises(ToolInputError, match="order_id must be"):
            get_order.handler(context, {"order_id": bad})
        # ...and the client refuses before it builds a URL.
        with pytest.raises(InvalidRequest):
            client.get_order(bad)
        with pytest.raises(ResourceNotFound):
            read_resource(f"orderdesk://main/orders/{quote(bad, safe='')}", resolver)
    assert served(sandbox) == before

    # The canonical spellings work, as the same record; and a canonical id does reach the
    # sandbox (an unknown one, which nothing cached), so the count above could have moved.
    as_text = execute_tool(get_order, {"order_id": order_id}, resolver)
    as_int = execute_tool(get_order, {"order_id": int(order_id)}, resolver)
    assert as_text.outcome == as_int.outcome == "ok"
    assert as_text.result["structuredContent"] == as_int.result["structuredContent"]
    reached = served(sandbox)
    assert execute_tool(get_order, {"order_id": "987654321"}, resolver).outcome != "ok"
    assert served(sandbox) == reached + 1


def test_a_zero_padded_folder_is_a_name_not_an_id(
    sandbox_and_resolver: tuple[RunningSandbox, StaticStoreResolver],
) -> None:
    _sandbox, resolver = sandbox_and_resolver
    get_store, list_orders = tool("get_store"), tool("list_orders")
    folders = execute_tool(get_store, {}, resolver).result["structuredContent"]["store"]["folders"]
    folder_id = folders[0]["id"]
    assert execute_tool(list_orders, {"folder": str(folder_id)}, resolver).outcome == "ok"
    padded = execute_tool(list_orders, {"folder": f"0{folder_id}"}, resolver)
    assert padded.outcome == "invalid_arguments"
    assert f"No folder '0{folder_id}'" in padded.result["content"][0]["text"]


@pytest.mark.parametrize("name", ["acme\n", "acme\r\n", " acme", "acme "])
def test_names_and_aliases_refuse_a_trailing_newline_or_spaces(name: str) -> None:
    # re.match with "$" let "acme\n" through: names are now matched whole.
    with pytest.raises(TenancyError):
        validate_tenant_name(name)
    with pytest.raises(TenancyError):
        validate_alias(name)
