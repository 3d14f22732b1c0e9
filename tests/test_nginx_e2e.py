"""End to end: the official MCP SDK client over HTTPS, through the shipped nginx site, to the
real server (waitress with the production proxy settings) and the Order Desk sandbox."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2
import peewee
import pytest
import requests
from flask import Flask, Response, jsonify, request
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from orderdesk_mcp.background_server import BackgroundServer
from orderdesk_mcp.config import Settings
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.vault import Vault
from tests.conftest import McpTenant, make_mcp_app, make_mcp_tenant
from tests.test_nginx import NginxLayout, nginx_binary, prepare_nginx

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 15.0


class ProxiedServer(BackgroundServer):
    """The app under waitress with the options `orderdesk-mcp serve` uses behind nginx."""

    def __init__(self, app: Flask) -> None:
        super().__init__(
            app,
            name="e2e-app",
            threads=4,
            trusted_proxy="127.0.0.1",
            trusted_proxy_count=1,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"},
            clear_untrusted_proxy_headers=True,
        )


class NginxExited(Exception):
    """nginx stopped during start-up; the message is what it said."""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], error_log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = process.stderr.read().decode(errors="replace") if process.stderr else ""
            if error_log.exists():
                said += error_log.read_text(errors="replace")
            raise NginxExited(said or f"exit status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx did not listen on {port} within {STARTUP_SECONDS:g} s")


PUBLIC_URL = "https://mcp.example.com"
PAGE_CSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'"
TENANT_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
OAUTH_METADATA_PATHS = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-authorization-server",
)


@dataclass(frozen=True)
class Stack:
    base: str  # https://127.0.0.1:PORT
    http_base: str  # http://127.0.0.1:PORT (redirects)
    layout: NginxLayout
    tenant: McpTenant
    tls: ssl.SSLContext
    app: Flask
    reached: list[str]  # paths the app was asked for, in order


@pytest.fixture
def stack(
    settings: Settings,
    db: peewee.Database,
    vault: Vault,
    sandbox: RunningSandbox,
    tmp_path: Path,
) -> Iterator[Stack]:
    # OAuth on, as in production behind this site.
    app = make_mcp_app(replace(settings, public_url=PUBLIC_URL), db, vault)
    reached: list[str] = []

    # Test-only probes (not in the product): what the app believes about the client, which
    # paths reach it, and a page with its own CSP as the sign-in and consent pages have.
    @app.get("/health/e2e-peer")
    def peer() -> Any:
        return jsonify(remote_addr=request.remote_addr, scheme=request.scheme)

    @app.before_request
    def note_path() -> None:
        reached.append(request.path)

    @app.get("/oauth/e2e-page")
    def page() -> Any:
        return Response(
            "<!doctype html><title>probe</title>",
            mimetype="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"},
        )

    tenant = make_mcp_tenant("edge", vault, sandbox)
    server = ProxiedServer(app)
    layout, process = _start_nginx(tmp_path, server.port)
    try:
        tls = ssl.create_default_context(cafile=str(layout.cert))
        yield Stack(
            base=f"https://127.0.0.1:{layout.https_port}",
            http_base=f"http://127.0.0.1:{layout.http_port}",
            layout=layout,
            tenant=tenant,
            tls=tls,
            app=app,
            reached=reached,
        )
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish open requests, then exit
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        server.stop()


def _start_nginx(tmp_path: Path, app_port: int) -> tuple[NginxLayout, subprocess.Popen[bytes]]:
    """nginx on free ports; a port taken between choosing and binding it (other processes
    on the machine pick ephemeral ports too) means another try on new ports."""
    for attempt in range(3):
        layout = prepare_nginx(tmp_path / f"nginx-{attempt}", app_port=app_port)
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(layout.root), "-c", str(layout.main_config),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            _wait_for_port(layout.https_port, process, layout.root / "logs" / "error.log")
        except NginxExited as exited:
            if "Address already in use" in str(exited) and attempt < 2:
                continue
            raise AssertionError(f"nginx exited: {exited}") from None
        return layout, process
    raise AssertionError("unreachable")


def _sdk_session(stack: Stack) -> dict[str, Any]:
    """Connect with the official SDK over HTTPS and use a few tools; return what it saw."""

    async def run() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {stack.tenant.token}"}
        timeout = httpx2.Timeout(30.0, read=60.0)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout, verify=stack.tls) as http:
            transport = streamable_http_client(f"{stack.base}/mcp", http_client=http)
            async with Client(transport) as client:
                tools = (await client.list_tools()).tools
                listed = await client.call_tool("list_orders", {"limit": 2})
                order_id = listed.structured_content["orders"][0]["id"]
                order = await client.call_tool("get_order", {"order_id": order_id})
                return {
                    "protocol": client.protocol_version,
                    "tools": {tool.name for tool in tools},
                    "listed": listed.structured_content,
                    "order": order.structured_content,
                    "order_error": order.is_error,
                }

    return asyncio.run(asyncio.wait_for(run(), timeout=90))


def test_sdk_client_over_https_through_nginx(stack: Stack) -> None:
    seen = _sdk_session(stack)
    assert seen["protocol"]
    assert {"list_orders", "get_order", "add_shipment"} <= seen["tools"]
    assert len(seen["listed"]["orders"]) == 2
    assert seen["order_error"] is False
    assert seen["order"]["order"]["id"] == seen["listed"]["orders"][0]["id"]

    log = stack.layout.access_log.read_text()
    assert "POST /mcp HTTP/1.1" in log
    assert stack.tenant.token not in log
    assert "Bearer" not in log


def test_edge_policies(stack: Stack) -> None:
    https = requests.Session()
    # Not the environment's CA bundle or proxies (requests lets them override .verify).
    https.trust_env = False
    https.verify = str(stack.layout.cert)

    health = https.get(f"{stack.base}/health?token=query-secret", timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.headers["Strict-Transport-Security"].startswith("max-age=")
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    assert health.headers["X-Frame-Options"] == "DENY"
    assert "nginx/" not in health.headers.get("Server", "")

    # Operator endpoints stay closed from outside, however the path is spelled.
    for path in ("/metrics", "/health/detailed", "/health/%64etailed", "//metrics"):
        closed = https.get(f"{stack.base}{path}", timeout=10)
        assert closed.status_code == 404, path
        assert closed.json()["status"] == 404, path  # JSON, never nginx's HTML page

    # Plain HTTP only redirects.
    plain = https.get(f"{stack.http_base}/mcp", allow_redirects=False, timeout=10)
    assert plain.status_code == 301
    assert plain.headers["Location"].startswith("https://")

    # The app sees the client nginx saw, not what the client claims, and the real scheme.
    peer = https.get(
        f"{stack.base}/health/e2e-peer",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"},
        timeout=10,
    ).json()
    assert peer == {"remote_addr": "127.0.0.1", "scheme": "https"}

    # Bodies over the app's limit stop at nginx.
    too_big = https.post(
        f"{stack.base}/mcp",
        data=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert too_big.status_code == 413

    log = stack.layout.access_log.read_text()
    assert "GET /health HTTP/1.1" in log
    assert "query-secret" not in log

    # Per-address limit: a burst well past 10 r/s + 40 gets 429s (bounded: 80 requests).
    replies = [https.get(f"{stack.base}/health", timeout=10) for _ in range(80)]
    statuses = [reply.status_code for reply in replies]
    assert 429 in statuses
    assert statuses[0] == 200
    refused = next(reply for reply in replies if reply.status_code == 429)
    assert refused.json()["status"] == 429  # nginx's refusal in JSON, not its HTML page


def test_only_loopback_addresses_are_used(stack: Stack) -> None:
    site = (stack.layout.root / "site.conf").read_text()
    listens = [line.split()[1] for line in site.splitlines() if line.strip().startswith("listen")]
    assert listens
    assert all(address.startswith("127.0.0.1:") for address in listens)
    assert os.path.exists(stack.layout.root / "nginx.pid")


def _https(stack: Stack) -> requests.Session:
    https = requests.Session()
    https.trust_env = False
    https.verify = str(stack.layout.cert)
    return https


def test_oauth_discovery_reaches_the_app(stack: Stack) -> None:
    https = _https(stack)
    for path in OAUTH_METADATA_PATHS:
        reply = https.get(f"{stack.base}{path}", timeout=10)
        assert stack.reached[-1] == path, path  # answered by the app, not by nginx
        assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
        assert reply.status_code == 200, path
        assert reply.headers["Content-Type"].startswith("application/json")
    metadata = https.get(f"{stack.base}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["issuer"] == PUBLIC_URL


def test_oauth_pages_keep_their_own_csp_and_hsts(stack: Stack) -> None:
    https = _https(stack)
    page = https.get(f"{stack.base}/oauth/e2e-page", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == PAGE_CSP  # not the server-wide one
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert page.headers["X-Content-Type-Options"] == "nosniff"  # once, not twice
    assert page.headers["X-Frame-Options"] == "DENY"
    invite = https.get(f"{stack.base}/tenant/invite/not-a-token", timeout=10)
    assert stack.reached[-1] == "/tenant/invite/not-a-token"
    assert invite.headers["Strict-Transport-Security"].startswith("max-age=")
    # The tenant pages reach the app with their own CSP; the token-free paths are logged.
    tenant_page = https.get(f"{stack.base}/tenant/sign-in", timeout=10, allow_redirects=False)
    assert stack.reached[-1] == "/tenant/sign-in"
    assert tenant_page.status_code == 200
    assert tenant_page.headers["Content-Security-Policy"] == TENANT_PAGE_CSP
    assert tenant_page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert tenant_page.headers["X-Content-Type-Options"] == "nosniff"
    assert tenant_page.headers["X-Frame-Options"] == "DENY"
    assert tenant_page.headers["Cache-Control"] == "no-store"
    # nginx writes a line once the reply is out: wait for it rather than race it.
    deadline = time.monotonic() + 10
    while "GET /tenant/sign-in " not in (log := stack.layout.access_log.read_text()):
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert "not-a-token" not in log  # the invite path never is
    # Everything else under /.well-known/ still stops at nginx.
    for path in ("/.well-known/openid-configuration",):
        closed = https.get(f"{stack.base}{path}", timeout=10)
        assert closed.status_code == 404
        assert stack.reached[-1] != path
