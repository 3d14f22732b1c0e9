"""Arbitrary JSON thrown at /mcp never yields a 5xx, and every error is JSON-RPC shaped."""

from __future__ import annotations

import json
from typing import Any

import peewee
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp.protocol import (
    ClientResponse,
    JsonRpcError,
    Message,
    Notification,
    Request,
    parse_message,
)
from orderdesk_mcp.vault import Vault
from tests.conftest import McpTenant, make_mcp_app
from tests.test_mcp_http import McpHttp

METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "server/discover",
]
TOOL_NAMES = ["list_stores", "get_order", "list_orders", "delete_order", "nope"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

params = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(TOOL_NAMES) | st.text(max_size=10),
        "arguments": json_values,
        "cursor": json_values,
        "uri": st.sampled_from(["orderdesk://demo/store", "orderdesk://x/orders/1"]) | json_values,
        "ref": json_values,
        "argument": json_values,
        "level": json_values,
        "protocolVersion": json_values,
    },
)

messages = st.fixed_dictionaries(
    {
        "jsonrpc": st.sampled_from(["2.0", "2.0", "1.0"]),
        "method": st.sampled_from(METHODS) | json_values,
    },
    optional={"id": json_values, "params": params | json_values},
)

bodies = messages | json_values | st.lists(messages, max_size=3)


@pytest.fixture
def fuzz_app(settings: Settings, db: peewee.Database, vault: Vault) -> Flask:
    """The real app with a rate limit the examples cannot reach."""
    return make_mcp_app(
        settings.replace(rate_limit="1000000/minute", protocol_rate_limit="1000000/minute"),
        db,
        vault,
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_arbitrary_json_never_yields_a_5xx(
    fuzz_app: Flask, mcp_tenant: McpTenant, body: Any
) -> None:
    http = McpHttp(fuzz_app.test_client(), mcp_tenant.token)
    http.initialize("2025-03-26")  # the one revision where batches are processed too
    http.version = None
    reply = http.post(body)
    assert reply.status_code < 500, reply.get_data(as_text=True)
    if reply.status_code == 202:
        assert reply.get_data() == b""
        return
    assert reply.mimetype == "application/json"
    payload = reply.get_json()
    for item in payload if isinstance(payload, list) else [payload]:
        assert item["jsonrpc"] == "2.0"
        assert ("result" in item) != ("error" in item)
        if "error" in item:
            assert item["error"]["code"] != -32603, item


def _parse(raw: Any) -> Message | JsonRpcError:
    try:
        return parse_message(raw)
    except JsonRpcError as error:
        return error


@given(raw=json_values | messages)
def test_parse_message_classifies_or_says_what_is_wrong(raw: Any) -> None:
    parsed = _parse(raw)
    if isinstance(parsed, JsonRpcError):
        assert parsed.code == -32600
        assert parsed.message
    else:
        assert isinstance(parsed, Request | Notification | ClientResponse)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_are_a_parse_error_or_handled(
    fuzz_app: Flask, mcp_tenant: McpTenant, raw: bytes
) -> None:
    http = McpHttp(fuzz_app.test_client(), mcp_tenant.token)
    http.initialize()
    reply = http.post(None, raw=raw)
    assert reply.status_code < 500
    try:
        json.loads(raw)
    except ValueError:
        assert reply.status_code == 400
        assert reply.get_json()["error"]["code"] == -32700
