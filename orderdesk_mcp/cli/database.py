"""init, the schema migrations (db upgrade|status) and master key rotation."""

from __future__ import annotations

from pathlib import Path

import click

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.cli.base import (
    DATABASE_ERRORS,
    CliError,
    connect_database,
    emit,
    json_option,
    load_vault,
    open_current_database,
    settings_from_context,
    translated_errors,
)
from orderdesk_mcp.db.migrations import (
    LATEST_VERSION,
    apply_migrations,
    current_version,
    pending_migrations,
)
from orderdesk_mcp.tenancy import rotate_master_key
from orderdesk_mcp.vault import (
    Vault,
    find_master_key_source,
    generate_master_key,
    read_key_file,
    write_key_file,
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
    result = {
        "data_dir": str(settings.data_dir),
        "database": settings.effective_database_url
        if settings.database_url
        else str(settings.database_path),
        "schema_version": current_version(db),
        "master_key_created": created_key,
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
    """Database schema migrations."""


@db.command("upgrade")
@json_option
@click.pass_context
def db_upgrade(ctx: click.Context, as_json: bool) -> None:
    """Apply pending migrations."""
    database = connect_database(settings_from_context(ctx))
    try:
        applied = apply_migrations(database)
    except DATABASE_ERRORS as exc:
        raise CliError(f"cannot upgrade the database: {exc}") from None
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    emit(
        as_json,
        {"applied": names, "schema_version": current_version(database)},
        f"Applied: {', '.join(names)}" if names else "Nothing to apply: the schema is current.",
    )


@db.command("status")
@json_option
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Show the schema version and pending migrations."""
    database = connect_database(settings_from_context(ctx))
    try:
        pending = pending_migrations(database)
        version = current_version(database)
    except DATABASE_ERRORS as exc:
        raise CliError(f"cannot read the database: {exc}") from None
    names = [f"{m.version:04d}_{m.name}" for m in pending]
    emit(
        as_json,
        {"schema_version": version, "latest_version": LATEST_VERSION, "pending": names},
        f"Schema version {version} of {LATEST_VERSION}."
        + (f" Pending: {', '.join(names)} (run `orderdesk-mcp db upgrade`)." if names else ""),
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
    """Re-seal every store key under a new master key, in one transaction."""
    settings = settings_from_context(ctx)
    database = open_current_database(settings)
    old = load_vault(settings)
    created = False
    with translated_errors():
        if not new_key_file.exists():
            write_key_file(new_key_file, generate_master_key())
            created = True
        new = Vault(read_key_file(new_key_file))
        with database.atomic():
            count = rotate_master_key(old, new)
            record_admin_action("master_key.rotate", details={"stores": count})
    text = (
        f"Re-sealed {count} store key(s) under {new_key_file}"
        + (" (new key created)" if created else "")
        + ".\nNow point ORDERDESK_MCP_MASTER_KEY_FILE (or the systemd credential) at it, restart "
        "the service, and back the new key up. Backups taken before now need the old key."
    )
    emit(as_json, {"stores": count, "new_key_file": str(new_key_file), "created": created}, text)
