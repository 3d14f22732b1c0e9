"""tools/list pages are kept encoded: the same bytes as building them afresh, per key and cursor."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.mcp import dispatcher as dispatcher_module
from orderdesk_mcp.mcp.audit import LogAudit
from orderdesk_mcp.mcp.dispatcher import CallScope, Dispatcher, paginate
from orderdesk_mcp.mcp.protocol import (
    EncodedResult,
    Request,
    compact_json,
    encode_message,
    error_message,
    invalid_params,
    result_message,
)
from orderdesk_mcp.mcp.registry import TOOLSETS, StaticStoreResolver, all_tools, visible_tools
from tests.conftest import McpTenant
from tests.test_mcp_http import McpHttp

ALL_TOOLSET_CHOICES: list[frozenset[str] | None] = [None] + [
    frozenset(chosen)
    for size in range(len(TOOLSETS) + 1)
    for chosen in itertools.combinations(TOOLSETS, size)
]


def scope(read_only: bool, toolsets: frozenset[str] | None) -> CallScope:
    return CallScope(
        resolver=StaticStoreResolver([]),
        read_only=read_only,
        toolsets=toolsets,
        tenant_id=None,
        key_id=None,
        request_id=secrets.token_hex(8),
        audit=LogAudit(),
    )


def uncached_reply(
    request_id: int, read_only: bool, toolsets: frozenset[str] | None, cursor: Any, size: int
) -> str:
    """The reply as the dispatcher built it before pages were cached: rebuilt and re-encoded."""
    tools = visible_tools(read_only=read_only, toolsets=toolsets)
    page = paginate("tools", tools, cursor, size)
    page["tools"] = [tool.to_mcp() for tool in page["tools"]]
    return compact_json(result_message(request_id, page))


def listed(dispatcher: Dispatcher, call_scope: CallScope, cursor: Any = None) -> dict[str, Any]:
    params = {} if cursor is None else {"cursor": cursor}
    return dispatcher.handle_request(Request(id=7, method="tools/list", params=params), call_scope)


def test_every_key_and_page_gives_the_uncached_bytes_first_and_second_time() -> None:
    for page_size in (100, 5):
        dispatcher = Dispatcher(page_size=page_size)
        for read_only, toolsets in itertools.product((False, True), ALL_TOOLSET_CHOICES):
            call_scope = scope(read_only, toolsets)
            cursor = None
            while True:
                expected = uncached_reply(7, read_only, toolsets, cursor, page_size)
                first = encode_message(listed(dispatcher, call_scope, cursor))
                second = encode_message(listed(dispatcher, call_scope, cursor))
                assert first == expected
                assert second == expected
                cursor = listed(dispatcher, call_scope, cursor)["result"].get("nextCursor")
                if cursor is None:
                    break


def test_read_only_and_toolsets_still_filter_the_cached_list() -> None:
    dispatcher = Dispatcher()
    writers = {tool.name for tool in all_tools() if not tool.annotations.read_only}
    full = listed(dispatcher, scope(False, None))["result"]["tools"]
    read_only = listed(dispatcher, scope(True, None))["result"]["tools"]
    orders_only = listed(dispatcher, scope(False, frozenset({"orders"})))["result"]["tools"]
    assert writers <= {tool["name"] for tool in full}
    assert not writers & {tool["name"] for tool in read_only}
    assert {tool["name"] for tool in orders_only} == {
        tool.name for tool in all_tools() if tool.toolset == "orders"
    }
    # Asking again after the others still gives each its own page.
    assert listed(dispatcher, scope(True, None))["result"]["tools"] == read_only


def test_the_cache_stays_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(dispatcher_module, "TOOLS_PAGE_CACHE_SIZE", 3)
    dispatcher = Dispatcher()
    for read_only, toolsets in itertools.product((False, True), ALL_TOOLSET_CHOICES[:5]):
        expected = uncached_reply(7, read_only, toolsets, None, dispatcher.page_size)
        assert encode_message(listed(dispatcher, scope(read_only, toolsets))) == expected
    assert len(dispatcher._tools_pages) == 3


def test_a_bad_cursor_is_still_invalid_params_and_not_cached() -> None:
    dispatcher = Dispatcher()
    reply = listed(dispatcher, scope(False, None), cursor="not-a-cursor")
    assert reply["error"]["code"] == -32602
    assert dispatcher._tools_pages == {}


def test_a_reply_is_a_fresh_dict_each_time() -> None:
    dispatcher = Dispatcher()
    first = listed(dispatcher, scope(False, None))["result"]
    first["extra"] = True
    assert "extra" not in listed(dispatcher, scope(False, None))["result"]


# --- the encoder that splices ----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    request_id=st.integers() | st.text(max_size=10),
    result=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
)
def test_splicing_gives_the_same_bytes_as_encoding(request_id: int | str, result: Any) -> None:
    plain = result_message(request_id, result)
    spliced = result_message(request_id, EncodedResult(result))
    assert encode_message(spliced) == compact_json(plain)
    batch = [spliced, error_message(request_id, invalid_params("no")), plain]
    assert encode_message(batch) == compact_json([plain, batch[1], plain])


def test_an_empty_batch_and_other_bodies_encode_as_before() -> None:
    assert encode_message([]) == "[]"
    odd = {"result": EncodedResult({"a": 1}), "jsonrpc": "2.0", "id": 1}
    assert encode_message(odd) == compact_json(odd)


# --- through HTTP: keys and the X-MCP-Toolsets header ----------------------------------------


def test_http_read_only_key_and_toolsets_header_get_their_lists(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    writer = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    writer.initialize()
    reader = McpHttp(mcp_app.test_client(), mcp_tenant.read_only_token)
    reader.initialize()
    narrowed_key = McpHttp(
        mcp_app.test_client(), issue_key(mcp_tenant.tenant, toolsets="inventory").token
    )
    narrowed_key.initialize()
    for _ in range(2):  # the second round is answered from the cache
        names = {tool["name"] for tool in writer.result("tools/list")["tools"]}
        assert names == {tool.name for tool in all_tools()}
        read_only = {tool["name"] for tool in reader.result("tools/list")["tools"]}
        assert read_only == {tool.name for tool in all_tools() if tool.annotations.read_only}
        reply = writer.post(
            {"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
            headers={"X-MCP-Toolsets": "shipments"},
        )
        shipments = {tool["name"] for tool in reply.get_json()["result"]["tools"]}
        assert shipments == {tool.name for tool in all_tools() if tool.toolset == "shipments"}
        inventory = {tool["name"] for tool in narrowed_key.result("tools/list")["tools"]}
        assert inventory == {tool.name for tool in all_tools() if tool.toolset == "inventory"}
