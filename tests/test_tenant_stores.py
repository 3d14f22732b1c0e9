"""/tenant/stores: a signed-in tenant lists, adds, re-keys, defaults and removes its stores.

The real app on a real SQLite file, driven as a browser would (forms, cookies, redirects);
connection tests go to the real sandbox over HTTP. Every change is checked in the database,
and the typed API key is checked to appear nowhere: not in a page, the audit or the data dir.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orderdesk_mcp.app import get_services
from orderdesk_mcp.auth import issue_key, parse_store_ids
from orderdesk_mcp.config import Settings, SettingsError, load_settings
from orderdesk_mcp.db.models import ApiKey, AuditEvent, Store, Tenant
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.tenancy import (
    TenancyError,
    add_store,
    open_store_key,
    remove_store,
    validate_alias,
    validate_store_id,
)
from orderdesk_mcp.tenant import store_limits, stores
from orderdesk_mcp.tenant.store_forms import (
    BASE_URL_NOT_OFFERED,
    NewStore,
    StoreFormError,
    read_new_store,
)
from orderdesk_mcp.tenant.store_limits import ConnectionTestLimits
from orderdesk_mcp.vault import Vault

from .conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE, SANDBOX_KEYS, make_mcp_app
from .tenant_helpers import csrf_of, make_tenant, page_csrf, signed_in, tenant_settings

DEMO_KEY = SANDBOX_KEYS[SANDBOX_DEMO_STORE]
EMPTY_KEY = SANDBOX_KEYS[SANDBOX_EMPTY_STORE]
WRONG_KEY = "sk_wrong_key_0f3e9a7c1b"
OFFICIAL = "https://app.orderdesk.me/api/v2"


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def page_settings(settings: Settings, data_dir: Path, sandbox: RunningSandbox) -> Settings:
    """The area on, the sandbox on the allow-list beside the official API."""
    return tenant_settings(data_dir, ORDERDESK_MCP_ALLOWED_BASE_URLS=sandbox.base_url)


def _app(page_settings: Settings, db: peewee.Database, vault: Vault) -> Iterator[Flask]:
    app = make_mcp_app(page_settings, db, vault)
    yield app
    machinery = get_services(app).machinery
    if machinery is not None:
        machinery.close()


@pytest.fixture
def app(page_settings: Settings, db: peewee.Database, vault: Vault) -> Iterator[Flask]:
    yield from _app(page_settings, db, vault)


@pytest.fixture
def acme(db: peewee.Database) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def browser(app: Flask, acme: Tenant) -> FlaskClient:
    return signed_in(app.test_client(), "acme")


def _add_form(browser: FlaskClient, **fields: str) -> dict[str, str]:
    return {"csrf_token": page_csrf(browser, "/tenant/stores"), **fields}


def _post_add(browser: FlaskClient, **fields: str):  # type: ignore[no-untyped-def]
    return browser.post("/tenant/stores", data=_add_form(browser, **fields))


def _stores_of(tenant: Tenant) -> list[Store]:
    return list(Store.select().where(Store.tenant == tenant).order_by(Store.id))


def _audit(action: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.action == action))


def _files_hold(directory: Path, secret: str) -> list[Path]:
    return [
        path
        for path in directory.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


# --- the list ----------------------------------------------------------------------------


def test_the_list_shows_each_store_but_never_its_key(
    app: Flask, browser: FlaskClient, acme: Tenant, vault: Vault, sandbox: RunningSandbox
) -> None:
    add_store(acme, store_id="100001", api_key=DEMO_KEY, vault=vault, alias="main")
    add_store(
        acme,
        store_id="100002",
        api_key=EMPTY_KEY,
        vault=vault,
        alias="test",
        base_url=sandbox.base_url,
    )
    page = browser.get("/tenant/stores")
    assert page.status_code == 200
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "main" in page.text
    assert "100001" in page.text
    assert "(default)" in page.text
    assert sandbox.base_url in page.text  # not the official one: shown
    assert "never" in page.text  # last checked
    assert DEMO_KEY not in page.text
    assert EMPTY_KEY not in page.text
    assert 'name="api_key" type="password" autocomplete="new-password"' in page.text


def test_the_list_of_a_new_tenant_invites_a_first_store(browser: FlaskClient) -> None:
    page = browser.get("/tenant/stores")
    assert "no store connected yet" in page.text
    # Only the official API on offer (the sandbox is on the allow-list): a choice appears.
    assert 'name="base_url"' in page.text


def test_without_an_allow_list_there_is_no_address_to_choose(
    settings: Settings, data_dir: Path, db: peewee.Database, vault: Vault, acme: Tenant
) -> None:
    for app in _app(tenant_settings(data_dir), db, vault):
        page = signed_in(app.test_client(), "acme").get("/tenant/stores")
        assert 'name="base_url"' not in page.text


def test_signed_out_the_stores_page_sends_to_sign_in_and_changes_nothing(
    app: Flask, acme: Tenant, vault: Vault
) -> None:
    add_store(acme, store_id="100001", api_key=DEMO_KEY, vault=vault, alias="main")
    anonymous = app.test_client()
    for path in ("/tenant/stores", "/tenant/stores/1/remove"):
        reply = anonymous.post(path, data={"store_id": "100002", "api_key": EMPTY_KEY})
        assert reply.status_code == 303
        assert reply.headers["Location"].startswith("/tenant/sign-in")
    assert [s.alias for s in _stores_of(acme)] == ["main"]


# --- adding ------------------------------------------------------------------------------


def test_adding_a_store_tests_the_key_then_keeps_it_sealed(
    browser: FlaskClient,
    acme: Tenant,
    vault: Vault,
    data_dir: Path,
    sandbox: RunningSandbox,
) -> None:
    reply = _post_add(
        browser,
        store_id=SANDBOX_DEMO_STORE,
        api_key=DEMO_KEY,
        alias="main",
        base_url=sandbox.base_url,
    )
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/tenant/stores?done=added"
    (saved,) = _stores_of(acme)
    assert (saved.alias, saved.store_id, saved.base_url) == ("main", "100001", sandbox.base_url)
    assert saved.is_default
    assert saved.last_verified is not None
    assert open_store_key(Store.get_by_id(saved.id), vault) == DEMO_KEY
    assert DEMO_KEY.encode() not in bytes(saved.sealed_api_key)
    page = browser.get(reply.headers["Location"])
    assert "The store is connected" in page.text
    assert DEMO_KEY not in page.text
    (event,) = _audit("tenant.store.add")
    assert event.tenant_id == acme.id
    assert event.store == "main"
    assert DEMO_KEY not in event.arguments
    assert _files_hold(data_dir, DEMO_KEY) == []


def test_a_store_on_the_official_api_saves_no_base_url(
    settings: Settings,
    data_dir: Path,
    db: peewee.Database,
    vault: Vault,
    acme: Tenant,
    sandbox: RunningSandbox,
) -> None:
    # The sandbox stands in for the official API here: ORDERDESK_API_BASE_URL points at it.
    official = tenant_settings(data_dir, ORDERDESK_API_BASE_URL=sandbox.base_url)
    for app in _app(official, db, vault):
        browser = signed_in(app.test_client(), "acme")
        reply = _post_add(browser, store_id=SANDBOX_EMPTY_STORE, api_key=EMPTY_KEY, alias="")
        assert reply.status_code == 303, reply.text
    (saved,) = _stores_of(acme)
    assert (saved.alias, saved.base_url) == (SANDBOX_EMPTY_STORE, None)


def test_a_wrong_key_saves_nothing_and_keeps_what_was_typed_but_the_key(
    browser: FlaskClient, acme: Tenant, sandbox: RunningSandbox, data_dir: Path
) -> None:
    reply = _post_add(
        browser,
        store_id=SANDBOX_DEMO_STORE,
        api_key=WRONG_KEY,
        alias="main",
        base_url=sandbox.base_url,
        default="on",
    )
    assert reply.status_code == 400
    assert stores.KEY_REFUSED_NEW in reply.text
    assert 'value="100001"' in reply.text
    assert 'value="main"' in reply.text
    assert "checked" in reply.text
    assert WRONG_KEY not in reply.text
    assert _stores_of(acme) == []
    (event,) = _audit("tenant.store.add_refused")
    assert WRONG_KEY not in event.arguments
    assert _files_hold(data_dir, WRONG_KEY) == []


def test_an_unreachable_order_desk_saves_nothing(
    settings: Settings, data_dir: Path, db: peewee.Database, vault: Vault, acme: Tenant
) -> None:
    # Nothing listens on the discard port: the check gets no answer at all.
    closed = tenant_settings(data_dir, ORDERDESK_API_BASE_URL="http://127.0.0.1:9/api/v2")
    for app in _app(closed, db, vault):
        browser = signed_in(app.test_client(), "acme")
        reply = _post_add(browser, store_id="100001", api_key=DEMO_KEY, alias="main")
        assert reply.status_code == 400
        assert stores.UPSTREAM_DOWN in reply.text
        assert 'value="main"' in reply.text
    assert _stores_of(acme) == []
    assert len(_audit("tenant.store.add_unchecked")) == 1


def test_a_taken_alias_is_refused_before_order_desk_is_asked(
    browser: FlaskClient, acme: Tenant, vault: Vault, sandbox: RunningSandbox
) -> None:
    add_store(acme, store_id="100001", api_key=DEMO_KEY, vault=vault, alias="main")
    # A wrong key: had Order Desk been asked, the page would say the key was refused.
    reply = _post_add(
        browser, store_id="100002", api_key=WRONG_KEY, alias="main", base_url=sandbox.base_url
    )
    assert reply.status_code == 400
    assert "already has a store with alias" in reply.text
    assert stores.KEY_REFUSED_NEW not in reply.text
    assert len(_stores_of(acme)) == 1
    assert _audit("tenant.store.add_refused") == []


def test_a_base_url_off_the_allow_list_is_refused(browser: FlaskClient, acme: Tenant) -> None:
    reply = _post_add(
        browser,
        store_id="100001",
        api_key=DEMO_KEY,
        alias="main",
        base_url="http://127.0.0.1:9/api/v2",
    )
    assert reply.status_code == 400
    assert BASE_URL_NOT_OFFERED in reply.text
    assert 'value="main"' in reply.text
    assert _stores_of(acme) == []


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"store_id": "12ab", "api_key": DEMO_KEY}, "is not an Order Desk store id"),
        ({"store_id": "100001", "api_key": ""}, "Paste the store"),
        ({"store_id": "100001", "api_key": "two words"}, "spaces or characters"),
        ({"store_id": "100001", "api_key": DEMO_KEY, "alias": "my store"}, "is not allowed"),
    ],
)
def test_bad_input_is_one_sentence_and_nothing_is_saved(
    browser: FlaskClient, acme: Tenant, fields: dict[str, str], said: str
) -> None:
    reply = _post_add(browser, **fields)
    assert reply.status_code == 400
    assert said in reply.text
    assert DEMO_KEY not in reply.text
    assert _stores_of(acme) == []


# --- replacing a key ---------------------------------------------------------------------


@pytest.fixture
def stale(acme: Tenant, vault: Vault, sandbox: RunningSandbox) -> Store:
    """A store whose saved key no longer works (as after a key change in Order Desk)."""
    return add_store(
        acme,
        store_id=SANDBOX_DEMO_STORE,
        api_key="sk_old_key_1",
        vault=vault,
        alias="main",
        base_url=sandbox.base_url,
    )


def test_a_new_key_is_tested_then_sealed_in_place_of_the_old(
    browser: FlaskClient, stale: Store, vault: Vault, data_dir: Path
) -> None:
    form = browser.get(f"/tenant/stores/{stale.id}/key")
    assert form.status_code == 200
    assert "main" in form.text
    reply = browser.post(
        f"/tenant/stores/{stale.id}/key",
        data={"csrf_token": csrf_of(form.text), "api_key": DEMO_KEY},
    )
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/tenant/stores?done=key"
    row = Store.get_by_id(stale.id)
    assert open_store_key(row, vault) == DEMO_KEY
    assert row.last_verified is not None
    (event,) = _audit("tenant.store.key")
    assert event.store == "main"
    assert DEMO_KEY not in event.arguments
    assert _files_hold(data_dir, DEMO_KEY) == []


def test_a_refused_new_key_keeps_the_old_one(
    browser: FlaskClient, stale: Store, vault: Vault
) -> None:
    before = bytes(stale.sealed_api_key)
    reply = browser.post(
        f"/tenant/stores/{stale.id}/key",
        data={"csrf_token": page_csrf(browser, "/tenant/stores"), "api_key": WRONG_KEY},
    )
    assert reply.status_code == 400
    assert stores.KEY_REFUSED_REPLACE in reply.text
    assert WRONG_KEY not in reply.text
    row = Store.get_by_id(stale.id)
    assert bytes(row.sealed_api_key) == before
    assert open_store_key(row, vault) == "sk_old_key_1"
    assert row.last_verified is None


# --- default and removal -----------------------------------------------------------------


def test_making_a_store_the_default(browser: FlaskClient, acme: Tenant, vault: Vault) -> None:
    first = add_store(acme, store_id="100001", api_key=DEMO_KEY, vault=vault, alias="main")
    second = add_store(acme, store_id="100002", api_key=EMPTY_KEY, vault=vault, alias="spare")
    reply = browser.post(
        f"/tenant/stores/{second.id}/default",
        data={"csrf_token": page_csrf(browser, "/tenant/stores")},
    )
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/tenant/stores?done=default"
    assert not Store.get_by_id(first.id).is_default
    assert Store.get_by_id(second.id).is_default
    assert [e.store for e in _audit("tenant.store.default")] == ["spare"]
    assert "The default store is changed" in browser.get(reply.headers["Location"]).text


def test_removing_asks_first_then_drops_the_store_from_narrowed_keys(
    browser: FlaskClient, acme: Tenant, vault: Vault
) -> None:
    main = add_store(acme, store_id="100001", api_key=DEMO_KEY, vault=vault, alias="main")
    spare = add_store(acme, store_id="100002", api_key=EMPTY_KEY, vault=vault, alias="spare")
    narrowed = issue_key(acme, label="both", store_ids=frozenset({main.id, spare.id}))
    confirm = browser.get(f"/tenant/stores/{main.id}/remove")
    assert confirm.status_code == 200
    assert "Remove store" in confirm.text
    assert "default" in confirm.text
    assert len(_stores_of(acme)) == 2  # asking removes nothing
    reply = browser.post(
        f"/tenant/stores/{main.id}/remove", data={"csrf_token": csrf_of(confirm.text)}
    )
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/tenant/stores?done=removed"
    assert [s.alias for s in _stores_of(acme)] == ["spare"]
    assert Store.get_by_id(spare.id).is_default  # the successor
    key_row = ApiKey.get(ApiKey.public_id == narrowed.public_id)
    assert parse_store_ids(key_row.store_ids) == frozenset({spare.id})
    assert [e.store for e in _audit("tenant.store.remove")] == ["main"]


# --- isolation and CSRF ------------------------------------------------------------------


def _state() -> list[tuple[object, ...]]:
    return [
        (s.id, s.tenant_id, s.alias, s.is_default, bytes(s.sealed_api_key), s.last_verified)
        for s in Store.select().order_by(Store.id)
    ]


def test_another_tenants_store_is_not_found_and_untouched(
    app: Flask, browser: FlaskClient, vault: Vault, sandbox: RunningSandbox
) -> None:
    globex = make_tenant("globex")
    theirs = add_store(
        globex,
        store_id="100001",
        api_key=DEMO_KEY,
        vault=vault,
        alias="their-shop",
        base_url=sandbox.base_url,
    )
    add_store(globex, store_id="100002", api_key=EMPTY_KEY, vault=vault, alias="spare")
    before = _state()
    token = page_csrf(browser, "/tenant/stores")
    for path in ("key", "remove"):
        page = browser.get(f"/tenant/stores/{theirs.id}/{path}")
        assert page.status_code == 404
        assert "their-shop" not in page.text
    for path, data in (
        ("key", {"api_key": DEMO_KEY}),
        ("default", {}),
        ("remove", {}),
    ):
        reply = browser.post(
            f"/tenant/stores/{theirs.id}/{path}", data={"csrf_token": token, **data}
        )
        assert reply.status_code == 404, path
    for junk in ("x", "0", "-1", "1e3", "٣", "9" * 40):
        assert browser.get(f"/tenant/stores/{junk}/remove").status_code == 404
    assert _state() == before
    assert AuditEvent.select().where(AuditEvent.action.startswith("tenant.store")).count() == 0


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_every_store_form_needs_the_sessions_csrf_token(
    browser: FlaskClient, acme: Tenant, vault: Vault, sandbox: RunningSandbox, token: str | None
) -> None:
    main = add_store(acme, store_id="100001", api_key="sk_old_key_1", vault=vault, alias="main")
    spare = add_store(acme, store_id="100002", api_key=EMPTY_KEY, vault=vault, alias="spare")
    before = _state()
    extra = {} if token is None else {"csrf_token": token}
    posts = [
        (
            "/tenant/stores",
            {
                "store_id": "100001",
                "api_key": DEMO_KEY,
                "alias": "new",
                "base_url": sandbox.base_url,
            },
        ),
        (f"/tenant/stores/{main.id}/key", {"api_key": DEMO_KEY}),
        (f"/tenant/stores/{spare.id}/default", {}),
        (f"/tenant/stores/{main.id}/remove", {}),
    ]
    for path, data in posts:
        reply = browser.post(path, data={**data, **extra})
        assert reply.status_code == 400, path
        assert "Form expired" in reply.text
    assert _state() == before


# --- rate limit --------------------------------------------------------------------------


def test_connection_tests_are_limited_per_tenant(
    browser: FlaskClient, acme: Tenant, sandbox: RunningSandbox
) -> None:
    limit = int(store_limits.PER_TENANT.split("/")[0])
    for _ in range(limit):
        reply = _post_add(browser, store_id="100001", api_key=WRONG_KEY, base_url=sandbox.base_url)
        assert reply.status_code == 400
    reply = _post_add(browser, store_id="100001", api_key=DEMO_KEY, base_url=sandbox.base_url)
    assert reply.status_code == 429
    assert "try again in about" in reply.text
    assert 0 < int(reply.headers["Retry-After"]) <= 600
    assert _stores_of(acme) == []


def test_the_limits_count_per_tenant_and_per_address() -> None:
    limits = ConnectionTestLimits("memory://")
    per_tenant = int(store_limits.PER_TENANT.split("/")[0])
    per_address = int(store_limits.PER_ADDRESS.split("/")[0])
    for tenant_id in range(per_address // per_tenant):
        for _ in range(per_tenant):
            assert limits.hit(tenant_id, "198.51.100.1") is None
        assert limits.hit(tenant_id, "198.51.100.9") is not None  # the tenant's limit
    # Another tenant on the same address: the address's limit.
    assert limits.hit(999, "198.51.100.1") is not None
    assert limits.hit(999, "198.51.100.2") is None


# --- settings ----------------------------------------------------------------------------


def test_the_allow_list_setting(data_dir: Path) -> None:
    base = {"ORDERDESK_MCP_DATA_DIR": str(data_dir)}
    assert load_settings(base).store_base_urls == (OFFICIAL,)
    listed = load_settings(
        {**base, "ORDERDESK_MCP_ALLOWED_BASE_URLS": f"https://sandbox.example/api/v2/, {OFFICIAL}"}
    )
    assert listed.store_base_urls == (OFFICIAL, "https://sandbox.example/api/v2")
    with pytest.raises(SettingsError, match="ORDERDESK_MCP_ALLOWED_BASE_URLS"):
        load_settings({**base, "ORDERDESK_MCP_ALLOWED_BASE_URLS": "http://sandbox.example/api"})
    assert load_settings(
        {**base, "ORDERDESK_MCP_ALLOWED_BASE_URLS": "http://127.0.0.1:8765/api/v2"}
    ).allowed_base_urls == ("http://127.0.0.1:8765/api/v2",)


# --- form parsing of outside input ---------------------------------------------------------

OFFERED = (OFFICIAL, "https://sandbox.example/api/v2")
_field_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "100001", "0", "main", " 42 ", *OFFERED, OFFERED[1] + "/"]),
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    form=st.dictionaries(
        st.sampled_from(["store_id", "api_key", "alias", "base_url", "default", "other"]),
        _field_text,
    ),
    secret=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=12, max_size=80
    ),
)
def test_the_add_form_is_read_or_refused_in_one_sentence(form: dict[str, str], secret: str) -> None:
    form = {**form, "api_key": form.get("api_key", secret) or secret}
    try:
        wanted: NewStore | StoreFormError = read_new_store(form, OFFERED)
    except StoreFormError as refused:
        wanted = refused
    if isinstance(wanted, StoreFormError):
        assert wanted.message[:1].isupper()
        assert wanted.message.endswith(".")
        assert "api_key" not in wanted.kept
        typed = form["api_key"].strip()
        if len(typed) >= 12 and all(typed not in v for k, v in form.items() if k != "api_key"):
            assert typed not in wanted.message
            assert all(typed not in value for value in wanted.kept.values())
        return
    assert validate_store_id(wanted.store_id) == wanted.store_id
    if wanted.alias is not None:
        assert validate_alias(wanted.alias) == wanted.alias
    assert wanted.base_url in (None, OFFERED[1])
    assert wanted.api_key == form["api_key"].strip()
    assert "api_key" not in repr(wanted)


def test_tenancy_refuses_a_key_that_cannot_travel_in_a_header(acme: Tenant, vault: Vault) -> None:
    with pytest.raises(TenancyError, match="spaces or characters"):
        add_store(acme, store_id="100001", api_key="clé-sans-espace", vault=vault)


def test_tests_at_the_same_moment_cannot_all_pass_the_limit() -> None:
    # Counted first, then refused: threads let through together never exceed the limit.
    per_tenant = int(store_limits.PER_TENANT.split("/")[0])
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often: a check-then-count gap is hit
    try:
        _race_the_limits(per_tenant)
    finally:
        sys.setswitchinterval(switch_interval)


def _one_test(
    limits: ConnectionTestLimits,
    start: threading.Barrier,
    passed: list[bool],
    tenant_id: int,
    address: str,
) -> None:
    start.wait()
    passed.append(limits.hit(tenant_id, address) is None)


def _race_the_limits(per_tenant: int) -> None:
    for round_number in range(20):
        limits = ConnectionTestLimits("memory://")
        start = threading.Barrier(8 * per_tenant)
        passed: list[bool] = []
        threads = [
            threading.Thread(
                target=_one_test, args=(limits, start, passed, round_number, f"198.51.100.{n}")
            )
            for n in range(8 * per_tenant)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert passed.count(True) == per_tenant


def test_a_store_removed_in_another_tab_is_404_not_500(
    app: Flask, acme: Tenant, vault: Vault
) -> None:
    store = add_store(acme, store_id="100001", api_key="sk_1", vault=vault, alias="demo")
    remove_store(acme, "demo")
    with app.test_request_context("/tenant/stores/1/remove", method="POST"):
        assert stores.remove_from_page(acme, store).status_code == 404
        assert stores.default_from_page(acme, store).status_code == 404


def test_the_key_fields_never_invite_the_sign_in_password(
    browser: FlaskClient, acme: Tenant, vault: Vault
) -> None:
    add_store(acme, store_id="100001", api_key="sk_1", vault=vault, alias="demo")
    store = Store.get(Store.alias == "demo")
    for path in ("/tenant/stores", f"/tenant/stores/{store.id}/key"):
        html = browser.get(path).text
        (field,) = re.findall(r'<input id="api_key"[^>]*>', html)
        assert 'autocomplete="new-password"' in field
    (store_id,) = re.findall(r'<input id="store_id"[^>]*>', browser.get("/tenant/stores").text)
    assert 'autocomplete="off"' in store_id
