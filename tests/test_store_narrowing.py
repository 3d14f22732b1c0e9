"""Keys and OAuth grants narrowed to some stores: the call scope, list_stores, the default
store, resources and completions see only those stores; another store of the same tenant
answers exactly as a store that does not exist."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from orderdesk_mcp.auth import AuthError, issue_key, verify_token
from orderdesk_mcp.db.models import ApiKey, Store
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.tenancy import add_store, remove_store
from orderdesk_mcp.vault import Vault
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE, SANDBOX_KEYS, McpTenant
from tests.test_mcp_http import McpHttp, error_of


def store_row_id(tenant: Any, alias: str) -> int:
    return int(Store.get((Store.tenant == tenant) & (Store.alias == alias)).id)


def narrowed_client(app: Flask, tenant: Any, *aliases: str, **options: Any) -> McpHttp:
    ids = frozenset(store_row_id(tenant, alias) for alias in aliases)
    http = McpHttp(app.test_client(), issue_key(tenant, store_ids=ids, **options).token)
    http.initialize()
    return http


def call(http: McpHttp, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return http.result("tools/call", {"name": tool, "arguments": arguments})


def listed(http: McpHttp) -> list[dict[str, Any]]:
    stores: list[dict[str, Any]] = call(http, "list_stores", {})["structuredContent"]["stores"]
    return stores


def test_a_key_narrowed_to_one_store_sees_only_it_as_its_default(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    # "demo" is the tenant's default; this key reaches only "empty".
    http = narrowed_client(mcp_app, mcp_tenant.tenant, "empty")
    assert listed(http) == [{"alias": "empty", "store_id": SANDBOX_EMPTY_STORE, "is_default": True}]
    store = call(http, "get_store", {})
    assert store["isError"] is False
    assert store["structuredContent"]["store"]["id"] == SANDBOX_EMPTY_STORE
    resources = http.result("resources/list")["resources"]
    assert [resource["uri"] for resource in resources] == ["orderdesk://empty/store"]
    completion = http.result(
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "triage_new_orders"},
            "argument": {"name": "store", "value": ""},
        },
    )
    assert set(completion["completion"]["values"]) == {"empty", SANDBOX_EMPTY_STORE}


@pytest.mark.parametrize("ref", ["demo", SANDBOX_DEMO_STORE])
def test_another_store_of_the_tenant_answers_as_an_unknown_store(
    mcp_app: Flask, mcp_tenant: McpTenant, sandbox: RunningSandbox, ref: str
) -> None:
    http = narrowed_client(mcp_app, mcp_tenant.tenant, "empty")
    sandbox.reset_stats()
    result = call(http, "get_store", {"store": ref})
    unknown = call(http, "get_store", {"store": "no-such-store"})
    assert result["isError"] is True
    text = result["content"][0]["text"]
    assert text == unknown["content"][0]["text"].replace("no-such-store", ref)
    offered = text.split("from:")[1]
    assert "demo" not in offered
    assert SANDBOX_DEMO_STORE not in offered
    assert call(http, "list_stores", {"store": ref})["isError"] is True
    reply = http.request("resources/read", {"uri": f"orderdesk://{ref}/store"})
    assert error_of(reply)["code"] == -32002
    assert sandbox.stats(SANDBOX_DEMO_STORE)["served"] == 0


def test_the_tenants_default_stays_the_default_when_allowed(
    mcp_app: Flask, mcp_tenant: McpTenant
) -> None:
    http = narrowed_client(mcp_app, mcp_tenant.tenant, "empty", "demo")
    assert {s["alias"]: s["is_default"] for s in listed(http)} == {"demo": True, "empty": False}
    named = call(http, "list_stores", {"store": SANDBOX_EMPTY_STORE})["structuredContent"]
    assert named["stores"] == [
        {"alias": "empty", "store_id": SANDBOX_EMPTY_STORE, "is_default": False}
    ]


def test_an_unnarrowed_key_still_sees_every_store(mcp_app: Flask, mcp_tenant: McpTenant) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    assert [s["alias"] for s in listed(http)] == ["demo", "empty"]


def test_a_store_id_registered_twice_resolves_to_the_allowed_registration(
    mcp_app: Flask, mcp_tenant: McpTenant, vault: Vault, sandbox: RunningSandbox
) -> None:
    add_store(
        mcp_tenant.tenant,
        store_id=SANDBOX_DEMO_STORE,
        api_key=SANDBOX_KEYS[SANDBOX_DEMO_STORE],
        vault=vault,
        alias="demo-again",
        base_url=sandbox.base_url,
    )
    http = narrowed_client(mcp_app, mcp_tenant.tenant, "demo-again")
    named = call(http, "list_stores", {"store": SANDBOX_DEMO_STORE})["structuredContent"]
    assert named["stores"] == [
        {"alias": "demo-again", "store_id": SANDBOX_DEMO_STORE, "is_default": True}
    ]


def test_removing_its_only_store_leaves_a_narrowed_key_reaching_nothing(
    mcp_app: Flask, mcp_tenant: McpTenant, vault: Vault, sandbox: RunningSandbox
) -> None:
    tenant = mcp_tenant.tenant
    http = narrowed_client(mcp_app, tenant, "empty")
    removed_id = store_row_id(tenant, "empty")
    remove_store(tenant, "empty")
    key = ApiKey.get(ApiKey.store_ids.is_null(False))
    assert key.store_ids == "0"
    # SQLite may give the removed row id to the next store: the key must not reach it.
    added = add_store(
        tenant,
        store_id=SANDBOX_EMPTY_STORE,
        api_key=SANDBOX_KEYS[SANDBOX_EMPTY_STORE],
        vault=vault,
        alias="newer",
        base_url=sandbox.base_url,
    )
    assert added.id >= removed_id
    assert listed(http) == []
    assert call(http, "get_store", {})["isError"] is True


def test_removing_one_of_its_stores_keeps_the_others(mcp_app: Flask, mcp_tenant: McpTenant) -> None:
    tenant = mcp_tenant.tenant
    http = narrowed_client(mcp_app, tenant, "empty", "demo")
    remove_store(tenant, "empty")
    assert [s["alias"] for s in listed(http)] == ["demo"]


def test_a_narrowed_key_carries_its_stores(mcp_tenant: McpTenant) -> None:
    ids = frozenset({store_row_id(mcp_tenant.tenant, "empty")})
    issued = issue_key(mcp_tenant.tenant, store_ids=ids)
    key = verify_token(issued.token)
    assert key is not None
    assert key.store_ids == ids
    with pytest.raises(AuthError, match="at least one store"):
        issue_key(mcp_tenant.tenant, store_ids=frozenset())
