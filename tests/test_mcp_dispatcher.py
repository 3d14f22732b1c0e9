"""The transport-free parts: dispatcher pagination, audit redaction and counting, sessions."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.mcp.audit import (
    MAX_ARGUMENTS_CHARS,
    REDACTED,
    ToolCallRecord,
    arguments_text,
    count_upstream_calls,
    note_upstream_call,
    redact,
)
from orderdesk_mcp.mcp.dispatcher import CallScope, Dispatcher, decode_cursor, encode_cursor
from orderdesk_mcp.mcp.protocol import Request
from orderdesk_mcp.mcp.registry import StoreNotFound, StoreRef, all_tools
from orderdesk_mcp.mcp.sessions import MemorySessionStore, SessionOwner
from orderdesk_mcp.orderdesk import OrderDeskClient
from orderdesk_mcp.orderdesk.machinery import UpstreamCall


class NoStores:
    """A resolver for a tenant without stores (what these tests need: none)."""

    def stores(self) -> Sequence[StoreRef]:
        return []

    def resolve(self, store: str | None) -> tuple[StoreRef, OrderDeskClient]:
        raise StoreNotFound("no stores")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[ToolCallRecord] = []

    def record(self, call: ToolCallRecord) -> None:
        self.calls.append(call)

    def begin(self, call: ToolCallRecord) -> int | None:
        return None

    def complete(self, pending: int | None, call: ToolCallRecord) -> None:
        self.calls.append(call)


def scope(read_only: bool = False, toolsets: frozenset[str] | None = None) -> CallScope:
    return CallScope(
        resolver=NoStores(),
        read_only=read_only,
        toolsets=toolsets,
        tenant_id=None,
        key_id=None,
        request_id="req-1",
        audit=Recorder(),
    )


def ask(dispatcher: Dispatcher, method: str, params: dict[str, Any], at: CallScope) -> Any:
    return dispatcher.handle_request(Request(id=1, method=method, params=params), at)


def test_tools_list_pages_with_opaque_cursors() -> None:
    dispatcher = Dispatcher(page_size=5)
    at = scope()
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {} if cursor is None else {"cursor": cursor}
        result = ask(dispatcher, "tools/list", params, at)["result"]
        assert len(result["tools"]) <= 5
        names += [tool["name"] for tool in result["tools"]]
        pages += 1
        cursor = result.get("nextCursor")
        if cursor is None:
            break
        assert not cursor.isdigit()
    assert names == [tool.name for tool in all_tools()]
    assert pages == -(-len(names) // 5)


@pytest.mark.parametrize("cursor", ["", "!!", "dG9vbHM6LTE=", encode_cursor("prompts", 0), 7])
def test_invalid_cursor_is_invalid_params(cursor: Any) -> None:
    reply = ask(Dispatcher(), "tools/list", {"cursor": cursor}, scope())
    assert reply["error"]["code"] == -32602
    assert "cursor" in reply["error"]["message"]


def test_cursor_past_the_end_is_invalid_params() -> None:
    reply = ask(Dispatcher(), "tools/list", {"cursor": encode_cursor("tools", 10_000)}, scope())
    assert reply["error"]["code"] == -32602


@given(offset=st.integers(min_value=0, max_value=10**9 - 1))
def test_cursor_round_trip(offset: int) -> None:
    assert decode_cursor("tools", encode_cursor("tools", offset)) == offset


def test_read_only_and_toolsets_filter_the_list() -> None:
    dispatcher = Dispatcher()
    read_only = ask(dispatcher, "tools/list", {}, scope(read_only=True))["result"]["tools"]
    assert all(tool["annotations"]["readOnlyHint"] for tool in read_only)
    narrowed = ask(dispatcher, "tools/list", {}, scope(toolsets=frozenset({"store"})))
    assert {tool["name"] for tool in narrowed["result"]["tools"]} == {
        "list_stores",
        "get_store",
        "test_connection",
    }


def test_every_tool_call_is_recorded_even_when_it_fails() -> None:
    at = scope()
    reply = ask(Dispatcher(), "tools/call", {"name": "get_store", "arguments": {}}, at)
    assert reply["result"]["isError"] is True
    recorder = at.audit
    assert isinstance(recorder, Recorder)
    assert [(call.tool, call.outcome, call.request_id) for call in recorder.calls] == [
        ("get_store", "store_not_found", "req-1")
    ]


def test_initialize_needs_a_version_and_answers_capabilities() -> None:
    handshake = Dispatcher().negotiate({"protocolVersion": "2025-06-18", "clientInfo": "odd"})
    assert handshake.protocol_version == "2025-06-18"
    assert handshake.client_info == {}
    assert handshake.result["capabilities"]["completions"] == {}


# --- audit -----------------------------------------------------------------------------------


def test_redact_masks_credential_names_at_any_depth() -> None:
    arguments = {
        "order_id": "1",
        "API_Key": "sk_1",
        "nested": {"password": "p", "items": [{"token": "t", "code": "SKU"}]},
        "Authorization": "Bearer x",
        "client_secret": "s",
    }
    assert redact(arguments) == {
        "order_id": "1",
        "API_Key": REDACTED,
        "nested": {"password": REDACTED, "items": [{"token": REDACTED, "code": "SKU"}]},
        "Authorization": REDACTED,
        "client_secret": REDACTED,
    }


@given(value=st.recursive(st.text(max_size=5), lambda c: st.dictionaries(st.text(max_size=6), c)))
def test_redacted_text_never_holds_a_secret_value(value: Any) -> None:
    secret = "sk_live_SECRET_VALUE"
    text = arguments_text({"outer": value, "api_key": secret, "deep": {"x_token": secret}})
    assert secret not in text


def test_arguments_text_is_bounded() -> None:
    text = arguments_text({"note": "x" * (MAX_ARGUMENTS_CHARS * 2)})
    assert len(text) < MAX_ARGUMENTS_CHARS + 100
    assert json.loads(text)["truncated"] is True


def _call(cache_hit: bool, coalesced: bool = False) -> UpstreamCall:
    return UpstreamCall(
        store_id="1",
        method="GET",
        endpoint="/orders",
        status=200,
        duration_ms=1.0,
        cache_hit=cache_hit,
        retries=0,
        tokens_remaining=None,
        coalesced=coalesced,
        rate_limited_waits=0,
    )


def test_upstream_counter_counts_only_real_requests_inside_its_block() -> None:
    note_upstream_call(_call(False))  # outside any block: ignored
    with count_upstream_calls() as counter:
        note_upstream_call(_call(False))
        note_upstream_call(_call(True))
        note_upstream_call(_call(False, coalesced=True))
        note_upstream_call(_call(False))
    assert counter.calls == 2


# --- in-memory sessions (local mode) -------------------------------------------------------


def test_memory_sessions_belong_to_their_owner_and_expire() -> None:
    store = MemorySessionStore(ttl_seconds=60)
    owner = SessionOwner(tenant_id=None, key_id=None)
    other = SessionOwner(tenant_id=7, key_id=1)
    session_id = store.create(owner, "2025-11-25", {})
    state = store.get(session_id, owner)
    assert state is not None
    assert state.protocol_version == "2025-11-25"
    assert store.get(session_id, other) is None
    assert store.end(session_id, other) is False
    for session in store._sessions.values():  # an idle clock, without waiting a minute
        session.last_seen -= dt.timedelta(seconds=120)
    assert store.get(session_id, owner) is None
    fresh = store.create(owner, "2025-06-18", {})
    assert store.end(fresh, owner) is True
    assert store.get(fresh, owner) is None
