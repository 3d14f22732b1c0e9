"""The operator command line, through click's runner: output, --json, and bad input."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from orderdesk_mcp.db.models import AuditEvent


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _initialised(run: Any) -> Any:
    assert run("init").exit_code == 0
    return run


def test_init_creates_a_private_key_and_the_schema(run: Any) -> None:
    data = _json(run("init", "--json"))
    key_file = Path(data["master_key_created"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert data["schema_version"] >= 2
    # A second init keeps the key it made.
    again = _json(run("init", "--json"))
    assert again["master_key_created"] is None


def test_tenant_create_prints_the_key_once_as_json(run: Any) -> None:
    _initialised(run)
    data = _json(run("tenant", "create", "acme", "--json"))
    assert data["tenant"] == "acme"
    assert data["api_key"].startswith("odmcp_")
    listed = _json(run("tenant", "list", "--json"))
    assert [t["tenant"] for t in listed["tenants"]] == ["acme"]
    assert data["api_key"] not in run("key", "list").stdout


def test_bad_input_is_one_line_and_exit_1(run: Any) -> None:
    _initialised(run)
    run("tenant", "create", "acme")
    cases = [
        ("tenant", "create", "acme"),  # duplicate
        ("tenant", "create", "bad name!"),
        ("tenant", "disable", "nobody"),
        ("key", "create", "--tenant", "nobody"),
        ("key", "revoke", "ffffffffffff"),
        ("store", "add", "--tenant", "acme", "--store-id", "12ab", "--api-key", "k", "--no-verify"),
        ("store", "list", "--tenant", "nobody"),
        ("store", "remove", "--tenant", "acme", "missing"),
        ("audit", "list", "--since", "yesterday"),
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("Error: "), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.output


def test_usage_errors_exit_2(run: Any) -> None:
    _initialised(run)
    result = run("store", "add", "--tenant", "acme", "--store-id", "1", "--no-verify")
    assert result.exit_code == 2
    assert "exactly one of --api-key-stdin or --api-key" in result.stderr
    assert run("tenant", "frobnicate").exit_code == 2


def test_keys_create_list_revoke(run: Any) -> None:
    _initialised(run)
    run("tenant", "create", "acme")
    created = _json(
        run("key", "create", "--tenant", "acme", "--read-only", "--label", "ci", "--json")
    )
    keys = _json(run("key", "list", "--tenant", "acme", "--json"))["keys"]
    mine = next(k for k in keys if k["key_id"] == created["key_id"])
    assert (mine["scopes"], mine["label"], mine["revoked"]) == ("read", "ci", None)
    assert created["api_key"] not in json.dumps(keys)
    _json(run("key", "revoke", created["key_id"], "--json"))
    keys = _json(run("key", "list", "--json"))["keys"]
    assert next(k for k in keys if k["key_id"] == created["key_id"])["revoked"] is not None


def test_store_add_list_remove_never_prints_the_key(run: Any) -> None:
    _initialised(run)
    run("tenant", "create", "acme")
    secret = "od-secret-key-1234567890"
    added = run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        "555",
        "--api-key-stdin",
        "--alias",
        "main",
        "--no-verify",
        "--json",
        input=secret + "\n",
    )
    assert _json(added)["default"] is True
    second = run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        "556",
        "--api-key",
        "k2k2k2k2",
        "--alias",
        "eu",
        "--default",
        "--no-verify",
    )
    assert second.exit_code == 0, second.output
    duplicate = run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        "557",
        "--api-key",
        "k3",
        "--alias",
        "eu",
        "--no-verify",
    )
    assert duplicate.exit_code == 1
    assert "already has a store with alias 'eu'" in duplicate.stderr
    stores = _json(run("store", "list", "--json"))["stores"]
    assert {(s["alias"], s["default"]) for s in stores} == {("main", False), ("eu", True)}
    for result in (added, second, run("store", "list")):
        assert secret not in result.output
    _json(run("store", "remove", "--tenant", "acme", "eu", "--json"))
    stores = _json(run("store", "list", "--json"))["stores"]
    assert [(s["alias"], s["default"]) for s in stores] == [("main", True)]


def test_db_status_reports_pending_and_upgrade_applies(run: Any) -> None:
    status = _json(run("db", "status", "--json"))
    assert status["schema_version"] == 0
    assert status["pending"]
    refused = run("tenant", "list")
    assert refused.exit_code == 1
    assert "orderdesk-mcp db upgrade" in refused.stderr
    upgraded = _json(run("db", "upgrade", "--json"))
    assert upgraded["applied"] == status["pending"]
    assert _json(run("db", "status", "--json"))["pending"] == []


def test_rotate_master_key(run: Any, tmp_path: Path) -> None:
    _initialised(run)
    run("tenant", "create", "acme")
    run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        "1",
        "--api-key",
        "abcdefgh",
        "--no-verify",
    )
    new_key = tmp_path / "new.key"
    data = _json(run("rotate-master-key", "--new-key-file", str(new_key), "--json"))
    assert (data["stores"], data["created"]) == (1, True)
    assert stat.S_IMODE(new_key.stat().st_mode) == 0o600


def test_audit_list_filters(run: Any) -> None:
    _initialised(run)
    run("tenant", "create", "acme")
    # Events are written by the server; the CLI only reads them.
    from orderdesk_mcp.db.models import Tenant

    AuditEvent.create(tenant=Tenant.get(), action="get_order", store="main", outcome="ok")
    events = _json(run("audit", "list", "--tenant", "acme", "--since", "1h", "--json"))["events"]
    assert [(e["action"], e["tenant"], e["outcome"]) for e in events] == [
        ("get_order", "acme", "ok"),
        ("admin:tenant.create", "acme", "ok"),
    ]
    assert _json(run("audit", "list", "--since", "2999-01-01T00:00:00", "--json"))["events"] == []


def test_bad_setting_stops_with_one_line(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERDESK_MCP_LOG_LEVEL", "LOUD")
    result = run("tenant", "list")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: ORDERDESK_MCP_LOG_LEVEL='LOUD' is not valid")
    assert "Traceback" not in result.output


def test_help_settings_lists_every_variable(run: Any) -> None:
    from orderdesk_mcp.config import SETTINGS

    output = run("--help-settings").stdout
    for spec in SETTINGS:
        assert spec.env in output


def test_python_dash_m_runs_the_same_cli() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "orderdesk_mcp", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "orderdesk-mcp" in result.stdout


def test_serve_refuses_a_pending_migration(run: Any) -> None:
    from orderdesk_mcp.vault import generate_master_key, write_key_file

    run.data_dir.mkdir(mode=0o700)
    write_key_file(run.data_dir / "master.key", generate_master_key())
    result = run("serve", "--port", "0")
    assert result.exit_code == 1
    assert "run `orderdesk-mcp db upgrade` first" in result.stderr


def test_demo_needs_a_real_port_for_its_oauth_urls(run: Any) -> None:
    # The issuer and resource URLs name the port before the server binds it.
    result = run("demo", "--port", "0")
    assert result.exit_code == 2
    assert "--port" in result.stderr


def test_store_add_and_verify_call_order_desk(run: Any, sandbox: Any) -> None:
    from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_KEYS

    _initialised(run)
    run("tenant", "create", "acme")
    wrong = run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        SANDBOX_DEMO_STORE,
        "--api-key",
        "wrong-key-123",
        "--base-url",
        sandbox.base_url,
    )
    assert wrong.exit_code == 1
    assert "Order Desk refused the credentials" in wrong.stderr
    assert "wrong-key-123" not in wrong.output
    added = run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        SANDBOX_DEMO_STORE,
        "--api-key-stdin",
        "--base-url",
        sandbox.base_url,
        "--alias",
        "demo",
        "--json",
        input=SANDBOX_KEYS[SANDBOX_DEMO_STORE] + "\n",
    )
    assert _json(added)["last_verified"] is not None
    verified = _json(run("store", "verify", "--tenant", "acme", "demo", "--json"))
    assert verified == {"store": "demo", "ok": True}


def test_a_database_url_without_its_driver_is_one_line(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERDESK_MCP_DATABASE_URL", "postgresql://odmcp@127.0.0.1:1/odmcp")
    result = run("db", "status")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot open the database")
    assert "ORDERDESK_MCP_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.output


def test_a_database_newer_than_this_release_is_refused(run: Any) -> None:
    from orderdesk_mcp.db.connection import database
    from orderdesk_mcp.db.migrations import LATEST_VERSION
    from orderdesk_mcp.db.models import SchemaVersion

    _initialised(run)
    with database.bind_ctx([SchemaVersion]):
        SchemaVersion.create(version=LATEST_VERSION + 1, name="from_the_future")
    result = run("tenant", "list")
    assert result.exit_code == 1
    assert "newer than this release" in result.stderr


def test_store_add_explains_a_bad_base_url_and_an_unreachable_order_desk(run: Any) -> None:
    _initialised(run)
    run("tenant", "create", "acme")
    bad = run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        "1",
        "--api-key",
        "k",
        "--base-url",
        "http://orderdesk.example/api/v2",
    )
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: --base-url 'http://orderdesk.example/api/v2' is not valid")
    closed_port = "http://127.0.0.1:9/api/v2"
    unreachable = run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        "1",
        "--api-key",
        "k",
        "--base-url",
        closed_port,
    )
    assert unreachable.exit_code == 1
    assert "could not check store 1 with Order Desk" in unreachable.stderr
    assert "refused the credentials" not in unreachable.stderr


def test_operator_actions_are_audited_without_secrets(run: Any) -> None:
    _initialised(run)
    created = _json(run("tenant", "create", "acme", "--json"))
    secret = "od-secret-key-abcdef123456"
    run(
        "store",
        "add",
        "--tenant",
        "acme",
        "--store-id",
        "42",
        "--api-key-stdin",
        "--alias",
        "main",
        "--no-verify",
        input=secret + "\n",
    )
    key = _json(run("key", "create", "--tenant", "acme", "--json"))
    run("key", "revoke", key["key_id"])
    run("store", "remove", "--tenant", "acme", "main")
    run("tenant", "disable", "acme")
    listed = run("audit", "list", "--json")
    events = _json(listed)["events"]
    assert [e["action"] for e in reversed(events)] == [
        "admin:tenant.create",
        "admin:store.add",
        "admin:key.create",
        "admin:key.revoke",
        "admin:store.remove",
        "admin:tenant.disable",
    ]
    assert all(e["arguments"]["by"] for e in events)
    assert secret not in listed.stdout
    assert created["api_key"] not in listed.stdout
    assert key["api_key"] not in listed.stdout


def test_tables_escape_control_and_format_characters() -> None:
    from orderdesk_mcp.cli.base import table

    shown = table([{"label": "ok\x1b[31m\x9b\u202eevil\u2028"}], ["label"])
    assert shown.splitlines()[1] == "ok\\x1b[31m\\x9b\\u202eevil\\u2028"


def test_store_set_key_tests_first_and_store_default_switches(run: Any, sandbox: Any) -> None:
    # The operator's counterparts of the tenant pages' "Replace key" and "Make default".
    from orderdesk_mcp.db.models import AuditEvent
    from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE, SANDBOX_KEYS

    _initialised(run)
    run("tenant", "create", "acme")
    for store_id, alias in ((SANDBOX_DEMO_STORE, "demo"), (SANDBOX_EMPTY_STORE, "empty")):
        added = run(
            "store", "add", "--tenant", "acme", "--store-id", store_id, "--api-key-stdin",
            "--base-url", sandbox.base_url, "--alias", alias,
            input=SANDBOX_KEYS[store_id] + "\n",
        )  # fmt: skip
        assert added.exit_code == 0, added.output
    wrong = run(
        "store", "set-key", "--tenant", "acme", "demo", "--api-key-stdin",
        input="wrong-key-123\n",
    )  # fmt: skip
    assert wrong.exit_code == 1
    assert "the old API key is kept" in wrong.stderr
    assert "wrong-key-123" not in wrong.output
    assert _json(run("store", "verify", "--tenant", "acme", "demo", "--json"))["ok"] is True
    right = run(
        "store", "set-key", "--tenant", "acme", "demo", "--api-key-stdin", "--json",
        input=SANDBOX_KEYS[SANDBOX_DEMO_STORE] + "\n",
    )  # fmt: skip
    assert _json(right) == {"store": "demo", "ok": True}
    assert _json(run("store", "default", "--tenant", "acme", "empty", "--json")) == {
        "default": "empty"
    }
    listed = {
        row["alias"]: row["default"] for row in _json(run("store", "list", "--json"))["stores"]
    }
    assert listed == {"demo": False, "empty": True}
    assert run("store", "default", "--tenant", "acme", "nope").exit_code == 1
    actions = {row.action for row in AuditEvent.select()}
    assert {"admin:store.set_key", "admin:store.default"} <= actions
    assert not any(
        "wrong-key-123" in row.arguments or SANDBOX_KEYS[SANDBOX_DEMO_STORE] in row.arguments
        for row in AuditEvent.select()
    )
