"""/tenant/stores: the tenant's Order Desk stores: list, add, replace a key, default, remove.

Everything goes through the functions `store add` uses (store_checks.py, tenancy.py): a new
key is tested with Order Desk before it is kept and sealed at once. Store URLs carry the
store's row id, looked up within the signed-in tenant only (another tenant's id is a 404).
A key typed here is never rendered back, logged or audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, current_app, request

from orderdesk_mcp.db.models import Store, Tenant
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.services import Services, get_services
from orderdesk_mcp.store_checks import StoreCheckFailed, change_store_key, connect_store
from orderdesk_mcp.tenancy import (
    TenancyError,
    check_new_store,
    list_stores,
    remove_store,
    set_default_store,
    store_of_tenant,
)
from orderdesk_mcp.tenant.area import (
    audit_tenant_action,
    bp,
    check_csrf,
    message,
    not_found,
    render,
    tenant_page,
)
from orderdesk_mcp.tenant.store_forms import (
    NewStore,
    StoreFormError,
    read_api_key,
    read_new_store,
    sentence,
)
from orderdesk_mcp.tenant.store_limits import ConnectionTestLimits
from orderdesk_mcp.vault import Vault

LIMITS_KEY = "orderdesk_mcp.tenant.connection_test_limits"
STORES_PATH = "/tenant/stores"
# What a finished action says on the list (?done=...): fixed sentences, nothing reflected.
DONE = {
    "added": "The store is connected: Order Desk accepted its key, and it is kept encrypted.",
    "key": "The new API key works and is saved; the old one is no longer used.",
    "default": "The default store is changed.",
    "removed": "The store is removed, with its saved key.",
}
KEY_REFUSED_NEW = (
    "Order Desk did not accept this store id and API key, so nothing was saved; copy both "
    "again from Store Settings → API in Order Desk."
)
KEY_REFUSED_REPLACE = (
    "Order Desk did not accept this API key, so the old key is kept; copy the key again from "
    "Store Settings → API in Order Desk."
)
UPSTREAM_DOWN = (
    "Order Desk could not be reached to check the key, so nothing was changed; try again in a "
    "few minutes."
)
NO_VAULT = "Keys cannot be saved right now (the service has no master key); tell the operator."


def _services() -> Services:
    return get_services(current_app)


def _limits() -> ConnectionTestLimits:
    # Made on first use, one per app (setdefault: two first requests at once keep one).
    limits: ConnectionTestLimits | None = current_app.extensions.get(LIMITS_KEY)
    if limits is None:
        limits = current_app.extensions.setdefault(
            LIMITS_KEY, ConnectionTestLimits(_services().settings)
        )
    return limits


def _abort_if_tested_too_often(tenant: Tenant) -> None:
    """Count one connection test; answer the 429 page instead when this tenant or address
    has used up its tests."""
    waited = _limits().hit(tenant.id, request.remote_addr or "unknown")
    if waited is None:
        return
    minutes = max(1, round(waited / 60))
    response = message(
        "Too many checks",
        f"Too many key checks with Order Desk in a short time; try again in about {minutes} "
        f"minute{'s' if minutes != 1 else ''}.",
        429,
    )
    response.headers["Retry-After"] = str(waited)
    abort(response)


def _tested_with_order_desk(
    tenant: Tenant,
    attempt: Callable[[Vault, UpstreamMachinery, str], Store],
    *,
    action: str,
    refused_text: str,
    store: str | None = None,
    details: dict[str, Any] | None = None,
) -> Store | str:
    """Run `attempt` (which tests a key with Order Desk, then saves it) within the limits:
    the store it saved, or the page's sentence when Order Desk did not accept the key. A
    refusal is audited as `<action>_refused` (`_unchecked` when Order Desk gave no answer):
    tries with wrong keys stay visible to the tenant."""
    services = _services()
    if services.vault is None or services.machinery is None:
        abort(message("Cannot save keys", NO_VAULT, 503))
    _abort_if_tested_too_often(tenant)
    try:
        return attempt(services.vault, services.machinery, services.settings.orderdesk_api_base_url)
    except StoreCheckFailed as failed:
        outcome = "refused" if failed.refused else "unchecked"
        audit_tenant_action(
            tenant, f"{action}_{outcome}", store=store, details=details, outcome=outcome
        )
        return refused_text if failed.refused else UPSTREAM_DOWN


def _stores_page(
    tenant: Tenant,
    *,
    kept: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    settings = _services().settings
    done = DONE.get(request.args.get("done", "")) if request.method == "GET" else None
    return render(
        "stores.html",
        status,
        stores=list_stores(tenant.id),
        official_base_url=settings.orderdesk_api_base_url,
        base_urls=settings.store_base_urls,
        kept=kept or {},
        error=error,
        done=done,
    )


def _store_in_url(tenant: Tenant, store_ref: str) -> Store:
    """The tenant's store named by the row id in the URL; anything else answers the 404 page
    (another tenant's store looks exactly like one that never existed)."""
    store = None
    if store_ref.isascii() and store_ref.isdigit() and len(store_ref) <= 18:
        store = store_of_tenant(tenant, int(store_ref))
    if store is None:
        abort(not_found())
    return store


def _redirect_done(what: str) -> Response:
    return Response(status=303, headers={"Location": f"{STORES_PATH}?done={what}"})


@bp.route("/stores", methods=["GET", "POST"])
@tenant_page
def stores(*, session: BrowserSession, tenant: Tenant) -> Response:
    if request.method == "GET":
        return _stores_page(tenant)
    check_csrf(session)
    try:
        wanted = read_new_store(request.form, _services().settings.store_base_urls)
    except StoreFormError as problem:
        return _stores_page(tenant, kept=problem.kept, error=problem.message, status=400)
    return _add_store(tenant, wanted)


def _add_store(tenant: Tenant, wanted: NewStore) -> Response:
    kept = {
        "store_id": wanted.store_id,
        "alias": wanted.alias or "",
        "base_url": wanted.base_url or "",
        "default": "on" if wanted.make_default else "",
    }
    try:
        # A taken alias is refused before a connection test is spent on it.
        check_new_store(
            tenant, store_id=wanted.store_id, api_key=wanted.api_key, alias=wanted.alias
        )
    except TenancyError as problem:
        return _stores_page(tenant, kept=kept, error=sentence(problem), status=400)

    def attempt(vault: Vault, machinery: UpstreamMachinery, default_base_url: str) -> Store:
        return connect_store(
            tenant,
            store_id=wanted.store_id,
            api_key=wanted.api_key,
            vault=vault,
            machinery=machinery,
            default_base_url=default_base_url,
            alias=wanted.alias,
            base_url=wanted.base_url,
            make_default=wanted.make_default,
        )

    try:
        saved = _tested_with_order_desk(
            tenant,
            attempt,
            action="store.add",
            refused_text=KEY_REFUSED_NEW,
            details={"store_id": wanted.store_id, "base_url": wanted.base_url},
        )
    except TenancyError as problem:  # e.g. the alias taken meanwhile in another tab
        return _stores_page(tenant, kept=kept, error=sentence(problem), status=400)
    if isinstance(saved, str):
        return _stores_page(tenant, kept=kept, error=saved, status=400)
    audit_tenant_action(
        tenant,
        "store.add",
        store=saved.alias,
        details={"store_id": saved.store_id, "base_url": saved.base_url, "verified": True},
    )
    return _redirect_done("added")


@bp.route("/stores/<store_ref>/key", methods=["GET", "POST"])
@tenant_page
def store_key(store_ref: str, *, session: BrowserSession, tenant: Tenant) -> Response:
    store = _store_in_url(tenant, store_ref)
    if request.method == "GET":
        return render("store_key.html", store=store)
    check_csrf(session)
    try:
        api_key = read_api_key(request.form, {})
    except StoreFormError as problem:
        return render("store_key.html", 400, store=store, error=problem.message)

    def attempt(vault: Vault, machinery: UpstreamMachinery, default_base_url: str) -> Store:
        return change_store_key(
            store, api_key, vault=vault, machinery=machinery, default_base_url=default_base_url
        )

    changed = _tested_with_order_desk(
        tenant, attempt, action="store.key", refused_text=KEY_REFUSED_REPLACE, store=store.alias
    )
    if isinstance(changed, str):
        return render("store_key.html", 400, store=store, error=changed)
    audit_tenant_action(tenant, "store.key", store=store.alias)
    return _redirect_done("key")


@bp.route("/stores/<store_ref>/default", methods=["POST"])
@tenant_page
def store_default(store_ref: str, *, session: BrowserSession, tenant: Tenant) -> Response:
    check_csrf(session)
    return default_from_page(tenant, _store_in_url(tenant, store_ref))


def default_from_page(tenant: Tenant, store: Store) -> Response:
    """Make the store the default; the 404 page when it was removed meanwhile (another tab)."""
    try:
        set_default_store(tenant, store.alias)
    except TenancyError:
        return not_found()
    audit_tenant_action(tenant, "store.default", store=store.alias)
    return _redirect_done("default")


@bp.route("/stores/<store_ref>/remove", methods=["GET", "POST"])
@tenant_page
def store_remove(store_ref: str, *, session: BrowserSession, tenant: Tenant) -> Response:
    store = _store_in_url(tenant, store_ref)
    if request.method == "GET":
        return render("store_remove.html", store=store)
    check_csrf(session)
    return remove_from_page(tenant, store)


def remove_from_page(tenant: Tenant, store: Store) -> Response:
    """Remove the store; the 404 page when it was removed meanwhile (another tab)."""
    try:
        removed = remove_store(tenant, store.alias)
    except TenancyError:
        return not_found()
    audit_tenant_action(
        tenant, "store.remove", store=removed.alias, details={"store_id": removed.store_id}
    )
    return _redirect_done("removed")
