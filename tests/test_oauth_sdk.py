"""The official MCP Python SDK's OAuth client against the real server over HTTP.

`OAuthClientProvider` does what Claude Code or any SDK-built client does on our 401:
discovery (protected resource, then authorization server metadata), dynamic registration,
PKCE authorization and the token exchange; the test plays the person in the browser, signing
in and consenting through the real forms. Then a tools/call, a refresh and a revocation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from orderdesk_mcp.db.models import OAuthClient
from orderdesk_mcp.sandbox import RunningSandbox
from tests.oauth_e2e import (
    HTTP_TIMEOUT_S,
    AuthorizeResult,
    Browser,
    MetadataDocumentServer,
    OAuthSite,
    assert_token_refused,
    checkpoint,
    files_holding,
    oauth_site,
    revoke_token,
    token_request,
)

# Never loaded: the browser stops at the redirect and hands its query to the callback handler.
REDIRECT_URI = "http://127.0.0.1:33418/callback"


@pytest.fixture
def site(data_dir: Path, sandbox: RunningSandbox) -> Iterator[OAuthSite]:
    with oauth_site(data_dir, sandbox) as running:
        yield running


class MemoryStorage:
    """The SDK's TokenStorage, in memory; the test reads what the client holds from it."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class PersonAtTheBrowser:
    """The redirect and callback handlers: sign in and consent with the real forms."""

    def __init__(self, site: OAuthSite) -> None:
        self.browser = Browser(site.base)
        self.password = site.password
        self.authorize_urls: list[str] = []
        self.results: list[AuthorizeResult] = []

    async def redirect_handler(self, url: str) -> None:
        self.authorize_urls.append(url)
        result = await asyncio.to_thread(self.browser.authorize, url, password=self.password)
        self.results.append(result)

    async def callback_handler(self) -> AuthorizationCodeResult:
        query = self.results[-1].query
        assert "error" not in query, query
        return AuthorizationCodeResult(
            code=query["code"], state=query.get("state"), iss=query.get("iss")
        )


def sdk_provider(
    site: OAuthSite,
    person: PersonAtTheBrowser,
    storage: MemoryStorage,
    client_metadata_url: str | None = None,
) -> Any:
    return OAuthClientProvider(
        server_url=site.mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="SDK end-to-end",
            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=person.redirect_handler,
        callback_handler=person.callback_handler,
        client_metadata_url=client_metadata_url,
    )


def test_sdk_client_signs_in_calls_refreshes_and_is_revoked(site: OAuthSite) -> None:
    storage = MemoryStorage()
    person = PersonAtTheBrowser(site)
    provider = sdk_provider(site, person, storage)
    seen: dict[str, Any] = {}

    async def run() -> None:
        async with create_mcp_http_client(auth=provider) as http_client:
            transport = streamable_http_client(site.mcp_url, http_client=http_client)
            async with Client(transport) as client:
                stores = await client.call_tool("list_stores", {})
                assert stores.is_error is False, stores.content
                seen["stores"] = stores.structured_content
                seen["first"] = storage.tokens
                # The access token's end, as the provider sees it: its next request refreshes.
                provider.context.token_expiry_time = time.time() - 1
                orders = await client.call_tool("list_orders", {"limit": 2})
                assert orders.is_error is False, orders.content
                seen["orders"] = orders.structured_content
                seen["second"] = storage.tokens

    asyncio.run(asyncio.wait_for(run(), timeout=90))

    # Discovery found our endpoints, registration gave a client id, PKCE S256 was used.
    assert len(person.authorize_urls) == 1, "one sign-in for the whole session"
    authorize = requests.Request("GET", person.authorize_urls[0]).prepare().url or ""
    assert authorize.startswith(f"{site.base}/oauth/authorize?")
    assert "code_challenge_method=S256" in authorize
    assert storage.client_info is not None
    assert storage.client_info.client_id
    assert "iss" in person.results[0].query  # RFC 9207
    assert "SDK end-to-end" in person.results[0].consent_text  # the client's name was shown
    assert {store["alias"] for store in seen["stores"]["stores"]} == {"demo", "empty"}
    assert seen["orders"]["orders"]

    first, second = seen["first"], seen["second"]
    assert first is not None
    assert second is not None
    assert second.access_token != first.access_token, "the refresh gave a new access token"
    assert second.refresh_token
    assert second.refresh_token != first.refresh_token, "the refresh token was rotated"

    # Revocation (RFC 7009): the access token stops working at once, the refresh token too.
    client = {"client_id": storage.client_info.client_id}
    assert revoke_token(site.base, client, second.access_token).status_code == 200
    assert_token_refused(site, second.access_token)
    assert revoke_token(site.base, client, second.refresh_token).status_code == 200
    refresh = token_request(
        site.base,
        {
            "grant_type": "refresh_token",
            "refresh_token": second.refresh_token,
            "client_id": client["client_id"],
        },
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"

    # Nothing of it is left in clear in any file the server wrote (database, cache, logs).
    checkpoint(site.database)
    secrets = {
        "first access token": first.access_token,
        "first refresh token": first.refresh_token or "",
        "second access token": second.access_token,
        "second refresh token": second.refresh_token,
        "authorization code": person.results[0].code,
        "password": site.password,
    }
    assert files_holding(site.data_dir, secrets) == []
    assert site.log.getvalue(), "the server's log was captured"


def test_sdk_client_identified_by_a_client_id_metadata_document(
    data_dir: Path, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 2025-11-25 way: the client_id is an https URL the server fetches; no registration."""
    documents = MetadataDocumentServer(
        tmp_path,
        {
            "client_name": "SDK by metadata document",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(documents.cert_file))  # trust our loopback cert
    cimd_env = {"ORDERDESK_MCP_OAUTH_CIMD_ALLOW_PRIVATE": "true"}
    try:
        with oauth_site(data_dir, sandbox, cimd_env) as site:
            storage, person = MemoryStorage(), PersonAtTheBrowser(site)
            provider = sdk_provider(site, person, storage, client_metadata_url=documents.url)

            async def run() -> Any:
                async with create_mcp_http_client(auth=provider) as http_client:
                    transport = streamable_http_client(site.mcp_url, http_client=http_client)
                    async with Client(transport) as client:
                        return await client.call_tool("list_stores", {})

            stores = asyncio.run(asyncio.wait_for(run(), timeout=90))
            assert stores.is_error is False, stores.content
            assert storage.client_info is not None
            assert storage.client_info.client_id == documents.url
            assert documents.fetches >= 1
            assert "SDK by metadata document" in person.results[0].consent_text
            assert [row.kind for row in OAuthClient.select()] == ["metadata_document"]
    finally:
        documents.stop()


def test_the_first_401_points_the_sdk_at_our_metadata(site: OAuthSite) -> None:
    """What the SDK reads first: the challenge, then the two metadata documents."""
    reply = requests.post(
        site.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        headers={"Accept": "application/json, text/event-stream"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 401
    challenge = reply.headers["WWW-Authenticate"]
    assert f'resource_metadata="{site.base}/.well-known/oauth-protected-resource/mcp"' in challenge
    resource = requests.get(
        f"{site.base}/.well-known/oauth-protected-resource/mcp", timeout=HTTP_TIMEOUT_S
    ).json()
    assert resource["resource"] == site.mcp_url
    assert [s.rstrip("/") for s in resource["authorization_servers"]] == [site.base]
    server = requests.get(
        f"{site.base}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT_S
    ).json()
    assert server["issuer"].rstrip("/") == site.base
    assert server["authorization_endpoint"] == f"{site.base}/oauth/authorize"
    assert server["token_endpoint"] == f"{site.base}/oauth/token"
    assert server["registration_endpoint"] == f"{site.base}/oauth/register"
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert "none" in server["token_endpoint_auth_methods_supported"]
