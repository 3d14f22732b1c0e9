"""The tenant area's frame: sign-in and sign-out, the password-only guard, idle timeout,
the switch, page headers and CSRF (tests/test_tenant_pages.py covers keys, apps, activity
and account)."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import AuditEvent, Tenant, TenantInvite, WebSession, utcnow
from orderdesk_mcp.invites import create_invite
from orderdesk_mcp.oauth import web_sessions
from orderdesk_mcp.tenancy import disable_tenant
from orderdesk_mcp.tenant.sign_in import safe_next
from orderdesk_mcp.vault import Vault

from .conftest import make_mcp_app
from .tenant_helpers import (
    PAGE_CSP,
    PASSWORD,
    PUBLIC_URL,
    csrf_of,
    make_tenant,
    sign_in,
    signed_in,
    tenant_app,
)

PAGES = ("/tenant/stores", "/tenant/keys", "/tenant/apps", "/tenant/activity", "/tenant/account")
MY_PAGES = ("/tenant/keys", "/tenant/apps", "/tenant/activity", "/tenant/account")


def audited(action: str, tenant: Tenant) -> int:
    """How many audit rows of this action name the tenant."""
    return int(
        AuditEvent.select()
        .where((AuditEvent.action == action) & (AuditEvent.tenant == tenant.id))
        .count()
    )


@pytest.fixture
def app(data_dir: Path) -> Iterator[Flask]:
    with tenant_app(data_dir) as app:
        yield app


@pytest.fixture
def acme(app: Flask) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    return app.test_client()


# --- sign-in and sign-out ------------------------------------------------------------------


def test_pages_send_a_stranger_to_sign_in_and_back(browser: FlaskClient, acme: Tenant) -> None:
    for path in MY_PAGES:
        reply = browser.get(path + "?page=2")
        assert reply.status_code == 303
        assert reply.headers["Location"] == "/tenant/sign-in?next=%2Ftenant%2F" + (
            path.removeprefix("/tenant/") + "%3Fpage%3D2"
        )
    reply = sign_in(browser, "acme", next_path="/tenant/keys")
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/tenant/keys"
    page = browser.get("/tenant/keys")
    assert page.status_code == 200
    assert "Signed in as <strong>acme</strong>" in page.text
    # Signed in, the sign-in page goes straight on.
    assert browser.get("/tenant/sign-in").headers["Location"] == "/tenant/stores"
    audited = AuditEvent.select().where(AuditEvent.action == "oauth.sign_in").count()
    assert audited == 1


def test_home_leads_to_the_stores(browser: FlaskClient) -> None:
    for path in ("/tenant", "/tenant/"):
        reply = browser.get(path)
        assert reply.status_code == 302
        assert reply.headers["Location"] == "/tenant/stores"


def test_sign_in_rotates_the_session_id(browser: FlaskClient, acme: Tenant) -> None:
    browser.get("/tenant/sign-in")
    before = browser.get_cookie("odmcp_session")
    assert before is not None
    signed_in(browser, "acme")
    after = browser.get_cookie("odmcp_session")
    assert after is not None
    assert after.value != before.value
    assert after.http_only
    assert after.same_site == "Lax"
    assert WebSession.select().count() == 1  # the anonymous one is gone


def test_wrong_password_keeps_the_name_never_the_password(
    browser: FlaskClient, acme: Tenant
) -> None:
    reply = sign_in(browser, "acme", "not the password at all")
    assert reply.status_code == 400
    assert "do not match" in reply.text
    assert 'value="acme"' in reply.text
    assert "not the password at all" not in reply.text
    assert browser.get("/tenant/keys").status_code == 303
    assert audited("oauth.sign_in_failed", acme) == 1


def test_empty_fields_are_one_sentence(browser: FlaskClient, acme: Tenant) -> None:
    page = browser.get("/tenant/sign-in")
    reply = browser.post(
        "/tenant/sign-in", data={"csrf_token": csrf_of(page.text), "username": "acme"}
    )
    assert reply.status_code == 400
    assert "Enter your tenant name and your password." in reply.text


def test_failed_sign_ins_are_limited_with_the_oauth_limits(
    browser: FlaskClient, acme: Tenant
) -> None:
    for _ in range(10):
        assert sign_in(browser, "acme", "wrong password here").status_code == 400
    reply = sign_in(browser, "acme", PASSWORD)
    assert reply.status_code == 429
    assert int(reply.headers["Retry-After"]) > 0
    # The same limits guard /oauth/authorize's sign-in: one counter for both forms.
    assert browser.get("/tenant/keys").status_code == 303


def test_an_api_key_never_signs_in_here(browser: FlaskClient, acme: Tenant) -> None:
    token = issue_key(acme, label="rw").token
    page = browser.get("/tenant/sign-in")
    reply = browser.post(
        "/tenant/sign-in", data={"csrf_token": csrf_of(page.text), "api_key": token}
    )
    assert reply.status_code == 400
    assert browser.get("/tenant/keys").status_code == 303


def test_a_session_signed_in_with_a_key_does_not_open_the_area(
    browser: FlaskClient, acme: Tenant
) -> None:
    """The OAuth sign-in with an API key is enough for consent, never for these pages."""
    key = issue_key(acme, label="rw")
    browser.get("/tenant/sign-in")
    cookie = browser.get_cookie("odmcp_session")
    assert cookie is not None
    WebSession.update(tenant=acme.id, via_key=key.key_id, signed_in=utcnow()).where(
        WebSession.id == web_sessions.session_hash(cookie.value)
    ).execute()
    for path in MY_PAGES:
        assert browser.get(path).status_code == 303
    page = browser.get("/tenant/sign-in")
    assert page.status_code == 200
    assert "signed in with an API key" in page.text
    # Signing in with the password then works (and replaces the key session).
    signed_in(browser, "acme")
    assert browser.get("/tenant/keys").status_code == 200


def test_sign_out_ends_the_session(browser: FlaskClient, acme: Tenant) -> None:
    signed_in(browser, "acme")
    page = browser.get("/tenant/account")
    reply = browser.post("/tenant/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/tenant/sign-in"
    assert browser.get("/tenant/account").status_code == 303
    assert WebSession.select().where(WebSession.tenant == acme.id).count() == 0
    assert audited("tenant.sign_out", acme) == 1


def test_sign_out_needs_the_csrf_token(browser: FlaskClient, acme: Tenant) -> None:
    signed_in(browser, "acme")
    for data in ({}, {"csrf_token": "0" * 64}):
        reply = browser.post("/tenant/sign-out", data=data)
        assert reply.status_code == 400
        assert "nothing was done" in reply.text
    assert browser.get("/tenant/account").status_code == 200
    confirm = browser.get("/tenant/sign-out")  # a typed address: asks, with a form
    assert confirm.status_code == 200
    assert 'action="/tenant/sign-out"' in confirm.text


def test_sign_in_needs_the_csrf_token(browser: FlaskClient, acme: Tenant) -> None:
    browser.get("/tenant/sign-in")
    reply = browser.post(
        "/tenant/sign-in", data={"username": "acme", "password": PASSWORD, "csrf_token": "x"}
    )
    assert reply.status_code == 400
    assert browser.get("/tenant/keys").status_code == 303
    assert not AuditEvent.select().where(AuditEvent.action == "oauth.sign_in").exists()


def test_a_disabled_tenant_is_signed_out(browser: FlaskClient, acme: Tenant) -> None:
    signed_in(browser, "acme")
    disable_tenant("acme")
    assert browser.get("/tenant/keys").status_code == 303


def test_idle_sessions_end(data_dir: Path) -> None:
    with tenant_app(data_dir, ORDERDESK_MCP_TENANT_SESSION_IDLE_MINUTES="10") as app:
        make_tenant("acme")
        browser = signed_in(app.test_client(), "acme")
        assert browser.get("/tenant/keys").status_code == 200
        WebSession.update(last_seen=utcnow() - dt.timedelta(minutes=9)).execute()
        assert browser.get("/tenant/keys").status_code == 200  # within 10 minutes: still in
        WebSession.update(last_seen=utcnow() - dt.timedelta(minutes=10, seconds=1)).execute()
        assert browser.get("/tenant/keys").status_code == 303
        assert WebSession.select().count() == 0  # deleted on sight


# --- the switch, headers, errors -------------------------------------------------------------


def test_switched_off_the_area_is_404_but_invites_and_oauth_work(data_dir: Path) -> None:
    with tenant_app(data_dir, ORDERDESK_MCP_TENANT_PAGES="false") as app:
        acme = make_tenant("acme")
        browser = app.test_client()
        for path in ("/tenant", "/tenant/sign-in", *PAGES):
            assert browser.get(path).status_code == 404, path
        assert browser.post("/tenant/sign-in", data={}).status_code == 404
        invite = create_invite(acme, PUBLIC_URL, dt.timedelta(hours=1))
        assert browser.get(invite.url.removeprefix(PUBLIC_URL)).status_code == 200
        assert TenantInvite.select().count() == 1
        assert browser.get("/.well-known/oauth-authorization-server").status_code == 200


def test_without_a_public_url_the_area_is_404(settings: Settings, db: peewee.Database) -> None:
    app = make_mcp_app(settings, db, Vault.from_settings(settings))
    assert app.test_client().get("/tenant/sign-in").status_code == 404


def test_page_headers(browser: FlaskClient, acme: Tenant) -> None:
    replies = [browser.get("/tenant/sign-in")]
    signed_in(browser, "acme")
    replies += [browser.get(path) for path in MY_PAGES]
    replies.append(browser.get("/tenant/keys/nothing-here"))
    for reply in replies:
        headers = reply.headers
        assert headers["Content-Security-Policy"] == PAGE_CSP
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "<script" not in reply.text
        assert "style=" not in reply.text


def test_unknown_pages_are_the_one_sentence_404(browser: FlaskClient, acme: Tenant) -> None:
    signed_in(browser, "acme")
    for reply in (browser.get("/tenant/no-such-page"), browser.post("/tenant/x/y", data={})):
        assert reply.status_code == 404
        assert "There is nothing here" in reply.text
        assert "Signed in as" in reply.text


def test_every_input_has_a_label(browser: FlaskClient, acme: Tenant) -> None:
    pages = [browser.get("/tenant/sign-in").text]
    signed_in(browser, "acme")
    pages += [browser.get(path).text for path in MY_PAGES]
    for html in pages:
        for tag in re.findall(r"<(?:input|select)\b[^>]*>", html):
            if 'type="hidden"' in tag or " hidden" in tag:
                continue
            ident = re.search(r'id="([^"]+)"', tag)
            assert ident, tag
            assert f'for="{ident.group(1)}"' in html, tag


# --- next: only to a local /tenant/ page -----------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "https://evil.example/tenant/keys",
        "//evil.example/tenant/keys",
        "/\\evil.example",
        "/tenant\\..\\x",
        "/oauth/authorize",
        "/tenant/sign-in",
        "/tenant/sign-out",
        "/tenant/invite/abc",
        "/tenant/../oauth/authorize",
        "javascript:alert(1)",
        "/tenant/keys\r\nSet-Cookie: x=1",
        "tenant/keys",
    ],
)
def test_next_never_leaves_the_area(raw: str | None) -> None:
    assert safe_next(raw) == "/tenant/stores"


def test_next_keeps_a_local_page() -> None:
    assert safe_next("/tenant/activity?page=2&outcome=ok") == "/tenant/activity?page=2&outcome=ok"


@hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_next_is_always_a_local_tenant_path(raw: str) -> None:
    result = safe_next(raw)
    assert result.startswith("/tenant/")
    assert not result.startswith("//")
    assert "\\" not in result
    assert all(ord(char) > 0x20 for char in result)


@pytest.mark.parametrize(
    "raw",
    [
        "/tenant/..",
        "/tenant/.",
        "/tenant/keys/..",
        "/tenant/keys/../../oauth/authorize",
        "/tenant/./../oauth/authorize",
        "/tenant/%2e%2e/oauth/authorize",
        "/tenant/%2E%2E",
        "/tenant/..%2foauth/authorize",
        "/tenant/%2f%2fevil.example",
        "/tenant/keys%00",
    ],
)
def test_next_refuses_escapes_and_dot_segments(raw: str) -> None:
    assert safe_next(raw) == "/tenant/stores"


_SEGMENTS = st.sampled_from(
    ["tenant", "keys", "stores", "..", ".", "%2e%2e", "%2E", "%2f", "a%", "sign-in", "", "x.y"]
)


@hypothesis_settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_SEGMENTS, max_size=6), st.sampled_from(["", "?page=2", "#top"]))
def test_next_never_resolves_outside_the_area(segments: list[str], tail: str) -> None:
    result = safe_next("/tenant/" + "/".join(segments) + tail)
    path = result.split("?", 1)[0].split("#", 1)[0]
    assert "%" not in path
    assert not any(part in (".", "..") for part in path.split("/"))
    assert (posixpath.normpath(path) + "/").startswith("/tenant/")


def test_a_used_invite_leads_to_the_tenant_sign_in(app: Flask, acme: Tenant) -> None:
    browser = app.test_client()
    path = create_invite(acme, PUBLIC_URL, dt.timedelta(hours=1)).url.removeprefix(PUBLIC_URL)
    token = csrf_of(browser.get(path).text)
    new = "another long passphrase"
    done = browser.post(path, data={"csrf_token": token, "password": new, "confirm": new})
    assert done.status_code == 200
    assert 'href="/tenant/sign-in"' in done.text
