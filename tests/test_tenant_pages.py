"""The tenant's own pages: API keys, connected apps, activity and account, driven as a
browser would (forms with their CSRF tokens, cookies, redirects) on the real app and
database. Every id another tenant owns answers 404 and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from orderdesk_mcp.auth import (
    MAX_LIVE_KEYS,
    TOOLSETS,
    AuthError,
    issue_key,
    parse_store_ids,
    verify_token,
)
from orderdesk_mcp.db.models import ApiKey, AuditEvent, OAuthClient, OAuthGrant, Tenant, WebSession
from orderdesk_mcp.oauth.grants import create_grant
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.passwords import verify_password
from orderdesk_mcp.tenancy import add_store, remove_store
from orderdesk_mcp.tenant.activity import (
    MAX_PAGE,
    OUTCOMES,
    PER_PAGE,
    action_choices,
    parse_filters,
)
from orderdesk_mcp.tenant.keys import (
    KeyChoice,
    KeyFormError,
    issue_from_page,
    parse_key_form,
    revoke_from_page,
)
from orderdesk_mcp.vault import Vault

from .tenant_helpers import (
    PASSWORD,
    csrf_of,
    make_tenant,
    page_csrf,
    signed_in,
    tenant_app,
    vault_of,
)

NEW_PASSWORD = "a brand new passphrase here"


@pytest.fixture
def app(data_dir: Path) -> Iterator[Flask]:
    with tenant_app(data_dir) as app:
        yield app


@pytest.fixture
def vault(app: Flask) -> Vault:
    return vault_of(app)


@pytest.fixture
def acme(app: Flask, vault: Vault) -> Tenant:
    tenant = make_tenant("acme")
    for store_id, alias in (("100001", "demo"), ("100002", "empty")):
        add_store(tenant, store_id=store_id, api_key=f"sk_{store_id}", vault=vault, alias=alias)
    return tenant


@pytest.fixture
def other(app: Flask) -> Tenant:
    return make_tenant("globex")


@pytest.fixture
def browser(app: Flask, acme: Tenant) -> FlaskClient:
    return signed_in(app.test_client(), "acme")


def _client() -> OAuthClient:
    return OAuthClient.create(
        client_id="client-1",
        kind="registered",
        metadata=json.dumps({"client_name": "Claude <b>", "redirect_uris": []}),
    )


def _grant(tenant: Tenant, client: OAuthClient, via_key_id: int | None = None) -> OAuthGrant:
    return create_grant(
        tenant_id=tenant.id,
        client=client,
        rights=GrantRights(read_only=True, store_ids=None, toolsets=frozenset({"orders"})),
        via_key_id=via_key_id,
        resource="http://127.0.0.1:8080/mcp",
        redirect_uri="https://claude.ai/api/mcp/auth_callback",
    )


def _audited(action: str, tenant: Tenant) -> list[AuditEvent]:
    return list(
        AuditEvent.select().where((AuditEvent.action == action) & (AuditEvent.tenant == tenant.id))
    )


# --- API keys -----------------------------------------------------------------------------


def test_create_a_key_shows_it_once(browser: FlaskClient, acme: Tenant) -> None:
    token = page_csrf(browser, "/tenant/keys")
    reply = browser.post(
        "/tenant/keys",
        data=MultiDict(
            [
                ("csrf_token", token),
                ("label", "Cursor on my laptop"),
                ("access", "read-only"),
                ("toolset", "orders"),
                ("toolset", "store"),
                ("stores", "chosen"),
                ("store", "demo"),
            ]
        ),
    )
    assert reply.status_code == 200
    shown = re.search(r"odmcp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", reply.text)
    assert shown is not None
    assert "shown only this once" in reply.text
    key = verify_token(shown.group(0))
    assert key is not None
    assert key.tenant_id == acme.id
    assert key.read_only
    assert key.toolsets == frozenset({"orders", "store"})
    row = ApiKey.get(ApiKey.public_id == key.public_id)
    assert parse_store_ids(row.store_ids) == {
        s.id
        for s in acme.stores
        if s.alias == "demo"  # type: ignore[attr-defined]
    }
    listing = browser.get("/tenant/keys").text
    assert key.public_id in listing
    assert "Cursor on my laptop" in listing
    assert shown.group(0) not in listing  # never again
    secret = shown.group(0).split("_", 2)[2]  # base64url: may itself hold "_"
    assert secret not in listing
    (event,) = _audited("tenant.key.create", acme)
    assert secret not in event.arguments
    assert json.loads(event.arguments)["stores"] == "demo"


def test_a_key_for_everything(browser: FlaskClient, acme: Tenant) -> None:
    token = page_csrf(browser, "/tenant/keys")
    data = MultiDict([("csrf_token", token), ("access", "read-write"), ("stores", "all")])
    for name in TOOLSETS:
        data.add("toolset", name)
    reply = browser.post("/tenant/keys", data=data)
    shown = re.search(r"odmcp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", reply.text)
    assert shown is not None
    key = verify_token(shown.group(0))
    assert key is not None
    assert not key.read_only
    assert key.toolsets is None
    assert key.store_ids is None


def test_a_bad_key_form_keeps_what_was_typed(browser: FlaskClient, acme: Tenant) -> None:
    token = page_csrf(browser, "/tenant/keys")
    reply = browser.post(
        "/tenant/keys",
        data={"csrf_token": token, "label": "my label", "access": "read-write", "stores": "all"},
    )
    assert reply.status_code == 400
    assert "Choose at least one kind of tool." in reply.text
    assert 'value="my label"' in reply.text
    assert re.search(r'id="access-rw"[^>]*checked', reply.text)
    assert ApiKey.select().where(ApiKey.tenant == acme).count() == 0


def test_only_bearer_keys_are_listed(browser: FlaskClient, acme: Tenant, other: Tenant) -> None:
    mine = issue_key(acme, label="mine")
    theirs = issue_key(other, label="theirs")
    grant = _grant(acme, _client())
    revoked = issue_key(acme, label="old")
    ApiKey.update(revoked=dt.datetime(2026, 1, 1)).where(ApiKey.id == revoked.key_id).execute()
    listing = browser.get("/tenant/keys").text
    assert mine.public_id in listing
    assert theirs.public_id not in listing
    assert revoked.public_id not in listing
    assert grant.api_key.public_id not in listing


def test_revoke_a_key_revokes_its_grants(browser: FlaskClient, acme: Tenant) -> None:
    issued = issue_key(acme, label="for claude")
    grant = _grant(acme, _client(), via_key_id=issued.key_id)
    token = page_csrf(browser, "/tenant/keys")
    reply = browser.post(f"/tenant/keys/{issued.public_id}/revoke", data={"csrf_token": token})
    assert reply.status_code == 303
    assert verify_token(issued.token) is None
    assert OAuthGrant.get_by_id(grant.id).revoked is not None
    page = browser.get(reply.headers["Location"])
    assert f"API key {issued.public_id} is revoked" in page.text
    (event,) = _audited("tenant.key.revoke", acme)
    assert json.loads(event.arguments)["grants_revoked"] == 1


def test_naming_another_tenants_store_on_the_key_form_is_404_and_creates_nothing(
    browser: FlaskClient, acme: Tenant, other: Tenant, vault: Vault
) -> None:
    """A hand-edited create form ticking a store that is not this tenant's: the 404 every
    other tenant's id gets (not "choose among the stores listed", and not a key for all
    stores with the stray name ignored), with either "stores" choice."""
    add_store(other, store_id="900001", api_key="sk_900001", vault=vault, alias="theirs")
    token = page_csrf(browser, "/tenant/keys")
    for scope in ("chosen", "all"):
        for stores in (["theirs"], ["demo", "theirs"], ["nowhere"]):
            fields = [
                ("csrf_token", token),
                ("label", "edited"),
                ("access", "read-write"),
                ("toolset", "orders"),
                ("stores", scope),
                *(("store", alias) for alias in stores),
            ]
            reply = browser.post("/tenant/keys", data=MultiDict(fields))
            assert reply.status_code == 404, (scope, stores, reply.status_code)
            assert "There is nothing here" in reply.text
            assert "theirs" not in reply.text
            assert "odmcp_" not in reply.text
    assert ApiKey.select().where(ApiKey.label == "edited").count() == 0
    assert _audited("tenant.key.create", acme) == []
    # The tenant's own stores still work, ticked with either choice.
    fields = [("csrf_token", token), ("label", "mine"), ("access", "read-only")]
    fields += [("toolset", "orders"), ("stores", "chosen"), ("store", "demo")]
    assert browser.post("/tenant/keys", data=MultiDict(fields)).status_code == 200


def test_another_tenants_key_is_404_and_untouched(
    browser: FlaskClient, acme: Tenant, other: Tenant
) -> None:
    theirs = issue_key(other, label="theirs")
    grant_rights = _grant(acme, _client()).api_key.public_id
    token = page_csrf(browser, "/tenant/keys")
    for public_id in (theirs.public_id, grant_rights, "nope"):
        reply = browser.post(f"/tenant/keys/{public_id}/revoke", data={"csrf_token": token})
        assert reply.status_code == 404
        assert "There is nothing here" in reply.text
    assert verify_token(theirs.token) is not None
    assert ApiKey.select().where(ApiKey.revoked.is_null(False)).count() == 0
    assert browser.get(f"/tenant/keys?revoked={theirs.public_id}").text.count("is revoked") == 0


def test_key_forms_need_the_csrf_token(browser: FlaskClient, acme: Tenant) -> None:
    issued = issue_key(acme, label="keep")
    for data in ({}, {"csrf_token": "f" * 64}):
        created = browser.post(
            "/tenant/keys", data={**data, "access": "read-only", "toolset": "orders"}
        )
        assert created.status_code == 400
        revoked = browser.post(f"/tenant/keys/{issued.public_id}/revoke", data=data)
        assert revoked.status_code == 400
    assert verify_token(issued.token) is not None
    assert ApiKey.select().count() == 1


@hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["label", "access", "toolset", "stores", "store", "junk"]),
            st.one_of(
                st.sampled_from(["read-only", "read-write", "all", "chosen", "demo", *TOOLSETS]),
                st.text(max_size=120),
            ),
        ),
        max_size=12,
    )
)
def test_the_key_form_parser_only_ever_grants_what_was_ticked(
    fields: list[tuple[str, str]],
) -> None:
    form = MultiDict(fields)
    try:
        choice = parse_key_form(form, ["demo", "empty"])
    except KeyFormError as problem:
        message = str(problem)
        assert message.endswith(".")
        return
    assert choice.access == form.get("access")
    assert choice.toolsets
    assert choice.toolsets == set(form.getlist("toolset"))
    assert choice.toolsets <= set(TOOLSETS)
    if choice.all_stores:
        assert form.get("stores", "all") == "all"
    else:
        assert choice.stores
        assert choice.stores <= {"demo", "empty"}
    assert len(choice.label) <= 100


# --- connected apps -----------------------------------------------------------------------


def test_apps_lists_and_revokes_a_grant(browser: FlaskClient, acme: Tenant, other: Tenant) -> None:
    client = _client()
    grant = _grant(acme, client)
    theirs = _grant(other, client)
    page = browser.get("/tenant/apps")
    assert page.status_code == 200
    assert "Claude &lt;b&gt;" in page.text  # escaped
    assert "claude.ai" in page.text
    assert "only read" in page.text
    assert grant.public_id in page.text
    assert theirs.public_id not in page.text
    token = csrf_of(page.text)
    reply = browser.post(f"/tenant/apps/{grant.public_id}/revoke", data={"csrf_token": token})
    assert reply.status_code == 303
    assert OAuthGrant.get_by_id(grant.id).revoked is not None
    assert ApiKey.get_by_id(grant.api_key.id).revoked is not None
    after = browser.get(reply.headers["Location"]).text
    assert "is disconnected" in after
    assert f"/tenant/apps/{grant.public_id}/revoke" not in after
    assert len(_audited("tenant.grant.revoke", acme)) == 1


def test_another_tenants_grant_is_404_and_untouched(
    browser: FlaskClient, acme: Tenant, other: Tenant
) -> None:
    theirs = _grant(other, _client())
    token = page_csrf(browser, "/tenant/apps")
    for grant_id in (theirs.public_id, "g_nope"):
        reply = browser.post(f"/tenant/apps/{grant_id}/revoke", data={"csrf_token": token})
        assert reply.status_code == 404
    assert OAuthGrant.get_by_id(theirs.id).revoked is None
    assert "disconnected" not in browser.get(f"/tenant/apps?revoked={theirs.public_id}").text


def test_revoking_an_app_needs_the_csrf_token(browser: FlaskClient, acme: Tenant) -> None:
    grant = _grant(acme, _client())
    for data in ({}, {"csrf_token": "0" * 64}):
        assert browser.post(f"/tenant/apps/{grant.public_id}/revoke", data=data).status_code == 400
    assert OAuthGrant.get_by_id(grant.id).revoked is None


# --- activity -----------------------------------------------------------------------------


def _events(tenant: Tenant, count: int, **fields: object) -> None:
    start = dt.datetime(2026, 3, 1)
    for n in range(count):
        AuditEvent.create(
            tenant=tenant,
            time=start + dt.timedelta(minutes=n),
            action=fields.get("action", "list_orders"),
            store=fields.get("store", "demo"),
            outcome=fields.get("outcome", "ok"),
            duration_ms=12.5,
            arguments=json.dumps({"email": f"customer{n}@example.com"}),
        )


def test_activity_is_paged_newest_first(browser: FlaskClient, acme: Tenant) -> None:
    AuditEvent.delete().execute()  # the sign-in's row
    _events(acme, PER_PAGE + 5)
    first = browser.get("/tenant/activity").text
    assert first.count("<h2>list_orders</h2>") == PER_PAGE
    assert "2026-03-01 00:54:00" in first  # the newest
    assert "2026-03-01 00:04:00" not in first
    assert "customer" not in first  # never the arguments
    assert "page=2" in first
    second = browser.get("/tenant/activity?page=2").text
    assert second.count("<h2>list_orders</h2>") == 5
    assert "2026-03-01 00:00:00" in second
    assert "Older" not in second


def test_activity_filters_and_only_this_tenant(
    browser: FlaskClient, acme: Tenant, other: Tenant
) -> None:
    _events(acme, 3, action="get_order", outcome="error")
    _events(acme, 2, action="get_order", outcome="ok")
    _events(other, 4, action="add_shipment", outcome="ok", store="secretstore")
    page = browser.get("/tenant/activity?action=get_order&outcome=error").text
    assert page.count("<h2>get_order</h2>") == 3
    assert "secretstore" not in browser.get("/tenant/activity").text
    assert "<h2>add_shipment</h2>" not in browser.get("/tenant/activity").text
    assert "<h2>" not in browser.get("/tenant/activity?action=add_shipment").text


@hypothesis_settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["page", "action", "outcome", "x"]), st.text(max_size=30)))
def test_activity_query_parsing_never_fails(args: dict[str, str]) -> None:
    page, action, outcome = parse_filters(MultiDict(args))
    assert 1 <= page <= MAX_PAGE
    assert len(action) <= 100
    assert len(outcome) <= 40


# --- account ------------------------------------------------------------------------------


def test_change_password_keeps_this_browser_and_ends_the_others(
    app: Flask, browser: FlaskClient, acme: Tenant
) -> None:
    elsewhere = signed_in(app.test_client(), "acme")
    token = page_csrf(browser, "/tenant/account")
    reply = browser.post(
        "/tenant/account/password",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert reply.status_code == 303
    assert "Your password is changed." in browser.get(reply.headers["Location"]).text
    assert browser.get("/tenant/keys").status_code == 200  # still signed in, new session id
    assert elsewhere.get("/tenant/keys").status_code == 303
    assert WebSession.select().where(WebSession.tenant == acme.id).count() == 1
    assert verify_password(Tenant.get_by_id(acme.id).password_hash, NEW_PASSWORD)
    assert len(_audited("tenant.password.change", acme)) == 1
    assert NEW_PASSWORD not in "".join(e.arguments for e in AuditEvent.select())


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        (
            {"current": "wrong password!", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            "not right",
        ),
        ({"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"}, "differ"),
        ({"current": PASSWORD, "password": "short", "confirm": "short"}, "at least 12"),
    ],
)
def test_a_refused_password_change_changes_nothing(
    browser: FlaskClient, acme: Tenant, fields: dict[str, str], sentence: str
) -> None:
    token = page_csrf(browser, "/tenant/account")
    reply = browser.post("/tenant/account/password", data={"csrf_token": token, **fields})
    assert reply.status_code == 400
    assert sentence in reply.text
    for value in fields.values():
        assert f'value="{value}"' not in reply.text  # no password typed comes back
    assert verify_password(Tenant.get_by_id(acme.id).password_hash, PASSWORD)
    assert browser.get("/tenant/keys").status_code == 200


def test_wrong_current_passwords_are_limited(browser: FlaskClient, acme: Tenant) -> None:
    token = page_csrf(browser, "/tenant/account")
    wrong = {"csrf_token": token, "current": "guess", "password": NEW_PASSWORD}
    for _ in range(10):
        assert browser.post("/tenant/account/password", data=wrong).status_code == 400
    right = {**wrong, "current": PASSWORD, "confirm": NEW_PASSWORD}
    reply = browser.post("/tenant/account/password", data=right)
    assert reply.status_code == 429
    assert verify_password(Tenant.get_by_id(acme.id).password_hash, PASSWORD)


def test_sign_out_everywhere(app: Flask, browser: FlaskClient, acme: Tenant, other: Tenant) -> None:
    elsewhere = signed_in(app.test_client(), "acme")
    theirs = signed_in(app.test_client(), "globex")
    token = page_csrf(browser, "/tenant/account")
    reply = browser.post("/tenant/account/sign-out-everywhere", data={"csrf_token": token})
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/tenant/sign-in"
    assert browser.get("/tenant/keys").status_code == 303
    assert elsewhere.get("/tenant/keys").status_code == 303
    assert theirs.get("/tenant/keys").status_code == 200
    (event,) = _audited("tenant.sign_out_everywhere", acme)
    assert json.loads(event.arguments)["sessions"] == 2


def test_account_forms_need_the_csrf_token(browser: FlaskClient, acme: Tenant) -> None:
    change = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    for token in ({}, {"csrf_token": "1" * 64}):
        assert browser.post("/tenant/account/password", data={**token, **change}).status_code == 400
        assert browser.post("/tenant/account/sign-out-everywhere", data=token).status_code == 400
    assert verify_password(Tenant.get_by_id(acme.id).password_hash, PASSWORD)
    assert browser.get("/tenant/keys").status_code == 200


def test_posts_without_a_sign_in_do_nothing(app: Flask, acme: Tenant) -> None:
    issued = issue_key(acme, label="keep")
    stranger = app.test_client()
    for path in (
        "/tenant/keys",
        f"/tenant/keys/{issued.public_id}/revoke",
        "/tenant/account/password",
        "/tenant/account/sign-out-everywhere",
    ):
        reply = stranger.post(path, data={"access": "read-only", "toolset": "orders"})
        assert reply.status_code == 303
        assert reply.headers["Location"].startswith("/tenant/sign-in?next=")
    assert verify_token(issued.token) is not None
    assert ApiKey.select().count() == 1


# --- review fixes: two tabs, labels, the cap, audit, activity ------------------------------


def test_a_store_removed_in_another_tab_is_a_sentence_not_a_500(
    app: Flask, acme: Tenant, vault: Vault
) -> None:
    # The form was read with "demo" listed; the store went before the key was issued.
    remove_store(acme, "demo")
    with app.test_request_context("/tenant/keys", method="POST"):
        reply = issue_from_page(acme, KeyChoice(all_stores=False, stores=frozenset({"demo"})))
    assert reply.status_code == 400
    assert "removed meanwhile" in reply.get_data(as_text=True)
    assert ApiKey.select().where(ApiKey.tenant == acme).count() == 0


def test_a_key_gone_in_another_tab_is_404(app: Flask, acme: Tenant) -> None:
    with app.test_request_context("/tenant/keys/x/revoke", method="POST"):
        assert revoke_from_page(acme, "000000000000").status_code == 404


@pytest.mark.parametrize("char", ["\x1b", "\x9b", "\u202e", "\u200b", "\u2028", "\u2029", "\x00"])
def test_labels_refuse_control_and_format_characters(char: str) -> None:
    form = MultiDict(
        [
            ("label", f"my{char}key"),
            ("access", "read-only"),
            ("toolset", "orders"),
            ("stores", "all"),
        ]
    )
    with pytest.raises(KeyFormError, match="control or formatting"):
        parse_key_form(form, [])


def test_the_cli_refuses_the_same_labels(acme: Tenant) -> None:
    with pytest.raises(AuthError, match="control or formatting"):
        issue_key(acme, label="evil\u202e")


def test_live_keys_are_capped(browser: FlaskClient, acme: Tenant) -> None:
    for number in range(MAX_LIVE_KEYS):
        issue_key(acme, label=f"key {number}")
    with pytest.raises(AuthError, match="the most it may have"):
        issue_key(acme, label="one too many")
    token = page_csrf(browser, "/tenant/keys")
    reply = browser.post(
        "/tenant/keys",
        data={"csrf_token": token, "access": "read-only", "toolset": "orders", "stores": "all"},
    )
    assert reply.status_code == 400
    assert f"You already have {MAX_LIVE_KEYS} API keys" in reply.text
    assert reply.text.count(f"You already have {MAX_LIVE_KEYS} API keys") == 1  # rendered once
    live = ApiKey.select().where((ApiKey.tenant == acme) & ApiKey.revoked.is_null())
    assert live.count() == MAX_LIVE_KEYS


def test_key_audit_rows_name_the_key(browser: FlaskClient, acme: Tenant) -> None:
    token = page_csrf(browser, "/tenant/keys")
    created = browser.post(
        "/tenant/keys",
        data={"csrf_token": token, "access": "read-only", "toolset": "orders", "stores": "all"},
    )
    public_id = re.search(r"odmcp_([0-9a-f]{12})_", created.text)
    assert public_id is not None
    browser.post(f"/tenant/keys/{public_id.group(1)}/revoke", data={"csrf_token": token})
    for action in ("tenant.key.create", "tenant.key.revoke"):
        (event,) = _audited(action, acme)
        assert json.loads(event.arguments)["public_id"] == public_id.group(1)


def test_a_form_error_is_rendered_once(browser: FlaskClient) -> None:
    token = page_csrf(browser, "/tenant/keys")
    reply = browser.post("/tenant/keys", data={"csrf_token": token, "access": "read-only"})
    assert reply.status_code == 400
    assert reply.text.count("Choose at least one kind of tool.") == 1


def test_a_wrong_current_password_is_audited_as_refused(browser: FlaskClient, acme: Tenant) -> None:
    token = page_csrf(browser, "/tenant/account")
    browser.post(
        "/tenant/account/password",
        data={
            "csrf_token": token,
            "current": "wrong",
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    (event,) = _audited("tenant.password.change", acme)
    assert event.outcome == "refused"


def test_activity_choices_are_a_fixed_list(
    browser: FlaskClient, acme: Tenant, other: Tenant
) -> None:
    AuditEvent.create(tenant=acme, action="made-up action", outcome="made-up outcome")
    page = browser.get("/tenant/activity").text
    assert "made-up action</option>" not in page
    assert "made-up outcome</option>" not in page
    assert "tools/call list_orders</option>" in action_choices() or "tools/call list_orders" in page
    assert "tenant.key.create" in action_choices()
    assert "refused" in OUTCOMES


def test_the_activity_index_exists(app: Flask) -> None:
    db = AuditEvent._meta.database
    indexes = {index.name: index.columns for index in db.get_indexes("audit_event")}
    assert ["tenant_id", "time"] in indexes.values()
