"""The /mcp transport through Flask's test client: every status code, sessions, versions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import McpSession
from orderdesk_mcp.mcp.registry import all_tools
from orderdesk_mcp.mcp.sessions import hash_session_id
from orderdesk_mcp.vault import Vault
from tests.conftest import McpTenant, make_mcp_app

JSON = "application/json"
ACCEPT = "application/json, text/event-stream"


class McpHttp:
    """A minimal MCP client over the Flask test client, for poking at the transport."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token
        self.session: str | None = None
        self.version: str | None = None
        self._next_id = 0

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": ACCEPT}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.session is not None:
            headers["Mcp-Session-Id"] = self.session
        if self.version is not None:
            headers["MCP-Protocol-Version"] = self.version
        headers.update(extra or {})
        return headers

    def post(
        self, body: Any, *, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> TestResponse:
        data = raw if raw is not None else json.dumps(body).encode()
        return self.client.post("/mcp", data=data, content_type=JSON, headers=self.headers(headers))

    def request(self, method: str, params: dict[str, Any] | None = None) -> TestResponse:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        return self.post(message)

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> TestResponse:
        """A tools/call: what counts against the key's call budget."""
        return self.request("tools/call", {"name": name, "arguments": arguments or {}})

    def notify(self, method: str, params: dict[str, Any] | None = None) -> TestResponse:
        return self.post({"jsonrpc": "2.0", "method": method, "params": params or {}})

    def initialize(self, version: str = "2025-11-25") -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        )
        assert reply.status_code == 200, reply.get_data(as_text=True)
        self.session = reply.headers["Mcp-Session-Id"]
        body: dict[str, Any] = reply.get_json()
        self.version = body["result"]["protocolVersion"]
        assert self.notify("notifications/initialized").status_code == 202
        return body

    def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.request(method, params)
        assert reply.status_code == 200, reply.get_data(as_text=True)
        body: dict[str, Any] = reply.get_json()
        assert "result" in body, body
        result: dict[str, Any] = body["result"]
        return result


def error_of(reply: TestResponse) -> dict[str, Any]:
    """The JSON-RPC error of a reply (every error body must be one)."""
    assert reply.mimetype == JSON, reply.get_data(as_text=True)
    body = reply.get_json()
    assert body["jsonrpc"] == "2.0"
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], int)
    assert error["message"]
    return error


@pytest.fixture
def http(mcp_app: Flask, mcp_tenant: McpTenant) -> McpHttp:
    return McpHttp(mcp_app.test_client(), mcp_tenant.token)


@pytest.fixture
def session(http: McpHttp) -> McpHttp:
    http.initialize()
    return http


# --- lifecycle and version negotiation -----------------------------------------------------


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26"])
def test_initialize_echoes_a_supported_version(http: McpHttp, version: str) -> None:
    body = http.initialize(version)
    assert body["result"]["protocolVersion"] == version
    assert body["result"]["serverInfo"]["name"] == "orderdesk-mcp"
    assert set(body["result"]["capabilities"]) == {
        "tools",
        "resources",
        "prompts",
        "completions",
        "logging",
    }


@pytest.mark.parametrize("version", ["2024-11-05", "2099-01-01", "nonsense"])
def test_initialize_answers_latest_for_an_unknown_version(http: McpHttp, version: str) -> None:
    assert http.initialize(version)["result"]["protocolVersion"] == "2025-11-25"


def test_initialize_without_protocol_version_is_invalid_params(http: McpHttp) -> None:
    reply = http.request("initialize", {"capabilities": {}})
    assert error_of(reply)["code"] == -32602
    assert "Mcp-Session-Id" not in reply.headers


def test_session_is_stored_hashed_with_client_info(session: McpHttp, mcp_tenant: McpTenant) -> None:
    assert session.session is not None
    assert McpSession.get_or_none(McpSession.id == session.session) is None
    row = McpSession.get_by_id(hash_session_id(session.session))
    assert row.tenant.id == mcp_tenant.tenant.id
    assert row.protocol_version == "2025-11-25"
    assert json.loads(row.client_info) == {"name": "test", "version": "1"}
    assert len(session.session) >= 40
    assert all(0x21 <= ord(c) <= 0x7E for c in session.session)


def test_ping_and_notifications(session: McpHttp) -> None:
    assert session.result("ping") == {}
    reply = session.notify("notifications/cancelled", {"requestId": 7, "reason": "bored"})
    assert reply.status_code == 202
    assert reply.get_data() == b""
    reply = session.post({"jsonrpc": "2.0", "id": 99, "result": {}})
    assert reply.status_code == 202
    assert reply.get_data() == b""


def test_server_discover_without_its_envelope_is_invalid_params(http: McpHttp) -> None:
    # 2026-07-28 is served natively (tests/test_mcp_stateless.py); a probe without the
    # per-request _meta is malformed at that revision, not a reason to fall back.
    reply = http.post(
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}},
        headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"},
    )
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["code"] == -32602
    assert "_meta" in error["message"]
    assert "Mcp-Session-Id" not in reply.headers


def test_server_discover_inside_a_session_is_method_not_found(session: McpHttp) -> None:
    error = error_of(session.request("server/discover"))
    assert error["code"] == -32601
    assert "2026-07-28" in error["message"]


# --- sessions ------------------------------------------------------------------------------


def test_request_without_session_is_400(http: McpHttp) -> None:
    reply = http.request("tools/list")
    assert reply.status_code == 400
    assert "Mcp-Session-Id" in error_of(reply)["message"]


def test_unknown_session_is_404(http: McpHttp) -> None:
    http.session = "made-up-session-id"
    reply = http.request("ping")
    assert reply.status_code == 404
    assert "initialize" in error_of(reply)["message"]


def test_delete_ends_the_session(session: McpHttp) -> None:
    reply = session.client.delete("/mcp", headers=session.headers())
    assert reply.status_code == 204
    assert session.request("ping").status_code == 404
    assert session.client.delete("/mcp", headers=session.headers()).status_code == 404


def test_delete_without_session_is_400(http: McpHttp) -> None:
    assert http.client.delete("/mcp", headers=http.headers()).status_code == 400


def test_idle_session_expires(session: McpHttp) -> None:
    assert session.session is not None
    McpSession.update(last_seen=dt.datetime(2000, 1, 1)).where(
        McpSession.id == hash_session_id(session.session)
    ).execute()
    assert session.request("ping").status_code == 404


# --- protocol version header ---------------------------------------------------------------


def test_missing_version_header_means_the_negotiated_one(session: McpHttp) -> None:
    session.version = None
    assert session.result("ping") == {}


def test_another_supported_version_header_is_accepted(session: McpHttp) -> None:
    session.version = "2025-03-26"
    assert session.result("ping") == {}
    # Batches still follow the version negotiated at initialize (2025-11-25 here).
    assert session.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).status_code == 400


@pytest.mark.parametrize("header", ["2024-11-05", "2099-01-01", "garbage", ""])
def test_unsupported_or_malformed_version_header_is_400(session: McpHttp, header: str) -> None:
    session.version = header
    reply = session.request("ping")
    assert reply.status_code == 400
    assert "MCP-Protocol-Version" in error_of(reply)["message"]


# --- batches -------------------------------------------------------------------------------


def test_batch_on_a_2025_03_26_session(http: McpHttp) -> None:
    http.initialize("2025-03-26")
    reply = http.post(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
            {"jsonrpc": "2.0", "id": 2, "method": "no/such"},
            {"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {}},
            "not a message",
        ]
    )
    assert reply.status_code == 200
    replies = {item["id"]: item for item in reply.get_json()}
    assert replies[1]["result"] == {}
    assert replies[2]["error"]["code"] == -32601
    assert replies[3]["error"]["code"] == -32600
    assert replies[None]["error"]["code"] == -32600


def test_batch_of_notifications_only_is_202(http: McpHttp) -> None:
    http.initialize("2025-03-26")
    reply = http.post([{"jsonrpc": "2.0", "method": "notifications/initialized"}])
    assert reply.status_code == 202


def test_batch_on_a_newer_session_is_refused(session: McpHttp) -> None:
    reply = session.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert reply.status_code == 400
    assert "batch" in error_of(reply)["message"]


def test_empty_batch_is_invalid(http: McpHttp) -> None:
    http.initialize("2025-03-26")
    assert error_of(http.post([]))["code"] == -32600


# --- malformed input -----------------------------------------------------------------------


def test_bad_json_is_parse_error(session: McpHttp) -> None:
    reply = session.post(None, raw=b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert reply.status_code == 400
    assert error_of(reply)["code"] == -32700


@pytest.mark.parametrize(
    "message",
    [
        {"id": 1, "method": "ping"},
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1, 2]},
        {"jsonrpc": "2.0", "id": 1},
        42,
    ],
)
def test_invalid_message_is_invalid_request(session: McpHttp, message: Any) -> None:
    reply = session.post(message)
    assert reply.status_code == 400
    assert error_of(reply)["code"] == -32600


def test_unknown_method(session: McpHttp) -> None:
    reply = session.request("tools/explode")
    assert reply.status_code == 200
    assert error_of(reply)["code"] == -32601


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("tools/call", {}),
        ("tools/call", {"name": "get_order", "arguments": [1]}),
        ("tools/list", {"cursor": "bm90LWEtY3Vyc29y"}),
        ("tools/list", {"cursor": 12}),
        ("resources/read", {}),
        ("prompts/get", {"name": "no_such_prompt"}),
        ("prompts/get", {"name": "triage_new_orders", "arguments": "x"}),
        ("completion/complete", {"ref": {"type": "ref/prompt", "name": "x"}}),
        ("logging/setLevel", {"level": "loud"}),
    ],
)
def test_bad_params_are_invalid_params(session: McpHttp, method: str, params: Any) -> None:
    assert error_of(session.request(method, params))["code"] == -32602


def test_unknown_tool_is_invalid_params(session: McpHttp) -> None:
    error = error_of(session.request("tools/call", {"name": "launch_rocket", "arguments": {}}))
    assert error["code"] == -32602
    assert "launch_rocket" in error["message"]


def test_wrong_content_type_is_415(session: McpHttp) -> None:
    reply = session.client.post(
        "/mcp", data="ping", content_type="text/plain", headers=session.headers()
    )
    assert reply.status_code == 415
    assert error_of(reply)["code"] == -32600


def test_body_over_one_mebibyte_is_413(session: McpHttp) -> None:
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "x" * (1 << 20)})
    reply = session.post(None, raw=big.encode())
    assert reply.status_code == 413
    error_of(reply)


def test_accept_without_json_is_406(session: McpHttp) -> None:
    reply = session.post(
        {"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Accept": "text/html"}
    )
    assert reply.status_code == 406


def test_get_is_405_and_other_methods_too(session: McpHttp) -> None:
    reply = session.client.get("/mcp", headers=session.headers())
    assert reply.status_code == 405
    assert "POST" in reply.headers["Allow"]
    error_of(reply)
    reply = session.client.put("/mcp", data="{}", headers=session.headers())
    assert reply.status_code == 405
    error_of(reply)


def test_unknown_path_under_mcp_is_json_404(session: McpHttp) -> None:
    reply = session.client.post("/mcp/extra", data="{}", headers=session.headers())
    assert reply.status_code == 404
    error_of(reply)


# --- Host and Origin -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:8080", "10.0.0.1"])
def test_foreign_host_is_403(session: McpHttp, host: str) -> None:
    reply = session.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Host": host})
    assert reply.status_code == 403
    assert "ORDERDESK_MCP_PUBLIC_HOSTS" in error_of(reply)["message"]


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:9", "[::1]:8080"])
def test_loopback_hosts_are_served(session: McpHttp, host: str) -> None:
    reply = session.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Host": host})
    assert reply.status_code == 200


def test_foreign_origin_is_403_and_loopback_origin_is_fine(session: McpHttp) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    reply = session.post(ping, headers={"Origin": "https://evil.example.com"})
    assert reply.status_code == 403
    assert "ORDERDESK_MCP_ALLOWED_ORIGINS" in error_of(reply)["message"]
    assert session.post(ping, headers={"Origin": "http://localhost:6274"}).status_code == 200


def test_public_hosts_and_allowed_origins_come_from_settings(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(
        settings.replace(
            public_hosts=("mcp.example.com",), allowed_origins=("https://app.example.com",)
        ),
        db,
        vault,
    )
    http = McpHttp(app.test_client(), mcp_tenant.token)
    http.initialize()
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Host": "mcp.example.com", "Origin": "https://app.example.com"}
    assert http.post(ping, headers=headers).status_code == 200
    assert http.post(ping, headers={"Host": "other.example.com"}).status_code == 403


# --- authentication and limits -------------------------------------------------------------


INVALID_TOKEN_CHALLENGE = 'Bearer realm="orderdesk-mcp", error="invalid_token"'


def test_missing_key_is_401_with_a_challenge_and_no_error_code(mcp_app: Flask) -> None:
    # RFC 6750 3.1: with no credentials the server SHOULD NOT include an error code.
    for extra in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic dXNlcjpwdw=="}):
        reply = McpHttp(mcp_app.test_client(), None).post(
            {"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=extra
        )
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="orderdesk-mcp"'
        assert "error=" not in reply.headers["WWW-Authenticate"]
        assert "missing API key" in error_of(reply)["message"]


@pytest.mark.parametrize("token", ["odmcp_000000000000_" + "A" * 43, "not-a-key"])
def test_wrong_key_is_401_invalid_token(mcp_app: Flask, token: str) -> None:
    http = McpHttp(mcp_app.test_client(), token)
    reply = http.request("ping")
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    assert "invalid or revoked" in error_of(reply)["message"]


def test_revoked_key_is_401_invalid_token(session: McpHttp, mcp_tenant: McpTenant) -> None:
    from orderdesk_mcp.auth import parse_token, revoke_key

    assert session.token is not None
    parts = parse_token(session.token)
    assert parts is not None
    revoke_key(parts[0])
    reply = session.request("ping")
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


@pytest.mark.parametrize("query", ["api_key=odmcp_x", "token=abc", "x=odmcp_abc", "access_token=1"])
def test_key_in_query_string_is_refused(session: McpHttp, query: str) -> None:
    reply = session.client.post(
        f"/mcp?{query}",
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        content_type=JSON,
        headers=session.headers(),
    )
    assert reply.status_code == 400
    assert "Authorization: Bearer" in error_of(reply)["message"]


def test_repeated_auth_failures_from_one_address_are_429(mcp_app: Flask) -> None:
    http = McpHttp(mcp_app.test_client(), "odmcp_000000000000_" + "B" * 43)
    statuses = [http.request("ping").status_code for _ in range(21)]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429
    reply = http.request("ping")
    assert reply.status_code == 429
    assert int(reply.headers["Retry-After"]) >= 1
    error_of(reply)


def test_requests_without_credentials_are_never_throttled(mcp_app: Flask) -> None:
    # The first request of every OAuth client carries no token: 401 (pointing at discovery)
    # however many clients share one address, never 429.
    client = mcp_app.test_client()
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    statuses = {client.post("/mcp", json=body).status_code for _ in range(30)}
    assert statuses == {401}
    http = McpHttp(client, "odmcp_000000000000_" + "B" * 43)
    assert [http.request("ping").status_code for _ in range(20)] == [401] * 20


def test_per_key_rate_limit_is_429_with_retry_after(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="3/minute"), db, vault)
    http = McpHttp(app.test_client(), mcp_tenant.token)
    http.initialize()  # protocol requests: not charged to the call budget
    assert [http.call("list_stores").status_code for _ in range(3)] == [200] * 3
    reply = http.call("list_stores")
    assert reply.status_code == 429
    assert 1 <= int(reply.headers["Retry-After"]) <= 60
    assert "rate limit" in error_of(reply)["message"]
    other = McpHttp(app.test_client(), mcp_tenant.read_only_token)
    assert other.request("ping").status_code == 400  # another key has its own budget


# --- internal errors -----------------------------------------------------------------------


def test_a_bug_is_32603_with_a_request_id_and_no_internals(
    session: McpHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orderdesk_mcp.mcp import dispatcher

    def explode(*_args: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(dispatcher, "visible_tools", explode)
    reply = session.request("tools/list")
    error = error_of(reply)
    assert error["code"] == -32603
    assert error["data"]["request_id"] == reply.headers["X-Request-Id"]
    assert "internals" not in reply.get_data(as_text=True)
    assert "Traceback" not in reply.get_data(as_text=True)


def test_other_paths_keep_their_own_errors(mcp_app: Flask) -> None:
    reply = mcp_app.test_client().get("/nowhere")
    assert reply.status_code == 404
    assert b"jsonrpc" not in reply.get_data()


# --- toolsets ------------------------------------------------------------------------------


def test_unknown_toolset_header_is_400(session: McpHttp) -> None:
    reply = session.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"X-MCP-Toolsets": "orders,nope"},
    )
    assert reply.status_code == 400
    assert "'nope'" in error_of(reply)["message"]


def test_toolsets_header_intersects_the_keys_toolsets(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    from orderdesk_mcp.auth import issue_key

    token = issue_key(mcp_tenant.tenant, toolsets="orders,store").token
    http = McpHttp(mcp_app.test_client(), token)
    http.initialize()
    toolsets_of = {tool.name: tool.toolset for tool in all_tools()}
    listed = http.result("tools/list")["tools"]
    assert {toolsets_of[tool["name"]] for tool in listed} == {"orders", "store"}
    narrowed = http.post(
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        headers={"X-MCP-Toolsets": "store,inventory"},
    ).get_json()["result"]["tools"]
    assert {toolsets_of[tool["name"]] for tool in narrowed} == {"store"}
    refused = http.post(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "list_inventory_items"},
        }
    )
    assert error_of(refused)["code"] == -32602
