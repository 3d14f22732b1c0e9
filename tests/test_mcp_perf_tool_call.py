"""The tools/call reply path after tuning: spliced results are the same bytes as encoded ones."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.mcp import results
from orderdesk_mcp.mcp.protocol import EncodedResult, compact_json, encode_message, result_message
from tests.conftest import McpTenant
from tests.test_mcp_http import McpHttp

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.text(alphabet=st.characters(max_codepoint=127), max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
structured_values = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


@given(request_id=st.integers() | st.text(max_size=10), structured=structured_values)
def test_a_tool_result_reply_is_the_bytes_plain_encoding_gives(
    request_id: int | str, structured: dict[str, Any]
) -> None:
    reply = result_message(request_id, results.success(structured))
    assert encode_message(reply) == compact_json(reply)


def test_an_ascii_result_is_spliced_and_a_non_ascii_one_encoded() -> None:
    ascii_result = results.success({"order": {"id": "1", "name": 'Ada "the" first\n'}})
    assert isinstance(ascii_result, EncodedResult)
    assert ascii_result.json_text == compact_json(ascii_result)
    accented = results.success({"order": {"name": "Zoë"}})
    assert not isinstance(accented, EncodedResult)
    assert accented["content"][0]["text"] == '{"order":{"name":"Zoë"}}'
    reply = result_message(1, accented)
    assert encode_message(reply) == compact_json(reply)


def test_a_result_holding_del_is_encoded_not_spliced() -> None:
    """DEL (0x7f) is ASCII, but the reply encoder escapes it (\\u007f): such a result is not
    spliced, so its reply is still the bytes plain encoding gives (hypothesis found it)."""
    deleted = results.success({"note": "a\x7fb"})
    assert not isinstance(deleted, EncodedResult)
    reply = result_message(1, deleted)
    assert encode_message(reply) == compact_json(reply)
    assert "\\u007f" in encode_message(reply)


def test_a_cut_result_is_spliced_with_the_cut_text() -> None:
    structured = {
        "orders": [{"id": str(n), "note": "x" * 500} for n in range(400)],
        "offset": 0,
        "next_offset": 400,
    }
    result = results.success(structured)
    assert "truncated" in result["structuredContent"]
    assert result["content"][0]["text"] == results.to_json(result["structuredContent"])
    reply = result_message("call-1", result)
    assert encode_message(reply) == compact_json(reply)


# --- request checks reordered for speed keep their answers -----------------------------------


@pytest.fixture
def session(mcp_app: Flask, mcp_tenant: McpTenant) -> McpHttp:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    return http


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/json, text/event-stream", 200),
        ("Application/JSON", 200),
        ("*/*", 200),
        ("application/*;q=0.5", 200),
        ("text/event-stream", 406),
        ("text/html", 406),
    ],
)
def test_accept_header_answers_as_before(session: McpHttp, accept: str, status: int) -> None:
    reply = session.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Accept": accept})
    assert reply.status_code == status
