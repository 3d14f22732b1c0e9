"""init, the schema migrations (db upgrade|status), upkeep (db maintain), db copy and master
key rotation."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click
import peewee

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.backup import BackupError, hold_server_lock, running_server_reason
from orderdesk_mcp.cli.base import (
    DATABASE_ERRORS,
    CliError,
    connect_database,
    emit,
    json_option,
    load_vault,
    open_current_database,
    require_master_key,
    settings_from_context,
    translated_errors,
)
from orderdesk_mcp.cli.database_reports import maintenance_text, status_text
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import close_database, redact_url, scrub_password
from orderdesk_mcp.db.copy import CopyError, copy_database, open_target
from orderdesk_mcp.db.migrations import apply_migrations, current_version
from orderdesk_mcp.maintenance import MaintenanceError, database_status, maintain
from orderdesk_mcp.tenancy import rotate_master_key
from orderdesk_mcp.vault import (
    Vault,
    VaultError,
    find_master_key_source,
    generate_master_key,
    read_key_file,
    write_key_file,
)
from orderdesk_mcp.vault_canary import (
    CanaryStatus,
    MasterKeyMismatch,
    check_master_key,
    reseal_canary,
)


@click.command()
@json_option
@click.pass_context
def init(ctx: click.Context, as_json: bool) -> None:
    """Create the data dir, a master key (only if none is configured) and the database."""
    settings = settings_from_context(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    created_key = None
    if find_master_key_source(settings) is None:
        write_key_file(settings.default_master_key_path, generate_master_key())
        created_key = str(settings.default_master_key_path)
    load_vault(settings)
    db = open_current_database(settings, upgrade=True)
    _vault, canary = require_master_key(settings)
    result = {
        "data_dir": str(settings.data_dir),
        "database": redact_url(settings.effective_database_url)
        if settings.database_url
        else str(settings.database_path),
        "schema_version": current_version(db),
        "master_key_created": created_key,
        "master_key_canary": canary.value,
    }
    lines = [f"Data dir: {result['data_dir']}", f"Schema version: {result['schema_version']}"]
    if created_key:
        lines.append(
            f"Created master key {created_key} (mode 0600). Back it up apart from the database "
            "backups: without it no stored Order Desk key can be read."
        )
    emit(as_json, result, "\n".join(lines))


@click.group()
def db() -> None:
    """Database schema migrations, status and maintenance."""


@db.command("upgrade")
@json_option
@click.pass_context
def db_upgrade(ctx: click.Context, as_json: bool) -> None:
    """Apply pending migrations (and write the master key canary when the key is at hand)."""
    settings = settings_from_context(ctx)
    database = connect_database(settings)
    try:
        applied = apply_migrations(database)
    except DATABASE_ERRORS as exc:
        raise CliError(f"cannot upgrade the database: {exc}") from None
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    version = current_version(database)
    canary = _canary_after_upgrade(settings, version)
    text = f"Applied: {', '.join(names)}" if names else "Nothing to apply: the schema is current."
    if canary == CanaryStatus.WRITTEN.value:
        text += "\nWrote the master key canary."
    emit(as_json, {"applied": names, "schema_version": version, "master_key_canary": canary}, text)


def _canary_after_upgrade(settings: Settings, version: int) -> str:
    """Check (or write) the canary if this command can read the master key.

    The installer runs `db upgrade` without the systemd credential, so a key that cannot be
    read here is not an error: `serve` checks the canary at start-up anyway.
    """
    try:
        vault = Vault.from_settings(settings)
    except VaultError:
        return "not checked (no readable master key)"
    try:
        return check_master_key(vault).value
    except MasterKeyMismatch as exc:
        raise CliError(f"the schema is at version {version}, but {exc}") from None


@db.command("status")
@json_option
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Show the schema version, pending migrations, file sizes, free pages, rows per table
    and the newest outcome of each job (backup, upload, maintain, ...)."""
    settings = settings_from_context(ctx)
    database = connect_database(settings)
    try:
        status = database_status(settings, database)
    except (*DATABASE_ERRORS, sqlite3.Error) as exc:
        raise CliError(f"cannot read the database: {exc}") from None
    emit(as_json, status, lambda: status_text(status))


@db.command("maintain")
@click.option(
    "--full",
    is_flag=True,
    help="Also VACUUM the database and the cache (rewrites both files; refused while a "
    "server runs). Switches on incremental vacuum, so later online runs free pages too.",
)
@json_option
@click.pass_context
def db_maintain(ctx: click.Context, full: bool, as_json: bool) -> None:
    """Check integrity, prune the audit trail, free pages, ANALYZE, checkpoint the WAL and
    expire stale cache entries; safe while the server runs (without --full)."""
    settings = settings_from_context(ctx)
    database = open_current_database(settings)
    try:
        if full:
            reason = running_server_reason(settings)
            if reason:
                raise CliError(
                    f"refusing a full maintenance run while a server runs ({reason}): VACUUM "
                    "rewrites the whole database. Stop it first (`systemctl stop "
                    "orderdesk-mcp`), or run `orderdesk-mcp db maintain` without --full"
                )
            # Held for the run, so no server starts half-way through the rewrite.
            with hold_server_lock(settings.data_dir):
                report = maintain(settings, database, full=True)
        else:
            report = maintain(settings, database, full=False)
    except (BackupError, MaintenanceError) as exc:
        raise CliError(str(exc)) from None
    emit(as_json, report.as_json(), lambda: maintenance_text(report))


@db.command("copy")
@click.option(
    "--to",
    "target_url",
    required=True,
    metavar="URL",
    help="An empty PostgreSQL database, e.g. postgresql://orderdesk@db.internal/orderdesk; "
    "'-' reads the URL from stdin (keeps a password out of ps and shell history).",
)
@json_option
@click.pass_context
def db_copy(ctx: click.Context, target_url: str, as_json: bool) -> None:
    """Copy this database (tables, keys, sealed store keys, sessions, audit) into an empty
    PostgreSQL database, in one transaction, verifying row counts (server stopped)."""
    settings = settings_from_context(ctx)
    reason = running_server_reason(settings)
    if reason:
        raise CliError(
            f"refusing to copy the database while the server runs ({reason}): rows written "
            "during the copy would be lost; stop it first (`systemctl stop orderdesk-mcp`)"
        )
    source = open_current_database(settings)
    if target_url == "-":
        target_url = sys.stdin.readline().strip()
    shown_url = redact_url(target_url)
    try:
        target = open_target(target_url)
        try:
            result = copy_database(source, target)
        finally:
            close_database(target)
    except CopyError as exc:
        raise CliError(str(exc)) from None
    except peewee.DatabaseError as exc:
        raise CliError(
            f"the copy failed and was rolled back: {scrub_password(str(exc).strip(), target_url)}"
        ) from None
    width = max(len(name) for name in result.tables)
    lines = [f"Copied schema version {result.schema_version} to {shown_url}:"]
    lines += [f"  {name:<{width}}  {rows}" for name, rows in result.tables.items()]
    lines.append(
        "Row counts verified. Point every server at it: ORDERDESK_MCP_DATABASE_URL (with the "
        "same master key), then start them."
    )
    emit(
        as_json,
        {"to": shown_url, "schema_version": result.schema_version, "tables": result.tables},
        "\n".join(lines),
    )


@click.command("rotate-master-key")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File with the new base64 master key; created (mode 0600) with a fresh key if missing.",
)
@json_option
@click.pass_context
def rotate_master_key_command(ctx: click.Context, new_key_file: Path, as_json: bool) -> None:
    """Re-seal every store key under a new master key, in one transaction (server stopped)."""
    settings = settings_from_context(ctx)
    # A running server keeps the old key in memory: after the rotation it could open no
    # store key until restarted, so the rotation waits for it to stop.
    reason = running_server_reason(settings)
    if reason:
        raise CliError(
            f"refusing to rotate the master key while the server runs ({reason}); stop it "
            "first (`systemctl stop orderdesk-mcp`), rotate, point the service at the new key, "
            "then start it"
        )
    try:
        # Held for the rotation, so no server starts with the old key half-way through.
        with hold_server_lock(settings.data_dir):
            count, created = _rotate(settings, new_key_file)
    except BackupError as exc:
        raise CliError(f"refusing to rotate the master key: {exc}") from None
    text = (
        f"Re-sealed {count} store key(s) under {new_key_file}"
        + (" (new key created)" if created else "")
        + ".\nNow point ORDERDESK_MCP_MASTER_KEY_FILE (or the systemd credential) at it, start "
        "the service, and back the new key up. Backups taken before now need the old key."
    )
    emit(as_json, {"stores": count, "new_key_file": str(new_key_file), "created": created}, text)


def _rotate(settings: Settings, new_key_file: Path) -> tuple[int, bool]:
    """Re-seal the store keys and the canary under the key in `new_key_file` (made if missing);
    returns (stores re-sealed, whether the key file was created)."""
    database = open_current_database(settings)
    old, _ = require_master_key(settings)
    created = False
    with translated_errors():
        if not new_key_file.exists():
            write_key_file(new_key_file, generate_master_key())
            created = True
        new = Vault(read_key_file(new_key_file))
        with database.atomic():
            count = rotate_master_key(old, new)
            reseal_canary(new)
            record_admin_action("master_key.rotate", details={"stores": count})
    return count, created
