"""The one set of helpers for the tenant-area tests (/tenant/...).

- The app: settings with the area on (OAuth needs ORDERDESK_MCP_PUBLIC_URL), the real app over
  a fresh database, a tenant with a password.
- A browser: a Flask test client signed in through /tenant/sign-in as a person would (GET the
  form for its CSRF token, POST it, follow the redirect), and the CSRF token of a page.
- The sweeps' tenants (`make_merchant`: stores, keys, a grant and activity, with the strings
  and database ids that identify its records), a crawler that finds every page and form
  under /tenant/ from the pages' own HTML (a new page or form is swept as soon as a
  signed-in page links to it), and snapshots of a tenant's rows to compare before and after.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import peewee
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from orderdesk_mcp.app import get_services
from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.db.models import (
    ApiKey,
    AuditEvent,
    OAuthClient,
    OAuthGrant,
    OAuthToken,
    Store,
    Tenant,
    WebSession,
)
from orderdesk_mcp.invites import set_password
from orderdesk_mcp.oauth.grants import create_grant
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file
from tests.conftest import make_mcp_app
from tests.oauth_e2e import Form, parse_forms
from tests.oauth_helpers import oauth_settings

PUBLIC_URL = "http://127.0.0.1:8080"
PASSWORD = "correct horse battery staple"
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
AREA = "/tenant/"
# Pages the crawl never opens: signing out ends the session it crawls with, the invite and
# sign-in pages belong to no signed-in tenant, and static files hold no forms.
NOT_CRAWLED = ("/tenant/sign-out", "/tenant/sign-in", "/tenant/invite/", "/tenant/static/")


# --- the app -------------------------------------------------------------------------------------


def tenant_settings(data_dir: Path, **extra: str) -> Settings:
    """Settings with OAuth on (the tenant area needs ORDERDESK_MCP_PUBLIC_URL)."""
    return oauth_settings(data_dir, PUBLIC_URL, **extra)


@contextmanager
def tenant_app(data_dir: Path, **extra: str) -> Iterator[Flask]:
    """The real app with OAuth and the tenant area on, over a fresh database in `data_dir`."""
    if not (data_dir / "master.key").exists():
        write_key_file(data_dir / "master.key", generate_master_key())
    settings = tenant_settings(data_dir, **extra)
    database = open_database(settings)
    apply_migrations(database)
    application = make_mcp_app(settings, database, Vault.from_settings(settings))
    try:
        yield application
    finally:
        machinery = get_services(application).machinery
        if machinery is not None:
            machinery.close()
        database.close()


def vault_of(app: Flask) -> Vault:
    vault = get_services(app).vault
    assert vault is not None, "the tenant app is built with a vault"
    return vault


def make_tenant(name: str, password: str = PASSWORD) -> Tenant:
    """A tenant that can sign in to the area with `password`."""
    tenant = create_tenant(name, Vault.new_tenant_salt())
    set_password(tenant, password)
    return Tenant.get_by_id(tenant.id)  # type: ignore[no-any-return]


# --- a signed-in browser -------------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]+)"|value="([^"]+)"\s+name="csrf_token"')
REDIRECTS = (301, 302, 303, 307, 308)


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, f"no csrf_token on the page: {html[:500]}"
    return match.group(1) or match.group(2)


def follow(client: FlaskClient, reply: TestResponse, limit: int = 5) -> TestResponse:
    """Follow redirects on the server, as a browser does."""
    for _ in range(limit):
        if reply.status_code not in REDIRECTS:
            return reply
        reply = client.get(reply.headers["Location"])
    return reply


def sign_in(
    browser: FlaskClient, name: str, password: str = PASSWORD, *, next_path: str = ""
) -> TestResponse:
    """Sign in through the form (GET for the CSRF token, then POST); returns the POST reply."""
    url = "/tenant/sign-in" + (f"?next={next_path}" if next_path else "")
    page = browser.get(url)
    assert page.status_code == 200, page.text
    return browser.post(
        url, data={"csrf_token": csrf_of(page.text), "username": name, "password": password}
    )


def signed_in(browser: FlaskClient, name: str, password: str = PASSWORD) -> FlaskClient:
    """`browser`, signed in: the sign-in redirected (303) to a page of the area that opens."""
    reply = sign_in(browser, name, password)
    assert reply.status_code == 303, reply.text
    landed = follow(browser, reply)
    assert landed.status_code == 200, landed.text
    assert "/tenant/sign-in" not in (landed.request.path or ""), "the sign-in was refused"
    return browser


def page_csrf(browser: FlaskClient, path: str) -> str:
    """The CSRF token of the signed-in session, read from a page's form."""
    page = browser.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


# --- the sweeps' two tenants ---------------------------------------------------------------------

# The collections whose records the pages name by database id in a URL
# (/tenant/<collection>/<id>/...); keys and grants are named by their public ids instead.
ROW_COLLECTIONS = ("stores", "keys", "apps")


@dataclass
class Merchant:
    """One tenant and everything it owns, with the strings that identify its records."""

    name: str
    password: str
    tenant: Tenant
    aliases: list[str]
    store_ids: list[str]  # Order Desk store ids
    key_public_ids: list[str]
    key_labels: list[str]
    grant_public_ids: list[str]
    # Database ids of its records by collection (ROW_COLLECTIONS): ids are only unique within
    # one table, so a store's id may well be another tenant's grant id.
    row_ids: dict[str, set[str]] = field(default_factory=dict)

    def markers(self) -> set[str]:
        """Strings only this tenant's records carry: seeing one elsewhere is a leak."""
        return {
            *self.aliases,
            *self.store_ids,
            *self.key_public_ids,
            *self.key_labels,
            *self.grant_public_ids,
        }

    def browser(self, app: Flask) -> FlaskClient:
        """A new browser signed in as this tenant."""
        return signed_in(app.test_client(), self.name, self.password)


def _client(client_id: str, name: str) -> OAuthClient:
    metadata = {
        "client_name": name,
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    return OAuthClient.create(  # type: ignore[no-any-return]
        client_id=client_id, kind="registered", auth_method="none", metadata=json.dumps(metadata)
    )


def make_merchant(
    name: str, vault: Vault, *, stores: list[tuple[str, str]], base_url: str | None
) -> Merchant:
    """A tenant with a password, `stores` (Order Desk id, alias), two keys (one read-only,
    narrowed to its first store), a grant to an app of its own, and a few audit rows."""
    password = f"{name} password, long enough 42"
    tenant = make_tenant(name, password)
    rows = [
        add_store(
            tenant,
            store_id=store_id,
            api_key=f"sk_secret_{name}_{store_id}",
            vault=vault,
            alias=alias,
            base_url=base_url,
        )
        for store_id, alias in stores
    ]
    keys = [
        issue_key(tenant, label=f"{name}-laptop"),
        issue_key(
            tenant, read_only=True, label=f"{name}-reports", store_ids=frozenset({rows[0].id})
        ),
    ]
    key_rows = [ApiKey.get(ApiKey.public_id == key.public_id) for key in keys]
    grant = create_grant(
        tenant_id=tenant.id,
        client=_client(f"client-{name}", f"{name} assistant app"),
        rights=GrantRights.everything(),
        via_key_id=None,
        resource=f"{PUBLIC_URL}/mcp",
        redirect_uri="http://127.0.0.1:33418/callback",
    )
    # As the dispatcher records tool calls (mcp/audit.py): "tools/call <tool>".
    for action, outcome in (
        ("tools/call list_orders", "ok"),
        ("tools/call get_order", "not_found"),
        ("tools/call add_shipment", "ok"),
    ):
        AuditEvent.create(
            tenant=tenant,
            api_key=key_rows[0],
            action=action,
            store=rows[0].alias,
            arguments=json.dumps({"order_id": f"{name}-order-1"}),
            outcome=outcome,
        )
    return Merchant(
        name=name,
        password=password,
        tenant=tenant,
        aliases=[row.alias for row in rows],
        store_ids=[row.store_id for row in rows],
        key_public_ids=[row.public_id for row in key_rows],
        key_labels=[row.label for row in key_rows],
        grant_public_ids=[grant.public_id],
        row_ids={
            "stores": {str(row.id) for row in rows},
            "keys": {str(row.id) for row in key_rows} | {str(grant.api_key_id)},
            "apps": {str(grant.id)},
        },
    )


# --- the crawl -----------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


@dataclass
class FoundForm:
    page: str  # the path (with query) of the page it was on
    form: Form

    @property
    def action(self) -> str:
        return urljoin(PUBLIC_URL + self.page, self.form.action or self.page).removeprefix(
            PUBLIC_URL
        )

    @property
    def is_post(self) -> bool:
        return self.form.method.lower() == "post"

    def describe(self) -> str:
        names = sorted(self.form.names())
        return f"{self.form.method.upper()} {self.action} (on {self.page}, {names})"

    def signature(self) -> tuple[str, ...]:
        """What makes this form this form: where it posts, its fields and its buttons."""
        return (self.action, *sorted(self.form.names()), *sorted(map(str, self.form.buttons)))


@dataclass
class Crawl:
    pages: dict[str, str]  # path -> HTML of every signed-in page reached
    forms: list[FoundForm]

    def post_forms(self) -> list[FoundForm]:
        return [found for found in self.forms if found.is_post]

    def get_urls(self) -> list[str]:
        """Every page reached, and every GET form submitted as the page fills it."""
        urls = list(self.pages)
        for found in self.forms:
            if not found.is_post:
                values = {**found.form.values, **{k: v[0] for k, v in found.form.checked.items()}}
                urls.append(found.action.split("?")[0] + "?" + urlencode(values))
        return urls


def _in_area(url: str) -> str | None:
    parts = urlsplit(urljoin(PUBLIC_URL + AREA, url))
    if f"{parts.scheme}://{parts.netloc}" != PUBLIC_URL or not parts.path.startswith(AREA):
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return None if path.startswith(NOT_CRAWLED) else path


def crawl(client: FlaskClient, start: str = "/tenant/stores", limit: int = 60) -> Crawl:
    """Every page under /tenant/ reachable by links from `start`, and the forms on them."""
    seen: dict[str, str] = {}
    forms: list[FoundForm] = []
    queue = [start]
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        reply = client.get(path)
        assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text[:300]}"
        seen[path] = reply.text
        forms += [FoundForm(path, form) for form in parse_forms(reply.text)]
        links = _Links()
        links.feed(reply.text)
        queue += [p for href in links.hrefs if (p := _in_area(href)) and p not in seen]
    return Crawl(pages=seen, forms=forms)


# --- what a tenant owns, to compare before and after -------------------------------------------

_VOLATILE = {"last_seen", "expires"}  # a live session's idle clock moves on every request


def snapshot(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every row the tenant owns (its record, stores, keys, grants, tokens, sign-in sessions)."""

    def rows(query: peewee.ModelSelect) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in row.items() if k not in _VOLATILE}
            for row in query.order_by(query.model._meta.primary_key).dicts()
        ]

    grants = OAuthGrant.select(OAuthGrant.id).where(OAuthGrant.tenant == tenant.id)
    return {
        "tenant": rows(Tenant.select().where(Tenant.id == tenant.id)),
        "stores": rows(Store.select().where(Store.tenant == tenant.id)),
        "keys": rows(ApiKey.select().where(ApiKey.tenant == tenant.id)),
        "grants": rows(OAuthGrant.select().where(OAuthGrant.tenant == tenant.id)),
        "tokens": rows(OAuthToken.select().where(OAuthToken.grant.in_(grants))),
        "sessions": rows(WebSession.select().where(WebSession.tenant == tenant.id)),
    }


def fill(found: FoundForm, csrf_token: str | None, **known: str) -> list[tuple[str, str]]:
    """The form's fields as a person would submit it: its hidden values, every ticked or first
    choice, its first named button, `known` values by field name; no csrf_token when None."""
    fields = [(n, v) for n, v in found.form.values.items() if n != "csrf_token"]
    fields = [(n, known.get(n, v)) for n, v in fields]
    for name, offered in found.form.choices.items():
        picked = found.form.checked.get(name) or offered[:1]
        fields += [(name, value) for value in picked]
    fields += found.form.buttons[:1]
    if csrf_token is not None:
        fields.append(("csrf_token", csrf_token))
    return fields
