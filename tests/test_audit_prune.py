"""`audit prune`: old tool-call rows go in batches, operator actions stay, cron runs it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner

from orderdesk_mcp.cli import cli
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import AuditEvent, utcnow
from orderdesk_mcp.mcp.audit import prune_audit_events
from tests.conftest import settings_env
from tests.test_backup import ROOT, _backup_script_env


def _add_events(count: int, age: dt.timedelta, action: str = "tools/call get_order") -> None:
    when = utcnow() - age
    rows = [{"time": when, "action": action, "outcome": "ok"} for _ in range(count)]
    with AuditEvent._meta.database.atomic():
        for start in range(0, len(rows), 500):
            AuditEvent.insert_many(rows[start : start + 500]).execute()


def _actions() -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in AuditEvent.select():
        counts[event.action] = counts.get(event.action, 0) + 1
    return counts


def test_prune_deletes_old_tool_calls_in_batches_and_keeps_operator_actions(
    db: peewee.Database,
) -> None:
    _add_events(2500, dt.timedelta(days=100))
    _add_events(7, dt.timedelta(days=10))
    _add_events(3, dt.timedelta(days=400), action="admin:store.add")
    result = prune_audit_events(utcnow() - dt.timedelta(days=90), batch_rows=1000)
    assert (result.deleted, result.batches, result.admin_rows_kept) == (2500, 3, 3)
    assert _actions() == {"tools/call get_order": 7, "admin:store.add": 3}
    # Nothing left to do: a second run deletes nothing.
    assert prune_audit_events(utcnow() - dt.timedelta(days=90)).deleted == 0


@pytest.fixture
def runner(settings: Settings, db: peewee.Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_audit_prune_command_uses_the_retention_setting(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_events(5, dt.timedelta(days=91))
    _add_events(4, dt.timedelta(days=20))
    _add_events(2, dt.timedelta(days=200), action="admin:key.create")

    monkeypatch.setenv("ORDERDESK_MCP_AUDIT_RETENTION_DAYS", "0")
    kept = runner.invoke(cli, ["audit", "prune", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.output)["deleted"] == 0

    monkeypatch.delenv("ORDERDESK_MCP_AUDIT_RETENTION_DAYS")
    default = runner.invoke(cli, ["audit", "prune", "--json"])
    assert default.exit_code == 0, default.output
    report = json.loads(default.output)
    assert (report["older_than"], report["deleted"], report["admin_rows_kept"]) == ("90d", 5, 2)

    shorter = runner.invoke(cli, ["audit", "prune", "--older-than", "15d"])
    assert shorter.exit_code == 0, shorter.output
    assert "Deleted 4 tool-call audit event(s) older than 15d" in shorter.output
    # Each prune that deleted something is itself an operator action.
    assert _actions() == {"admin:key.create": 2, "admin:audit.prune": 2}

    for bad in ("yesterday", "0d", "-3d", "30"):
        refused = runner.invoke(cli, ["audit", "prune", "--older-than", bad])
        assert refused.exit_code == 1
        assert "is not an age: use e.g. 30d" in refused.output
        assert "Traceback" not in refused.output


def test_backup_script_prunes_the_audit_trail_after_the_backup(
    settings: Settings, db: peewee.Database, tmp_path: Path
) -> None:
    _add_events(3, dt.timedelta(days=120))
    _add_events(2, dt.timedelta(days=1))
    env = {**_backup_script_env(settings, tmp_path), "ORDERDESK_MCP_AUDIT_RETENTION_DAYS": "30"}
    done = subprocess.run(
        [str(ROOT / "scripts" / "backup.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    assert _actions() == {"tools/call get_order": 2, "admin:audit.prune": 1}

    bad = {**env, "ORDERDESK_MCP_AUDIT_RETENTION_DAYS": "forever"}
    failed = subprocess.run(
        [str(ROOT / "scripts" / "backup.sh")], env=bad, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1
    assert "failed" in failed.stdout
    assert "ORDERDESK_MCP_AUDIT_RETENTION_DAYS" in failed.stdout
