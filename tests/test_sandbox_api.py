"""The sandbox's Order Desk API over real HTTP: envelopes, quirks, writes and errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE

DEMO = SANDBOX_DEMO_STORE
EMPTY = SANDBOX_EMPTY_STORE


def call(
    sb: RunningSandbox, method: str, path: str, store: str = DEMO, **kwargs: Any
) -> requests.Response:
    headers = {**sb.headers(store), **kwargs.pop("headers", {})}
    return requests.request(method, f"{sb.base_url}{path}", headers=headers, timeout=10, **kwargs)


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "success"
    assert response.headers["Content-Type"].startswith("application/json")
    return body


def error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["message"]
    message: str = body["message"]
    return message


SAMPLE_ORDER: dict[str, Any] = {
    "source_id": "SAMPLE-1",
    "source_name": "Shopify",
    "email": "jane@example.com",
    "shipping_total": 11.17,
    "handling_total": 0.5,
    "tax_total": 1.2,
    "discount_list": [{"name": "Spring", "code": "SPRING", "amount": "1.70"}],
    "shipping": {"first_name": "Jane", "last_name": "Doe", "address1": "1 Main St"},
    "order_items": [
        {"name": "Widget", "code": "W-1", "price": 2.5, "quantity": 2, "weight": 0.25},
        {"name": "Gadget", "code": "G-1", "price": 5, "quantity": 1, "weight": 1.875},
    ],
}


def create(sb: RunningSandbox, body: dict[str, Any] | None = None, store: str = EMPTY) -> Any:
    return ok(call(sb, "POST", "/orders", store, json=body or SAMPLE_ORDER))["order"]


def test_connection_test_reports_utc_time_and_tokens(sandbox: RunningSandbox) -> None:
    response = call(sandbox, "GET", "/test")
    body = ok(response)
    assert body["message"] == "Connection Successful"
    assert len(body["current_date_time"]) == 19
    assert body["execution_time"].endswith(" seconds")
    assert response.headers["X-Tokens-Remaining"] == "19"


def test_create_order_computes_totals_like_the_docs_sample(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    assert isinstance(order["id"], str)
    assert order["product_total"] == 10
    assert order["quantity_total"] == 3
    assert order["weight_total"] == 2.375
    assert order["discount_total"] == 1.7
    assert order["order_total"] == 21.17
    assert order["processor_balance"] == 21.17
    assert order["payment_status"] == "Captured"
    assert order["discount_list"][0]["amount"] == "1.70"
    assert order["email_count"] == "1"
    assert order["checkout_data"] == []
    assert order["order_metadata"] == []
    assert order["order_items"][0]["variation_list"] == []
    assert all(isinstance(item["id"], str) for item in order["order_items"])
    # The customer address is copied from the only address given.
    assert order["customer"]["last_name"] == "Doe"
    assert "address3" not in order["customer"]
    first_folder = int(next(iter(ok(call(sandbox, "GET", "/store", EMPTY))["store"]["folders"])))
    assert order["folder_id"] == first_folder
    assert isinstance(order["folder_id"], int)


def test_order_defaults_and_flattened_names(sandbox: RunningSandbox) -> None:
    order = create(
        sandbox,
        {
            "customer_company": "Acme",
            "shipping_city": "Austin",
            "cc_number": "4242424242424242",
            "order_items": [{"name": "x"}],
        },
    )
    assert order["source_name"] == "Order Desk"
    assert order["source_id"] == order["id"]
    assert order["customer"]["company"] == "Acme"
    assert order["shipping"]["city"] == "Austin"
    assert order["cc_number_masked"] == "xxxxxxxxxxxx4242"
    assert "cc_number" not in order
    assert order["order_items"][0]["quantity"] == 1
    assert order["order_items"][0]["price"] == 0


def test_get_order_and_unknown_ids(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    got = ok(call(sandbox, "GET", f"/orders/{order['id']}", EMPTY))["order"]
    assert got == order
    assert "Order 999" in error(call(sandbox, "GET", "/orders/999", EMPTY), 404)
    # Stores are isolated: the demo store does not see the empty store's new order.
    other = call(sandbox, "GET", f"/orders/{order['id']}", DEMO)
    assert other.status_code == 404 or other.json()["order"]["source_id"] != "SAMPLE-1"


def test_put_order_is_a_full_replacement(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    kept, dropped = order["order_items"]
    body = {
        "shipping": {"first_name": "Janet", "last_name": "Doe"},
        "order_items": [
            {**kept, "quantity": 4},
            {"name": "New line", "code": "N-1", "price": 1, "quantity": 1},
        ],
        "folder_id": 1,
    }
    updated = ok(call(sandbox, "PUT", f"/orders/{order['id']}", EMPTY, json=body))["order"]
    ids = [item["id"] for item in updated["order_items"]]
    assert ids[0] == kept["id"]
    assert dropped["id"] not in ids
    assert len(ids) == 2
    assert updated["order_items"][0]["quantity"] == 4
    assert updated["product_total"] == 11
    # Fields left out are blanked; the folder stays (moves go through /move-orders).
    assert updated["email"] == ""
    assert updated["shipping_total"] == 0
    assert updated["discount_list"] == []
    assert updated["order_total"] == 11
    assert updated["folder_id"] == order["folder_id"]
    assert updated["source_id"] == order["id"]
    assert updated["date_added"] == order["date_added"]
    assert updated["date_updated"] >= order["date_updated"]


def test_method_override_header_turns_post_into_put(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    body = {**SAMPLE_ORDER, "email": "override@example.com"}
    response = call(
        sandbox,
        "POST",
        f"/orders/{order['id']}",
        EMPTY,
        json=body,
        headers={"X-HTTP-Method-Override": "PUT"},
    )
    assert ok(response)["order"]["email"] == "override@example.com"


def test_duplicate_order_is_refused_and_names_the_existing_one(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    message = error(call(sandbox, "POST", "/orders", EMPTY, json=SAMPLE_ORDER), 400)
    assert order["id"] in message
    assert "Duplicate" in message


def test_delete_order(sandbox: RunningSandbox) -> None:
    order = create(sandbox)
    body = ok(call(sandbox, "DELETE", f"/orders/{order['id']}", EMPTY))
    assert body["message"] == f"Order {order['id']} Deleted"
    error(call(sandbox, "GET", f"/orders/{order['id']}", EMPTY), 404)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([1, 2], "JSON object"),
        ({"shipping": {"first_name": "A"}}, "order_items"),
        ({"order_items": [{"name": "x"}]}, "first name"),
        ({**SAMPLE_ORDER, "source_id": "T-2", "shipping_total": "lots"}, "shipping_total"),
        ({**SAMPLE_ORDER, "source_id": "T-3", "order_items": [{"price": 1}]}, "name or a code"),
        ({**SAMPLE_ORDER, "source_id": "T-4", "payment_status": "Paid"}, "payment_status"),
        ({**SAMPLE_ORDER, "source_id": "T-5", "folder_id": 12}, "folder_id"),
        ({**SAMPLE_ORDER, "source_id": "T-6", "checkout_data": "x"}, "checkout_data"),
    ],
)
def test_invalid_order_bodies_are_400_with_a_reason(
    sandbox: RunningSandbox, body: Any, needle: str
) -> None:
    assert needle in error(call(sandbox, "POST", "/orders", EMPTY, json=body), 400)


def test_malformed_json_and_empty_body_are_400(sandbox: RunningSandbox) -> None:
    headers = {"Content-Type": "application/json"}
    bad = call(sandbox, "POST", "/orders", EMPTY, data=b"{nope", headers=headers)
    assert "not valid JSON" in error(bad, 400)
    assert "empty" in error(call(sandbox, "POST", "/orders", EMPTY, data=b""), 400)


def test_bad_credentials_are_401_and_cost_no_token(sandbox: RunningSandbox) -> None:
    url = f"{sandbox.base_url}/test"
    wrong = {"ORDERDESK-STORE-ID": DEMO, "ORDERDESK-API-KEY": "sk_wrong"}
    assert "Invalid" in error(requests.get(url, headers=wrong, timeout=10), 401)
    unknown = {"ORDERDESK-STORE-ID": "999999", "ORDERDESK-API-KEY": "x"}
    assert "Invalid" in error(requests.get(url, headers=unknown, timeout=10), 401)
    assert "Missing" in error(requests.get(url, timeout=10), 401)
    assert sandbox.stats(DEMO)["served"] == 0


def test_patch_and_unknown_paths_are_json_errors(sandbox: RunningSandbox) -> None:
    patched = call(sandbox, "PATCH", "/orders/1000001", json={"email": "x"})
    assert "PATCH" in error(patched, 405)
    error(call(sandbox, "GET", "/folders"), 404)
    root = requests.get(sandbox.base_url.removesuffix("/api/v2") + "/", timeout=10)
    error(root, 404)
    error(call(sandbox, "DELETE", "/store"), 405)
    error(call(sandbox, "OPTIONS", "/orders"), 405)


def test_store_settings_and_folders(sandbox: RunningSandbox) -> None:
    store = ok(call(sandbox, "GET", "/store"))["store"]
    assert store["id"] == DEMO
    assert list(store["folders"].values()) == ["New", "Prepared", "Closed", "Canceled"]
    assert all(int(folder_id) > 10_000 for folder_id in store["folders"])
    assert "api_key" not in store["settings"]
    assert "smtp_password" not in store["settings"]
    assert store["settings"]["timezone"]
    other = ok(call(sandbox, "GET", "/store", EMPTY))["store"]
    assert set(other["folders"]).isdisjoint(store["folders"])


def test_put_of_what_get_returned_changes_only_date_updated_and_the_card(
    sandbox: RunningSandbox,
) -> None:
    for order_id in ("1000001", "1000150", "1000300"):
        before = ok(call(sandbox, "GET", f"/orders/{order_id}"))["order"]
        after = ok(call(sandbox, "PUT", f"/orders/{order_id}", json=before))["order"]
        changed = {key for key in before if before[key] != after[key]}
        # cc_number_masked is read-only: without cc_number the card is blanked
        # (ORDER_CARD_READ_ONLY_MASK); sent as cc_number with its last four digits, it stays.
        assert changed <= {"date_updated", "cc_number_masked"}
        assert after["cc_number_masked"] == ""
        card = {**before, "cc_number": before["cc_number_masked"][-4:]}
        kept = ok(call(sandbox, "PUT", f"/orders/{order_id}", json=card))["order"]
        assert kept["cc_number_masked"] == before["cc_number_masked"]


def test_put_without_items_keeps_them_and_an_empty_list_is_refused(
    sandbox: RunningSandbox,
) -> None:
    order = create(sandbox)
    body = {key: value for key, value in SAMPLE_ORDER.items() if key != "order_items"}
    kept = ok(call(sandbox, "PUT", f"/orders/{order['id']}", EMPTY, json=body))["order"]
    assert kept["order_items"] == order["order_items"]
    emptied = call(
        sandbox, "PUT", f"/orders/{order['id']}", EMPTY, json={**body, "order_items": []}
    )
    assert "at least one" in error(emptied, 400)
    foreign = {**body, "order_items": [{"id": "1", "name": "x"}]}
    assert "not on order" in error(
        call(sandbox, "PUT", f"/orders/{order['id']}", EMPTY, json=foreign), 400
    )
