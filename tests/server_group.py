"""Real `orderdesk-mcp serve` processes for the scale-out tests: a prepared data dir (master
key, migrated database, a tenant with the sandbox's stores and an API key) and N servers on it.

    group = ServerGroup.prepare(tmp_path, sandbox, env={"ORDERDESK_MCP_REDIS_URL": ...})
    a, b = group.start(2)
    a.post_mcp(...)
    group.stop_all()

Each process logs to `<tmp>/serve-<n>.log` (shown by `log_text()` when an assertion needs it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from orderdesk_mcp.sandbox import RunningSandbox
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE, SANDBOX_KEYS
from tests.real_servers import free_port

CLI = [sys.executable, "-m", "orderdesk_mcp"]
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
}


def base_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI or serve process: this one's without ORDERDESK_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERDESK_")}
    env.update({"ORDERDESK_MCP_DATA_DIR": str(data_dir), "ORDERDESK_MCP_LOG_FORMAT": "text"})
    env.update(extra or {})
    return env


def run_cli(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*CLI, *args], env=dict(env), input=stdin, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"orderdesk-mcp {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class ServeProcess:
    """One `serve` process; `url` is its /mcp endpoint."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log_text()}")
            try:
                if requests.get(f"{self.base}/health/live", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not answer within {seconds} s:\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return int(self.process.returncode)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return "(no log)"


@dataclass
class ServerGroup:
    """A prepared data dir and the serve processes started on it."""

    tmp: Path
    data_dir: Path
    env: dict[str, str]
    token: str
    store_ids: tuple[str, ...] = (SANDBOX_DEMO_STORE, SANDBOX_EMPTY_STORE)
    processes: list[ServeProcess] = field(default_factory=list)

    @classmethod
    def prepare(
        cls,
        tmp: Path,
        sandbox: RunningSandbox,
        env: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
    ) -> ServerGroup:
        """`init`, a tenant `acme` with both sandbox stores (aliases demo, empty), its key."""
        data_dir = data_dir or tmp / "data"
        full_env = base_env(data_dir, env)
        run_cli(full_env, "init")
        token = json.loads(run_cli(full_env, "tenant", "create", "acme", "--json"))["api_key"]
        for store_id, alias in ((SANDBOX_DEMO_STORE, "demo"), (SANDBOX_EMPTY_STORE, "empty")):
            run_cli(
                full_env,
                "store", "add",
                "--tenant", "acme",
                "--store-id", store_id,
                "--alias", alias,
                "--api-key-stdin",
                "--base-url", sandbox.base_url,
                "--no-verify",
                stdin=SANDBOX_KEYS[store_id],
            )  # fmt: skip
        return cls(tmp=tmp, data_dir=data_dir, env=full_env, token=token)

    def start_one(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> ServeProcess:
        port = port or free_port(host)
        log_path = self.tmp / f"serve-{len(self.processes)}.log"
        process = subprocess.Popen(
            [*CLI, "serve", "--host", host, "--port", str(port)],
            env={**self.env, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("ab"),
        )
        served = ServeProcess(host, port, process, log_path)
        self.processes.append(served)
        if wait:
            served.wait_ready()
        return served

    def start(self, count: int, **options: Any) -> list[ServeProcess]:
        return [self.start_one(**options) for _ in range(count)]

    def stop_all(self) -> None:
        for served in self.processes:
            served.stop()


def mcp_post(
    url: str,
    token: str,
    body: Mapping[str, Any],
    session: str | None = None,
    http: requests.Session | None = None,
    **extra: str,
) -> requests.Response:
    """One POST to /mcp; through `http` when given (a kept-alive connection)."""
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}", **extra}
    if session is not None:
        headers["Mcp-Session-Id"] = session
        headers["MCP-Protocol-Version"] = "2025-11-25"
    return (http or requests).post(url, headers=headers, json=dict(body), timeout=30)


def open_session(url: str, token: str, http: requests.Session | None = None) -> str:
    """`initialize` + `notifications/initialized` on 2025-11-25; returns the session id."""
    reply = mcp_post(
        url,
        token,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "scale-out-test", "version": "1"},
            },
        },
        http=http,
    )
    reply.raise_for_status()
    session = reply.headers["Mcp-Session-Id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    mcp_post(url, token, initialized, session, http=http).raise_for_status()
    return session


def call_tool(
    url: str, token: str, session: str, name: str, arguments: Mapping[str, Any], call_id: int = 2
) -> dict[str, Any]:
    """One tools/call; returns the JSON-RPC reply (its `result` or `error`)."""
    reply = mcp_post(
        url,
        token,
        {
            "jsonrpc": "2.0",
            "id": call_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": dict(arguments)},
        },
        session,
    )
    if reply.headers.get("Content-Type", "").startswith("text/event-stream"):
        for line in reply.text.splitlines():
            if line.startswith("data:"):
                data: dict[str, Any] = json.loads(line[5:])
                return data
        raise AssertionError(f"no data in the event stream: {reply.text[:500]}")
    decoded: dict[str, Any] = reply.json()
    return decoded
