"""Backups on PostgreSQL: pg_dump into the usual archive, verify, restore with pg_restore."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee
import pytest
from click.testing import CliRunner

from orderdesk_mcp.backup import BackupError, create_backup, restore_backup, verify_backup
from orderdesk_mcp.backup_postgres import (
    DUMP_NAME,
    PostgresBackupError,
    find_tool,
    require_fitting_tool,
    tool_major,
)
from orderdesk_mcp.cli import cli
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import close_database, open_database
from orderdesk_mcp.db.migrations import LATEST_VERSION, apply_migrations
from orderdesk_mcp.db.models import AuditEvent, Store, Tenant
from orderdesk_mcp.tenancy import add_store, create_tenant, open_store_key
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file
from tests.real_servers import PostgresServer

PASSWORD = "pw-not-for-the-command-line"


@pytest.fixture
def pg_settings(tmp_path: Path, postgres_server: PostgresServer) -> Settings:
    """A data dir with a master key and a fresh PostgreSQL database (URL with a password the
    loopback-trusting test cluster ignores, so it can be checked for leaks)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    write_key_file(data_dir / "master.key", generate_master_key())
    parts = urlsplit(postgres_server.create_database())
    url = urlunsplit(parts._replace(netloc=f"postgres:{PASSWORD}@{parts.hostname}:{parts.port}"))
    return load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_DATABASE_URL": url,
            "ORDERDESK_MCP_PORT": "0",
        }
    )


@pytest.fixture
def pg_db(pg_settings: Settings) -> Iterator[peewee.Database]:
    database = open_database(pg_settings)
    apply_migrations(database)
    yield database
    close_database(database)


def _tenant_with_store(name: str, vault: Vault) -> Tenant:
    tenant = create_tenant(name, Vault.new_tenant_salt())
    add_store(tenant, store_id="100001", api_key=f"sk_{name}_key", vault=vault, alias="main")
    return tenant


def test_create_verify_restore_round_trip(pg_settings: Settings, pg_db: peewee.Database) -> None:
    vault = Vault.from_settings(pg_settings)
    _tenant_with_store("acme", vault)
    AuditEvent.create(action="tools/call get_order", outcome="ok")

    created = create_backup(pg_settings)
    manifest = created.manifest
    assert manifest.engine == "postgresql"
    assert manifest.schema_version == LATEST_VERSION
    assert (manifest.tables["tenant"], manifest.tables["store"]) == (1, 1)
    assert manifest.tables["audit_event"] == 1
    with tarfile.open(created.path) as archive:
        assert sorted(archive.getnames()) == sorted(["manifest.json", DUMP_NAME])
        body = archive.extractfile("manifest.json")
        assert body is not None
        assert json.loads(body.read())["engine"] == "postgresql"
    assert created.path.stat().st_mode & 0o777 == 0o600
    assert verify_backup(created.path) == manifest

    # Later changes: one tenant gone, another added. Restore brings the backup's state back.
    Tenant.delete().where(Tenant.name == "acme").execute()
    _tenant_with_store("later", vault)
    close_database(pg_db)
    restored = restore_backup(pg_settings, created.path)
    assert PASSWORD not in str(restored.database)
    assert restored.replaced is not None
    assert restored.replaced.is_file()
    assert restored.schema_version == LATEST_VERSION

    database = open_database(pg_settings)
    try:
        assert [tenant.name for tenant in Tenant.select()] == ["acme"]
        store = Store.get()
        assert open_store_key(store, vault) == "sk_acme_key"
        # Sequences come back too: a new row does not collide with a restored id.
        assert AuditEvent.create(action="after", outcome="ok").id > 1
    finally:
        close_database(database)


def test_verify_refuses_a_damaged_dump(
    pg_settings: Settings, pg_db: peewee.Database, tmp_path: Path
) -> None:
    _tenant_with_store("acme", Vault.from_settings(pg_settings))
    created = create_backup(pg_settings)
    # Same manifest, a dump with one byte changed: the checksum catches it.
    work = tmp_path / "unpacked"
    with tarfile.open(created.path) as archive:
        archive.extractall(work, filter="data")
    dump = work / DUMP_NAME
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    damaged = tmp_path / "orderdesk-mcp-20260101T000000.000000Z.tar.gz"
    with tarfile.open(damaged, "w:gz") as archive:
        archive.add(work / "manifest.json", arcname="manifest.json")
        archive.add(dump, arcname=DUMP_NAME)
    with pytest.raises(BackupError, match="checksum does not match"):
        verify_backup(damaged)


def test_a_sqlite_backup_is_not_restored_onto_postgresql(
    pg_settings: Settings, pg_db: peewee.Database, tmp_path: Path
) -> None:
    sqlite_dir = tmp_path / "sqlite"
    sqlite_dir.mkdir(mode=0o700)
    sqlite_settings = load_settings({"ORDERDESK_MCP_DATA_DIR": str(sqlite_dir)})
    database = open_database(sqlite_settings)
    apply_migrations(database)
    close_database(database)
    sqlite_backup = create_backup(sqlite_settings)
    assert sqlite_backup.manifest.engine == "sqlite"
    close_database(open_database(pg_settings))
    with pytest.raises(BackupError, match="restore it on SQLite, then move it"):
        restore_backup(pg_settings, sqlite_backup.path)


def test_backup_commands_on_postgresql_never_print_the_password(
    pg_settings: Settings, pg_db: peewee.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tenant_with_store("acme", Vault.from_settings(pg_settings))
    env = {
        "ORDERDESK_MCP_DATA_DIR": str(pg_settings.data_dir),
        "ORDERDESK_MCP_DATABASE_URL": str(pg_settings.database_url),
        "ORDERDESK_MCP_PORT": "0",
    }
    runner = CliRunner()
    made = runner.invoke(cli, ["backup", "create", "--json"], env=env)
    assert made.exit_code == 0, made.output
    path = json.loads(made.output)["path"]
    checked = runner.invoke(cli, ["backup", "verify", path], env=env)
    assert checked.exit_code == 0, checked.output
    close_database(pg_db)
    restored = runner.invoke(cli, ["backup", "restore", path], env=env)
    assert restored.exit_code == 0, restored.output
    assert "postgresql://postgres:***@" in restored.output
    for result in (made, checked, restored):
        assert PASSWORD not in result.output


def test_pg_dump_older_than_the_server_is_named() -> None:
    tool = find_tool("pg_dump")
    major = tool_major(tool)
    require_fitting_tool(tool, major)  # the same version fits
    with pytest.raises(PostgresBackupError, match=f"install postgresql-client-{major + 1}"):
        require_fitting_tool(tool, major + 1)
