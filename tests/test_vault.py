"""The vault: sealing store keys so they open only for their own tenant and row."""

from __future__ import annotations

import os
from pathlib import Path

import peewee
import pytest

from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.models import AuditEvent, Store
from orderdesk_mcp.tenancy import add_store, create_tenant, open_store_key, rotate_master_key
from orderdesk_mcp.vault import (
    Vault,
    VaultError,
    encode_master_key,
    generate_master_key,
    load_master_key,
    write_key_file,
)

STORE_KEY = "od-live-key-7f3a9c1e5b2d4f60"


def _tenant_with_store(vault: Vault, name: str = "acme", key: str = STORE_KEY) -> Store:
    tenant = create_tenant(name, Vault.new_tenant_salt())
    return add_store(tenant, store_id="12345", api_key=key, vault=vault)


def test_round_trip(db: peewee.Database, vault: Vault) -> None:
    store = _tenant_with_store(vault)
    assert open_store_key(Store.get_by_id(store.id), vault) == STORE_KEY


def test_tampered_ciphertext_fails_closed(db: peewee.Database, vault: Vault) -> None:
    store = _tenant_with_store(vault)
    sealed = bytearray(store.sealed_api_key)
    sealed[-1] ^= 0x01
    store.sealed_api_key = bytes(sealed)
    with pytest.raises(VaultError, match="does not open"):
        open_store_key(store, vault)


def test_ciphertext_copied_to_another_row_or_tenant_fails(
    db: peewee.Database, vault: Vault
) -> None:
    first = _tenant_with_store(vault, "acme")
    other_tenant = _tenant_with_store(vault, "globex", key="another-key-000000000")
    same_tenant_other_row = add_store(
        first.tenant, store_id="777", api_key="third-key-0000000000", vault=vault, alias="second"
    )
    for target in (other_tenant, same_tenant_other_row):
        target.sealed_api_key = first.sealed_api_key
        with pytest.raises(VaultError):
            open_store_key(target, vault)


def test_wrong_master_key_fails(db: peewee.Database, vault: Vault) -> None:
    store = _tenant_with_store(vault)
    with pytest.raises(VaultError, match="wrong master key"):
        open_store_key(store, Vault(generate_master_key()))


def test_rotation_keeps_every_store_readable(db: peewee.Database, vault: Vault) -> None:
    keys = {}
    for index in range(5):
        store = _tenant_with_store(vault, f"t{index}", key=f"key-number-{index:04d}-abcdef")
        keys[store.id] = f"key-number-{index:04d}-abcdef"
    new = Vault(generate_master_key())
    assert rotate_master_key(vault, new) == 5
    for store in Store.select():
        assert open_store_key(store, new) == keys[store.id]
        with pytest.raises(VaultError):
            open_store_key(store, vault)


def test_rotation_is_all_or_nothing(db: peewee.Database, vault: Vault) -> None:
    good = _tenant_with_store(vault, "good")
    bad = _tenant_with_store(vault, "bad", key="bad-store-key-123456")
    Store.update(sealed_api_key=b"\x01" + b"\x00" * 60).where(Store.id == bad.id).execute()
    before = bytes(Store.get_by_id(good.id).sealed_api_key)
    with pytest.raises(VaultError), db.atomic():
        rotate_master_key(vault, Vault(generate_master_key()))
    assert bytes(Store.get_by_id(good.id).sealed_api_key) == before


@pytest.mark.sqlite_only  # scans the SQLite file's bytes
def test_database_file_never_holds_a_plaintext_key(
    db: peewee.Database, vault: Vault, settings: Settings
) -> None:
    store = _tenant_with_store(vault)
    AuditEvent.create(action="store.add", store=store.alias, outcome="ok", arguments="{}")
    db.execute_sql("PRAGMA wal_checkpoint(FULL)")
    for path in settings.data_dir.glob("orderdesk-mcp.db*"):
        assert STORE_KEY.encode() not in path.read_bytes(), path.name


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    write_key_file(key_file, generate_master_key())
    os.chmod(key_file, 0o644)
    settings = load_settings({"ORDERDESK_MCP_MASTER_KEY_FILE": str(key_file)})
    with pytest.raises(VaultError, match="chmod 600"):
        load_master_key(settings)


def test_key_sources_in_order(tmp_path: Path) -> None:
    env_key = generate_master_key()
    settings = load_settings(
        {
            "ORDERDESK_MCP_MASTER_KEY": encode_master_key(env_key),
            "ORDERDESK_MCP_DATA_DIR": str(tmp_path),
        }
    )
    assert load_master_key(settings) == (env_key, load_master_key(settings)[1])
    credentials = tmp_path / "creds"
    credentials.mkdir()
    credential_key = generate_master_key()
    write_key_file(credentials / "master-key", credential_key)
    settings = load_settings(
        {"CREDENTIALS_DIRECTORY": str(credentials), "ORDERDESK_MCP_DATA_DIR": str(tmp_path)}
    )
    key, source = load_master_key(settings)
    assert key == credential_key
    assert source.kind == "credential"


@pytest.mark.parametrize("text", ["not base64!!", "c2hvcnQ="])
def test_malformed_master_key_is_one_clear_error(text: str) -> None:
    settings = load_settings({"ORDERDESK_MCP_MASTER_KEY": text})
    with pytest.raises(VaultError, match="ORDERDESK_MCP_MASTER_KEY"):
        load_master_key(settings)
    assert text not in repr(settings)


def test_no_master_key_says_how_to_make_one(tmp_path: Path) -> None:
    settings = load_settings({"ORDERDESK_MCP_DATA_DIR": str(tmp_path / "empty")})
    with pytest.raises(VaultError, match="orderdesk-mcp init"):
        load_master_key(settings)
