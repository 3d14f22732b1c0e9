"""Hostile input stays small on the way out: short echoes, and metric labels it cannot take."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from orderdesk_mcp.mcp.method_names import MCP_METHODS
from orderdesk_mcp.metrics import OTHER
from tests import test_mcp_http
from tests.test_mcp_http import McpHttp, error_of
from tests.test_metrics import scrape

HUGE = "x" * (900 * 1024)
SMALL_REPLY = 4096


# The transport tests' fixtures: a client with the tenant's token, and one in a session.
http = test_mcp_http.http
session = test_mcp_http.session


def _small_error(reply: Any) -> dict[str, Any]:
    assert len(reply.get_data()) < SMALL_REPLY, len(reply.get_data())
    return error_of(reply)


def test_a_900_kb_tool_name_gets_a_short_reply(session: McpHttp) -> None:
    error = _small_error(session.request("tools/call", {"name": HUGE, "arguments": {}}))
    assert error["code"] == -32602
    assert "unknown tool: 'xxxx" in error["message"]
    assert "…" in error["message"]


def test_a_900_kb_method_name_gets_a_short_reply(session: McpHttp) -> None:
    error = _small_error(session.request("a/" + HUGE))
    assert error["code"] == -32601
    assert "…" in error["message"]


def test_a_900_kb_prompt_name_and_argument_names_get_short_replies(session: McpHttp) -> None:
    error = _small_error(session.request("prompts/get", {"name": HUGE}))
    assert "…" in error["message"]
    many = {f"{HUGE[:500]}{number}": "1" for number in range(1500)}
    prompt = session.result("prompts/list")["prompts"][0]["name"]
    error = _small_error(session.request("prompts/get", {"name": prompt, "arguments": many}))
    assert "more" in error["message"]


def test_a_900_kb_argument_name_or_store_gets_a_short_tool_error(session: McpHttp) -> None:
    for tool, arguments in (("list_stores", {HUGE: 1}), ("get_store", {"store": HUGE})):
        reply = session.request("tools/call", {"name": tool, "arguments": arguments})
        assert reply.status_code == 200
        assert len(reply.get_data()) < SMALL_REPLY, (tool, len(reply.get_data()))
        assert reply.get_json()["result"]["isError"] is True


@pytest.mark.parametrize("request_id", [HUGE, 10**1000])
def test_a_900_kb_request_id_is_refused_not_echoed(session: McpHttp, request_id: Any) -> None:
    reply = session.post({"jsonrpc": "2.0", "id": request_id, "method": "ping"})
    error = _small_error(reply)
    assert error["code"] == -32600
    assert reply.get_json()["id"] is None


def test_a_long_origin_header_is_not_repeated(http: McpHttp) -> None:
    reply = http.post(
        {"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Origin": "https://" + "h" * 60000}
    )
    assert reply.status_code == 403
    _small_error(reply)


def test_mcp_method_labels_are_the_protocol_s_not_first_come(
    session: McpHttp, mcp_app: Flask
) -> None:
    for number in range(100):  # more made-up names than any first-come label budget
        session.request(f"made/up/{number}")
    session.notify("notifications/made_up")
    session.result("tools/list")
    methods = {
        dict(labels)["method"]: count
        for (name, labels), count in scrape(mcp_app).items()
        if name == "orderdesk_mcp_mcp_requests_total"
    }
    assert methods["tools/list"] == 1
    assert methods["notifications/initialized"] == 1
    assert methods[OTHER] == 101
    assert set(methods) <= MCP_METHODS | {OTHER}


@pytest.mark.parametrize(
    "method", ["server/discover", "tasks/get", "elicitation/create", "notifications/progress"]
)
def test_the_vocabulary_covers_every_revision(method: str) -> None:
    assert method in MCP_METHODS
