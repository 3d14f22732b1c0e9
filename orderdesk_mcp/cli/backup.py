"""`orderdesk-mcp backup create|verify|restore`: the command-line face of backup.py."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.backup import (
    DEFAULT_KEEP,
    BackupError,
    Manifest,
    create_backup,
    restore_backup,
    verify_backup,
)
from orderdesk_mcp.cli.base import CliError, connect_database, emit, settings_from_context


def _manifest_summary(manifest: Manifest) -> str:
    rows = sum(manifest.tables.values())
    return (
        f"taken {manifest.created}, schema version {manifest.schema_version}, "
        f"{len(manifest.tables)} tables, {rows} rows"
    )


@click.group()
def backup() -> None:
    """Database backups (the master key is not in them: back it up separately)."""


@backup.command("create")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the backup. Default: <data dir>/backups.",
)
@click.option(
    "--keep",
    type=click.IntRange(1, 10000),
    default=DEFAULT_KEEP,
    show_default=True,
    help="Keep only this many newest backups in the directory; older ones are deleted.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def backup_create(ctx: click.Context, dest: Path | None, keep: int, as_json: bool) -> None:
    """Take a consistent backup (safe while the server runs) and prune old ones."""
    settings = settings_from_context(ctx)
    try:
        result = create_backup(settings, dest=dest, keep=keep)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    data: dict[str, Any] = {
        "path": str(result.path),
        "manifest": asdict(result.manifest),
        "pruned": [str(path) for path in result.pruned],
    }
    text = f"Backup {result.path}: {_manifest_summary(result.manifest)}."
    if result.pruned:
        text += f" Pruned {len(result.pruned)} older backup(s)."
    emit(as_json, data, text)


@backup.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def backup_verify(file: Path, as_json: bool) -> None:
    """Check a backup: checksum, integrity check, schema version and row counts."""
    try:
        manifest = verify_backup(file)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    emit(
        as_json,
        {"path": str(file), "ok": True, "manifest": asdict(manifest)},
        f"Backup {file} is good: {_manifest_summary(manifest)}.",
    )


@backup.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def backup_restore(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Replace the database with a backup (server stopped; the old database is kept)."""
    settings = settings_from_context(ctx)
    try:
        result = restore_backup(settings, file)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    # Recorded in the restored database, which is the one that lives on.
    connect_database(settings)
    record_admin_action(
        "backup.restore",
        details={"from": str(result.restored_from), "schema_version": result.schema_version},
    )
    data = {
        "restored_from": str(result.restored_from),
        "database": str(result.database),
        "replaced": str(result.replaced) if result.replaced else None,
        "migrations_applied": result.migrations_applied,
        "schema_version": result.schema_version,
    }
    lines = [f"Restored {result.database} from {result.restored_from}."]
    if result.replaced:
        lines.append(f"The previous database is kept at {result.replaced}.")
    if result.migrations_applied:
        lines.append(f"Applied migrations: {', '.join(result.migrations_applied)}.")
    lines.append("Start the server again (`systemctl start orderdesk-mcp`).")
    emit(as_json, data, "\n".join(lines))
