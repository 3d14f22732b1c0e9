"""Demo seed (deterministic, believable), the --state round trip and the sandbox CLI."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from orderdesk_mcp.sandbox import SandboxStoreSpec, StoreState, build_state, start_sandbox
from orderdesk_mcp.sandbox.cli import is_loopback_host, sandbox_command
from orderdesk_mcp.sandbox.persistence import StateFileError
from orderdesk_mcp.sandbox.seed import apply_seed
from orderdesk_mcp.sandbox.store import folder_ids_for

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seeded(store_id: str = "100001", now: datetime = NOW) -> StoreState:
    store = StoreState(store_id, "sk_seed", clock=lambda: 0.0, wall_clock=lambda: now)
    apply_seed(store, "demo", now)
    return store


def test_demo_seed_is_deterministic() -> None:
    first, second = seeded(), seeded()
    assert first.orders == second.orders
    assert first.inventory == second.inventory
    assert first.history == second.history


def test_demo_seed_is_believable() -> None:
    store = seeded()
    orders = list(store.orders.values())
    assert len(orders) == 300
    assert 55 <= len(store.inventory) <= 65
    assert list(store.folders.values()) == ["New", "Prepared", "Closed", "Canceled"]
    per_folder = Counter(store.folders[order["folder_id"]] for order in orders)
    assert all(per_folder[name] >= 5 for name in store.folders.values())
    sources = Counter(order["source_name"] for order in orders)
    assert {"Shopify", "WooCommerce", "Amazon", "eBay", "Order Desk"} <= set(sources)
    oldest = min(order["date_added"] for order in orders)
    newest = max(order["date_added"] for order in orders)
    assert oldest >= (NOW - timedelta(days=91)).strftime("%Y-%m-%d %H:%M:%S")
    assert newest <= NOW.strftime("%Y-%m-%d %H:%M:%S")
    assert newest >= (NOW - timedelta(days=2)).strftime("%Y-%m-%d")
    codes = {item["code"] for item in store.inventory.values()}
    assert all(item["code"] in codes for order in orders for item in order["order_items"])
    closed = [o for o in orders if store.folders[o["folder_id"]] == "Closed"]
    assert all(order["order_shipments"] for order in closed)
    assert all(not o["order_shipments"] for o in orders if o not in closed)
    assert all(store.history[order["id"]] for order in orders)
    assert len({order["email"] for order in orders}) > 100
    assert all(order["shipping"]["first_name"] and order["shipping"]["city"] for order in orders)


def test_demo_dates_follow_the_clock_at_start() -> None:
    later = seeded(now=NOW + timedelta(days=10))
    base = seeded()
    shifted = [o["date_added"] for o in later.orders.values()]
    original = [o["date_added"] for o in base.orders.values()]
    assert [
        datetime.strptime(a, "%Y-%m-%d %H:%M:%S") - datetime.strptime(b, "%Y-%m-%d %H:%M:%S")
        for a, b in zip(shifted, original, strict=True)
    ] == [timedelta(days=10)] * 300


def test_folder_ids_are_large_and_store_specific() -> None:
    assert min(folder_ids_for("100001")) > 10_000
    assert set(folder_ids_for("100001")).isdisjoint(folder_ids_for("100002"))
    assert folder_ids_for("100001") == folder_ids_for("100001")


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sandbox-state.json"
    spec = SandboxStoreSpec("100001", "sk_state_key_123", seed="empty")
    with start_sandbox([spec], state_file=path) as sb:
        body = {"shipping": {"company": "Kept Co"}, "order_items": [{"name": "Kept"}]}
        created = requests.post(
            f"{sb.base_url}/orders", json=body, headers=sb.headers("100001"), timeout=10
        ).json()["order"]
    saved = path.read_text()
    assert "sk_state_key_123" not in saved
    assert not list(tmp_path.glob(".sandbox-state.json.*"))
    with start_sandbox([spec], state_file=path) as sb:
        again = requests.get(
            f"{sb.base_url}/orders/{created['id']}", headers=sb.headers("100001"), timeout=10
        ).json()["order"]
        assert again == created
        second = requests.post(
            f"{sb.base_url}/orders", json=body, headers=sb.headers("100001"), timeout=10
        ).json()["order"]
        assert int(second["id"]) == int(created["id"]) + 1


def test_a_broken_state_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError, match="delete it to start fresh"):
        build_state([SandboxStoreSpec("100001", "k", "empty")], state_file=path)


def test_store_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="digits"):
        SandboxStoreSpec("abc", "k")
    with pytest.raises(ValueError, match="seed"):
        SandboxStoreSpec("1", "k", seed="huge")
    assert "sk_hidden" not in repr(SandboxStoreSpec("1", "sk_hidden"))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_cli_refuses_non_loopback_host(host: str) -> None:
    result = CliRunner().invoke(sandbox_command, ["--host", host, "--port", "0"])
    assert result.exit_code == 1
    assert "--public" in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_cli_option_rules_and_help() -> None:
    runner = CliRunner()
    half = runner.invoke(sandbox_command, ["--store-id", "100001"])
    assert half.exit_code == 2
    assert "together" in half.output
    bad_rate = runner.invoke(sandbox_command, ["--error-rate", "3"])
    assert bad_rate.exit_code == 2
    help_text = runner.invoke(sandbox_command, ["--help"]).output
    for option in ("--host", "--port", "--seed", "--state", "--public", "--drop-rate"):
        assert option in help_text
    assert "default: 127.0.0.1" in help_text


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("10.1.1.1", False)],
)
def test_loopback_host_check(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
