"""A wrong master key stops start-up; a damaged store row stops only that store; rotation
waits for the server to stop and re-seals the canary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import peewee
import pytest
from click.testing import CliRunner, Result
from flask import Flask

from orderdesk_mcp.backup import hold_server_lock
from orderdesk_mcp.cli import cli
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.db.models import AuditEvent, Store, Tenant, VaultCanary
from orderdesk_mcp.tenancy import add_store, create_tenant, open_store_key
from orderdesk_mcp.vault import Vault, encode_master_key, generate_master_key, read_key_file
from tests.conftest import McpTenant, settings_env
from tests.test_backup import serving
from tests.test_mcp_http import McpHttp

ROOT = Path(__file__).resolve().parent.parent
STORE_KEY = "sk_live_do_not_print_me_123"


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the CLI runs with: the settings' data dir (key A in master.key)."""
    for name in list(os.environ):
        if name.startswith("ORDERDESK_"):
            monkeypatch.delenv(name)
    # Port 0: no health probe of whatever may listen on 8080 on this machine.
    return {
        **settings_env(settings),
        "ORDERDESK_MCP_LOG_FORMAT": "text",
        "ORDERDESK_MCP_PORT": "0",
    }


def _invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def _wrong_key_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "ORDERDESK_MCP_MASTER_KEY": encode_master_key(generate_master_key())}


def _one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0]


def _store_with_key(vault: Vault) -> Store:
    tenant = create_tenant("acme", Vault.new_tenant_salt())
    return add_store(tenant, store_id="1001", api_key=STORE_KEY, vault=vault, alias="main")


# --- start-up -------------------------------------------------------------------------------


def test_existing_install_gets_a_canary_and_a_wrong_key_is_refused(
    settings: Settings, vault: Vault, cli_env: dict[str, str]
) -> None:
    # A database of the previous release: schema version 2, a store, no canary.
    database = open_database(settings)
    apply_migrations(database, target=2)
    tenant_salt = Vault.new_tenant_salt()
    p = database.param  # '?' on SQLite, '%s' on PostgreSQL
    database.execute_sql(
        f"INSERT INTO tenant (name, kdf_salt, created, disabled) VALUES ({p}, {p}, {p}, {p})",  # noqa: S608
        ("acme", tenant_salt, "2026-01-01 00:00:00", False),
    )
    sealed = vault.seal(STORE_KEY, tenant_salt=tenant_salt, tenant_id=1, store_row_id=1)
    database.execute_sql(
        "INSERT INTO store (tenant_id, alias, store_id, sealed_api_key, is_default, created) "  # noqa: S608
        f"VALUES (1, 'main', '1001', {p}, {p}, '2026-01-01 00:00:00')",
        (sealed, True),
    )
    database.close()

    # The wrong key opens none of the store keys: no canary is written for it.
    refused = _invoke(_wrong_key_env(cli_env), "db", "upgrade")
    _one_line_error(refused, "opens none of the stored Order Desk keys", "MASTER_KEY_FILE")
    assert STORE_KEY not in refused.output
    assert VaultCanary.select().count() == 0

    upgraded = _invoke(cli_env, "db", "upgrade", "--json")
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(upgraded.output)["master_key_canary"] == "written"
    assert _invoke(cli_env, "init", "--json").exit_code == 0
    assert json.loads(_invoke(cli_env, "init", "--json").output)["master_key_canary"] == "ok"

    for args in (("init",), ("db", "upgrade"), ("store", "verify", "--tenant", "acme")):
        _one_line_error(
            _invoke(_wrong_key_env(cli_env), *args), "does not open this database's key canary"
        )


def test_serve_refuses_to_start_with_the_wrong_master_key(
    settings: Settings, vault: Vault, cli_env: dict[str, str]
) -> None:
    assert _invoke(cli_env, "init").exit_code == 0
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        **_wrong_key_env(cli_env),
    }
    # The timeout only guards against a server that starts anyway (it would serve forever).
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "orderdesk_mcp", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    assert "does not open this database's key canary" in errors[0]
    assert "ORDERDESK_MCP_MASTER_KEY_FILE" in errors[0]
    assert env["ORDERDESK_MCP_MASTER_KEY"] not in done.stderr + done.stdout


# --- one damaged store row ------------------------------------------------------------------


@pytest.fixture
def damaged_empty_store(mcp_tenant: McpTenant) -> None:
    """The tenant's "empty" store row with its sealed key damaged (one byte flipped)."""
    row = Store.get((Store.tenant == mcp_tenant.tenant) & (Store.alias == "empty"))
    sealed = bytearray(row.sealed_api_key)
    sealed[-1] ^= 0xFF
    Store.update(sealed_api_key=bytes(sealed)).where(Store.id == row.id).execute()


def _call(http: McpHttp, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    reply = http.request("tools/call", {"name": tool, "arguments": arguments})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    body: dict[str, Any] = reply.get_json()
    assert "result" in body, body  # not a JSON-RPC error (-32603)
    result: dict[str, Any] = body["result"]
    return result


def test_a_store_whose_key_does_not_open_gets_a_clear_tool_error(
    mcp_app: Flask, mcp_tenant: McpTenant, damaged_empty_store: None
) -> None:
    http = McpHttp(mcp_app.test_client(), mcp_tenant.token)
    http.initialize()
    broken = _call(http, "test_connection", {"store": "empty"})
    assert broken["isError"] is True
    text = broken["content"][0]["text"]
    assert "Store 'empty'" in text
    assert "orderdesk-mcp store verify" in text
    assert "add it again" in text
    # The other store still works.
    assert _call(http, "test_connection", {"store": "demo"})["isError"] is False
    outcomes = [e.outcome for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert outcomes[-2:] == ["store_key_unreadable", "ok"]


def test_store_verify_names_the_fix_for_a_damaged_row(
    db: peewee.Database, vault: Vault, cli_env: dict[str, str]
) -> None:
    store = _store_with_key(vault)
    assert _invoke(cli_env, "init").exit_code == 0  # the canary, while the row is good
    Store.update(sealed_api_key=b"\x01" + b"\x00" * 60).where(Store.id == store.id).execute()
    result = _invoke(cli_env, "store", "verify", "--tenant", "acme", "main")
    _one_line_error(result, "cannot be opened", "store remove --tenant acme main", "store add")


# --- rotation -------------------------------------------------------------------------------


def test_rotation_refuses_while_the_server_lock_is_held(
    settings: Settings, db: peewee.Database, vault: Vault, cli_env: dict[str, str], tmp_path: Path
) -> None:
    store = _store_with_key(vault)
    new_key = tmp_path / "new.key"
    with hold_server_lock(settings.data_dir):
        refused = _invoke(cli_env, "rotate-master-key", "--new-key-file", str(new_key))
    _one_line_error(refused, "refusing to rotate the master key while the server runs")
    assert not new_key.exists()
    assert open_store_key(Store.get_by_id(store.id), vault) == STORE_KEY


def test_rotation_reseals_the_canary_and_the_old_key_is_then_refused(
    settings: Settings, vault: Vault, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert _invoke(cli_env, "init").exit_code == 0
    store = _store_with_key(vault)
    new_key = tmp_path / "new.key"
    rotated = _invoke(cli_env, "rotate-master-key", "--new-key-file", str(new_key), "--json")
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["stores"] == 1
    assert STORE_KEY not in rotated.output

    new = Vault(read_key_file(new_key))
    canary = VaultCanary.get().sealed
    assert new.opens_canary(canary)
    assert not vault.opens_canary(canary)
    assert open_store_key(Store.get_by_id(store.id), new) == STORE_KEY
    # The old key (still in master.key) is now refused; the new one is accepted.
    _one_line_error(_invoke(cli_env, "init"), "does not open this database's key canary")
    with_new = {**cli_env, "ORDERDESK_MCP_MASTER_KEY_FILE": str(new_key)}
    assert (
        json.loads(_invoke(with_new, "db", "upgrade", "--json").output)["master_key_canary"] == "ok"
    )
    assert Tenant.select().count() == 1


def test_rotation_refuses_while_orderdesk_mcp_serve_runs(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert _invoke(cli_env, "init").exit_code == 0
    new_key = tmp_path / "new.key"
    with serving(settings, tmp_path):
        refused = _invoke(cli_env, "rotate-master-key", "--new-key-file", str(new_key))
        _one_line_error(refused, "refusing to rotate the master key", "server.lock")
    assert not new_key.exists()
    rotated = _invoke(cli_env, "rotate-master-key", "--new-key-file", str(new_key))
    assert rotated.exit_code == 0, rotated.output
