"""Whole flows that end a grant from outside it: a tenant disabled, a grant revoked by the
operator, the API key a grant was made with revoked. Each token stops at once (401 with the
OAuth challenge) and its refresh token buys nothing more. Nothing secret stays in any file.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orderdesk_mcp.db.models import ApiKey, OAuthGrant
from orderdesk_mcp.sandbox import RunningSandbox
from tests.oauth_e2e import (
    ALL_RIGHTS,
    Browser,
    Consent,
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
    run_cli,
    secrets_of,
    token_request,
    tool_result,
)

REDIRECT_URI = "http://127.0.0.1:45111/callback"


@pytest.fixture
def site(data_dir: Path, sandbox: RunningSandbox) -> Iterator[OAuthSite]:
    with oauth_site(data_dir, sandbox) as running:
        yield running


@dataclass
class Granted:
    client: dict[str, Any]
    code: str
    tokens: dict[str, Any]

    @property
    def access_token(self) -> str:
        return str(self.tokens["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.tokens["refresh_token"])

    def secrets(self) -> dict[str, str]:
        named = {"code": self.code, **secrets_of([self.tokens])}
        if self.client.get("client_secret"):
            named["client secret"] = str(self.client["client_secret"])
        return named


def grant(
    site: OAuthSite,
    *,
    api_key: str | None = None,
    confidential: bool = False,
    consent: Consent = ALL_RIGHTS,
) -> Granted:
    """Register a client, sign in (password, or the API key), consent, exchange the code."""
    client = register_client(site.base, REDIRECT_URI, confidential=confidential)
    pkce = Pkce.new()
    url = authorize_url(
        site.base, client["client_id"], REDIRECT_URI, pkce, state=secrets.token_urlsafe(16)
    )
    browser = Browser(site.base)
    try:
        result = browser.authorize(
            url,
            password=None if api_key else site.password,
            api_key=api_key,
            consent=consent,
        )
    finally:
        browser.close()
    tokens = exchange_code(site.base, client, result.code, pkce, REDIRECT_URI)
    return Granted(client=client, code=result.code, tokens=tokens)


def assert_token_works(site: OAuthSite, token: str) -> None:
    mcp = McpOverHttp(site.mcp_url, token)
    try:
        assert mcp.initialize().status_code == 200
        assert tool_result(mcp.call("list_stores"))["stores"]
    finally:
        mcp.close()


def assert_refresh_refused(site: OAuthSite, granted: Granted) -> None:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": granted.refresh_token,
        "client_id": granted.client["client_id"],
    }
    if granted.client.get("client_secret"):
        data["client_secret"] = granted.client["client_secret"]
    reply = token_request(site.base, data)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "invalid_grant"


def assert_no_secret_in_files(site: OAuthSite, *extra: dict[str, str]) -> None:
    checkpoint(site.database)
    named = {"password": site.password}
    for more in extra:
        named.update(more)
    assert files_holding(site.data_dir, named) == []


def test_a_disabled_tenants_tokens_stop_at_once(site: OAuthSite) -> None:
    granted = grant(site, confidential=True)
    assert_token_works(site, granted.access_token)
    disabled = run_cli(site, "tenant", "disable", "acme")
    assert disabled.returncode == 0, disabled.stderr
    assert_token_refused(site, granted.access_token)
    assert_refresh_refused(site, granted)
    assert_no_secret_in_files(site, granted.secrets())


def test_an_operator_revoked_grant_stops_its_tokens(site: OAuthSite) -> None:
    kept, revoked = grant(site), grant(site)
    grant_ids = [row.public_id for row in OAuthGrant.select().order_by(OAuthGrant.id)]
    assert len(grant_ids) == 2
    listed = run_cli(site, "oauth", "grants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert all(grant_id in listed.stdout for grant_id in grant_ids)
    for secret in (*kept.secrets().values(), *revoked.secrets().values()):
        assert secret not in listed.stdout
    done = run_cli(site, "oauth", "grants", "revoke", grant_ids[1])
    assert done.returncode == 0, done.stderr
    assert_token_refused(site, revoked.access_token)
    assert_refresh_refused(site, revoked)
    assert_token_works(site, kept.access_token)  # another grant of the tenant is untouched
    assert_no_secret_in_files(site, kept.secrets(), revoked.secrets())


def test_revoking_the_key_a_grant_was_made_with_stops_the_grant(site: OAuthSite) -> None:
    key = site.tenant.read_only_token
    via_key = grant(site, api_key=key, consent=Consent(access="read-only"))
    by_password = grant(site)
    assert_token_works(site, via_key.access_token)
    public_id = key.split("_")[1]
    assert ApiKey.get(ApiKey.public_id == public_id).kind == "key"
    revoked = run_cli(site, "key", "revoke", public_id)
    assert revoked.returncode == 0, revoked.stderr
    assert_token_refused(site, via_key.access_token)
    assert_refresh_refused(site, via_key)
    assert_token_works(site, by_password.access_token)  # not made with that key
    assert_no_secret_in_files(site, via_key.secrets(), by_password.secrets(), {"api key": key})
