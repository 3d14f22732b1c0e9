"""Abuse the transport the way a hostile or buggy client would; nothing gets through."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import AuditEvent
from orderdesk_mcp.mcp.protocol import MAX_BATCH_MESSAGES, MAX_JSON_DEPTH, json_depth_exceeds
from orderdesk_mcp.mcp.stdio import StdioSession
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault
from tests.conftest import SANDBOX_DEMO_STORE, McpTenant, make_mcp_app
from tests.test_mcp_http import McpHttp, error_of


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"x": value}
    return value


def test_depth_check_counts_levels() -> None:
    assert not json_depth_exceeds(_nested(MAX_JSON_DEPTH - 1))
    assert json_depth_exceeds(_nested(MAX_JSON_DEPTH + 1))
    assert not json_depth_exceeds([[1], {"a": [2]}])


def test_deeply_nested_arguments_are_refused_before_any_write(
    mcp_app: Flask, mcp_tenant: McpTenant, sandbox: RunningSandbox
) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    before = sandbox.stats(SANDBOX_DEMO_STORE)["served"]
    order = {
        "shipping": {"first_name": "Deep", "last_name": "Nest"},
        "order_items": [{"name": "x", "price": 1, "quantity": 1}],
        "order_metadata": _nested(700),
    }
    reply = http.post(
        {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "create_order", "arguments": {"order": order}},
        }
    )
    assert reply.status_code == 400
    assert "deeper than" in error_of(reply)["message"]
    assert sandbox.stats(SANDBOX_DEMO_STORE)["served"] == before


def test_pathologically_deep_json_is_a_parse_error_not_a_500(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    reply = http.post(None, raw=b"[" * 200_000)
    assert reply.status_code == 400
    assert error_of(reply)["code"] in (-32700, -32600)


def test_stdio_survives_deep_json_and_answers_the_next_line(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    from orderdesk_mcp.mcp import blueprint

    state = blueprint.state(mcp_app)
    caller = state.access.authenticate(mcp_tenant.token)
    assert caller is not None
    stdio = StdioSession(state.dispatcher, state.access, caller)
    deep = stdio.handle_line("[" * 200_000)
    assert deep is not None
    assert json.loads(deep)["error"]["code"] in (-32700, -32600)


def test_batches_are_capped_and_each_message_counts_against_the_key_limit(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="4/minute"), db, vault)
    http = McpHttp(app.test_client(), mcp_tenant.token)
    http.initialize("2025-03-26")  # protocol requests, not calls
    too_many = [
        {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "list_stores"}}
        for n in range(MAX_BATCH_MESSAGES + 1)
    ]
    reply = http.post(too_many)
    assert reply.status_code == 400
    assert f"at most {MAX_BATCH_MESSAGES}" in error_of(reply)["message"]
    replies = http.post(
        [*too_many[:3], {"jsonrpc": "2.0", "id": 99, "method": "ping"}, *too_many[:2]]
    )
    assert replies.status_code == 200
    outcomes = [("result" in item, "error" in item) for item in replies.get_json()]
    # The refused batch used one call of the four; this batch's first three calls fit, the
    # ping goes to the protocol bucket, and the last two calls are refused.
    assert outcomes[:4] == [(True, False)] * 4
    assert outcomes[4:] == [(False, True)] * 2


def test_failed_logins_from_an_address_never_lock_out_a_valid_key(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    attacker = McpHttp(mcp_app.test_client(), "odmcp_000000000000_" + "C" * 43)
    for _ in range(25):
        attacker.request("ping")
    assert attacker.request("ping").status_code == 429
    owner = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    owner.initialize()
    assert owner.result("ping") == {}


def test_resources_follow_the_keys_toolsets_and_are_audited(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    narrowed = issue_key(mcp_tenant.tenant, read_only=True, toolsets="store").token
    http = McpHttp(mcp_app.test_client(), narrowed)
    http.initialize()
    reply = http.request("resources/read", {"uri": "orderdesk://demo/orders/1000300"})
    error = error_of(reply)
    assert error["code"] == -32002
    assert "'orders' toolset" in error["message"]
    assert http.result("resources/templates/list")["resourceTemplates"] == []
    assert [r["uri"] for r in http.result("resources/list")["resources"]] == [
        "orderdesk://demo/store",
        "orderdesk://empty/store",
    ]
    store = http.result("resources/read", {"uri": "orderdesk://demo/store"})
    assert store["contents"][0]["mimeType"] == "application/json"
    audited = [(e.action, e.outcome) for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert audited == [
        ("resources/read orderdesk://demo/orders/1000300", "not_found"),
        ("resources/read orderdesk://demo/store", "ok"),
    ]


def test_folder_completion_needs_a_toolset_that_reads_stores(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    narrowed = issue_key(mcp_tenant.tenant, toolsets="inventory").token
    http = McpHttp(mcp_app.test_client(), narrowed)
    http.initialize()
    completed = http.result(
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "triage_new_orders"},
            "argument": {"name": "folder", "value": ""},
        },
    )
    assert completed["completion"]["values"] == []


def test_a_session_is_bound_to_the_key_that_opened_it(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    opener = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    opener.initialize()
    same_tenant_other_key = McpHttp(mcp_app.test_client(), mcp_tenant.read_only_token)
    same_tenant_other_key.session = opener.session
    assert same_tenant_other_key.request("ping").status_code == 404
    assert opener.result("ping") == {}


def test_ended_and_expired_sessions_are_pruned(mcp_app: Flask, mcp_tenant: McpTenant) -> None:
    import datetime as dt

    from orderdesk_mcp.db.models import McpSession, utcnow
    from orderdesk_mcp.mcp.sessions import DatabaseSessionStore

    live = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    live.initialize()
    # Another key: opening a session deletes the opening key's own ended rows at once.
    ended = McpHttp(mcp_app.test_client(), mcp_tenant.read_only_token)
    ended.initialize()
    ended.client.delete("/mcp", headers=ended.headers())
    idle = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    idle.initialize()
    McpSession.update(last_seen=utcnow() - dt.timedelta(days=30)).where(
        McpSession.ended.is_null() & (McpSession.id != _row_id(live.session))
    ).execute()
    assert DatabaseSessionStore(3600).prune(utcnow()) == 2
    assert [row.id for row in McpSession.select()] == [_row_id(live.session)]
    assert live.result("ping") == {}


def _row_id(session_id: str | None) -> str:
    from orderdesk_mcp.mcp.sessions import hash_session_id

    assert session_id is not None
    return hash_session_id(session_id)


def test_an_overlong_resource_uri_is_refused_before_it_is_audited(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    uri = "orderdesk://demo/orders/" + "1" * 100_000
    reply = http.request("resources/read", {"uri": uri})
    error = error_of(reply)
    assert error["code"] == -32602
    assert len(reply.get_data()) < 1000
    assert AuditEvent.select().count() == 0


def test_rate_limited_notifications_in_a_batch_get_no_reply(
    settings: Settings, db: Any, vault: Vault, mcp_tenant: McpTenant
) -> None:
    app = make_mcp_app(settings.replace(rate_limit="4/minute"), db, vault)
    http = McpHttp(app.test_client(), mcp_tenant.token)
    http.initialize("2025-03-26")
    notes = [
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": n}}
        for n in range(5)
    ]
    assert http.post(notes).status_code == 202


def test_each_batch_message_gets_the_whole_depth_limit(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize("2025-03-26")
    deep_params = {"meta": _nested(MAX_JSON_DEPTH - 2)}  # exactly at the limit
    alone = http.post({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": deep_params})
    in_batch = http.post([{"jsonrpc": "2.0", "id": 2, "method": "ping", "params": deep_params}])
    assert alone.status_code == 200
    assert in_batch.status_code == 200


def test_an_empty_toolsets_header_is_refused(mcp_app: Flask, mcp_tenant: McpTenant) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    reply = http.post(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers={"X-MCP-Toolsets": " , "}
    )
    assert reply.status_code == 400
    assert "names no toolset" in error_of(reply)["message"]
