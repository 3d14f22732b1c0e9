"""The browser half of OAuth sign-in: /oauth/authorize (sign-in, consent) and the invite page.

The real app on a real SQLite file, driven as a browser would (forms, cookies, redirects).
The protocol half is the real one (oauth/authorization.py): approve answers a 302 to the
redirect URI with `code`, `state` and `iss` and stores the code's rights in `oauth_code`
(SHA-256 of the code); deny answers a 302 with error=access_denied.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import peewee
import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from orderdesk_mcp.auth import TOOLSETS, issue_key, parse_store_ids, parse_toolsets, revoke_key
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.models import (
    ApiKey,
    AuditEvent,
    OAuthClient,
    OAuthCode,
    Store,
    Tenant,
    TenantInvite,
    WebSession,
    utcnow,
)
from orderdesk_mcp.invites import create_invite, set_password
from orderdesk_mcp.metrics import get_metrics
from orderdesk_mcp.oauth import consent, web_sessions
from orderdesk_mcp.oauth.consent import ConsentError, ConsentOffer
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.passwords import verify_password
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault

from .conftest import make_mcp_app

PUBLIC_URL = "http://127.0.0.1:8080"
CLIENT_ID = "client-7f3a9c"
CLIENT_NAME = "Test <b>Client</b> & Co"
REDIRECT_URI = "http://127.0.0.1:33418/callback"
PASSWORD = "correct horse battery staple"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
OTHER_ADDRESS = {"REMOTE_ADDR": "203.0.113.7"}
VERIFIER = "pkce-verifier-" + "v" * 50  # PKCE (RFC 7636): 43 to 128 characters


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def oauth_settings(data_dir: Path, settings: Settings) -> Settings:
    return load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_LOG_FORMAT": "text",
            "ORDERDESK_MCP_PUBLIC_URL": PUBLIC_URL,
        }
    )


@dataclass
class Shop:
    app: Flask
    tenant: Tenant
    key: str  # read-write API key
    read_only_key: str
    store_ids: dict[str, int]  # alias -> Store row id


def _make_shop(settings: Settings, db: peewee.Database, vault: Vault) -> Shop:
    app = make_mcp_app(settings, db, vault)
    tenant = create_tenant("acme", Vault.new_tenant_salt())
    set_password(tenant, PASSWORD)
    stores = {}
    for store_id, alias in (("100001", "demo"), ("100002", "empty")):
        row = add_store(
            tenant, store_id=store_id, api_key=f"sk_{store_id}", vault=vault, alias=alias
        )
        stores[alias] = row.id
    OAuthClient.create(
        client_id=CLIENT_ID,
        kind="registered",
        auth_method="none",
        metadata=json.dumps(
            {
                "client_name": CLIENT_NAME,
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }
        ),
    )
    return Shop(
        app=app,
        tenant=tenant,
        key=issue_key(tenant, label="rw").token,
        read_only_key=issue_key(tenant, read_only=True, label="ro").token,
        store_ids=stores,
    )


@pytest.fixture
def shop(oauth_settings: Settings, db: peewee.Database, vault: Vault) -> Iterator[Shop]:
    made = _make_shop(oauth_settings, db, vault)
    yield made
    machinery = made.app.extensions["orderdesk_mcp"].machinery
    if machinery is not None:
        machinery.close()


@pytest.fixture
def browser(shop: Shop) -> FlaskClient:
    return shop.app.test_client()


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def authorize_url(verifier: str = VERIFIER, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": "st-" + secrets.token_hex(4),
        "scope": "read write",
        "resource": f"{PUBLIC_URL}/mcp",
    }
    params.update(overrides)
    return "/oauth/authorize?" + urlencode(params)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(
    browser: FlaskClient, url: str, *, environ: dict[str, str] | None = None, **fields: str
) -> Response:
    environ = environ or {}
    page = browser.get(url, environ_base=environ)
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_of(page.text), **fields}
    return browser.post(url, data=data, environ_base=environ)


def signed_in_consent(browser: FlaskClient, url: str, **fields: str) -> str:
    reply = sign_in(browser, url, **(fields or {"username": "acme", "password": PASSWORD}))
    assert reply.status_code == 303, reply.text
    assert reply.headers["Location"] == url
    page = browser.get(url)
    assert page.status_code == 200
    assert "Allow" in page.text
    return page.text


def decide(browser: FlaskClient, url: str, page: str, data: dict[str, object]) -> Response:
    return browser.post(url, data={"csrf_token": csrf_of(page), **data})


def code_row(reply: Response, state: str) -> OAuthCode:
    """The code the 302 to the client carries, as stored (its SHA-256), checked for state."""
    assert reply.status_code in (302, 303), reply.text
    location = urlparse(reply.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [state]
    row = OAuthCode.get_or_none(
        OAuthCode.code_hash == hashlib.sha256(query["code"][0].encode()).hexdigest()
    )
    assert row is not None
    return row


def state_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["state"][0]


def cookie_value(browser: FlaskClient) -> str | None:
    cookie = browser.get_cookie(web_sessions.COOKIE_NAME)
    return cookie.value if cookie is not None else None


# --- switch, headers, cookie ---------------------------------------------------------------


def test_every_page_answers_404_while_oauth_is_off(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    shop = _make_shop(settings, db, vault)
    client = shop.app.test_client()
    invite = create_invite(shop.tenant, PUBLIC_URL, dt.timedelta(hours=1))
    for path in (authorize_url(), urlparse(invite.url).path, "/oauth/static/style.css"):
        assert client.get(path).status_code == 404, path
    assert client.post(authorize_url(), data={"username": "acme"}).status_code == 404
    assert WebSession.select().count() == 0


def test_pages_carry_the_security_headers_and_a_session_cookie(browser: FlaskClient) -> None:
    page = browser.get(authorize_url())
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == CSP + "; form-action 'self'"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith(f"{web_sessions.COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # http public URL on loopback
    assert "<script" not in page.text
    assert "style=" not in page.text
    assert "<style" not in page.text
    # The session row is keyed by the hash of the cookie, never the cookie itself.
    raw = cookie_value(browser)
    assert raw is not None
    assert WebSession.get_or_none(WebSession.id == raw) is None
    assert WebSession.get_or_none(WebSession.id == hashlib.sha256(raw.encode()).hexdigest())
    css = browser.get("/oauth/static/style.css")
    assert css.status_code == 200
    assert css.mimetype == "text/css"
    assert css.headers["X-Content-Type-Options"] == "nosniff"


def test_https_public_url_makes_a_secure_host_prefixed_cookie(
    data_dir: Path, settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    https = load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_PUBLIC_URL": "https://mcp.example.com",
        }
    )
    shop = _make_shop(https, db, vault)
    browser = shop.app.test_client()
    url = authorize_url(resource="https://mcp.example.com/mcp")
    cookie = browser.get(url, base_url="https://mcp.example.com").headers["Set-Cookie"]
    assert cookie.startswith("__Host-odmcp_session=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "Domain" not in cookie
    page = browser.get(url, base_url="https://mcp.example.com")
    signed = browser.post(
        url,
        base_url="https://mcp.example.com",
        data={"csrf_token": csrf_of(page.text), "username": "acme", "password": PASSWORD},
    )
    assert signed.status_code == 303


def test_a_request_the_protocol_refuses_shows_a_page_and_never_redirects(
    browser: FlaskClient,
) -> None:
    page = browser.get(authorize_url(redirect_uri="https://evil.example/steal"))
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert page.mimetype == "text/html"
    assert "evil.example" not in page.text
    assert WebSession.select().count() == 0  # junk requests never write a session row
    # An error the protocol sends back to a verified redirect URI is passed on as is; one it
    # does not is a page.
    reply = browser.get(authorize_url(response_type="token"))
    if reply.status_code in (302, 303):
        assert reply.headers["Location"].startswith(REDIRECT_URI)
        assert "error=" in reply.headers["Location"]
    else:
        assert reply.status_code == 400
        assert "Location" not in reply.headers


# --- sign-in -----------------------------------------------------------------------------


def test_password_sign_in_rotates_the_session_and_shows_consent(
    browser: FlaskClient, shop: Shop
) -> None:
    url = authorize_url()
    page = browser.get(url)
    assert CLIENT_NAME not in page.text  # escaped, never raw HTML
    assert "Test &lt;b&gt;Client&lt;/b&gt; &amp; Co" in page.text
    before = cookie_value(browser)
    reply = browser.post(
        url, data={"csrf_token": csrf_of(page.text), "username": "acme", "password": PASSWORD}
    )
    assert reply.status_code == 303
    assert reply.headers["Location"] == url
    after = cookie_value(browser)
    assert after
    assert before
    assert after != before
    assert WebSession.get_or_none(WebSession.id == web_sessions.session_hash(before)) is None
    row = WebSession.get(WebSession.id == web_sessions.session_hash(after))
    assert row.tenant_id == shop.tenant.id
    assert row.via_key_id is None
    assert row.signed_in
    consent_page = browser.get(url)
    assert consent_page.headers["Content-Security-Policy"] == CSP  # no form-action here
    assert "127.0.0.1:33418" in consent_page.text  # the redirect host
    assert "Test &lt;b&gt;Client&lt;/b&gt; &amp; Co" in consent_page.text
    assert csrf_of(consent_page.text) != csrf_of(page.text)
    # The old cookie (a fixated session) is worth nothing now.
    old = shop.app.test_client()
    old.set_cookie(web_sessions.COOKIE_NAME, before)
    assert "Sign in" in old.get(url).text
    events = list(AuditEvent.select().where(AuditEvent.action == "oauth.sign_in"))
    assert len(events) == 1
    assert events[0].tenant_id == shop.tenant.id


def test_api_key_sign_in_records_the_key(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    reply = sign_in(browser, url, api_key=shop.key)
    assert reply.status_code == 303
    row = WebSession.get(WebSession.id == web_sessions.session_hash(cookie_value(browser) or ""))
    key_row = ApiKey.get(ApiKey.label == "rw")
    assert row.tenant_id == shop.tenant.id
    assert row.via_key_id == key_row.id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "acme", "password": "wrong password here"}, "do not match"),
        ({"username": "nobody", "password": PASSWORD}, "do not match"),
        ({"username": "acme", "password": ""}, "Enter your tenant name"),
        ({"api_key": "odmcp_000000000000_" + "A" * 43}, "API key is not valid"),
        ({"api_key": "not a key"}, "API key is not valid"),
        ({"api_key": "x", "username": "acme", "password": PASSWORD}, "not both"),
    ],
)
def test_failed_sign_ins_say_one_thing_and_sign_nobody_in(
    browser: FlaskClient, fields: dict[str, str], message: str
) -> None:
    url = authorize_url()
    reply = sign_in(browser, url, **fields)
    assert reply.status_code == 400
    assert message in reply.text
    assert "Allow" not in reply.text
    assert WebSession.select().where(WebSession.tenant.is_null(False)).count() == 0


def test_unknown_tenant_and_wrong_password_read_the_same(browser: FlaskClient) -> None:
    url = authorize_url()
    wrong = sign_in(browser, url, username="acme", password="not the password!")
    unknown = sign_in(browser, url, username="ghost", password="not the password!")
    texts = [re.search(r'role="alert"[^>]*>([^<]*)<', r.text) for r in (wrong, unknown)]
    assert texts[0]
    assert texts[1]
    assert texts[0].group(1) == texts[1].group(1)


def test_disabled_tenant_and_revoked_key_cannot_sign_in(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    revoke_key(ApiKey.get(ApiKey.label == "rw").public_id)
    assert "API key is not valid" in sign_in(browser, url, api_key=shop.key).text
    Tenant.update(disabled=True).where(Tenant.id == shop.tenant.id).execute()
    assert "do not match" in sign_in(browser, url, username="acme", password=PASSWORD).text
    assert "API key is not valid" in sign_in(browser, url, api_key=shop.read_only_key).text
    failed = AuditEvent.select().where(AuditEvent.action == "oauth.sign_in_failed").count()
    assert failed == 3


def test_a_tenant_disabled_after_sign_in_is_signed_out(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url)
    Tenant.update(disabled=True).where(Tenant.id == shop.tenant.id).execute()
    reply = decide(browser, url, page, {"decision": "allow", "access": "read-only"})
    assert reply.status_code == 400
    assert "sign in again" in reply.text
    assert OAuthCode.select().count() == 0


def test_sign_in_without_or_with_a_wrong_csrf_token_does_nothing(browser: FlaskClient) -> None:
    url = authorize_url()
    browser.get(url)
    for data in (
        {"username": "acme", "password": PASSWORD},
        {"username": "acme", "password": PASSWORD, "csrf_token": "0" * 64},
    ):
        reply = browser.post(url, data=data)
        assert reply.status_code == 400
        assert "nothing was done" in reply.text
    # A token from another browser's session is as wrong as a made-up one.
    other = browser.application.test_client()
    token = csrf_of(other.get(url).text)
    reply = browser.post(url, data={"username": "acme", "password": PASSWORD, "csrf_token": token})
    assert reply.status_code == 400
    assert WebSession.select().where(WebSession.tenant.is_null(False)).count() == 0
    assert AuditEvent.select().count() == 0


def test_failed_sign_ins_are_limited_per_address_and_tenant(browser: FlaskClient) -> None:
    url = authorize_url()
    for _ in range(10):
        assert sign_in(browser, url, username="acme", password="wrong password!").status_code == 400
    refused = sign_in(browser, url, username="acme", password=PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "try again in" in refused.text
    # The tenant is not locked out from elsewhere, and this address may still try other names.
    elsewhere = sign_in(browser, url, environ=OTHER_ADDRESS, username="acme", password=PASSWORD)
    assert elsewhere.status_code == 303
    assert sign_in(browser, url, username="ghost", password="whatever pw").status_code == 400
    metrics = get_metrics(browser.application).exposition().decode()
    assert 'orderdesk_mcp_oauth_sign_in_failures_total{reason="limited"} 1.0' in metrics
    assert 'orderdesk_mcp_oauth_sign_in_failures_total{reason="password"} 11.0' in metrics


def test_failed_sign_ins_are_limited_per_address(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    for number in range(50):
        bad = f"odmcp_{number:012x}_" + "B" * 43
        assert sign_in(browser, url, api_key=bad).status_code == 400
    assert sign_in(browser, url, username="acme", password=PASSWORD).status_code == 429
    assert sign_in(browser, url, api_key=shop.key).status_code == 429
    assert sign_in(browser, url, environ=OTHER_ADDRESS, api_key=shop.key).status_code == 303


# --- consent -----------------------------------------------------------------------------


def test_consent_carries_exactly_the_rights_chosen(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url)
    assert 'value="read-write" checked' in page  # what the request asked
    reply = decide(
        browser,
        url,
        page,
        {
            "decision": "allow",
            "access": "read-only",
            "store": ["demo"],
            "toolset": ["orders", "shipments"],
        },
    )
    row = code_row(reply, state_of(url))
    assert "write" not in re.split(r"[ ,]", row.scope)
    assert parse_store_ids(row.store_ids) == {shop.store_ids["demo"]}
    assert parse_toolsets(row.toolsets) == {"orders", "shipments"}
    assert row.tenant_id == shop.tenant.id
    assert row.via_key_id is None


def test_consent_to_everything_keeps_every_toolset(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url)
    assert 'value="read-write" checked' in page
    data = {"decision": "allow", "access": "read-write", "store": ["demo", "empty"]}
    reply = decide(browser, url, page, {**data, "toolset": list(TOOLSETS)})
    row = code_row(reply, state_of(url))
    assert "write" in re.split(r"[ ,]", row.scope)
    assert parse_store_ids(row.store_ids) == set(shop.store_ids.values())
    assert parse_toolsets(row.toolsets) is None


def test_a_client_asking_read_only_is_never_given_read_write(
    browser: FlaskClient, shop: Shop
) -> None:
    url = authorize_url(scope="read")
    page = signed_in_consent(browser, url)
    assert 'value="read-only" checked' in page
    assert 'value="read-write"' not in page
    data = {"decision": "allow", "access": "read-write", "store": ["demo"]}
    reply = decide(browser, url, page, {**data, "toolset": list(TOOLSETS)})
    assert reply.status_code == 400
    assert "asked for read-only access" in reply.text
    assert OAuthCode.select().count() == 0


def test_deny_sends_access_denied_to_the_client(browser: FlaskClient) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url)
    reply = decide(browser, url, page, {"decision": "deny"})
    assert reply.status_code in (302, 303)
    location = reply.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    assert parse_qs(urlparse(location).query)["error"] == ["access_denied"]
    assert parse_qs(urlparse(location).query)["state"] == [state_of(url)]
    assert OAuthCode.select().count() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"store": ["demo"], "toolset": ["orders"]}, "Choose read-only or read-write"),
        ({"access": "read-only", "toolset": ["orders"]}, "Choose at least one store"),
        ({"access": "read-only", "store": ["demo"]}, "Choose at least one toolset"),
        ({"access": "all", "store": ["demo"], "toolset": ["orders"]}, "Choose read-only"),
        (
            {"access": "read-only", "store": ["nope"], "toolset": ["orders"]},
            "cannot grant the store",
        ),
        (
            {"access": "read-only", "store": ["demo"], "toolset": ["admin"]},
            "cannot grant the toolset",
        ),
    ],
)
def test_consent_with_nothing_or_something_unknown_chosen_is_refused(
    browser: FlaskClient, data: dict[str, object], message: str
) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url)
    reply = decide(browser, url, page, {"decision": "allow", **data})
    assert reply.status_code == 400
    assert message in reply.text
    assert OAuthCode.select().count() == 0
    # The page comes back usable: a new try with a fresh choice works.
    again = decide(
        browser,
        url,
        reply.text,
        {"decision": "allow", "access": "read-only", "store": "demo", "toolset": "orders"},
    )
    code_row(again, state_of(url))


def test_consent_without_or_with_a_wrong_csrf_token_does_nothing(browser: FlaskClient) -> None:
    url = authorize_url()
    signed_in_consent(browser, url)
    allow = {"decision": "allow", "access": "read-write", "store": "demo", "toolset": "orders"}
    assert browser.post(url, data=allow).status_code == 400
    assert browser.post(url, data={**allow, "csrf_token": "f" * 64}).status_code == 400
    assert browser.post(url, data={"decision": "deny"}).status_code == 400
    assert OAuthCode.select().count() == 0


def test_a_store_of_another_tenant_cannot_be_granted(
    browser: FlaskClient, shop: Shop, vault: Vault
) -> None:
    other = create_tenant("rival", Vault.new_tenant_salt())
    add_store(other, store_id="200001", api_key="sk_200001", vault=vault, alias="rival-shop")
    url = authorize_url()
    page = signed_in_consent(browser, url)
    assert "rival-shop" not in page
    data = {"decision": "allow", "access": "read-only", "toolset": "orders"}
    reply = decide(browser, url, page, {**data, "store": ["demo", "rival-shop"]})
    assert reply.status_code == 400
    assert "cannot grant the store" in reply.text
    assert OAuthCode.select().count() == 0


def test_a_read_only_key_cannot_consent_to_read_write(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url, api_key=shop.read_only_key)
    assert 'value="read-write"' not in page
    assert 'value="read-only" checked' in page
    data = {"decision": "allow", "store": "demo", "toolset": "orders"}
    reply = decide(browser, url, page, {**data, "access": "read-write"})
    assert reply.status_code == 400
    assert "needs a read-write key" in reply.text
    assert OAuthCode.select().count() == 0
    row = code_row(decide(browser, url, page, {**data, "access": "read-only"}), state_of(url))
    assert row.via_key_id == ApiKey.get(ApiKey.label == "ro").id


def test_a_narrowed_key_grants_only_its_stores_and_toolsets(
    browser: FlaskClient, shop: Shop
) -> None:
    key_row = ApiKey.get(ApiKey.label == "rw")
    key_row.store_ids = str(shop.store_ids["demo"])
    key_row.toolsets = "orders,items"
    key_row.save()
    url = authorize_url()
    page = signed_in_consent(browser, url, api_key=shop.key)
    assert 'value="empty"' not in page
    assert 'value="inventory"' not in page
    data = {"decision": "allow", "access": "read-write"}
    wider_store = decide(browser, url, page, {**data, "store": ["empty"], "toolset": "orders"})
    assert wider_store.status_code == 400
    assert "cannot grant the store" in wider_store.text
    wider_tools = decide(browser, url, page, {**data, "store": "demo", "toolset": "inventory"})
    assert wider_tools.status_code == 400
    assert "cannot grant the toolset" in wider_tools.text
    every = decide(browser, url, page, {**data, "store": "demo", "toolset": ["orders", "items"]})
    row = code_row(every, state_of(url))
    assert parse_store_ids(row.store_ids) == {shop.store_ids["demo"]}
    assert parse_toolsets(row.toolsets) == {"orders", "items"}


def test_a_tenant_without_stores_can_only_deny(browser: FlaskClient, shop: Shop) -> None:
    Store.delete().where(Store.tenant == shop.tenant.id).execute()
    url = authorize_url()
    page = signed_in_consent(browser, url)
    assert "no Order Desk store yet" in page
    assert 'value="allow"' not in page
    reply = decide(browser, url, page, {"decision": "allow", "access": "read-only"})
    assert reply.status_code == 400
    assert "no store to grant" in reply.text
    assert (
        "error=access_denied"
        in decide(browser, url, page, {"decision": "deny"}).headers["Location"]
    )


# --- the invite page ---------------------------------------------------------------------


def _invite_form(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Security-Policy"] == CSP + "; form-action 'self'"
    assert page.headers["Cache-Control"] == "no-store"
    return csrf_of(page.text)


def test_an_invite_sets_the_password_once(browser: FlaskClient, shop: Shop) -> None:
    path = urlparse(create_invite(shop.tenant, PUBLIC_URL, dt.timedelta(hours=1)).url).path
    new_password = "a much better passphrase"
    token = _invite_form(browser, path)
    differ = browser.post(
        path, data={"csrf_token": token, "password": new_password, "confirm": "something else"}
    )
    assert differ.status_code == 400
    assert "differ" in differ.text
    short = browser.post(path, data={"csrf_token": token, "password": "short", "confirm": "short"})
    assert short.status_code == 400
    assert "at least 12 characters" in short.text
    assert "short" not in short.text.replace("short</", "")  # never echoed into a field
    no_csrf = browser.post(path, data={"password": new_password, "confirm": new_password})
    assert no_csrf.status_code == 400
    done = browser.post(
        path, data={"csrf_token": token, "password": new_password, "confirm": new_password}
    )
    assert done.status_code == 200
    assert "can now connect" in done.text
    assert f"{PUBLIC_URL}/mcp" in done.text
    assert new_password not in done.text
    assert verify_password(Tenant.get_by_id(shop.tenant.id).password_hash, new_password)
    again = browser.get(path)
    assert again.status_code == 404
    assert "not valid any more" in again.text
    used = browser.post(
        path, data={"csrf_token": token, "password": "yet another password", "confirm": "x"}
    )
    assert used.status_code == 404
    assert AuditEvent.select().where(AuditEvent.action == "oauth.invite_used").count() == 1


def test_an_expired_or_made_up_invite_is_not_found(browser: FlaskClient, shop: Shop) -> None:
    path = urlparse(create_invite(shop.tenant, PUBLIC_URL, dt.timedelta(hours=1)).url).path
    TenantInvite.update(expires=utcnow() - dt.timedelta(seconds=1)).execute()
    assert browser.get(path).status_code == 404
    assert browser.get("/tenant/invite/made-up-token").status_code == 404
    assert browser.get("/tenant/invite/" + "x" * 500).status_code == 404


# --- sessions ----------------------------------------------------------------------------


def test_expired_and_idle_sessions_are_refused_and_pruned(browser: FlaskClient) -> None:
    url = authorize_url()
    signed_in_consent(browser, url)
    raw = cookie_value(browser) or ""
    row_id = web_sessions.session_hash(raw)
    WebSession.update(last_seen=utcnow() - web_sessions.IDLE_LIFETIME).where(
        WebSession.id == row_id
    ).execute()
    assert web_sessions.load_session(raw) is None  # idle: refused and deleted on sight
    assert WebSession.get_or_none(WebSession.id == row_id) is None
    live = web_sessions.start_session()
    stale = web_sessions.start_session()
    WebSession.update(expires=utcnow() - dt.timedelta(seconds=1)).where(
        WebSession.id == web_sessions.session_hash(stale.raw_id)
    ).execute()
    idle = web_sessions.start_session()
    WebSession.update(last_seen=utcnow() - dt.timedelta(hours=1)).where(
        WebSession.id == web_sessions.session_hash(idle.raw_id)
    ).execute()
    assert web_sessions.prune_web_sessions() == 2
    assert web_sessions.load_session(live.raw_id) is not None
    assert web_sessions.load_session(stale.raw_id) is None
    assert web_sessions.load_session("x" * 1000) is None


# --- secrets never leave the request -------------------------------------------------------


@pytest.mark.sqlite_only  # scans the SQLite file's bytes
def test_no_password_or_key_in_logs_audit_or_data_dir(
    browser: FlaskClient, shop: Shop, oauth_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    url = authorize_url()
    wrong = "wrong-but-secret-password-1"
    with caplog.at_level(logging.DEBUG):
        sign_in(browser, url, username="acme", password=wrong)
        sign_in(browser, url, api_key=shop.key[:-3] + "zzz")
        signed_in_consent(browser, url, api_key=shop.key)
        signed_in_consent(browser, url)
        path = urlparse(create_invite(shop.tenant, PUBLIC_URL, dt.timedelta(hours=1)).url).path
        token = _invite_form(browser, path)
        new = "invite-chosen-secret-passphrase"
        browser.post(path, data={"csrf_token": token, "password": new, "confirm": new})
    secrets_typed = [PASSWORD, wrong, shop.key, shop.key[:-3] + "zzz", new, path.rsplit("/", 1)[1]]
    raw_cookie = cookie_value(browser) or ""
    secrets_typed.append(raw_cookie)
    logged = caplog.text
    audit = json.dumps([list(row) for row in AuditEvent.select().tuples()], default=str)
    for secret in secrets_typed:
        assert secret not in logged
        assert secret not in audit
    shop.app.extensions["orderdesk_mcp"].database.execute_sql("PRAGMA wal_checkpoint(FULL)")
    files = [p for p in oauth_settings.data_dir.rglob("*") if p.is_file()]
    raw = b"".join(p.read_bytes() for p in files)
    for secret in secrets_typed:
        assert secret.encode() not in raw, secret[:6]


# --- accessibility: every input is labelled ------------------------------------------------


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("type") != "hidden" and "hidden" not in found:
            self.inputs.append(found)
        if tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))


def test_every_visible_input_has_a_label(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    pages = [browser.get(url).text, signed_in_consent(browser, url)]
    path = urlparse(create_invite(shop.tenant, PUBLIC_URL, dt.timedelta(hours=1)).url).path
    pages.append(browser.get(path).text)
    for html in pages:
        parser = _Inputs()
        parser.feed(html)
        assert parser.inputs
        for field in parser.inputs:
            assert field.get("id") in parser.labels, field
        assert '<meta name="viewport"' in html


# --- the consent form's parser, fed anything -----------------------------------------------

OFFER = ConsentOffer(
    stores={"demo": 1, "empty": 2},
    toolsets=("orders", "items"),
    read_write=True,
    holder=GrantRights(read_only=False, store_ids=frozenset({1, 2}), toolsets=None),
)
_words = st.one_of(
    st.sampled_from(["demo", "empty", "orders", "items", "inventory", "read-only", "read-write"]),
    st.text(max_size=20),
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    access=st.lists(_words, max_size=3),
    stores=st.lists(_words, max_size=6),
    toolsets=st.lists(_words, max_size=6),
    read_only_holder=st.booleans(),
)
def test_the_consent_parser_grants_within_the_offer_or_says_why(
    access: list[str], stores: list[str], toolsets: list[str], read_only_holder: bool
) -> None:
    offer = ConsentOffer(
        stores=OFFER.stores,
        toolsets=OFFER.toolsets,
        read_write=not read_only_holder,
        holder=GrantRights(read_only_holder, OFFER.holder.store_ids, OFFER.holder.toolsets),
    )
    form = MultiDict([("access", a) for a in access] + [("store", s) for s in stores])
    form.setlist("toolset", toolsets)
    try:
        rights = consent.rights_from_form(form, offer)
    except ConsentError as error:
        text = str(error)
        assert text.endswith(".")
        assert text[:1].isupper()
        assert "\n" not in text.strip()
        return
    assert stores
    assert toolsets
    assert access
    assert rights.store_ids
    assert rights.store_ids <= {1, 2}
    assert set(stores) <= set(offer.stores)
    assert set(toolsets) <= set(offer.toolsets)
    assert rights.toolsets == frozenset(toolsets)  # never None: not every toolset was offered
    assert rights.read_only == (access[0] == "read-only")
    rights.within(offer.holder)


_form_values = st.one_of(
    st.sampled_from(["acme", PASSWORD, "allow", "deny", "read-only", "demo", "orders", ""]),
    st.text(max_size=30),
)
_form_fields = st.sampled_from(
    ["username", "password", "api_key", "decision", "access", "store", "toolset", "other"]
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=st.lists(st.tuples(_form_fields, _form_values), max_size=8), signed=st.booleans())
def test_any_posted_form_gets_a_page_or_a_redirect_never_an_error(
    shop: Shop, fields: list[tuple[str, str]], signed: bool
) -> None:
    browser = shop.app.test_client()
    url = authorize_url()
    page = browser.get(url).text
    if signed:
        browser.post(
            url, data={"csrf_token": csrf_of(page), "username": "acme", "password": PASSWORD}
        )
        page = browser.get(url).text
    data = MultiDict([("csrf_token", csrf_of(page)), *fields])
    reply = browser.post(url, data=data)
    assert reply.status_code in {200, 302, 303, 400, 429}
    if reply.status_code in {302, 303}:
        assert reply.headers["Location"].startswith((REDIRECT_URI, "/oauth/authorize?"))
    else:
        assert reply.mimetype == "text/html"
        assert "Traceback" not in reply.text


def test_signing_out_from_the_consent_page_starts_over(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url)
    signed_cookie = cookie_value(browser) or ""
    reply = decide(browser, url, page, {"sign_out": "1"})
    assert reply.status_code == 200
    assert 'name="password"' in reply.text
    assert web_sessions.load_session(signed_cookie) is None
    assert cookie_value(browser) != signed_cookie
    assert OAuthCode.select().count() == 0
    # Signed in as someone else (the read-only key), the consent follows that sign-in.
    again = sign_in(browser, url, api_key=shop.read_only_key)
    assert again.status_code == 303
    assert 'value="read-write"' not in browser.get(url).text


def test_the_code_from_consent_is_exchanged_for_a_read_only_token(
    browser: FlaskClient, shop: Shop
) -> None:
    """The code consent issued, exchanged at the real token endpoint, gives read-only rights."""
    url = authorize_url()
    page = signed_in_consent(browser, url)
    data = {"decision": "allow", "access": "read-only", "store": "demo", "toolset": "orders"}
    location = urlparse(decide(browser, url, page, data).headers["Location"])
    code = parse_qs(location.query)["code"][0]
    token = browser.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "code_verifier": VERIFIER,
            "resource": f"{PUBLIC_URL}/mcp",
        },
    )
    assert token.status_code == 200, token.text
    body = token.get_json()
    assert body["token_type"].lower() == "bearer"
    assert body["access_token"]
    assert "write" not in body.get("scope", "read").split()


# --- review fixes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge": ""},
        {"response_type": ""},
        {"resource": "https://other.example/mcp"},
    ],
)
def test_a_bad_request_never_redirects_by_itself(
    browser: FlaskClient, overrides: dict[str, str]
) -> None:
    # Open registration makes any redirect URI "verified": an automatic 302 before the
    # tenant acted would be an open redirector (RFC 9700 4.11.2).
    reply = browser.get(authorize_url(**overrides))
    assert reply.status_code == 400
    assert "Location" not in reply.headers
    assert "Return to 127.0.0.1:33418" in reply.text
    links = re.findall(r'href="([^"]+)"', reply.text)
    back = [link for link in links if link.startswith(REDIRECT_URI)]
    assert len(back) == 1
    query = parse_qs(urlparse(back[0].replace("&amp;", "&")).query)
    assert query["error"][0] in ("invalid_request", "invalid_target", "unsupported_response_type")
    assert query["iss"] == [PUBLIC_URL]
    assert WebSession.select().count() == 0


def test_deny_still_goes_back_to_the_client(browser: FlaskClient) -> None:
    url = authorize_url()
    page = signed_in_consent(browser, url)
    reply = decide(browser, url, page, {"decision": "deny"})
    assert reply.status_code == 302
    assert reply.headers["Location"].startswith(REDIRECT_URI + "?error=access_denied")


def test_consent_warns_of_a_loopback_redirect_and_names_the_document_host(
    browser: FlaskClient, shop: Shop
) -> None:
    page = signed_in_consent(browser, authorize_url())
    assert "a program on this computer" in page
    assert "is described by" not in page
    document_id = "https://apps.example.com/oauth/client.json"
    OAuthClient.create(
        client_id=document_id,
        kind="metadata_document",
        auth_method="none",
        metadata=json.dumps(
            {"client_name": "Doc App", "redirect_uris": ["https://apps.example.com/cb"]}
        ),
        expires=utcnow() + dt.timedelta(hours=1),
    )
    page = browser.get(
        authorize_url(client_id=document_id, redirect_uri="https://apps.example.com/cb")
    )
    assert page.status_code == 200, page.text
    assert "is described by <strong>apps.example.com</strong>" in page.text
    assert "a program on this computer" not in page.text


def test_read_only_request_says_why_read_write_is_not_offered(browser: FlaskClient) -> None:
    page = signed_in_consent(browser, authorize_url(scope="read"))
    assert "this app asked only for read access" in page
    assert "API key you signed in with is read-only" not in page


def test_a_new_password_ends_the_tenants_browser_sessions(browser: FlaskClient, shop: Shop) -> None:
    url = authorize_url()
    signed_in_consent(browser, url)
    assert WebSession.select().where(WebSession.tenant == shop.tenant.id).count() == 1
    set_password(shop.tenant, "an operator-set new passphrase")
    assert WebSession.select().where(WebSession.tenant == shop.tenant.id).count() == 0
    assert 'name="password"' in browser.get(url).text  # the sign-in form again
    signed_in_consent(browser, url, username="acme", password="an operator-set new passphrase")
    path = urlparse(create_invite(shop.tenant, PUBLIC_URL, dt.timedelta(hours=1)).url).path
    other = shop.app.test_client()
    token = _invite_form(other, path)
    new = "the tenant's own passphrase"
    done = other.post(path, data={"csrf_token": token, "password": new, "confirm": new})
    assert done.status_code == 200
    assert WebSession.select().where(WebSession.tenant == shop.tenant.id).count() == 0
    assert 'name="password"' in browser.get(url).text
