"""CSRF: every state-changing form under /tenant/ is refused (400) without a csrf_token, with
a wrong one and with another session's, and nothing changes; with its own token the same
submission gets past the check (so the refusal was the token's, not the fields').

The forms are found by crawling the signed-in pages (every <form method="post">), so a new
form is swept without anyone listing it. The sign-in and invite forms are added by hand:
no signed-in page links to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from orderdesk_mcp.db.models import TenantInvite, WebSession
from orderdesk_mcp.invites import create_invite
from orderdesk_mcp.sandbox import RunningSandbox
from tests.oauth_e2e import parse_forms
from tests.tenant_helpers import (
    PUBLIC_URL,
    FoundForm,
    Merchant,
    crawl,
    csrf_of,
    fill,
    make_merchant,
    snapshot,
    tenant_app,
    vault_of,
)

NEW_PASSWORD = "a brand new password, long enough 7"


@dataclass
class Shop:
    app: Flask
    a: Merchant
    b: Merchant
    sandbox: RunningSandbox


@pytest.fixture
def shop(data_dir: Path, sandbox: RunningSandbox) -> Iterator[Shop]:
    allowed = {"ORDERDESK_MCP_ALLOWED_BASE_URLS": sandbox.base_url}
    with tenant_app(data_dir, **allowed) as app:
        vault = vault_of(app)
        a = make_merchant(
            "acme",
            vault,
            stores=[("100001", "acme-main"), ("100002", "acme-spare")],
            base_url=sandbox.base_url,
        )
        b = make_merchant("bolt", vault, stores=[("400001", "bolt-shop")], base_url=None)
        yield Shop(app, a, b, sandbox)


def typed_values(found: FoundForm, shop: Shop, password: str) -> dict[str, str]:
    """What a person types into the form's text fields (valid, so only the token decides)."""
    values = {
        "store_id": "100002",
        "api_key": "sk_test_sandbox_empty_100002",
        "alias": "typed-alias",
        "label": "typed label",
        "base_url": shop.sandbox.base_url,
        "username": shop.a.name,
    }
    for name in found.form.values:
        if "password" in name:
            current = any(word in name for word in ("current", "old")) or name == "password"
            values[name] = password if current else NEW_PASSWORD
        elif name == "confirm":
            values[name] = "yes"
    return values


def refused(reply_status: int, text: str) -> bool:
    return reply_status == 400 and "Traceback" not in text


def sweep_one(client: FlaskClient, found: FoundForm, shop: Shop, password: str, own: str) -> None:
    typed = typed_values(found, shop, password)
    other = csrf_of(shop.b.browser(shop.app).get("/tenant/stores").text)
    before = (snapshot(shop.a.tenant), snapshot(shop.b.tenant))
    refusals = {}
    for case, token in (("no token", None), ("a wrong token", "x" * 43), ("B's token", other)):
        reply = client.post(found.action, data=MultiDict(fill(found, token, **typed)))
        assert refused(reply.status_code, reply.text), (
            f"{found.describe()} with {case}: {reply.status_code} {reply.text[:300]}"
        )
        assert (snapshot(shop.a.tenant), snapshot(shop.b.tenant)) == before, (
            f"{found.describe()} with {case} changed something"
        )
        refusals[case] = reply.text
    # With its own token the same submission is not the CSRF refusal (it may still be
    # refused for other reasons, e.g. a store already added: then in other words).
    reply = client.post(found.action, data=MultiDict(fill(found, own, **typed)))
    assert reply.text not in refusals.values(), f"{found.describe()} refused with a valid token"


def test_every_signed_in_form_needs_its_sessions_token(shop: Shop) -> None:
    password = shop.a.password
    client = shop.a.browser(shop.app)
    done: set[tuple[str, ...]] = set()
    swept: list[str] = []
    for _ in range(40):  # each round sweeps one new form; its valid submission may change pages
        found_all = crawl(client)
        pending = [f for f in found_all.post_forms() if f.signature() not in done]
        if not pending:
            break
        found = pending[0]
        done.add(found.signature())
        own = csrf_of(found_all.pages[found.page])
        sweep_one(client, found, shop, password, own)
        swept.append(found.describe())
        if any("password" in n and n != "password" for n in found.form.values):
            password = NEW_PASSWORD  # the valid submission changed it
            shop.a.password = password
        if client.get("/tenant/stores").status_code != 200:
            client = shop.a.browser(shop.app)  # e.g. "sign out everywhere" did its job
    assert swept, "no POST form was found on the signed-in pages"
    actions = " ".join(swept)
    for area in ("/tenant/stores", "/tenant/keys", "/tenant/apps", "/tenant/account"):
        assert area in actions, f"no form posts under {area}: {swept}"
    print("swept:", *swept, sep="\n  ")


def test_sign_out_form_needs_the_token(shop: Shop) -> None:
    client = shop.a.browser(shop.app)
    page = client.get("/tenant/stores")
    sign_out = [f for f in parse_forms(page.text) if "sign-out" in (f.action or "")]
    assert sign_out, "the layout has a sign-out form"
    assert sign_out[0].method.lower() == "post"
    sessions = WebSession.select().where(WebSession.tenant == shop.a.tenant.id).count()
    for token in (None, "x" * 43):
        data = {} if token is None else {"csrf_token": token}
        assert client.post("/tenant/sign-out", data=data).status_code == 400
    assert WebSession.select().where(WebSession.tenant == shop.a.tenant.id).count() == sessions
    assert client.get("/tenant/stores").status_code == 200


def test_sign_in_form_needs_the_token(shop: Shop) -> None:
    client = shop.app.test_client()
    page = client.get("/tenant/sign-in")
    assert page.status_code == 200
    fields = {"username": shop.a.name, "password": shop.a.password}
    for token in (None, "x" * 43):
        data = fields if token is None else {**fields, "csrf_token": token}
        assert client.post("/tenant/sign-in", data=data).status_code == 400
    # Still not signed in: the area sends the browser to the sign-in page.
    reply = client.get("/tenant/stores")
    assert reply.status_code in (302, 303)
    assert "/tenant/sign-in" in reply.headers["Location"]


def test_invite_form_needs_the_token(shop: Shop) -> None:
    invite = create_invite(shop.a.tenant, PUBLIC_URL, dt.timedelta(hours=1))
    client = shop.app.test_client()
    path = invite.url.removeprefix(PUBLIC_URL)
    page = client.get(path)
    assert page.status_code == 200
    assert csrf_of(page.text)
    before = snapshot(shop.a.tenant)
    for token in (None, "x" * 43):
        data = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        assert client.post(path, data=data).status_code == 400
    assert snapshot(shop.a.tenant) == before
    assert TenantInvite.get().used is None
