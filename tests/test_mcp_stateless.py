"""MCP 2026-07-28 on the server side: self-describing requests over raw HTTP and stdio.

Every path and every error of the stateless revision, through Flask's test client (and once
through the real waitress server): server/discover, calls without a session, the mirrored
headers, versions, removed methods, the result envelope, limits, audit and OAuth per request.
The official SDK clients' view lives in tests/test_mcp_sdk.py and its successors.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.models import AuditEvent, McpSession
from orderdesk_mcp.mcp.envelope import Envelope, read_envelope
from orderdesk_mcp.mcp.protocol import JsonRpcError
from orderdesk_mcp.mcp.request_headers import decode_header_value
from orderdesk_mcp.mcp.stdio import StdioSession
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault
from tests.conftest import (
    McpServer,
    McpTenant,
    make_mcp_app,
)
from tests.oauth_helpers import full_flow, oauth_app_with_tenant
from tests.test_mcp_http import ACCEPT, JSON, McpHttp, error_of
from tests.test_mcp_local import line, local_environ, local_stdio_session

MODERN = "2026-07-28"
SUPPORTED = [MODERN, "2025-11-25", "2025-06-18", "2025-03-26"]
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
NAME_FIELDS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def envelope(version: Any = MODERN, **extra: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        **extra,
    }


def modern_message(
    method: str, params: dict[str, Any] | None = None, *, request_id: int | None = 1
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "jsonrpc": "2.0",
        "method": method,
        "params": {**(params or {}), "_meta": envelope()},
    }
    if request_id is not None:
        message["id"] = request_id
    return message


def modern_headers(message: dict[str, Any]) -> dict[str, str]:
    """The headers a conforming client sends with `message`."""
    version = message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
    headers = {"MCP-Protocol-Version": version, "Mcp-Method": message["method"]}
    field = NAME_FIELDS.get(message["method"])
    if field is not None:
        headers["Mcp-Name"] = message["params"][field]
    return headers


class Stateless:
    """Raw 2026-07-28 requests through the Flask test client: no session, ever."""

    def __init__(self, http: McpHttp) -> None:
        self.http = http

    def post(self, message: Any, headers: dict[str, str] | None = None) -> TestResponse:
        return self.http.post(message, headers=headers)

    def send(self, method: str, params: dict[str, Any] | None = None) -> TestResponse:
        message = modern_message(method, params)
        return self.post(message, modern_headers(message))

    def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.send(method, params)
        assert reply.status_code == 200, reply.get_data(as_text=True)
        assert "Mcp-Session-Id" not in reply.headers
        result: dict[str, Any] = reply.get_json()["result"]
        assert result["resultType"] == "complete"
        assert result["_meta"][SERVER_INFO]["name"] == "orderdesk-mcp"
        return result


@pytest.fixture
def http(mcp_app: Flask, mcp_tenant: McpTenant) -> McpHttp:
    return McpHttp(mcp_app.test_client(), mcp_tenant.token)


@pytest.fixture
def session(http: McpHttp) -> McpHttp:
    """A handshake-era (2025-11-25) session, to show the older revisions are unchanged."""
    legacy = McpHttp(http.client, http.token)
    legacy.initialize()
    return legacy


@pytest.fixture
def modern(http: McpHttp) -> Stateless:
    return Stateless(http)


# --- server/discover -----------------------------------------------------------------------


def test_discover_names_versions_capabilities_and_identity(modern: Stateless) -> None:
    result = modern.result("server/discover")
    assert result["supportedVersions"] == SUPPORTED
    capabilities = result["capabilities"]
    assert capabilities["resources"]["subscribe"] is False
    assert capabilities["tools"]["listChanged"] is False
    assert "subscriptions" not in capabilities
    assert "Order Desk" in result["instructions"]
    assert result["_meta"][SERVER_INFO] == {
        "name": "orderdesk-mcp",
        "title": "Order Desk",
        "version": result["_meta"][SERVER_INFO]["version"],
    }
    assert (result["ttlMs"], result["cacheScope"]) == (3_600_000, "public")
    assert McpSession.select().count() == 0


def test_discover_counts_in_the_protocol_bucket(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="1/minute"), db, vault)
    modern = Stateless(McpHttp(app.test_client(), mcp_tenant.token))
    assert all(modern.send("server/discover").status_code == 200 for _ in range(3))
    assert modern.send("tools/call", {"name": "list_stores"}).status_code == 200
    refused = modern.send("tools/call", {"name": "list_stores"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert error_of(refused)["code"] == -32000


def test_discover_over_limit_in_the_protocol_bucket_is_429(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(protocol_rate_limit="2/minute"), db, vault)
    modern = Stateless(McpHttp(app.test_client(), mcp_tenant.token))
    statuses = [modern.send("server/discover").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# --- calls without a session ---------------------------------------------------------------


def test_tool_call_without_a_session_is_answered_and_audited(
    modern: Stateless, mcp_tenant: McpTenant
) -> None:
    result = modern.result("tools/call", {"name": "get_order", "arguments": {"order_id": "1"}})
    assert "isError" in result
    listed = modern.result("tools/call", {"name": "list_stores", "arguments": {}})
    assert listed["isError"] is False
    assert [store["alias"] for store in listed["structuredContent"]["stores"]] == [
        "demo",
        "empty",
    ]
    assert json.loads(listed["content"][0]["text"]) == listed["structuredContent"]
    events = list(AuditEvent.select().order_by(AuditEvent.id))
    assert [event.action for event in events] == ["tools/call get_order", "tools/call list_stores"]
    assert all(event.tenant_id == mcp_tenant.tenant.id for event in events)
    assert len({event.request_id for event in events}) == 2  # one per request
    assert McpSession.select().count() == 0


def test_a_stray_session_id_is_ignored(modern: Stateless) -> None:
    message = modern_message("tools/list")
    reply = modern.post(message, {**modern_headers(message), "Mcp-Session-Id": "made-up"})
    assert reply.status_code == 200
    assert "Mcp-Session-Id" not in reply.headers


def test_write_tools_respect_a_read_only_key(http: McpHttp, mcp_tenant: McpTenant) -> None:
    http.token = mcp_tenant.read_only_token
    reply = Stateless(http).send(
        "tools/call", {"name": "delete_order", "arguments": {"order_id": "1", "dry_run": True}}
    )
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["code"] == -32602
    assert "read-only" in error["message"]


def test_unknown_key_is_401_before_anything_else(http: McpHttp) -> None:
    http.token = "odmcp_not_a_key"
    reply = Stateless(http).send("server/discover")
    assert reply.status_code == 401
    assert "WWW-Authenticate" in reply.headers


# --- the result envelope -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "ttl_ms", "scope"),
    [
        ("tools/list", {}, 3_600_000, "private"),
        ("prompts/list", {}, 3_600_000, "public"),
        ("resources/templates/list", {}, 3_600_000, "private"),
        ("resources/list", {}, 60_000, "private"),
        ("resources/read", {"uri": "orderdesk://demo/store"}, 300_000, "private"),
    ],
)
def test_cacheable_results_carry_ttl_and_scope(
    modern: Stateless, method: str, params: dict[str, Any], ttl_ms: int, scope: str
) -> None:
    result = modern.result(method, params)
    assert (result["ttlMs"], result["cacheScope"]) == (ttl_ms, scope)


def test_order_reads_are_immediately_stale_and_private(modern: Stateless) -> None:
    orders = modern.result("tools/call", {"name": "list_orders", "arguments": {"limit": 1}})
    order_id = orders["structuredContent"]["orders"][0]["id"]
    result = modern.result("resources/read", {"uri": f"orderdesk://demo/orders/{order_id}"})
    assert (result["ttlMs"], result["cacheScope"]) == (0, "private")


def test_other_results_are_complete_without_cache_hints(modern: Stateless) -> None:
    prompt = modern.result("prompts/get", {"name": "fulfil_order", "arguments": {"order_id": "1"}})
    assert "ttlMs" not in prompt
    completion = modern.result(
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "fulfil_order"},
            "argument": {"name": "store", "value": "d"},
        },
    )
    assert completion["completion"]["values"] == ["demo"]


def test_handshake_results_are_unchanged(session: McpHttp) -> None:
    result = session.result("tools/list")
    assert not {"resultType", "ttlMs", "cacheScope", "_meta"} & set(result)


def test_resource_not_found_is_invalid_params_on_2026_only(
    modern: Stateless, session: McpHttp
) -> None:
    uri = "orderdesk://demo/orders/999999999"
    reply = modern.send("resources/read", {"uri": uri})
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["code"] == -32602
    assert error["data"] == {"uri": uri}
    legacy = session.request("resources/read", {"uri": uri})
    assert legacy.status_code == 200
    assert error_of(legacy)["code"] == -32002


# --- headers -------------------------------------------------------------------------------


def _tool_call() -> dict[str, Any]:
    return modern_message("tools/call", {"name": "list_stores", "arguments": {}})


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"MCP-Protocol-Version": None}, "missing MCP-Protocol-Version"),
        ({"MCP-Protocol-Version": "2025-11-25"}, "does not match the protocol version"),
        ({"Mcp-Method": None}, "missing Mcp-Method"),
        ({"Mcp-Method": "tools/list"}, "does not match the body's method"),
        ({"Mcp-Name": None}, "missing Mcp-Name"),
        ({"Mcp-Name": "get_order"}, "does not match params.name"),
        ({"Mcp-Name": "=?base64?not base64?="}, "malformed"),
    ],
)
def test_each_header_mismatch_is_400_header_mismatch(
    modern: Stateless, change: dict[str, str | None], words: str
) -> None:
    message = _tool_call()
    headers: dict[str, str] = {}
    for name, value in {**modern_headers(message), **change}.items():
        if value is not None:
            headers[name] = value
    reply = modern.post(message, headers)
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["code"] == -32020
    assert words in error["message"]
    assert reply.get_json()["id"] == 1
    assert AuditEvent.select().count() == 0  # nothing ran


def test_header_names_are_case_insensitive_and_mcp_name_may_be_base64(
    modern: Stateless,
) -> None:
    message = _tool_call()
    encoded = "=?base64?" + base64.b64encode(b"list_stores").decode() + "?="
    headers = {"mcp-protocol-version": MODERN, "MCP-METHOD": "tools/call", "mcp-name": encoded}
    assert modern.post(message, headers).status_code == 200


def test_a_doubled_routing_header_is_a_mismatch(modern: Stateless) -> None:
    message = _tool_call()
    headers = [(name, value) for name, value in modern_headers(message).items()]
    headers.append(("Mcp-Method", "tools/call"))
    reply = modern.http.client.post(
        "/mcp",
        data=json.dumps(message),
        content_type=JSON,
        headers=[("Accept", ACCEPT), ("Authorization", f"Bearer {modern.http.token}"), *headers],
    )
    # WSGI joins a doubled header with a comma; the joined value never matches the body.
    assert reply.status_code == 400
    assert error_of(reply)["code"] == -32020


# --- versions and the envelope -------------------------------------------------------------


def test_unsupported_version_is_400_with_the_supported_list(modern: Stateless) -> None:
    message = modern_message("tools/list")
    message["params"]["_meta"] = envelope("2099-01-01")
    reply = modern.post(message, {"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/list"})
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["code"] == -32022
    assert error["data"] == {"supported": SUPPORTED, "requested": "2099-01-01"}


def test_an_unknown_version_header_without_a_session_is_stateless(modern: Stateless) -> None:
    reply = modern.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"MCP-Protocol-Version": "1900-01-01"}
    )
    assert reply.status_code == 400
    assert error_of(reply)["code"] == -32602  # the envelope is checked first, as the SDK does


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        (None, "params._meta must be an object"),
        ({"io.modelcontextprotocol/protocolVersion": MODERN}, "clientCapabilities"),
        (
            {**envelope(), "io.modelcontextprotocol/clientCapabilities": []},
            "must be a JSON object",
        ),
        ({**envelope(), "io.modelcontextprotocol/clientInfo": "me"}, "must be a JSON object"),
        ({**envelope(), "io.modelcontextprotocol/logLevel": "loud"}, "logLevel"),
    ],
)
def test_a_bad_envelope_is_400_invalid_params(
    modern: Stateless, meta: dict[str, Any] | None, words: str
) -> None:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": "server/discover"}
    message["params"] = {} if meta is None else {"_meta": meta}
    reply = modern.post(message, {"MCP-Protocol-Version": MODERN, "Mcp-Method": "server/discover"})
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["code"] == -32602
    assert words in error["message"]


def test_the_log_level_travels_in_meta(modern: Stateless) -> None:
    message = modern_message("tools/list")
    message["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = "warning"
    assert modern.post(message, modern_headers(message)).status_code == 200


def test_batches_and_responses_are_refused(modern: Stateless) -> None:
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"}
    batch = modern.post([modern_message("tools/list")], headers)
    assert batch.status_code == 400
    assert "batches" in error_of(batch)["message"]
    response = modern.post({"jsonrpc": "2.0", "id": 3, "result": {}}, headers)
    assert response.status_code == 400
    assert error_of(response)["code"] == -32600


# --- what 2026-07-28 removed ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("initialize", {"protocolVersion": MODERN, "capabilities": {}}),
        ("ping", {}),
        ("logging/setLevel", {"level": "info"}),
        ("resources/subscribe", {"uri": "orderdesk://demo/store"}),
        ("resources/unsubscribe", {"uri": "orderdesk://demo/store"}),
    ],
)
def test_removed_methods_are_404_method_not_found(
    modern: Stateless, method: str, params: dict[str, Any]
) -> None:
    reply = modern.send(method, params)
    assert reply.status_code == 404
    error = error_of(reply)
    assert error["code"] == -32601
    assert "2026-07-28" in error["message"]
    assert McpSession.select().count() == 0


def test_unknown_methods_are_404(modern: Stateless) -> None:
    reply = modern.send("tools/unknown")
    assert reply.status_code == 404
    assert error_of(reply)["code"] == -32601


def test_removed_methods_still_work_on_handshake_sessions(session: McpHttp) -> None:
    assert session.result("ping") == {}
    assert session.result("logging/setLevel", {"level": "info"}) == {}
    # Never offered (subscribe: false), on every revision.
    assert error_of(session.request("resources/subscribe", {"uri": "x"}))["code"] == -32601


def test_initialize_without_the_2026_header_still_opens_a_session(http: McpHttp) -> None:
    http.initialize(MODERN)  # asked for 2026-07-28 through the handshake: 2025-11-25
    assert http.version == "2025-11-25"
    assert McpSession.select().count() == 1


def test_notifications_are_accepted_but_not_the_handshake_one(modern: Stateless) -> None:
    headers = {"MCP-Protocol-Version": MODERN}
    cancelled = modern_message("notifications/cancelled", {"requestId": 1}, request_id=None)
    reply = modern.post(cancelled, {**headers, "Mcp-Method": "notifications/cancelled"})
    assert reply.status_code == 202
    assert reply.get_data() == b""
    initialized = modern_message("notifications/initialized", request_id=None)
    refused = modern.post(initialized, {**headers, "Mcp-Method": "notifications/initialized"})
    assert refused.status_code == 404
    assert error_of(refused)["code"] == -32601


@pytest.mark.parametrize("verb", ["GET", "DELETE"])
def test_get_and_delete_on_2026_are_405(http: McpHttp, verb: str) -> None:
    reply = http.client.open(
        "/mcp", method=verb, headers={**http.headers(), "MCP-Protocol-Version": MODERN}
    )
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST"
    assert "2026-07-28" in error_of(reply)["message"]


def test_get_without_the_2026_header_is_unchanged(http: McpHttp) -> None:
    reply = http.client.get("/mcp", headers=http.headers())
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST, DELETE"


# --- OAuth and the real server ---------------------------------------------------------------


@pytest.fixture
def oauth_app(data_dir: Path, sandbox: RunningSandbox) -> Iterator[tuple[Flask, int]]:
    with oauth_app_with_tenant(data_dir, sandbox) as app_and_tenant:
        yield app_and_tenant


def test_an_oauth_access_token_works_on_a_stateless_request(oauth_app: tuple[Flask, int]) -> None:
    app, tenant_id = oauth_app
    client = app.test_client()
    _registration, tokens = full_flow(app, client, tenant_id)
    modern = Stateless(McpHttp(client, tokens["access_token"]))
    listed = modern.result("tools/call", {"name": "list_stores", "arguments": {}})
    assert listed["isError"] is False
    calls = AuditEvent.select().where(AuditEvent.action == "tools/call list_stores")
    assert [event.tenant_id for event in calls] == [tenant_id]


def test_discover_and_a_call_through_waitress(mcp_server: McpServer) -> None:
    auth = {"Authorization": f"Bearer {mcp_server.token}", "Accept": ACCEPT}
    with requests.Session() as http:
        for message in (modern_message("server/discover"), _tool_call()):
            reply = http.post(
                mcp_server.url,
                json=message,
                headers={**auth, **modern_headers(message)},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["result"]["resultType"] == "complete"
            assert "Mcp-Session-Id" not in reply.headers
        mismatch = http.post(
            mcp_server.url,
            json=_tool_call(),
            headers={**auth, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"},
            timeout=10,
        )
        assert mismatch.status_code == 400
        assert mismatch.json()["error"]["code"] == -32020


# --- stdio -----------------------------------------------------------------------------------


@pytest.fixture
def stdio(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[StdioSession]:
    with local_stdio_session(load_settings(local_environ(tmp_path / "local", sandbox))) as session:
        yield session


def test_stdio_discover_and_a_call_without_initialize(stdio: StdioSession) -> None:
    discovered = line(stdio, modern_message("server/discover"))["result"]
    assert discovered["supportedVersions"] == SUPPORTED
    assert discovered["_meta"][SERVER_INFO]["name"] == "orderdesk-mcp"
    called = line(stdio, modern_message("tools/call", {"name": "get_store"}))["result"]
    assert called["isError"] is False
    assert called["resultType"] == "complete"
    assert stdio.protocol_version is None  # no handshake happened


def test_stdio_refuses_removed_methods_and_bad_envelopes(stdio: StdioSession) -> None:
    assert line(stdio, modern_message("ping"))["error"]["code"] == -32601
    wrong = modern_message("tools/list")
    wrong["params"]["_meta"] = envelope("2099-01-01")
    error = line(stdio, wrong)["error"]
    assert error["code"] == -32022
    assert error["data"]["supported"] == SUPPORTED
    half = modern_message("tools/list")
    del half["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]
    assert line(stdio, half)["error"]["code"] == -32602


def test_stdio_handshake_is_unchanged(stdio: StdioSession) -> None:
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}
    reply = line(stdio, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    assert reply["result"]["protocolVersion"] == "2025-11-25"
    assert line(stdio, {"jsonrpc": "2.0", "id": 2, "method": "ping"})["result"] == {}
    bare = line(stdio, {"jsonrpc": "2.0", "id": 3, "method": "server/discover"})
    assert bare["error"]["code"] == -32601


# --- parsing outside input -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3)
    ),
    max_leaves=8,
)
meta_keys = st.sampled_from(
    [
        "io.modelcontextprotocol/protocolVersion",
        "io.modelcontextprotocol/clientCapabilities",
        "io.modelcontextprotocol/clientInfo",
        "io.modelcontextprotocol/logLevel",
        "progressToken",
    ]
)
header_values = st.lists(st.text(max_size=30), max_size=2)


def _envelope_or_error(
    method: str, params: dict[str, Any], headers: dict[str, list[str]]
) -> Envelope | JsonRpcError:
    try:
        return read_envelope(method, params, headers)
    except JsonRpcError as error:
        return error


@hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["tools/call", "resources/read", "prompts/get", "tools/list"]),
    meta=st.none() | st.dictionaries(meta_keys, json_values | st.just(MODERN), max_size=5),
    name=json_values,
    version=header_values,
    method_header=header_values,
    name_header=header_values,
)
def test_envelope_and_headers_either_pass_or_fail_with_one_json_rpc_error(
    method: str,
    meta: dict[str, Any] | None,
    name: Any,
    version: list[str],
    method_header: list[str],
    name_header: list[str],
) -> None:
    params: dict[str, Any] = {"name": name, "uri": name}
    if meta is not None:
        params["_meta"] = meta
    headers = {
        "mcp-protocol-version": version,
        "mcp-method": method_header,
        "mcp-name": name_header,
    }
    found = _envelope_or_error(method, params, headers)
    if isinstance(found, JsonRpcError):
        assert found.code in (-32602, -32020, -32022)
        assert found.message
        assert len(found.message) < 600
        return
    assert found.protocol_version == MODERN
    assert version == [MODERN]
    assert method_header == [method]


@given(st.text(max_size=40))
def test_base64_names_round_trip(value: str) -> None:
    encoded = "=?base64?" + base64.b64encode(value.encode()).decode() + "?="
    assert decode_header_value(encoded) == value
    if not value.startswith("=?base64?"):
        assert decode_header_value(value) == value


@given(
    result=st.dictionaries(
        st.text(max_size=8).filter(lambda key: key not in ("resultType", "_meta")),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans()),
        max_size=5,
    )
)
def test_a_complete_result_encodes_exactly_as_if_encoded_whole(result: dict[str, Any]) -> None:
    # complete() splices the fields' ready-made JSON onto an encoded result: the text must be
    # what encoding the whole result would give, whatever keys the result has.
    from orderdesk_mcp.mcp import stateless
    from orderdesk_mcp.mcp.dispatcher import SERVER_INFO
    from orderdesk_mcp.mcp.protocol import EncodedResult, compact_json

    for source in (EncodedResult(result), dict(result)):
        done = stateless.complete(source, SERVER_INFO)
        assert done["resultType"] == "complete"
        assert done["_meta"]["io.modelcontextprotocol/serverInfo"] == SERVER_INFO
        if isinstance(done, EncodedResult):
            assert done.json_text == compact_json(dict(done))
