"""/tenant/keys: the tenant's API keys: list, create (the key is shown once), revoke.

Through the same functions as `orderdesk-mcp key create|revoke` (auth.issue_key,
tenant_keys.revoke_api_key: revoking a key revokes the OAuth grants made by signing in with
it). Only bearer keys are listed here; an OAuth grant's rights row is on the apps page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Response, request
from werkzeug.datastructures import MultiDict

from orderdesk_mcp.auth import (
    MAX_LIVE_KEYS,
    TOOLSETS,
    AuthError,
    has_unsafe_characters,
    issue_key,
    live_keys,
)
from orderdesk_mcp.db.models import ApiKey, Tenant
from orderdesk_mcp.oauth import web
from orderdesk_mcp.oauth.web_sessions import BrowserSession
from orderdesk_mcp.tenant import area
from orderdesk_mcp.tenant.area import bp, tenant_page
from orderdesk_mcp.tenant_keys import (
    UnknownStoreAlias,
    aliases_of,
    revoke_api_key,
    store_aliases,
    store_ids_for,
)

READ_ONLY = "read-only"
READ_WRITE = "read-write"
MAX_LABEL_CHARS = 100
MAX_LISTED = MAX_LIVE_KEYS  # every live key fits on the page
TOO_MANY_KEYS = (
    f"You already have {MAX_LIVE_KEYS} API keys, the most you may have; revoke one you no "
    "longer use first."
)
STORE_GONE = "A store you chose was removed meanwhile; choose among the stores listed now."


class KeyFormError(ValueError):
    """What is wrong with the create form, as the sentence to show."""


@dataclass(frozen=True)
class KeyChoice:
    """The create form, as understood (also what is shown again after an error)."""

    label: str = ""
    access: str = READ_ONLY
    toolsets: frozenset[str] = frozenset(TOOLSETS)
    all_stores: bool = True
    stores: frozenset[str] = field(default_factory=frozenset)


def choice_from(form: MultiDict[str, str]) -> KeyChoice:
    """What the form says, leniently (for showing it again); never raises."""
    return KeyChoice(
        label=form.get("label", "").strip()[:MAX_LABEL_CHARS],
        access=READ_WRITE if form.get("access") == READ_WRITE else READ_ONLY,
        toolsets=frozenset(name for name in form.getlist("toolset") if name in TOOLSETS),
        all_stores=form.get("stores") != "chosen",
        stores=frozenset(form.getlist("store")),
    )


def parse_key_form(form: MultiDict[str, str], aliases: list[str]) -> KeyChoice:
    """The key the form asks for, or KeyFormError; nothing chosen is never read as "all"."""
    label = form.get("label", "").strip()
    if len(label) > MAX_LABEL_CHARS:
        raise KeyFormError(f"Keep the label under {MAX_LABEL_CHARS} characters.")
    if has_unsafe_characters(label):
        raise KeyFormError(
            "The label cannot hold control or formatting characters; use plain text."
        )
    access = form.get("access")
    if access not in (READ_ONLY, READ_WRITE):
        raise KeyFormError("Choose read-only or read-write.")
    toolsets = form.getlist("toolset")
    if not toolsets:
        raise KeyFormError("Choose at least one kind of tool.")
    if any(name not in TOOLSETS for name in toolsets):
        raise KeyFormError("Choose among the kinds of tool listed.")
    scope = form.get("stores", "all")
    stores = form.getlist("store")
    if scope not in ("all", "chosen"):
        raise KeyFormError("Choose all stores, or the stores listed.")
    if scope == "chosen" and not stores:
        raise KeyFormError("Tick at least one store, or choose all stores.")
    if scope == "chosen" and any(alias not in aliases for alias in stores):
        raise KeyFormError("Choose among the stores listed.")
    return KeyChoice(
        label=label,
        access=access,
        toolsets=frozenset(toolsets),
        all_stores=scope == "all",
        stores=frozenset(stores) if scope == "chosen" else frozenset(),
    )


def _live_keys(tenant: Tenant) -> list[ApiKey]:
    return list(live_keys(tenant).order_by(ApiKey.id.desc()).limit(MAX_LISTED))


def _page(
    tenant: Tenant,
    *,
    choice: KeyChoice | None = None,
    error: str | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    aliases = aliases_of(tenant)
    by_id = {row_id: alias for alias, row_id in aliases.items()}
    keys = [
        {
            "public_id": key.public_id,
            "label": key.label,
            "access": READ_ONLY if "write" not in key.scopes.split(",") else READ_WRITE,
            "toolsets": (key.toolsets or "all").replace(",", ", "),
            "stores": store_aliases(key.store_ids, by_id).replace(",", ", "),
            "created": key.created,
            "last_used": key.last_used,
        }
        for key in _live_keys(tenant)
    ]
    return area.render(
        "tenant_keys.html",
        status,
        keys=keys,
        listed_max=MAX_LISTED,
        aliases=list(aliases),
        toolsets=TOOLSETS,
        choice=choice or KeyChoice(),
        error=error,
        done=done,
    )


@bp.route("/keys", methods=["GET"])
@tenant_page
def keys(*, session: BrowserSession, tenant: Tenant) -> Response:
    revoked = request.args.get("revoked", "")[:40]
    done = None
    if revoked and _own_key(tenant, revoked, revoked_too=True) is not None:
        done = f"API key {revoked} is revoked; apps using it can no longer connect."
    return _page(tenant, done=done)


@bp.route("/keys", methods=["POST"])
@tenant_page
def create_key(*, session: BrowserSession, tenant: Tenant) -> Response:
    area.check_csrf(session)
    aliases = aliases_of(tenant)
    if any(alias not in aliases for alias in request.form.getlist("store")):
        # A store the form never offered (another tenant's alias, or none at all): the 404
        # every other id of someone else's gets, whichever "stores" choice came with it.
        return area.not_found()
    try:
        choice = parse_key_form(request.form, list(aliases))
    except KeyFormError as problem:
        return _page(tenant, choice=choice_from(request.form), error=str(problem), status=400)
    return issue_from_page(tenant, choice)


def issue_from_page(tenant: Tenant, choice: KeyChoice) -> Response:
    """Issue the key the form chose, or the form again with one sentence: at the cap, or
    when a chosen store was removed meanwhile (in another tab)."""
    toolsets = None if choice.toolsets == frozenset(TOOLSETS) else ",".join(sorted(choice.toolsets))
    try:
        store_ids = None if choice.all_stores else store_ids_for(tenant, sorted(choice.stores))
        issued = issue_key(
            tenant,
            read_only=choice.access == READ_ONLY,
            label=choice.label,
            toolsets=toolsets,
            store_ids=store_ids,
        )
    except UnknownStoreAlias:
        return _page(tenant, choice=choice, error=STORE_GONE, status=400)
    except AuthError:  # the cap (issue_key counts the live keys; the form checked the rest)
        return _page(tenant, choice=choice, error=TOO_MANY_KEYS, status=400)
    area.audit_tenant_action(
        tenant,
        "tenant.key.create",
        details={
            "public_id": issued.public_id,
            "read_only": choice.access == READ_ONLY,
            "label": choice.label,
            "toolsets": toolsets,
            "stores": None if choice.all_stores else ",".join(sorted(choice.stores)),
        },
    )
    # Rendered here, never redirected to: this reply is the only place the key ever appears.
    return area.render(
        "tenant_key_created.html",
        token=issued.token,
        public_id=issued.public_id,
        choice=choice,
        mcp_url=f"{web.settings().public_url}/mcp",
    )


def _own_key(tenant: Tenant, public_id: str, *, revoked_too: bool = False) -> ApiKey | None:
    """The tenant's own bearer key with this id, else None (another tenant's id included)."""
    query = ApiKey.select().where(
        (ApiKey.public_id == public_id) & (ApiKey.tenant == tenant) & (ApiKey.kind == "key")
    )
    if not revoked_too:
        query = query.where(ApiKey.revoked.is_null())
    row: ApiKey | None = query.first()
    return row


@bp.route("/keys/<public_id>/revoke", methods=["POST"])
@tenant_page
def revoke_key(public_id: str, *, session: BrowserSession, tenant: Tenant) -> Response:
    area.check_csrf(session)
    return revoke_from_page(tenant, public_id)


def revoke_from_page(tenant: Tenant, public_id: str) -> Response:
    """Revoke the tenant's own live key; the 404 page for anything else, including a key
    revoked meanwhile (a second tab) or one that stopped being the tenant's."""
    if _own_key(tenant, public_id) is None:
        return area.not_found()
    try:
        row, grants = revoke_api_key(public_id)
    except AuthError:
        return area.not_found()
    area.audit_tenant_action(
        tenant, "tenant.key.revoke", details={"public_id": row.public_id, "grants_revoked": grants}
    )
    return Response(status=303, headers={"Location": f"/tenant/keys?revoked={row.public_id}"})
