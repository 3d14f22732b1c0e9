"""The `orderdesk-mcp` command line (also `python -m orderdesk_mcp`).

Every command that prints data takes `--json` (one JSON document on stdout, nothing else).
Errors are one line on stderr: exit 1 for bad input, 2 for usage.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import peewee

from orderdesk_mcp import __version__
from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.auth import AuthError, issue_key, revoke_key
from orderdesk_mcp.config import SETTINGS, SETTINGS_BY_NAME, Settings, SettingsError, load_settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import (
    LATEST_VERSION,
    apply_migrations,
    current_version,
    pending_migrations,
)
from orderdesk_mcp.db.models import ApiKey, AuditEvent, Store, Tenant
from orderdesk_mcp.tenancy import (
    TenancyError,
    add_store,
    create_tenant,
    disable_tenant,
    find_store,
    get_tenant,
    list_stores,
    list_tenants,
    open_store_key,
    remove_store,
    rotate_master_key,
)
from orderdesk_mcp.vault import (
    Vault,
    VaultError,
    find_master_key_source,
    generate_master_key,
    read_key_file,
    write_key_file,
)


class CliError(click.ClickException):
    """Bad input or state: one line on stderr, exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


@dataclass
class CliState:
    env_file: Path | None
    data_dir: Path | None
    _settings: Settings | None = None

    def settings(self, **overrides: Any) -> Settings:
        if self._settings is None or overrides:
            try:
                settings = load_settings(
                    env_file=self.env_file, **{"data_dir": self.data_dir, **overrides}
                )
            except SettingsError as exc:
                raise CliError(str(exc)) from None
            if overrides:
                return settings
            self._settings = settings
        return self._settings


def settings_from_context(ctx: click.Context, **overrides: Any) -> Settings:
    state: CliState = ctx.find_root().obj
    return state.settings(**overrides)


# What opening or querying a database can raise when the URL, driver or file is wrong.
DATABASE_ERRORS = (peewee.OperationalError, peewee.ImproperlyConfigured, RuntimeError, OSError)


def connect_database(settings: Settings) -> peewee.Database:
    """Open the configured database or stop with one line naming the setting."""
    try:
        db = open_database(settings)
        db.connect(reuse_if_open=True)
    except DATABASE_ERRORS as exc:
        raise CliError(
            f"cannot open the database ({exc}); check ORDERDESK_MCP_DATABASE_URL and the data dir"
        ) from None
    return db


def open_current_database(settings: Settings, *, upgrade: bool = False) -> peewee.Database:
    """Open the database; refuse (or, with upgrade=True, apply) pending migrations."""
    db = connect_database(settings)
    version = current_version(db)
    if version > LATEST_VERSION:
        raise CliError(
            f"the database schema is at version {version}, newer than this release knows "
            f"({LATEST_VERSION}); run the newer release, or restore a backup taken before the "
            "upgrade (docs/DEPLOYMENT.md, rollback)"
        )
    if pending_migrations(db):
        if upgrade:
            apply_migrations(db)
        else:
            raise CliError(
                f"the database schema is at version {version}, this release needs "
                f"{LATEST_VERSION}; run `orderdesk-mcp db upgrade` first"
            )
    return db


def load_vault(settings: Settings) -> Vault:
    try:
        return Vault.from_settings(settings)
    except VaultError as exc:
        raise CliError(str(exc)) from None


@contextmanager
def translated_errors() -> Iterator[None]:
    """Our own bad-input errors become one clean line, never a traceback."""
    try:
        yield
    except (TenancyError, AuthError, VaultError, SettingsError) as exc:
        raise CliError(str(exc)) from None


def emit(as_json: bool, data: Any, text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [{c: "-" if r.get(c) is None else str(r[c]) for c in columns} for r in rows]
    widths = {c: max(len(c), *(len(cell[c]) for cell in cells)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(cell[c].ljust(widths[c]) for c in columns) for cell in cells]
    return "\n".join(line.rstrip() for line in lines)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _print_settings(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for spec in SETTINGS:
        default = "(hidden)" if spec.secret else (spec.default_text() or "(empty)")
        click.echo(f"{spec.env}\n    {spec.help}\n    default: {default}\n")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read settings from this KEY=VALUE file first (the environment still wins).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (database, cache, backups); overrides ORDERDESK_MCP_DATA_DIR.",
)
@click.option(
    "--help-settings",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_settings,
    help="List every setting (environment variable), its default and effect.",
)
@click.version_option(__version__, prog_name="orderdesk-mcp")
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None, data_dir: Path | None) -> None:
    """orderdesk-mcp: an MCP server for Order Desk stores."""
    ctx.obj = CliState(env_file=env_file, data_dir=data_dir)


# --- init and database ---------------------------------------------------------------


@cli.command()
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


@cli.group()
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


# --- tenants and keys ------------------------------------------------------------------


@cli.group()
def tenant() -> None:
    """Tenants: the customers of this server, each with its own stores and keys."""


@tenant.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The first API key may only read.")
@json_option
@click.pass_context
def tenant_create(ctx: click.Context, name: str, read_only: bool, as_json: bool) -> None:
    """Create a tenant and its first API key (shown once)."""
    settings = settings_from_context(ctx)
    open_current_database(settings)
    load_vault(settings)
    with translated_errors():
        row = create_tenant(name, Vault.new_tenant_salt())
        issued = issue_key(row, read_only=read_only, label="first key")
        record_admin_action("tenant.create", tenant=row, details={"key_id": issued.public_id})
    emit(
        as_json,
        {"tenant": row.name, "api_key": issued.token},
        f"Tenant {row.name} created.\nAPI key (shown once, store it now): {issued.token}",
    )


@tenant.command("list")
@json_option
@click.pass_context
def tenant_list(ctx: click.Context, as_json: bool) -> None:
    """List tenants."""
    open_current_database(settings_from_context(ctx))
    rows = [
        {
            "tenant": t.name,
            "disabled": t.disabled,
            "created": t.created.isoformat(sep=" ", timespec="seconds"),
            "stores": Store.select().where(Store.tenant == t).count(),
            "keys": ApiKey.select().where((ApiKey.tenant == t) & ApiKey.revoked.is_null()).count(),
        }
        for t in list_tenants()
    ]
    emit(
        as_json,
        {"tenants": rows},
        lambda: table(rows, ["tenant", "disabled", "stores", "keys", "created"]),
    )


@tenant.command("disable")
@click.argument("name")
@json_option
@click.pass_context
def tenant_disable(ctx: click.Context, name: str, as_json: bool) -> None:
    """Disable a tenant: its keys stop working at once; nothing is deleted."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = disable_tenant(name)
        record_admin_action("tenant.disable", tenant=row)
    emit(as_json, {"tenant": row.name, "disabled": True}, f"Tenant {row.name} disabled.")


@cli.group()
def key() -> None:
    """Tenant API keys (what MCP clients send as `Authorization: Bearer ...`)."""


@key.command("create")
@click.option("--tenant", "tenant_name", required=True, help="Tenant the key belongs to.")
@click.option("--read-only", is_flag=True, help="The key may only call read tools.")
@click.option("--label", default="", help="A note for operators, e.g. 'Claude on Ann's laptop'.")
@click.option(
    "--toolsets",
    default=None,
    help="Comma-separated toolsets this key may use (orders,items,shipments,inventory,store). "
    "Default: all.",
)
@json_option
@click.pass_context
def key_create(
    ctx: click.Context,
    tenant_name: str,
    read_only: bool,
    label: str,
    toolsets: str | None,
    as_json: bool,
) -> None:
    """Create an API key for a tenant (the secret is shown once)."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = get_tenant(tenant_name)
        issued = issue_key(row, read_only=read_only, label=label, toolsets=toolsets)
        record_admin_action(
            "key.create",
            tenant=row,
            details={"key_id": issued.public_id, "read_only": read_only, "label": label},
        )
    emit(
        as_json,
        {"tenant": row.name, "key_id": issued.public_id, "api_key": issued.token},
        f"API key {issued.public_id} for {row.name} (shown once): {issued.token}",
    )


@key.command("list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's keys.")
@json_option
@click.pass_context
def key_list(ctx: click.Context, tenant_name: str | None, as_json: bool) -> None:
    """List API keys (never their secrets)."""
    open_current_database(settings_from_context(ctx))
    query = ApiKey.select(ApiKey, Tenant).join(Tenant).order_by(Tenant.name, ApiKey.id)
    if tenant_name:
        with translated_errors():
            query = query.where(ApiKey.tenant == get_tenant(tenant_name))
    rows = [
        {
            "key_id": k.public_id,
            "tenant": k.tenant.name,
            "scopes": k.scopes,
            "toolsets": k.toolsets or "all",
            "label": k.label,
            "created": k.created.isoformat(sep=" ", timespec="seconds"),
            "last_used": k.last_used.isoformat(sep=" ", timespec="seconds")
            if k.last_used
            else None,
            "revoked": k.revoked.isoformat(sep=" ", timespec="seconds") if k.revoked else None,
        }
        for k in query
    ]
    emit(
        as_json,
        {"keys": rows},
        lambda: table(
            rows, ["key_id", "tenant", "scopes", "toolsets", "label", "last_used", "revoked"]
        ),
    )


@key.command("revoke")
@click.argument("key_id")
@json_option
@click.pass_context
def key_revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke an API key by its id (the part after `odmcp_`); it stops working at once."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        row = revoke_key(key_id)
        record_admin_action("key.revoke", tenant=row.tenant, details={"key_id": row.public_id})
    emit(as_json, {"key_id": row.public_id, "revoked": True}, f"API key {row.public_id} revoked.")


# --- stores ------------------------------------------------------------------------------


@cli.group()
def store() -> None:
    """A tenant's Order Desk stores (their API keys are kept sealed)."""


def _store_row(s: Any) -> dict[str, Any]:
    return {
        "tenant": s.tenant.name,
        "alias": s.alias,
        "store_id": s.store_id,
        "default": s.is_default,
        "base_url": s.base_url,
        "last_verified": s.last_verified.isoformat(sep=" ", timespec="seconds")
        if s.last_verified
        else None,
    }


@store.command("add")
@click.option("--tenant", "tenant_name", required=True, help="Tenant that owns the store.")
@click.option("--store-id", required=True, help="Order Desk store id (Store Settings → API).")
@click.option(
    "--api-key-stdin",
    is_flag=True,
    help="Read the Order Desk API key from standard input (keeps it out of shell history).",
)
@click.option(
    "--api-key",
    default=None,
    help="The Order Desk API key on the command line (visible in `ps`; prefer --api-key-stdin).",
)
@click.option(
    "--alias", default=None, help="Short name tools use for the store. Default: store id."
)
@click.option(
    "--base-url", default=None, help="Order Desk API base URL for this store (e.g. the sandbox)."
)
@click.option("--default", "make_default", is_flag=True, help="Make it the tenant's default store.")
@click.option("--no-verify", is_flag=True, help="Do not call Order Desk GET /test before saving.")
@json_option
@click.pass_context
def store_add(
    ctx: click.Context,
    tenant_name: str,
    store_id: str,
    api_key_stdin: bool,
    api_key: str | None,
    alias: str | None,
    base_url: str | None,
    make_default: bool,
    no_verify: bool,
    as_json: bool,
) -> None:
    """Register an Order Desk store for a tenant; its API key is sealed before it is saved."""
    if api_key_stdin == (api_key is not None):
        raise click.UsageError("give exactly one of --api-key-stdin or --api-key")
    if api_key_stdin:
        api_key = sys.stdin.readline().strip()
    assert api_key is not None
    settings = settings_from_context(ctx)
    open_current_database(settings)
    vault = load_vault(settings)
    if base_url is not None:
        try:
            base_url = SETTINGS_BY_NAME["orderdesk_api_base_url"].parse(base_url)
        except SettingsError as exc:
            raise CliError(f"--base-url {base_url!r} is not valid: expected {exc}") from None
    with translated_errors():
        row = get_tenant(tenant_name)
        if not no_verify:
            _verify_credentials(settings, store_id, api_key, base_url)
        saved = add_store(
            row,
            store_id=store_id,
            api_key=api_key,
            vault=vault,
            alias=alias,
            base_url=base_url,
            make_default=make_default,
        )
        if not no_verify:
            saved.last_verified = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            saved.save()
        record_admin_action(
            "store.add",
            tenant=row,
            store=saved.alias,
            details={"store_id": saved.store_id, "base_url": base_url, "verified": not no_verify},
        )
    emit(
        as_json,
        _store_row(saved),
        f"Store {saved.alias} ({saved.store_id}) added for {row.name}"
        + (" as the default." if saved.is_default else "."),
    )


@store.command("list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's stores.")
@json_option
@click.pass_context
def store_list(ctx: click.Context, tenant_name: str | None, as_json: bool) -> None:
    """List stores (never their API keys)."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        tenant_id = get_tenant(tenant_name).id if tenant_name else None
    rows = [_store_row(s) for s in list_stores(tenant_id)]
    emit(
        as_json,
        {"stores": rows},
        lambda: table(
            rows, ["tenant", "alias", "store_id", "default", "base_url", "last_verified"]
        ),
    )


@store.command("remove")
@click.option("--tenant", "tenant_name", required=True, help="Tenant that owns the store.")
@click.argument("store_ref")
@json_option
@click.pass_context
def store_remove(ctx: click.Context, tenant_name: str, store_ref: str, as_json: bool) -> None:
    """Remove a store (by alias or store id) and its sealed key."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        owner = get_tenant(tenant_name)
        row = remove_store(owner, store_ref)
        record_admin_action(
            "store.remove", tenant=owner, store=row.alias, details={"store_id": row.store_id}
        )
    emit(as_json, {"removed": row.alias}, f"Store {row.alias} removed.")


@store.command("verify")
@click.option("--tenant", "tenant_name", required=True, help="Tenant that owns the store.")
@click.argument("store_ref", required=False)
@json_option
@click.pass_context
def store_verify(
    ctx: click.Context, tenant_name: str, store_ref: str | None, as_json: bool
) -> None:
    """Check a store's credentials with Order Desk GET /test (default: the default store)."""
    settings = settings_from_context(ctx)
    open_current_database(settings)
    vault = load_vault(settings)
    with translated_errors():
        row = get_tenant(tenant_name)
        found = find_store(row.id, store_ref)
        if found is None:
            raise TenancyError(f"tenant {row.name!r} has no store {store_ref or '(default)'!r}")
        _verify_credentials(settings, found.store_id, open_store_key(found, vault), found.base_url)
        found.last_verified = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        found.save()
        record_admin_action("store.verify", tenant=row, store=found.alias)
    emit(
        as_json, {"store": found.alias, "ok": True}, f"Store {found.alias}: connection successful."
    )


def _verify_credentials(
    settings: Settings, store_id: str, api_key: str, base_url: str | None
) -> None:
    """Call Order Desk GET /test; raise TenancyError with the upstream's reason on failure."""
    from orderdesk_mcp.orderdesk import OrderDeskClient, UpstreamMachinery
    from orderdesk_mcp.orderdesk.errors import AuthError as UpstreamAuthError
    from orderdesk_mcp.orderdesk.errors import OrderDeskError

    machinery = UpstreamMachinery.from_settings(settings)
    try:
        client = OrderDeskClient(
            store_id, api_key, base_url or settings.orderdesk_api_base_url, machinery
        )
        client.test_connection()
    except UpstreamAuthError as exc:
        raise TenancyError(
            f"Order Desk refused the credentials of store {store_id}: {exc.message}; check the "
            "store id and API key (or pass --no-verify to save them unchecked)"
        ) from None
    except OrderDeskError as exc:
        raise TenancyError(
            f"could not check store {store_id} with Order Desk: {exc.message}; try again later "
            "(or pass --no-verify to save the credentials unchecked)"
        ) from None
    finally:
        machinery.close()


# --- master key ------------------------------------------------------------------------


@cli.command("rotate-master-key")
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


# --- audit -------------------------------------------------------------------------------


def _parse_since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
            seconds=int(value[:-1]) * units[value[-1]]
        )
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"--since {value!r} is not a time: use e.g. 30m, 12h, 7d or 2026-11-01T00:00:00"
        ) from None


@cli.group()
def audit() -> None:
    """The audit trail of tool calls and admin actions."""


@audit.command("list")
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's events.")
@click.option("--since", default=None, help="Only events after this: 30m, 12h, 7d or an ISO time.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@json_option
@click.pass_context
def audit_list(
    ctx: click.Context, tenant_name: str | None, since: str | None, limit: int, as_json: bool
) -> None:
    """List audit events, newest first."""
    open_current_database(settings_from_context(ctx))
    query = (
        AuditEvent.select(AuditEvent, Tenant)
        .join(Tenant, peewee.JOIN.LEFT_OUTER)
        .order_by(AuditEvent.time.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if tenant_name:
        with translated_errors():
            query = query.where(AuditEvent.tenant == get_tenant(tenant_name))
    start = _parse_since(since)
    if start is not None:
        query = query.where(AuditEvent.time >= start)
    rows = [
        {
            "time": e.time.isoformat(sep=" ", timespec="seconds"),
            "tenant": e.tenant.name if e.tenant else None,
            "action": e.action,
            "store": e.store,
            "outcome": e.outcome,
            "duration_ms": round(e.duration_ms, 1),
            "upstream_calls": e.upstream_calls,
            "arguments": json.loads(e.arguments or "{}"),
            "request_id": e.request_id,
        }
        for e in query
    ]
    emit(
        as_json,
        {"events": rows},
        lambda: table(rows, ["time", "tenant", "action", "store", "outcome", "duration_ms"]),
    )


# --- serving -------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Bind address. Default: ORDERDESK_MCP_HOST (127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Default: 8080.")
@click.option("--threads", default=None, type=click.IntRange(1, 256), help="Default: 8.")
@click.option(
    "--local",
    is_flag=True,
    help="Single user, no API keys: serve the store in ORDERDESK_STORE_ID / ORDERDESK_API_KEY "
    "on a loopback address only (anything else is refused).",
)
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, threads: int | None, local: bool
) -> None:
    """Serve MCP over HTTP with waitress (put nginx with HTTPS in front)."""
    settings = settings_from_context(ctx, host=host, port=port, threads=threads)
    run_server(settings, local=local)


@cli.command()
@click.pass_context
def stdio(ctx: click.Context) -> None:
    """Serve MCP on stdin/stdout for desktop clients (the store in ORDERDESK_STORE_ID /
    ORDERDESK_API_KEY; logs go to stderr)."""
    from orderdesk_mcp.logging import configure_logging
    from orderdesk_mcp.mcp.local import LocalModeError, run_stdio

    settings = settings_from_context(ctx)
    configure_logging(settings)
    try:
        run_stdio(settings)
    except LocalModeError as exc:
        raise CliError(str(exc)) from None


@cli.command()
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the MCP server (loopback only).",
)
@click.option(
    "--sandbox-port",
    default=8090,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the Order Desk sandbox (loopback only).",
)
@click.pass_context
def demo(ctx: click.Context, port: int, sandbox_port: int) -> None:
    """Run the sandbox and the server on a throwaway data dir and print how to connect."""
    from orderdesk_mcp.demo import run_demo, throwaway_data_dir

    state: CliState = ctx.find_root().obj
    throwaway = state.data_dir is None
    data_dir = state.data_dir or throwaway_data_dir()
    settings = settings_from_context(
        ctx, data_dir=data_dir, host="127.0.0.1", port=port, log_format="text"
    )
    try:
        run_demo(settings, sandbox_port)
    except OSError as exc:
        raise CliError(
            f"cannot start the demo: {exc.strerror or exc}; is another server on port {port} "
            f"or {sandbox_port}? Pick others with --port/--sandbox-port"
        ) from None
    finally:
        if throwaway:
            shutil.rmtree(data_dir, ignore_errors=True)


def run_server(settings: Settings, *, local: bool = False) -> None:
    from contextlib import nullcontext

    from orderdesk_mcp.app import MAX_REQUEST_BYTES, create_app, get_services
    from orderdesk_mcp.backup import BackupError, hold_server_lock
    from orderdesk_mcp.logging import configure_logging
    from orderdesk_mcp.mcp.local import LocalModeError, create_local_app
    from orderdesk_mcp.serving import GracefulServer

    configure_logging(settings)
    if local:
        try:
            app = create_local_app(settings)
        except LocalModeError as exc:
            raise CliError(str(exc)) from None
    else:
        open_current_database(settings)
        load_vault(settings)
        app = create_app(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "threads": settings.threads,
        "ident": "orderdesk-mcp",
        # Waitress buffers a body before Flask sees it; cap it at the app's own limit.
        "max_request_body_size": MAX_REQUEST_BYTES,
    }
    if settings.trusted_proxy:
        options["trusted_proxy"] = settings.trusted_proxy
        options["trusted_proxy_count"] = 1
        options["trusted_proxy_headers"] = {"x-forwarded-for", "x-forwarded-proto"}
        options["clear_untrusted_proxy_headers"] = True

    # Held while serving, so `backup restore` refuses to replace the database under us.
    guard = nullcontext() if local else hold_server_lock(settings.data_dir)
    try:
        with guard:
            try:
                server = GracefulServer(app, **options)
            except OSError as exc:
                raise CliError(
                    f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
                ) from None
            logging.getLogger("orderdesk_mcp").info(
                "serving MCP on http://%s:%s/mcp", settings.host, server.port
            )
            # SIGTERM (systemctl stop) and Ctrl-C finish the requests in flight first.
            server.run()
    except BackupError as exc:
        raise CliError(str(exc)) from None
    finally:
        get_services(app).close()


def _add_subcommands() -> None:
    # Imported here: those modules import helpers from this one.
    from orderdesk_mcp.backup_cli import backup
    from orderdesk_mcp.sandbox.cli import sandbox_command

    cli.add_command(backup)
    cli.add_command(sandbox_command, name="sandbox")


_add_subcommands()


def main() -> None:
    # Under cron or systemd the locale may be C; click needs nothing more than UTF-8 output.
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    cli(prog_name="orderdesk-mcp")
