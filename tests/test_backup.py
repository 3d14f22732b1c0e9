"""Backups on real SQLite files: consistent under writes, verified, restored, pruned."""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import peewee
import pytest
from click.testing import CliRunner

from orderdesk_mcp.backup import (
    BackupError,
    create_backup,
    hold_server_lock,
    latest_backup,
    list_backups,
    restore_backup,
    running_server_reason,
    verify_backup,
)
from orderdesk_mcp.cli import cli
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    apply_migrations,
    current_version,
)
from orderdesk_mcp.db.models import Store
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault
from tests.conftest import settings_env
from tests.test_nginx import free_loopback_port

# About the SQLite file (online backup API, integrity_check, the file beside the data dir);
# PostgreSQL backups have their own tests in test_postgres_backup.py.
pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parent.parent
WRITER_ROW_LIMIT = 5000


def _fresh_settings(settings: Settings, data_dir: Path) -> Settings:
    # port 0: no server can answer there, so restore's /health probe never finds one.
    return settings.replace(data_dir=data_dir, port=0)


def _audit_ids(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM audit_event ORDER BY id")]


class AuditWriter(threading.Thread):
    """Commits one audit row at a time on its own connection until stopped (or a cap)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.committed: list[int] = []
        self.started_writing = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with closing(sqlite3.connect(self.path, timeout=30)) as conn:
                conn.execute("PRAGMA busy_timeout = 30000")
                while not self.stop.is_set() and len(self.committed) < WRITER_ROW_LIMIT:
                    with conn:
                        cursor = conn.execute(
                            "INSERT INTO audit_event (time, action, arguments, outcome, "
                            "duration_ms, upstream_calls) VALUES "
                            "(datetime('now'), 'test.write', '{}', 'ok', 0, 0)"
                        )
                    assert cursor.lastrowid is not None
                    self.committed.append(cursor.lastrowid)
                    if len(self.committed) >= 50:
                        self.started_writing.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.started_writing.set()


@pytest.fixture
def tenant_with_store(db: peewee.Database, vault: Vault) -> Store:
    tenant = create_tenant("acme", Vault.new_tenant_salt())
    return add_store(tenant, store_id="12345", api_key="od-secret-key-1", vault=vault, alias="main")


def test_backup_under_writes_then_verify_and_restore_elsewhere(
    settings: Settings, tenant_with_store: Store, tmp_path: Path
) -> None:
    writer = AuditWriter(settings.database_path)
    writer.start()
    assert writer.started_writing.wait(timeout=60)
    committed_before = list(writer.committed)
    result = create_backup(settings)
    writer.stop.set()
    writer.join(timeout=60)
    assert writer.error is None

    manifest = verify_backup(result.path)
    assert manifest == result.manifest
    assert manifest.schema_version == LATEST_VERSION
    assert manifest.tables["store"] == 1
    assert manifest.tables["audit_event"] >= len(committed_before)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600

    fresh = _fresh_settings(settings, tmp_path / "fresh")
    restored = restore_backup(fresh, result.path)
    assert restored.replaced is None
    assert restored.migrations_applied == []
    assert restored.database == fresh.database_path

    ids = _audit_ids(fresh.database_path)
    # A consistent snapshot: every row committed before the backup began, no gaps, and
    # exactly what the manifest counted.
    assert set(committed_before) <= set(ids)
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert len(ids) == manifest.tables["audit_event"]
    with closing(sqlite3.connect(fresh.database_path)) as conn:
        (sealed,) = conn.execute("SELECT sealed_api_key FROM store").fetchone()
    assert sealed == bytes(tenant_with_store.sealed_api_key)
    assert b"od-secret-key-1" not in fresh.database_path.read_bytes()


def test_backup_holds_no_cache_and_no_plaintext_key(
    settings: Settings, tenant_with_store: Store
) -> None:
    settings.cache_path.write_bytes(b"cache contents")
    result = create_backup(settings)
    with tarfile.open(result.path) as archive:
        assert sorted(archive.getnames()) == ["manifest.json", "orderdesk-mcp.db"]
        database = archive.extractfile("orderdesk-mcp.db")
        assert database is not None
        assert b"od-secret-key-1" not in database.read()
    assert b"cache contents" not in gzip.decompress(result.path.read_bytes())


def _rewrite_archive(source: Path, target: Path, database: bytes | None = None) -> None:
    with tarfile.open(source) as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            handle = old.extractfile(member)
            assert handle is not None
            body = handle.read()
            if member.name == "orderdesk-mcp.db" and database is not None:
                body = database
            member.size = len(body)
            new.addfile(member, io.BytesIO(body))


def test_damaged_backups_fail_verify(
    settings: Settings, tenant_with_store: Store, tmp_path: Path
) -> None:
    good = create_backup(settings).path

    flipped = tmp_path / "flipped.tar.gz"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="damaged"):
        verify_backup(flipped)

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: len(data) // 3])
    with pytest.raises(BackupError, match="damaged"):
        verify_backup(truncated)

    # A well-formed archive whose database was altered after the manifest was written.
    with tarfile.open(good) as archive:
        handle = archive.extractfile("orderdesk-mcp.db")
        assert handle is not None
        altered_db = bytearray(handle.read())
    altered_db[-100] ^= 0x01
    altered = tmp_path / "altered.tar.gz"
    _rewrite_archive(good, altered, bytes(altered_db))
    with pytest.raises(BackupError, match="checksum does not match"):
        verify_backup(altered)

    not_a_backup = tmp_path / "notes.tar.gz"
    with tarfile.open(not_a_backup, "w:gz") as archive:
        archive.addfile(tarfile.TarInfo("hello.txt"), io.BytesIO(b""))
    with pytest.raises(BackupError, match="not an orderdesk-mcp backup"):
        verify_backup(not_a_backup)

    with pytest.raises(BackupError, match="does not exist"):
        verify_backup(tmp_path / "missing.tar.gz")


def test_restore_refuses_a_damaged_backup_and_changes_nothing(
    settings: Settings, tenant_with_store: Store, tmp_path: Path
) -> None:
    good = create_backup(settings).path
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(good.read_bytes()[:200])
    before = settings.database_path.read_bytes()
    with pytest.raises(BackupError):
        restore_backup(_fresh_settings(settings, settings.data_dir), damaged)
    assert settings.database_path.read_bytes() == before
    assert not list(settings.data_dir.glob("*.replaced-*"))


def test_restore_keeps_the_replaced_database_and_migrates(
    settings: Settings, tmp_path: Path
) -> None:
    # A backup from an older release: only migration 1 applied.
    old = _fresh_settings(settings, tmp_path / "old")
    old_db = open_database(old)
    apply_migrations(old_db, target=1)
    old_db.close()
    backup = create_backup(old).path
    assert verify_backup(backup).schema_version == 1

    current = _fresh_settings(settings, tmp_path / "current")
    current_db = open_database(current)
    apply_migrations(current_db)
    create_tenant("will-be-replaced", Vault.new_tenant_salt())
    current_db.close()

    result = restore_backup(current, backup)
    assert result.migrations_applied == [f"{m.version:04d}_{m.name}" for m in MIGRATIONS[1:]]
    assert result.schema_version == LATEST_VERSION
    assert result.replaced is not None
    assert result.replaced.parent == current.data_dir
    with closing(sqlite3.connect(result.replaced)) as conn:
        assert conn.execute("SELECT name FROM tenant").fetchall() == [("will-be-replaced",)]
    restored_db = open_database(current)
    assert current_version(restored_db) == LATEST_VERSION
    assert restored_db.execute_sql("SELECT count(*) FROM tenant").fetchone() == (0,)
    restored_db.close()


def test_restore_refuses_while_a_server_holds_the_data_dir(
    settings: Settings, tenant_with_store: Store
) -> None:
    backup = create_backup(settings).path
    target = _fresh_settings(settings, settings.data_dir)
    with hold_server_lock(settings.data_dir):
        with pytest.raises(BackupError, match="refusing to restore while the server runs"):
            restore_backup(target, backup)
        with (
            pytest.raises(BackupError, match="already uses"),
            hold_server_lock(settings.data_dir),
        ):
            pass
    # Released: the lock file left behind does not block anything.
    assert restore_backup(target, backup).replaced is not None


def test_prune_keeps_the_newest(settings: Settings, db: peewee.Database, tmp_path: Path) -> None:
    dest = tmp_path / "elsewhere"
    made = [create_backup(settings, dest=dest, keep=3).path for _ in range(5)]
    assert [info.path for info in list_backups(dest)] == made[-3:]
    latest = latest_backup(dest)
    assert latest is not None
    assert latest.path == made[-1]
    assert latest.age_seconds >= 0
    unrelated = dest / "notes.txt"
    unrelated.write_text("keep me")
    create_backup(settings, dest=dest, keep=1)
    assert unrelated.exists()
    assert len(list_backups(dest)) == 1


def test_create_without_a_database_says_what_to_do(settings: Settings) -> None:
    with pytest.raises(BackupError, match="orderdesk-mcp init"):
        create_backup(settings)


def test_cli_create_verify_restore_json(
    settings: Settings, tenant_with_store: Store, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir)]
    created = runner.invoke(cli, [*base, "backup", "create", "--json", "--keep", "2"])
    assert created.exit_code == 0, created.output
    path = json.loads(created.output)["path"]
    assert json.loads(created.output)["manifest"]["tables"]["store"] == 1

    verified = runner.invoke(cli, ["backup", "verify", path, "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["ok"] is True

    fresh = tmp_path / "fresh"
    restored = runner.invoke(
        cli,
        ["--data-dir", str(fresh), "backup", "restore", path, "--json"],
        env={"ORDERDESK_MCP_PORT": "0"},
    )
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.output)["database"] == str(fresh / "orderdesk-mcp.db")
    audited = runner.invoke(cli, ["--data-dir", str(fresh), "audit", "list", "--json"])
    assert [e["action"] for e in json.loads(audited.output)["events"]][:1] == [
        "admin:backup.restore"
    ]

    missing = runner.invoke(cli, ["backup", "verify", str(tmp_path / "nope.tar.gz")])
    assert missing.exit_code == 1
    assert "Traceback" not in missing.output
    assert "does not exist" in missing.output


def _backup_script_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    wrapper = tmp_path / "orderdesk-mcp"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{ROOT}/.venv/bin/python" -m orderdesk_mcp "$@"\n'
    )
    wrapper.chmod(0o755)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ODMCP_BIN": str(wrapper),
        "ODMCP_ENV_FILE": str(tmp_path / "absent.env"),
        **settings_env(settings),
        "ODMCP_BACKUP_KEEP": "2",
    }


def test_backup_script_is_silent_on_success_and_loud_on_failure(
    settings: Settings, db: peewee.Database, tmp_path: Path
) -> None:
    env = _backup_script_env(settings, tmp_path)
    script = str(ROOT / "scripts" / "backup.sh")
    ok = subprocess.run([script], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == ""
    assert len(list_backups(settings.backups_dir)) == 1

    failing = {**env, "ORDERDESK_MCP_DATA_DIR": str(tmp_path / "no-such-data-dir")}
    failed = subprocess.run([script], env=failing, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "backup failed" in failed.stdout
    assert "orderdesk-mcp init" in failed.stdout
    assert "Traceback" not in failed.stdout


@contextmanager
def serving(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """`orderdesk-mcp serve` in a subprocess on the settings' data dir, until it answers;
    yields the settings naming its address. Stopped (SIGTERM) on exit."""
    port = free_loopback_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        **settings_env(settings),
        "ORDERDESK_MCP_LOG_FORMAT": "text",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "orderdesk_mcp", "serve",
             "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )  # fmt: skip
    target = settings.replace(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 30
        while running_server_reason(target) is None:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "orderdesk-mcp serve never came up"
            time.sleep(0.1)
        yield target
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_restore_refuses_while_orderdesk_mcp_serve_runs(
    settings: Settings, db: peewee.Database, tmp_path: Path
) -> None:
    backup = create_backup(settings).path
    with serving(settings, tmp_path) as target:
        with pytest.raises(BackupError, match="refusing to restore while the server runs"):
            restore_backup(target, backup)
        # The lock alone is enough, whatever port the settings name.
        elsewhere = settings.replace(port=0)
        with pytest.raises(BackupError, match=r"holds .*server\.lock"):
            restore_backup(elsewhere, backup)
    assert running_server_reason(target) is None
    assert restore_backup(target, backup).replaced is not None
