"""A tenant's Order Desk stores: store add|list|remove|verify|default|set-key (keys sealed,
never printed)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from orderdesk_mcp.admin_audit import record_admin_action
from orderdesk_mcp.cli.base import (
    CliError,
    emit,
    json_option,
    open_current_database,
    require_master_key,
    settings_from_context,
    table,
    translated_errors,
)
from orderdesk_mcp.config import SETTINGS_BY_NAME, Settings, SettingsError
from orderdesk_mcp.db.models import Store, Tenant
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.store_checks import (
    StoreCheckFailed,
    change_store_key,
    check_store_credentials,
    connect_store,
    mark_verified,
)
from orderdesk_mcp.tenancy import (
    TenancyError,
    get_tenant,
    list_stores,
    open_store_key,
    remove_store,
    require_store,
    set_default_store,
)
from orderdesk_mcp.vault import VaultError


@click.group()
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
    vault, _ = require_master_key(settings)
    if base_url is not None:
        try:
            base_url = SETTINGS_BY_NAME["orderdesk_api_base_url"].parse(base_url)
        except SettingsError as exc:
            raise CliError(f"--base-url {base_url!r} is not valid: expected {exc}") from None
    with translated_errors():
        row = get_tenant(tenant_name)
        upstream = contextlib.nullcontext(None) if no_verify else _upstream(settings)
        with upstream as machinery, _explained_check_failure():
            saved = connect_store(
                row,
                store_id=store_id,
                api_key=api_key,
                vault=vault,
                machinery=machinery,
                default_base_url=settings.orderdesk_api_base_url,
                alias=alias,
                base_url=base_url,
                make_default=make_default,
            )
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
    vault, _ = require_master_key(settings)
    with translated_errors():
        row, found = _tenant_store(tenant_name, store_ref)
        try:
            api_key = open_store_key(found, vault)
        except VaultError:
            raise TenancyError(
                f"the saved API key of store {found.alias} ({found.store_id}) cannot be opened "
                "with this master key (the row is damaged or was sealed under another key); "
                f"remove the store (`orderdesk-mcp store remove --tenant {row.name} "
                f"{found.alias}`) and add it again with `store add`"
            ) from None
        with _upstream(settings) as machinery, _explained_check_failure():
            check_store_credentials(
                machinery,
                found.store_id,
                api_key,
                found.base_url or settings.orderdesk_api_base_url,
            )
        mark_verified(found)
        record_admin_action("store.verify", tenant=row, store=found.alias)
    emit(
        as_json, {"store": found.alias, "ok": True}, f"Store {found.alias}: connection successful."
    )


@store.command("default")
@click.option("--tenant", "tenant_name", required=True, help="Tenant that owns the store.")
@click.argument("store_ref")
@json_option
@click.pass_context
def store_default(ctx: click.Context, tenant_name: str, store_ref: str, as_json: bool) -> None:
    """Make a store (alias or store id) the tenant's default: tools use it when no store is
    named. The same function as the tenant page's "Make default"."""
    open_current_database(settings_from_context(ctx))
    with translated_errors():
        owner = get_tenant(tenant_name)
        row = set_default_store(owner, store_ref)
        record_admin_action("store.default", tenant=owner, store=row.alias)
    emit(as_json, {"default": row.alias}, f"Store {row.alias} is now {owner.name}'s default.")


@store.command("set-key")
@click.option("--tenant", "tenant_name", required=True, help="Tenant that owns the store.")
@click.option(
    "--api-key-stdin",
    is_flag=True,
    required=True,
    help="Read the new Order Desk API key from standard input (one line).",
)
@click.argument("store_ref")
@json_option
@click.pass_context
def store_set_key(
    ctx: click.Context, tenant_name: str, api_key_stdin: bool, store_ref: str, as_json: bool
) -> None:
    """Replace a store's Order Desk API key: tested with Order Desk GET /test first, then
    sealed in place of the old one (which stays when the test fails). Keeps the store's row,
    so keys narrowed to it keep reaching it."""
    api_key = sys.stdin.readline().strip()
    settings = settings_from_context(ctx)
    open_current_database(settings)
    vault, _ = require_master_key(settings)
    with translated_errors():
        owner, found = _tenant_store(tenant_name, store_ref)
        with _upstream(settings) as machinery, _explained_key_check_failure():
            saved = change_store_key(
                found,
                api_key,
                vault=vault,
                machinery=machinery,
                default_base_url=settings.orderdesk_api_base_url,
            )
        record_admin_action("store.set_key", tenant=owner, store=saved.alias)
    emit(
        as_json,
        {"store": saved.alias, "ok": True},
        f"Store {saved.alias}: new API key tested and saved.",
    )


@contextlib.contextmanager
def _explained_key_check_failure() -> Iterator[None]:
    try:
        yield
    except StoreCheckFailed as failed:
        raise TenancyError(f"{failed}; the old API key is kept") from None


def _tenant_store(tenant_name: str, store_ref: str | None) -> tuple[Tenant, Store]:
    """The tenant and its store (alias or store id; None: the default), or TenancyError."""
    owner = get_tenant(tenant_name)
    return owner, require_store(owner, store_ref)


def _upstream(settings: Settings) -> contextlib.closing[UpstreamMachinery]:
    """Order Desk machinery for one command (the server's is not running here)."""
    return contextlib.closing(UpstreamMachinery.from_settings(settings))


@contextlib.contextmanager
def _explained_check_failure() -> Iterator[None]:
    """A failed credential check, said the command line's way (with its --no-verify hint)."""
    try:
        yield
    except StoreCheckFailed as failed:
        if failed.refused:
            raise TenancyError(
                f"{failed}; check the store id and API key (or pass --no-verify to save them "
                "unchecked)"
            ) from None
        raise TenancyError(
            f"{failed}; try again later (or pass --no-verify to save the credentials unchecked)"
        ) from None
