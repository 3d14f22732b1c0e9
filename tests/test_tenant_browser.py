"""A real browser through the tenant area: headless Chromium from Debian's packages, driven by
Selenium through Debian's chromedriver (never a downloaded browser or driver).

The merchant signs in, adds a store against the sandbox (a wrong key first: the error shows
and nothing is saved), creates an API key and uses it from the official MCP SDK client,
revokes it (the client then gets 401), disconnects an app (revoking its OAuth grant) and reads
the activity page, which lists each of those actions. A screenshot of each page is written
under the test's temp dir (its path is printed).
Afterwards no file the server wrote holds the store key, the password or a token in clear.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderdesk_mcp.db.models import ApiKey, OAuthGrant, Store
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.tenancy import remove_store
from tests.conftest import SANDBOX_EMPTY_STORE, SANDBOX_KEYS
from tests.headless_chromium import WAIT_S, headless_chromium, needs_chromium, page_left
from tests.oauth_e2e import (
    TENANT,
    Browser,
    McpOverHttp,
    OAuthSite,
    Pkce,
    assert_token_refused,
    authorize_url,
    checkpoint,
    exchange_code,
    files_holding,
    oauth_site,
    register_client,
    secrets_of,
)

APP_NAME = "Spreadsheet Helper"
WRONG_KEY = "sk_wrong_" + secrets.token_hex(8)

pytestmark = needs_chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with headless_chromium(tmp_path) as driver:
        yield driver


def sdk_call(mcp_url: str, token: str, statuses: list[int]) -> dict[str, Any]:
    """list_stores through the official MCP SDK client; every HTTP status lands in `statuses`."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def record(response: Any) -> None:
        statuses.append(response.status_code)

    async def run() -> dict[str, Any]:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
            http.event_hooks["response"].append(record)
            transport = streamable_http_client(mcp_url, http_client=http)
            async with Client(transport) as client:
                result = await client.call_tool("list_stores", {})
                assert result.is_error is False, result.content
                data: dict[str, Any] = result.structured_content
                return data

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


def oauth_grant_token(site: OAuthSite) -> str:
    """An app connected through the OAuth flow (signing in with the password): its token."""
    from tests.oauth_e2e import RedirectListener

    listener = RedirectListener()
    person = Browser(site.base)
    try:
        client = register_client(site.base, listener.redirect_uri, name=APP_NAME)
        pkce = Pkce.new()
        url = authorize_url(site.base, client["client_id"], listener.redirect_uri, pkce, state="s")
        result = person.authorize(url, password=site.password)
        tokens = exchange_code(site.base, client, result.code, pkce, listener.redirect_uri)
    finally:
        person.close()
        listener.stop()
    token = str(tokens["access_token"])
    mcp = McpOverHttp(site.mcp_url, token)
    try:
        assert mcp.initialize().status_code == 200
    finally:
        mcp.close()
    return token


def test_a_merchant_manages_stores_keys_and_apps_in_a_browser(
    data_dir: Path, sandbox: RunningSandbox, browser: Any, tmp_path: Path
) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    # A submitted form replaces the page while a condition reads the old one: an element found
    # there goes stale, and the next poll reads the new page.
    wait = WebDriverWait(
        driver,
        WAIT_S,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    print(f"\nscreenshots: {tmp_path}")
    shots: list[str] = []

    def shot(name: str) -> None:  # kept with the test output, for a person to look at
        path = tmp_path / f"{len(shots) + 1:02d}-{name}.png"
        driver.save_screenshot(str(path))
        shots.append(path.name)

    def body() -> str:
        return str(driver.find_element(By.TAG_NAME, "body").text)

    def form_with(name: str) -> WebElement:
        field = driver.find_element(By.NAME, name)
        form: WebElement = field.find_element(By.XPATH, "./ancestor::form")
        return form

    def press(form: WebElement, words: str | None = None) -> None:
        """Click the form's submit button (the one whose text has `words`, else the first)."""
        buttons = form.find_elements(By.CSS_SELECTOR, "button, input[type=submit]")
        chosen = [b for b in buttons if words is None or words.lower() in b.text.lower()]
        (chosen or buttons)[0].click()

    def form_in_row(text: str, words: str) -> WebElement:
        """The form (e.g. revoke) in the table row or list item that shows `text`."""
        rows = driver.find_elements(By.XPATH, f"//*[self::tr or self::li][contains(., '{text}')]")
        for row in rows:
            for form in row.find_elements(By.TAG_NAME, "form"):
                if (
                    words.lower() in form.text.lower()
                    or words.lower() in (form.get_attribute("innerHTML") or "").lower()
                ):
                    return form  # type: ignore[no-any-return]
        raise AssertionError(f"no '{words}' form beside {text!r}: {body()}")

    def submitted(form: WebElement, words: str | None = None) -> None:
        """Press the form's button and wait until the browser has left the page it was on
        (every form here answers with a new page, even one at the same address)."""
        old_body = driver.find_element(By.TAG_NAME, "body")
        press(form, words)
        wait.until(page_left(old_body))

    env = {"ORDERDESK_MCP_ALLOWED_BASE_URLS": sandbox.base_url}
    with oauth_site(data_dir, sandbox, env) as site:
        tenant = site.tenant.tenant
        remove_store(tenant, "empty")  # the merchant adds it back on the page
        app_token = oauth_grant_token(site)

        # Signing in: the area sends a stranger to the sign-in page, then back.
        driver.get(f"{site.base}/tenant/stores")
        wait.until(expected_conditions.presence_of_element_located((By.NAME, "password")))
        assert "/tenant/sign-in" in driver.current_url
        shot("sign-in")
        driver.find_element(By.NAME, "username").send_keys(TENANT)
        driver.find_element(By.NAME, "password").send_keys(site.password)
        submitted(form_with("password"))
        wait.until(expected_conditions.presence_of_element_located((By.NAME, "store_id")))
        assert driver.current_url.startswith(f"{site.base}/tenant/stores")
        assert "demo" in body()
        shot("stores")

        # A wrong key: one sentence, what was typed kept (never the key), nothing saved.
        def fill_store(key: str) -> None:
            form = form_with("store_id")
            for name, value in (("store_id", SANDBOX_EMPTY_STORE), ("alias", "spare")):
                field = form.find_element(By.NAME, name)
                field.clear()
                field.send_keys(value)
            form.find_element(By.NAME, "api_key").send_keys(key)
            choices = form.find_elements(By.CSS_SELECTOR, "select[name=base_url]")
            if choices:
                Select(choices[0]).select_by_value(sandbox.base_url)
            submitted(form)

        fill_store(WRONG_KEY)
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".error")))
        shot("store-wrong-key")
        assert Store.select().where(Store.tenant == tenant.id).count() == 1
        assert (
            driver.find_element(By.NAME, "store_id").get_attribute("value") == SANDBOX_EMPTY_STORE
        )
        assert driver.find_element(By.NAME, "alias").get_attribute("value") == "spare"
        assert driver.find_element(By.NAME, "api_key").get_attribute("value") == ""
        assert WRONG_KEY not in driver.page_source
        assert "Traceback" not in driver.page_source

        # The right key: tested live against the sandbox, then saved (sealed).
        fill_store(SANDBOX_KEYS[SANDBOX_EMPTY_STORE])
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".success")))
        assert not driver.find_elements(By.CSS_SELECTOR, ".error")
        assert "spare" in body()
        shot("store-added")
        added = Store.get((Store.tenant == tenant.id) & (Store.alias == "spare"))
        assert added.store_id == SANDBOX_EMPTY_STORE
        assert SANDBOX_KEYS[SANDBOX_EMPTY_STORE] not in driver.page_source

        # An API key, shown once, used from the official MCP SDK client.
        driver.get(f"{site.base}/tenant/keys")
        wait.until(expected_conditions.presence_of_element_located((By.NAME, "label")))
        shot("keys")
        form = form_with("label")
        form.find_element(By.NAME, "label").send_keys("browser key")
        submitted(form)
        wait.until(lambda d: re.search(r"odmcp_[A-Za-z0-9_\-]+", body()) is not None)
        shot("key-created")
        match = re.search(r"odmcp_[A-Za-z0-9_\-]+", body())
        assert match is not None
        key_token = match.group(0)
        statuses: list[int] = []
        stores = sdk_call(site.mcp_url, key_token, statuses)["stores"]
        assert {store["alias"] for store in stores} == {"demo", "spare"}
        driver.get(f"{site.base}/tenant/keys")
        assert key_token not in driver.page_source, "the key is shown once only"

        # Revoked on the page: the same SDK client is then turned away with 401.
        public_id = key_token.split("_")[1]
        submitted(form_in_row("browser key", "revoke"), "revoke")
        assert f"API key {public_id} is revoked" in body()
        assert "browser key" not in body()
        shot("key-revoked")
        assert ApiKey.get(ApiKey.public_id == public_id).revoked is not None
        statuses.clear()
        refused: Exception | None = None
        try:  # the SDK's own error type is not the point: the 401 it met is
            sdk_call(site.mcp_url, key_token, statuses)
        except Exception as error:
            refused = error
        assert refused is not None, "the revoked key still worked"
        assert 401 in statuses, statuses

        # Connected apps: the app connected above, disconnected (its OAuth grant revoked); its
        # token stops working.
        driver.get(f"{site.base}/tenant/apps")
        wait.until(lambda d: APP_NAME in body())
        assert "127.0.0.1" in body()  # the redirect host
        shot("apps")
        submitted(form_in_row(APP_NAME, "disconnect"), "disconnect")
        assert f"{APP_NAME} is disconnected" in body()
        shot("app-disconnected")
        grant = OAuthGrant.get(OAuthGrant.tenant == tenant.id)
        assert grant.revoked is not None
        assert_token_refused(site, app_token)

        # Activity: newest first, the key's tool call and the merchant's own actions in it.
        driver.get(f"{site.base}/tenant/activity")
        wait.until(lambda d: "list_stores" in body())
        shot("activity")
        text = str(driver.find_element(By.CSS_SELECTOR, "ul.records").text)  # not the filters
        done = ["tenant.grant.revoke", "tenant.key.revoke", "list_stores", "tenant.key.create"]
        done += ["tenant.store.add"]
        assert all(action in text for action in done), text
        at = [text.index(action) for action in done]
        assert at == sorted(at), f"newest first: {text}"

        driver.get(f"{site.base}/tenant/account")
        wait.until(expected_conditions.presence_of_element_located((By.TAG_NAME, "form")))
        shot("account")
        checkpoint(site.database)

    print("screenshots:", *shots, sep="\n  ")
    assert len(shots) >= 10
    # Nothing secret in clear in any file the server wrote (database, WAL, cache, its log).
    assert (data_dir / "captured-server.log").read_text(), "the server's log was captured"
    in_play = {
        "store key": SANDBOX_KEYS[SANDBOX_EMPTY_STORE],
        "wrong store key": WRONG_KEY,
        "password": site.password,
        "api key": key_token,
        "api key secret": key_token.split("_", 2)[2],
        "demo store key": SANDBOX_KEYS["100001"],
        **secrets_of([{"access_token": app_token}]),
    }
    assert files_holding(data_dir, in_play) == []
