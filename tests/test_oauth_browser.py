"""A real browser through sign-in and consent: headless Chromium from Debian's packages,
driven by Selenium through Debian's chromedriver (never a downloaded browser or driver).

The tenant signs in with its password, reads the consent screen (the client's name and where
it will be sent), narrows the rights to read-only on one store, allows, and the browser lands
on the client's loopback listener. The token that code buys reads but cannot write.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderdesk_mcp.sandbox import RunningSandbox
from tests.headless_chromium import WAIT_S, headless_chromium, needs_chromium
from tests.oauth_e2e import (
    TENANT,
    McpOverHttp,
    OAuthSite,
    Pkce,
    RedirectListener,
    authorize_url,
    checkpoint,
    exchange_code,
    files_holding,
    oauth_site,
    refusal_text,
    register_client,
    secrets_of,
    tool_result,
)

CLIENT_NAME = "Browser Test Client"

pytestmark = needs_chromium


@pytest.fixture
def site(data_dir: Path, sandbox: RunningSandbox) -> Iterator[OAuthSite]:
    with oauth_site(data_dir, sandbox) as running:
        yield running


@pytest.fixture
def listener() -> Iterator[RedirectListener]:
    running = RedirectListener()
    yield running
    running.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with headless_chromium(tmp_path) as driver:
        yield driver


def test_a_person_narrows_to_read_only_and_the_token_cannot_write(
    site: OAuthSite, listener: RedirectListener, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    assert isinstance(driver, WebDriver)
    wait = WebDriverWait(driver, WAIT_S)

    def shot(name: str) -> None:  # kept with the test output, for a person to look at
        driver.save_screenshot(str(tmp_path / f"{name}.png"))

    client = register_client(site.base, listener.redirect_uri, name=CLIENT_NAME)
    pkce, state = Pkce.new(), secrets.token_urlsafe(16)
    driver.get(
        authorize_url(site.base, client["client_id"], listener.redirect_uri, pkce, state=state)
    )

    # Sign in with the tenant's name and password.
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "password")))
    shot("1-sign-in")
    driver.find_element(By.NAME, "username").send_keys(TENANT)
    driver.find_element(By.NAME, "password").send_keys(site.password)
    driver.find_element(By.NAME, "password").submit()

    # The consent screen names the client and where the tenant will be sent.
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "decision")))
    shot("2-consent")
    text = driver.find_element(By.TAG_NAME, "body").text
    assert CLIENT_NAME in text
    assert "127.0.0.1" in text  # the redirect host

    # Narrow: read-only, only the demo store, every toolset offered.
    driver.find_element(By.CSS_SELECTOR, "input[name=access][value=read-only]").click()
    for box in driver.find_elements(By.CSS_SELECTOR, "input[type=checkbox][name=store]"):
        if box.is_selected() != (box.get_attribute("value") == "demo"):
            box.click()
    for box in driver.find_elements(By.CSS_SELECTOR, "input[type=checkbox][name=toolset]"):
        if not box.is_selected():
            box.click()
    shot("3-narrowed")
    driver.find_element(By.CSS_SELECTOR, "[name=decision][value=allow]").click()

    # The browser lands on the client's listener with the code, the state and the issuer.
    query = listener.wait(WAIT_S)
    wait.until(lambda d: d.current_url.startswith(listener.redirect_uri))
    shot("4-client")
    assert query.get("state") == state, query
    assert query.get("iss", "").rstrip("/") == site.base
    code = query["code"]

    tokens = exchange_code(site.base, client, code, pkce, listener.redirect_uri)
    assert set(tokens.get("scope", "read").split()) == {"read"}
    mcp = McpOverHttp(site.mcp_url, tokens["access_token"])
    try:
        assert mcp.initialize().status_code == 200
        stores = tool_result(mcp.call("list_stores"))["stores"]
        assert [store["alias"] for store in stores] == ["demo"]  # only the store chosen
        orders = tool_result(mcp.call("list_orders", {"limit": 1}))["orders"]
        note = mcp.call("add_order_note", {"order_id": orders[0]["id"], "note": "not allowed"})
        assert "read-only" in refusal_text(note)
    finally:
        mcp.close()

    checkpoint(site.database)
    secrets_in_play = {"code": code, "password": site.password, **secrets_of([tokens])}
    assert files_holding(site.data_dir, secrets_in_play) == []
