"""The off-site backup steps the CLI strings together: retention of a backup directory, the
upload of one verified archive (seal, put, remote retention), opening a sealed archive for
verify or restore, and the restore drill.

Everything here works on archive files as `backup.py` makes them and never looks at the
database engine that made them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import peewee

from orderdesk_mcp.backup import (
    BackupError,
    Manifest,
    list_backups,
    restore_backup,
    verify_backup,
)
from orderdesk_mcp.backup_remote import (
    RemoteArchive,
    RemoteBackups,
    RemoteError,
    created_from_name,
    sealed_name,
)
from orderdesk_mcp.backup_retention import RetentionPolicy
from orderdesk_mcp.backup_seal import (
    SEALED_SUFFIX,
    SealError,
    is_sealed,
    public_key_from_setting,
    read_private_key_file,
    seal_file,
    sealed_key_id,
    unseal_file,
)
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import SQLITE_PRAGMAS
from orderdesk_mcp.db.models import Store, Tenant, VaultCanary
from orderdesk_mcp.tenancy import open_store_key
from orderdesk_mcp.vault import Vault, VaultError


@dataclass(frozen=True)
class UploadResult:
    archive: Path
    remote: RemoteArchive
    location: str
    skipped: bool  # already there under that name
    deleted: list[str]
    retention_problem: str | None  # the upload is good; pruning old copies was refused


@dataclass(frozen=True)
class DrillResult:
    manifest: Manifest
    schema_version: int
    migrations_applied: list[str]
    tenants: int
    stores_opened: int


def apply_local_retention(
    directory: Path, policy: RetentionPolicy, protect: Path | None = None
) -> list[Path]:
    """Delete the backups in `directory` the policy does not keep; return them."""
    backups = list_backups(directory)
    by_name = {info.path.name: info.path for info in backups}
    doomed = policy.doomed(
        [(info.path.name, info.created) for info in backups],
        protect=[protect.name] if protect else [],
    )
    for name in doomed:
        by_name[name].unlink(missing_ok=True)
    return [by_name[name] for name in doomed]


def check_upload_configured(settings: Settings) -> None:
    """Refuse early, before any work, when an upload could not happen."""
    missing = [
        name
        for name, value in (
            ("ORDERDESK_MCP_BACKUP_S3_URL", settings.backup_s3_url),
            ("ORDERDESK_MCP_BACKUP_PUBLIC_KEY", settings.backup_public_key),
        )
        if not value
    ]
    if missing:
        raise BackupError(
            f"cannot upload: {' and '.join(missing)} not set; off-site copies need both (the "
            "public key from `orderdesk-mcp backup keygen`; docs/DEPLOYMENT.md, section 6)"
        )


def upload_archive(
    settings: Settings, archive: Path, policy: RetentionPolicy, *, verified: bool = False
) -> UploadResult:
    """Verify `archive` (unless the caller just did: `verified`), seal it to the backup public
    key, upload it, then apply `policy` to the remote copies (never deleting this one)."""
    check_upload_configured(settings)
    assert settings.backup_public_key is not None
    name = sealed_name(archive.name)
    if created_from_name(name) is None:
        raise BackupError(
            f"{archive} is not named like a backup (orderdesk-mcp-<UTC time>.tar.gz), and the "
            "name is how retention dates it; upload the files `backup create` makes"
        )
    if not verified:
        verify_backup(archive)
    remote = RemoteBackups.from_settings(settings)
    skipped = remote.exists(name)
    if not skipped:
        with tempfile.TemporaryDirectory(prefix=".seal-", dir=archive.parent) as work:
            sealed = Path(work) / name
            seal_file(archive, sealed, public_key_from_setting(settings.backup_public_key))
            uploaded = remote.upload(sealed, name)
    everything = remote.archives()
    if skipped:  # the one listing serves both: nothing was uploaded in between
        uploaded = next(item for item in everything if item.name == name)
    doomed = policy.doomed([(item.name, item.created) for item in everything], protect=[name])
    try:
        remote.delete(doomed)
    except RemoteError as exc:
        # A key without delete rights (a write-only key on a versioned or object-locked
        # bucket, expiring copies with a lifecycle rule) still makes good off-site copies.
        return UploadResult(archive, uploaded, remote.describe(), skipped, [], str(exc))
    return UploadResult(archive, uploaded, remote.describe(), skipped, doomed, None)


@contextmanager
def opened_archive(path: Path, key_file: Path | None) -> Iterator[Path]:
    """`path` itself when it is a plain archive; when sealed, its contents opened with the
    backup private key into a private temporary file for the duration."""
    if not is_sealed(path):
        yield path
        return
    if key_file is None:
        raise SealError(
            f"{path} is sealed to backup key {sealed_key_id(path)}; pass --backup-key-file "
            "with the private key file `orderdesk-mcp backup keygen` wrote"
        )
    private_key = read_private_key_file(key_file)
    plain_name = path.name.removesuffix(SEALED_SUFFIX)
    if plain_name == path.name:
        plain_name += ".opened"
    with tempfile.TemporaryDirectory(prefix="orderdesk-mcp-open-") as work:
        plain = Path(work) / plain_name
        unseal_file(path, plain, private_key)
        yield plain


def restore_drill(settings: Settings, archive: Path) -> DrillResult:
    """Restore `archive` into a throwaway data dir, migrate it, and open every store key with
    the configured master key: proof the backup can bring the service back."""
    try:
        vault = Vault.from_settings(settings)
    except VaultError as exc:
        raise BackupError(f"the restore test needs the master key: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="orderdesk-mcp-drill-") as work:
        # database_url too: a configured URL would otherwise point the drill at the live one.
        drill = settings.replace(data_dir=Path(work), database_url=None, port=0)
        manifest = verify_backup(archive)
        restored = restore_backup(drill, archive)
        db = peewee.SqliteDatabase(str(restored.database), pragmas=SQLITE_PRAGMAS, timeout=5)
        try:
            with db.connection_context(), db.bind_ctx([Tenant, Store, VaultCanary]):
                tenants, opened = _open_every_store_key(vault, archive)
        finally:
            db.close()
    return DrillResult(
        manifest, restored.schema_version, restored.migrations_applied, tenants, opened
    )


def _open_every_store_key(vault: Vault, archive: Path) -> tuple[int, int]:
    source = vault.source.describe() if vault.source else "the master key"
    fix = (
        "this backup cannot serve its stores with that key; configure the master key it was "
        "made with (after a rotation, the key in use at the time) and test again"
    )
    canary = VaultCanary.get_or_none()
    if canary is not None and not vault.opens_canary(canary.sealed):
        raise BackupError(
            f"restore test of {archive} failed: the master key from {source} does not open "
            f"the backup's key canary; {fix}"
        )
    stores = list(Store.select(Store, Tenant).join(Tenant).order_by(Store.id))
    failed = []
    for store in stores:
        try:
            open_store_key(store, vault)
        except VaultError:
            failed.append(store.id)
    if failed:
        raise BackupError(
            f"restore test of {archive} failed: the master key from {source} opens "
            f"{len(stores) - len(failed)} of {len(stores)} store keys (store rows "
            f"{', '.join(map(str, failed[:10]))} do not open); {fix}"
        )
    return Tenant.select().count(), len(stores)
