"""Tenant isolation on /mcp: stores, sessions and cached data never cross tenants."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.db.models import AuditEvent
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE, SANDBOX_KEYS
from tests.test_mcp_http import McpHttp, error_of


def register(
    name: str, vault: Vault, sandbox: RunningSandbox, stores: dict[str, tuple[str, str]]
) -> str:
    """A tenant with stores {alias: (store id, api key)}; returns its API key."""
    tenant = create_tenant(name, Vault.new_tenant_salt())
    for alias, (store_id, api_key) in stores.items():
        add_store(
            tenant,
            store_id=store_id,
            api_key=api_key,
            vault=vault,
            alias=alias,
            base_url=sandbox.base_url,
        )
    return issue_key(tenant).token


@pytest.fixture
def two_tenants(mcp_app: Flask, vault: Vault, sandbox: RunningSandbox) -> tuple[McpHttp, McpHttp]:
    """Tenant A owns store 100001 ("a-main"); tenant B owns store 100002 ("b-main")."""
    a = register(
        "tenant-a",
        vault,
        sandbox,
        {"a-main": (SANDBOX_DEMO_STORE, SANDBOX_KEYS[SANDBOX_DEMO_STORE])},
    )
    b = register(
        "tenant-b",
        vault,
        sandbox,
        {"b-main": (SANDBOX_EMPTY_STORE, SANDBOX_KEYS[SANDBOX_EMPTY_STORE])},
    )
    first, second = McpHttp(mcp_app.test_client(), a), McpHttp(mcp_app.test_client(), b)
    first.initialize()
    second.initialize()
    return first, second


def call(http: McpHttp, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return http.result("tools/call", {"name": tool, "arguments": arguments})


def test_a_tenant_sees_only_its_own_stores(two_tenants: tuple[McpHttp, McpHttp]) -> None:
    a, _ = two_tenants
    stores = call(a, "list_stores", {})["structuredContent"]["stores"]
    assert [store["alias"] for store in stores] == ["a-main"]
    resources = a.result("resources/list")["resources"]
    assert [resource["uri"] for resource in resources] == ["orderdesk://a-main/store"]
    completion = a.result(
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "triage_new_orders"},
            "argument": {"name": "store", "value": ""},
        },
    )
    assert set(completion["completion"]["values"]) == {"a-main", SANDBOX_DEMO_STORE}


@pytest.mark.parametrize("ref", ["b-main", SANDBOX_EMPTY_STORE])
def test_a_tenant_cannot_name_another_tenants_store(
    two_tenants: tuple[McpHttp, McpHttp], sandbox: RunningSandbox, ref: str
) -> None:
    a, _ = two_tenants
    sandbox.reset_stats()
    result = call(a, "get_store", {"store": ref})
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert "not one of this tenant's stores" in text
    offered = text.split("from:")[1]
    assert "b-main" not in offered
    assert SANDBOX_EMPTY_STORE not in offered
    reply = a.request("resources/read", {"uri": f"orderdesk://{ref}/store"})
    assert error_of(reply)["code"] == -32002
    assert sandbox.stats(SANDBOX_EMPTY_STORE)["served"] == 0


def test_another_tenants_key_cannot_use_or_end_a_session(
    two_tenants: tuple[McpHttp, McpHttp],
) -> None:
    a, b = two_tenants
    b.session = a.session
    assert b.request("ping").status_code == 404
    assert b.client.delete("/mcp", headers=b.headers()).status_code == 404
    assert a.result("ping") == {}


# Cache keys carry a credential tag (HMAC of store id and API key), so registering someone
# else's store id with a wrong key never reads their cached replies.
def test_cached_replies_are_not_shared_with_a_tenant_holding_a_wrong_key(
    mcp_app: Flask, vault: Vault, sandbox: RunningSandbox
) -> None:
    owner = McpHttp(
        mcp_app.test_client(),
        register(
            "owner",
            vault,
            sandbox,
            {"shop": (SANDBOX_DEMO_STORE, SANDBOX_KEYS[SANDBOX_DEMO_STORE])},
        ),
    )
    # Knows the store id but not its key: must never be served the owner's cached reads.
    intruder = McpHttp(
        mcp_app.test_client(),
        register(
            "intruder", vault, sandbox, {"shop": (SANDBOX_DEMO_STORE, "sk_guessed_wrong_key")}
        ),
    )
    owner.initialize()
    intruder.initialize()
    orders = call(owner, "list_orders", {"limit": 1})["structuredContent"]["orders"]
    order_id = orders[0]["id"]
    assert call(owner, "get_order", {"order_id": order_id})["isError"] is False
    for tool, arguments in (("get_order", {"order_id": order_id}), ("list_orders", {"limit": 1})):
        result = call(intruder, tool, arguments)
        assert result["isError"] is True
        assert "credentials" in result["content"][0]["text"]
        assert "structuredContent" not in result


def test_read_only_key_cannot_write(
    mcp_app: Flask, mcp_tenant: Any, sandbox: RunningSandbox
) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.read_only_token)
    http.initialize()
    names = {tool["name"] for tool in http.result("tools/list")["tools"]}
    assert "list_orders" in names
    assert not names & {"update_order", "delete_order", "move_orders", "create_inventory_item"}
    sandbox.reset_stats()
    for tool, arguments in (
        ("update_order", {"order_id": "1", "changes": {"email": "x@example.com"}}),
        ("delete_order", {"order_id": "1", "dry_run": True}),
        ("move_orders", {"order_ids": ["1"], "folder": "New"}),
    ):
        error = error_of(http.request("tools/call", {"name": tool, "arguments": arguments}))
        assert error["code"] == -32602
        assert "read-only" in error["message"]
    assert sandbox.stats(SANDBOX_DEMO_STORE)["served"] == 0
    assert AuditEvent.select().count() == 0


def test_audit_row_redacts_secret_looking_arguments(mcp_tenant: Any, mcp_app: Flask) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    result = call(http, "list_orders", {"limit": 1, "api_key": "sk_live_do_not_store"})
    assert result["isError"] is True  # not an argument of list_orders
    event = AuditEvent.get()
    assert event.outcome == "invalid_arguments"
    assert "sk_live_do_not_store" not in event.arguments
    assert '"api_key": "[redacted]"' in event.arguments
    assert event.api_key_id is not None
