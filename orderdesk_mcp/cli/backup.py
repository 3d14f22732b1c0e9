"""`orderdesk-mcp backup ...`: the command-line face of backup.py and the off-site modules
(backup_seal, backup_remote, backup_retention, backup_offsite).

Each run of create, upload and `verify --restore-test` is recorded in the database (jobs.py)
as kind "backup", "upload" or "restore_test", so /metrics shows when one stopped succeeding.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import peewee
from nacl.public import PrivateKey

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.backup import (
    BackupError,
    Manifest,
    create_backup,
    latest_backup,
    list_backups,
    restore_backup,
    verify_backup,
)
from orderdesk_mcp.backup_offsite import (
    UploadResult,
    apply_local_retention,
    check_upload_configured,
    opened_archive,
    restore_drill,
    upload_archive,
)
from orderdesk_mcp.backup_remote import RemoteBackups, created_from_name, sealed_name
from orderdesk_mcp.backup_retention import RetentionPolicy
from orderdesk_mcp.backup_seal import encode_key, key_id, write_private_key_file
from orderdesk_mcp.cli.base import (
    DATABASE_ERRORS,
    CliError,
    connect_database,
    emit,
    iso_utc,
    json_option,
    settings_from_context,
    table,
)
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database, sqlite_path_from_url
from orderdesk_mcp.db.models import utcnow
from orderdesk_mcp.jobs import record_job

DEFAULT_KEY_FILE = "orderdesk-mcp-backup.key"

dest_option = click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Backup directory. Default: <data dir>/backups.",
)
keep_option = click.option(
    "--keep",
    type=click.IntRange(1, 10000),
    default=None,
    help="Keep only this many newest backups (locally and remotely) instead of the daily and "
    "weekly retention of ORDERDESK_MCP_BACKUP_KEEP_DAILY and _KEEP_WEEKLY.",
)
key_file_option = click.option(
    "--backup-key-file",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The backup private key file (from `backup keygen`) that opens a sealed archive.",
)


def _manifest_summary(manifest: Manifest) -> str:
    rows = sum(manifest.tables.values())
    return (
        f"taken {manifest.created}, schema version {manifest.schema_version}, "
        f"{len(manifest.tables)} tables, {rows} rows"
    )


def _record_outcome(settings: Settings, kind: str, **outcome: Any) -> None:
    """`jobs.record_job` (ok=, started=, detail=, size_bytes=) for /metrics; a database that
    cannot take it only warns (the job's own exit status still tells cron or systemd)."""
    sqlite_path = sqlite_path_from_url(settings.effective_database_url)
    problem = None
    if sqlite_path is not None and not sqlite_path.exists():
        problem = "there is no database yet"
    else:
        try:
            db = open_database(settings)
            try:
                record_job(db, kind, **outcome)
            finally:
                db.close()
        except (*DATABASE_ERRORS, peewee.DatabaseError) as exc:
            problem = f"{type(exc).__name__}; run `orderdesk-mcp db upgrade`?"
    if problem:
        click.echo(
            f"Warning: the {kind} outcome was not recorded for monitoring ({problem}).", err=True
        )


@click.group()
def backup() -> None:
    """Database backups, off-site copies and restore (the master key is not in them: back it
    up separately)."""


@backup.command("keygen")
@click.option(
    "--out",
    default=DEFAULT_KEY_FILE,
    show_default=True,
    help="File for the private key (created 0600, never overwritten); `-` prints it on stdout "
    "instead, for piping straight to where it is kept.",
)
@json_option
def backup_keygen(out: str, as_json: bool) -> None:
    """Make the key pair off-site backups are sealed to. The public key goes in the env file;
    the private key must leave this server (it is the only way to read those backups)."""
    private_key = PrivateKey.generate()
    public = encode_key(private_key.public_key)
    env_line = f"ORDERDESK_MCP_BACKUP_PUBLIC_KEY={public}"
    if out == "-":
        click.echo(encode_key(private_key))
        where = "printed on stdout"
    else:
        path = Path(out).absolute()
        try:
            write_private_key_file(path, private_key)
        except BackupError as exc:
            raise CliError(str(exc)) from None
        where = f"written to {path} (mode 0600)"
    data = {
        "public_key": public,
        "key_id": key_id(private_key.public_key),
        "env_line": env_line,
        "private_key_file": None if out == "-" else str(Path(out).absolute()),
    }
    text = (
        f"Backup private key {where}.\n"
        "Move it OFF this server now (a password manager or an offline machine), then delete "
        "it here: whoever holds it can read every off-site backup, and without it nobody can, "
        "you included.\n"
        f"Key id {data['key_id']}. Put this line in /etc/orderdesk-mcp/orderdesk-mcp.env:\n"
        f"{env_line}"
    )
    if out == "-":
        # stdout carries only the private key, so `--out - > file` works.
        click.echo(json.dumps(data, indent=2) if as_json else text, err=True)
    else:
        emit(as_json, data, text)


@backup.command("create")
@dest_option
@keep_option
@click.option(
    "--upload",
    is_flag=True,
    help="Then seal the backup to ORDERDESK_MCP_BACKUP_PUBLIC_KEY and upload it to "
    "ORDERDESK_MCP_BACKUP_S3_URL. A failed upload exits 1 and keeps the local backup.",
)
@json_option
@click.pass_context
def backup_create(
    ctx: click.Context, dest: Path | None, keep: int | None, upload: bool, as_json: bool
) -> None:
    """Take a consistent backup (safe while the server runs), verify it, apply retention."""
    settings = settings_from_context(ctx)
    policy = RetentionPolicy.from_settings(settings, keep)
    if upload:
        try:
            check_upload_configured(settings)
        except BackupError as exc:
            raise CliError(str(exc)) from None
    started = utcnow()
    try:
        result = create_backup(settings, dest=dest, keep=None)
        verify_backup(result.path)
    except BackupError as exc:
        _record_outcome(settings, "backup", ok=False, started=started, detail=str(exc))
        raise CliError(str(exc)) from None
    pruned = apply_local_retention(result.path.parent, policy, protect=result.path)
    size = result.path.stat().st_size
    _record_outcome(settings, "backup", ok=True, started=started, size_bytes=size)
    data: dict[str, Any] = {
        "path": str(result.path),
        "manifest": asdict(result.manifest),
        "pruned": [str(path) for path in pruned],
    }
    text = f"Backup {result.path}: {_manifest_summary(result.manifest)}."
    if pruned:
        text += f" Deleted {len(pruned)} older backup(s) (keeping {policy.describe()})."
    if upload:
        uploaded = _upload(settings, result.path, policy, verified=True)  # verified above
        data["upload"] = _upload_data(uploaded)
        text += "\n" + _upload_text(uploaded)
    emit(as_json, data, text)


def _upload(
    settings: Settings, archive: Path, policy: RetentionPolicy, *, verified: bool = False
) -> UploadResult:
    started = utcnow()
    try:
        result = upload_archive(settings, archive, policy, verified=verified)
    except BackupError as exc:
        _record_outcome(settings, "upload", ok=False, started=started, detail=str(exc))
        raise CliError(f"{exc}. The local backup {archive} is kept.") from None
    detail = ""
    if result.retention_problem:
        detail = f"uploaded; old copies not pruned: {result.retention_problem}"
        click.echo(f"Warning: {detail}", err=True)
    _record_outcome(
        settings, "upload", ok=True, started=started, detail=detail, size_bytes=result.remote.size
    )
    return result


def _upload_data(result: UploadResult) -> dict[str, Any]:
    return {
        "name": result.remote.name,
        "location": result.location,
        "size": result.remote.size,
        "already_there": result.skipped,
        "deleted": result.deleted,
        "retention_problem": result.retention_problem,
    }


def _upload_text(result: UploadResult) -> str:
    done = "was already" if result.skipped else "uploaded"
    text = f"Sealed copy {result.remote.name} {done} at {result.location}."
    if result.deleted:
        text += f" Deleted {len(result.deleted)} older remote copy(ies)."
    return text


@backup.command("upload")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@dest_option
@keep_option
@click.option(
    "--if-configured",
    is_flag=True,
    help="Do nothing (exit 0) when ORDERDESK_MCP_BACKUP_S3_URL is not set: for the timer.",
)
@json_option
@click.pass_context
def backup_upload(
    ctx: click.Context,
    file: Path | None,
    dest: Path | None,
    keep: int | None,
    if_configured: bool,
    as_json: bool,
) -> None:
    """Seal and upload FILE (default: the newest local backup), then apply retention remotely."""
    settings = settings_from_context(ctx)
    if if_configured and not settings.backup_s3_url:
        emit(as_json, {"upload": None}, "Off-site upload not configured; nothing to do.")
        return
    if file is None:
        newest = latest_backup(dest or settings.backups_dir)
        if newest is None:
            raise CliError(
                f"there is no local backup in {dest or settings.backups_dir} to upload; run "
                "`orderdesk-mcp backup create` first"
            )
        file = newest.path
    uploaded = _upload(settings, file, RetentionPolicy.from_settings(settings, keep))
    emit(as_json, {"upload": _upload_data(uploaded)}, _upload_text(uploaded))


@backup.command("list")
@dest_option
@click.option(
    "--remote", is_flag=True, help="List the sealed copies in ORDERDESK_MCP_BACKUP_S3_URL."
)
@json_option
@click.pass_context
def backup_list(ctx: click.Context, dest: Path | None, remote: bool, as_json: bool) -> None:
    """List backups, oldest first: local ones, or with --remote the off-site copies."""
    settings = settings_from_context(ctx)
    rows: list[dict[str, Any]]
    if remote:
        try:
            store = RemoteBackups.from_settings(settings)
            rows = [
                {"name": item.name, "created": iso_utc(item.created), "size": item.size}
                for item in store.archives()
            ]
        except BackupError as exc:
            raise CliError(str(exc)) from None
        where = store.describe()
    else:
        directory = dest or settings.backups_dir
        rows = [
            {
                "name": info.path.name,
                "created": iso_utc(info.created),
                "size": info.path.stat().st_size,
            }
            for info in list_backups(directory)
        ]
        where = str(directory)
    emit(
        as_json,
        {"location": where, "backups": rows},
        lambda: f"{where}\n{table(rows, ['name', 'created', 'size'])}",
    )


@backup.command("fetch")
@click.argument("name")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to download into (an existing file is never overwritten).",
)
@json_option
@click.pass_context
def backup_fetch(ctx: click.Context, name: str, dest: Path, as_json: bool) -> None:
    """Download the sealed copy NAME (from `backup list --remote`); restore or verify it with
    --backup-key-file."""
    settings = settings_from_context(ctx)
    if created_from_name(name) is None and created_from_name(sealed_name(name)) is not None:
        name = sealed_name(name)
    try:
        path = RemoteBackups.from_settings(settings).fetch(name, dest)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    emit(
        as_json,
        {"path": str(path), "size": path.stat().st_size},
        f"Fetched {path}. It is sealed: restore it with "
        f"`orderdesk-mcp backup restore {path} --backup-key-file KEY`.",
    )


@backup.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@key_file_option
@click.option(
    "--restore-test",
    is_flag=True,
    help="Also restore into a temporary data dir, migrate, and open every store key with the "
    "configured master key (a restore drill; the outcome is recorded for monitoring).",
)
@json_option
@click.pass_context
def backup_verify(
    ctx: click.Context, file: Path, key_file: Path | None, restore_test: bool, as_json: bool
) -> None:
    """Check a backup: checksum, integrity check, schema version and row counts."""
    settings = settings_from_context(ctx) if restore_test else None
    started = utcnow()
    data: dict[str, Any] = {"path": str(file), "ok": True}
    try:
        with opened_archive(file, key_file) as plain:
            if settings is not None:
                drill = restore_drill(settings, plain)
                manifest = drill.manifest
                data["restore_test"] = {
                    "schema_version": drill.schema_version,
                    "migrations_applied": drill.migrations_applied,
                    "tenants": drill.tenants,
                    "stores_opened": drill.stores_opened,
                }
            else:
                manifest = verify_backup(plain)
    except BackupError as exc:
        if settings is not None:
            _record_outcome(settings, "restore_test", ok=False, started=started, detail=str(exc))
        raise CliError(str(exc)) from None
    data["manifest"] = asdict(manifest)
    text = f"Backup {file} is good: {_manifest_summary(manifest)}."
    if settings is not None:
        _record_outcome(settings, "restore_test", ok=True, started=started)
        text += (
            f"\nRestore test passed: restored, migrated to schema version "
            f"{data['restore_test']['schema_version']}, and the master key opened all "
            f"{drill.stores_opened} store key(s) of {drill.tenants} tenant(s)."
        )
    emit(as_json, data, text)


@backup.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@key_file_option
@json_option
@click.pass_context
def backup_restore(ctx: click.Context, file: Path, key_file: Path | None, as_json: bool) -> None:
    """Replace the database with a backup (server stopped; the old database is kept). A sealed
    copy (from `backup fetch`) needs --backup-key-file."""
    settings = settings_from_context(ctx)
    try:
        with opened_archive(file, key_file) as plain:
            result = restore_backup(settings, plain)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    # Recorded in the restored database, which is the one that lives on.
    connect_database(settings)
    record_admin_action(
        "backup.restore",
        details={"from": str(file), "schema_version": result.schema_version},
    )
    data = {
        "restored_from": str(file),
        "database": str(result.database),
        "replaced": str(result.replaced) if result.replaced else None,
        "migrations_applied": result.migrations_applied,
        "schema_version": result.schema_version,
    }
    lines = [f"Restored {result.database} from {file}."]
    if result.replaced:
        lines.append(f"The previous database is kept at {result.replaced}.")
    if result.migrations_applied:
        lines.append(f"Applied migrations: {', '.join(result.migrations_applied)}.")
    lines.append("Start the server again (`systemctl start orderdesk-mcp`).")
    emit(as_json, data, "\n".join(lines))
