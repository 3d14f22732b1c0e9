"""Several real `serve` processes of one server group on one host: one port shared with
SO_REUSEPORT, sessions that survive the process that opened them, and one /metrics scrape
that counts every process (Prometheus multiprocess mode)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from orderdesk_mcp.sandbox import RunningSandbox
from tests.real_servers import RedisServer, free_port
from tests.server_group import (
    CLI,
    MCP_HEADERS,
    ServeProcess,
    ServerGroup,
    call_tool,
    open_session,
)

pytestmark = pytest.mark.slow

MakeGroup = Callable[..., ServerGroup]
START_TIME = re.compile(r"^orderdesk_mcp_process_start_time_seconds (\S+)$", re.MULTILINE)


@pytest.fixture
def group_env(redis_server: RedisServer, redis_prefix: str) -> dict[str, str]:
    return {"ORDERDESK_MCP_REDIS_URL": redis_server.url, "ORDERDESK_MCP_REDIS_PREFIX": redis_prefix}


@pytest.fixture
def make_group(
    tmp_path: Path, sandbox: RunningSandbox, group_env: dict[str, str]
) -> Iterator[MakeGroup]:
    """A prepared data dir sharing the test's Redis; every process started on it is stopped
    at the end of the test."""
    made: list[ServerGroup] = []

    def make(**env: str) -> ServerGroup:
        group = ServerGroup.prepare(tmp_path, sandbox, env={**group_env, **env})
        made.append(group)
        return group

    yield make
    for group in made:
        group.stop_all()


def _wait_listening(*processes: ServeProcess, seconds: float = 60) -> None:
    """Until each process logged that it listens: on a shared port, the readiness probe of
    `start` may have been answered by another process of the group."""
    deadline = time.monotonic() + seconds
    for served in processes:
        while "serving MCP on" not in served.log_text():
            assert served.process.poll() is None, served.log_text()
            assert time.monotonic() < deadline, served.log_text()
            time.sleep(0.05)


def _answering_process(base: str) -> str:
    """Which process answered, on a fresh connection: its start time, as its /metrics says
    (scrape-time gauges are computed by the process that answers)."""
    with requests.Session() as fresh:
        text = fresh.get(f"{base}/metrics", timeout=10, headers={"Connection": "close"}).text
    found = START_TIME.search(text)
    assert found, text[:2000]
    return found.group(1)


def _tool_calls(text: str, tool: str) -> float:
    pattern = rf'^orderdesk_mcp_tool_calls_total\{{[^}}]*tool="{tool}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


def test_two_processes_share_one_port_with_reuse_port(
    make_group: MakeGroup,
) -> None:
    group = make_group()
    port = free_port()
    first, second = group.start(2, port=port, env={"ORDERDESK_MCP_REUSE_PORT": "true"})
    _wait_listening(first, second)
    # The kernel spreads new connections over both listeners (by the client's port).
    answered = {_answering_process(first.base) for _ in range(40)}
    assert len(answered) == 2, answered
    # And MCP works through the shared port whichever process answers.
    session = open_session(first.url, group.token)
    for call_id in range(2, 8):
        reply = call_tool(first.url, group.token, session, "get_store", {"store": "demo"}, call_id)
        assert "result" in reply, reply
        assert not reply["result"].get("isError"), reply


def test_a_draining_process_leaves_new_connections_to_the_others(
    make_group: MakeGroup, sandbox: RunningSandbox
) -> None:
    group = make_group()
    port = free_port()
    # The kernel may put five of the six connections on one process: let the tenant run six
    # calls at once there (the per-tenant cap, 4 by default, is per process).
    first, second = group.start(
        2,
        port=port,
        env={"ORDERDESK_MCP_REUSE_PORT": "true", "ORDERDESK_MCP_MAX_CALLS_PER_TENANT": "6"},
    )
    _wait_listening(first, second)
    sandbox.set_faults(latency_ms=4000)
    # Slow calls, each on its own kept-alive connection (so on one process throughout):
    # some land on the process about to stop, which drains them instead of exiting.
    clients = [_KeptAliveClient(first.url, group.token) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        # Three per store: the per-store cap on calls at once (3) never answers busy.
        stores = ["demo", "empty"] * 3
        slow = [
            pool.submit(client.list_orders, store)
            for client, store in zip(clients, stores, strict=True)
        ]
        time.sleep(1.5)  # sent, and waiting on the slow sandbox
        first.process.send_signal(signal.SIGTERM)
        _wait_for_log(first, "stopped listening")
        statuses = [
            requests.get(
                f"{first.base}/health/live", timeout=10, headers={"Connection": "close"}
            ).status_code
            for _ in range(30)
        ]
        replies = [future.result(timeout=60) for future in slow]
    assert statuses == [200] * 30  # none reached the draining process (it answers 503)
    for reply in replies:
        assert not reply["result"].get("isError"), reply
    assert first.process.wait(timeout=60) == 0


class _KeptAliveClient:
    """An MCP session over one kept-alive connection."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers.update({**MCP_HEADERS, "Authorization": f"Bearer {token}"})
        # On this client's own connection, so the session's process is the one it keeps.
        self.http.headers["Mcp-Session-Id"] = open_session(url, token, http=self.http)
        self.http.headers["MCP-Protocol-Version"] = "2025-11-25"

    def _post(self, body: dict[str, Any]) -> requests.Response:
        reply = self.http.post(self.url, json=body, timeout=60)
        reply.raise_for_status()
        return reply

    def list_orders(self, store: str) -> dict[str, Any]:
        arguments = {"store": store}
        params = {"name": "list_orders", "arguments": arguments}
        reply = self._post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
        decoded: dict[str, Any] = reply.json()
        return decoded


def _wait_for_log(served: ServeProcess, text: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while text not in served.log_text():
        assert time.monotonic() < deadline, served.log_text()
        time.sleep(0.05)


def test_reuse_port_without_redis_is_refused(tmp_path: Path, sandbox: RunningSandbox) -> None:
    group = ServerGroup.prepare(tmp_path, sandbox)
    done = subprocess.run(
        [*CLI, "serve", "--port", str(free_port())],
        env={**group.env, "ORDERDESK_MCP_REUSE_PORT": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ORDERDESK_MCP_REUSE_PORT=true" in done.stderr
    assert "ORDERDESK_MCP_REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_held_without_reuse_port_is_named(make_group: MakeGroup) -> None:
    group = make_group()
    lone = group.start_one()  # listens without SO_REUSEPORT
    done = subprocess.run(
        [*CLI, "serve", "--port", str(lone.port)],
        env={**group.env, "ORDERDESK_MCP_REUSE_PORT": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{lone.port}" in done.stderr
    assert "does not share the port" in done.stderr
    assert "Traceback" not in done.stderr


def test_killing_one_process_leaves_its_sessions_to_the_others(
    make_group: MakeGroup,
) -> None:
    group = make_group()
    a, b = group.start(2)
    session = open_session(a.url, group.token)
    before = call_tool(a.url, group.token, session, "get_store", {"store": "demo"}, 2)
    assert not before["result"].get("isError"), before
    a.kill()  # SIGKILL: no drain, no clean-up
    for call_id in range(3, 8):
        reply = call_tool(b.url, group.token, session, "list_orders", {"store": "demo"}, call_id)
        assert "result" in reply, reply
        assert not reply["result"].get("isError"), reply
        assert reply["result"]["structuredContent"]["orders"], reply


def test_one_scrape_counts_every_process(make_group: MakeGroup, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    group = make_group(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    a, b = group.start(2)
    session = open_session(a.url, group.token)
    for call_id in range(2, 5):
        call_tool(a.url, group.token, session, "get_store", {"store": "demo"}, call_id)
    through_b = requests.get(f"{b.base}/metrics", timeout=10)
    assert through_b.status_code == 200
    # Three calls, all served by A, counted in B's answer; B's own gauges are there too.
    assert _tool_calls(through_b.text, "get_store") == 3, through_b.text[:3000]
    assert "orderdesk_mcp_active_sessions" in through_b.text
    assert "orderdesk_mcp_build_info" in through_b.text
    # B counted A's heartbeat row and its own when it started.
    assert "\norderdesk_mcp_server_group_size 2.0\n" in through_b.text
    assert through_b.text.count("# TYPE orderdesk_mcp_tool_calls_total counter") <= 1
    a.kill()
    # A's counts are still in the files while no new process starts.
    assert _tool_calls(requests.get(f"{b.base}/metrics", timeout=10).text, "get_store") == 3


def test_a_new_process_drops_the_gauge_files_of_dead_ones_and_keeps_their_counts(
    make_group: MakeGroup, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    group = make_group(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    a = group.start_one()
    dead_pid = a.process.pid
    assert list(metrics_dir.glob(f"*_{dead_pid}.db"))
    a.kill()
    b = group.start_one()
    # Its counters stay in the sums (dropping them would read as a counter reset).
    assert not list(metrics_dir.glob(f"gauge_*_{dead_pid}.db"))
    assert list(metrics_dir.glob(f"counter_{dead_pid}.db"))
    assert list(metrics_dir.glob(f"*_{b.process.pid}.db"))


def test_without_the_variable_a_process_keeps_its_own_counts(
    make_group: MakeGroup,
) -> None:
    group = make_group()
    a, b = group.start(2)
    session = open_session(a.url, group.token)
    call_tool(a.url, group.token, session, "get_store", {"store": "demo"}, 2)
    assert _tool_calls(requests.get(f"{a.base}/metrics", timeout=10).text, "get_store") == 1
    assert _tool_calls(requests.get(f"{b.base}/metrics", timeout=10).text, "get_store") == 0


GROUP_START = re.compile(r"^orderdesk_mcp_start_time_seconds (\S+)$", re.MULTILINE)


def test_the_group_start_time_does_not_depend_on_which_process_answers(
    make_group: MakeGroup, tmp_path: Path
) -> None:
    # changes(orderdesk_mcp_start_time_seconds[1h]) > 3 is the "restarting" alert: if each
    # process answered with its own start, every scrape landing on another process would
    # count as a restart.
    group = make_group(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    a, b = group.start(2)
    answers = [requests.get(f"{p.base}/metrics", timeout=10).text for p in (a, b)]
    own = [float(START_TIME.search(text).group(1)) for text in answers]  # type: ignore[union-attr]
    shown = {float(GROUP_START.search(text).group(1)) for text in answers}  # type: ignore[union-attr]
    assert own[0] != own[1]
    assert shown == {max(own)}
