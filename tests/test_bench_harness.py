"""Smoke tests of the benchmark harness: its pieces import, and its statistics are right.

No timing assertions: the load generator runs against a real loopback server only to check
that it counts requests and errors and stops at its request budget.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk_mcp.db.models import McpSession
from scripts.bench.loadgen import (
    McpCallError,
    McpConnection,
    StatelessConnection,
    percentile,
    run_load,
    summarize,
)
from scripts.bench.workflows import Sizes, batch_accepts_code, run_workflows, write_results
from tests.conftest import McpServer


@pytest.mark.parametrize(
    "module",
    [
        "scripts.bench.loadgen",
        "scripts.bench.processes",
        "scripts.bench.stack",
        "scripts.bench.upstream",
        "scripts.bench.reference_server",
        "scripts.bench.hello_server",
        "scripts.bench.sandbox_proc",
        "scripts.bench.run",
        "scripts.bench.profile_get_order",
        "scripts.bench.sdk_session",
        "scripts.bench.workflows",
        "scripts.bench.fairness",
        "scripts.bench.cache_serializer",
    ],
)
def test_harness_modules_import(module: str) -> None:
    assert importlib.import_module(module).__doc__


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.90) == 90.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(values, 0.0) == 1.0
    assert percentile([], 0.5) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile(values, 1.5)


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1))
def test_percentiles_are_ordered_members(values: list[float]) -> None:
    ordered = sorted(values)
    p50, p90, p99 = (percentile(ordered, f) for f in (0.5, 0.9, 0.99))
    assert p50 <= p90 <= p99 <= ordered[-1]
    assert {p50, p90, p99} <= set(ordered)


def test_summarize_counts_rates_and_milliseconds() -> None:
    latencies = [0.001] * 90 + [0.010] * 9 + [0.100]  # 100 successes
    result = summarize("synthetic", 4, latencies, errors=5, elapsed_s=2.0, error_samples=["x"])
    assert result.requests == 105
    assert result.errors == 5
    assert result.rps == 50.0  # successes per second
    assert result.p50_ms == 1.0
    assert result.p90_ms == 1.0
    assert result.p99_ms == 10.0
    assert result.max_ms == 100.0
    assert result.to_json()["error_samples"] == ["x"]


def test_summarize_with_no_successes() -> None:
    result = summarize("nothing", 1, [], errors=3, elapsed_s=0.0)
    assert (result.requests, result.rps, result.p99_ms, result.max_ms) == (3, 0.0, 0.0, 0.0)


class _JsonRpcHandler(BaseHTTPRequestHandler):
    """Answers every POST with a JSON-RPC result, except method "fail" (HTTP 500)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if b'"fail"' in body else 200
        reply = b'{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        if b'"initialize"' in body:
            self.send_header("Mcp-Session-Id", "session-1")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def jsonrpc_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JsonRpcHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    server.shutdown()
    server.server_close()


def test_connection_handshake_keeps_the_session(jsonrpc_url: str) -> None:
    connection = McpConnection(jsonrpc_url, token="t")
    connection.initialize()
    assert connection.session_id == "session-1"
    assert connection.protocol_version == "2025-11-25"
    assert connection.headers()["Mcp-Session-Id"] == "session-1"
    with pytest.raises(McpCallError, match="HTTP 500"):
        connection.request("fail")
    connection.close()


def test_stateless_connection_speaks_2026_to_our_server(mcp_server: McpServer) -> None:
    """The era benchmark's client: no handshake, no session, the revision's headers and _meta."""
    connection = StatelessConnection(mcp_server.url, token=mcp_server.token)
    discovered = connection.initialize()
    assert "2026-07-28" in discovered["supportedVersions"]
    listed = connection.call_tool("list_orders", {"limit": 1})["structuredContent"]
    order = connection.call_tool("get_order", {"order_id": listed["orders"][0]["id"]})
    assert order["structuredContent"]["order"]["id"] == listed["orders"][0]["id"]
    assert connection.session_id is None
    assert McpSession.select().count() == 0
    request = {"method": "tools/call", "params": {"name": "get_order"}}
    assert connection.message_headers(request) == {
        "Mcp-Method": "tools/call",
        "Mcp-Name": "get_order",
    }
    connection.close()


def test_connection_refuses_other_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        McpConnection("http://example.com/mcp")


def _worker(url: str, method: str) -> Callable[[int], Callable[[], None]]:
    def make(_index: int) -> Callable[[], None]:
        connection = McpConnection(url)
        return lambda: connection.request(method) and None

    return make


def test_run_load_stops_at_its_request_budget(jsonrpc_url: str) -> None:
    result = run_load("ping", 3, _worker(jsonrpc_url, "ping"), duration_s=30, max_requests=40)
    assert result.requests == 40
    assert result.errors == 0
    assert result.concurrency == 3
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_run_load_counts_errors(jsonrpc_url: str) -> None:
    result = run_load("fail", 2, _worker(jsonrpc_url, "fail"), duration_s=30, max_requests=10)
    assert (result.requests, result.errors) == (10, 10)
    assert result.rps == 0.0
    assert "HTTP 500" in result.error_samples[0]


def test_run_load_rejects_unbounded_runs(jsonrpc_url: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        run_load("x", 1, _worker(jsonrpc_url, "ping"), duration_s=0, max_requests=10)


def test_run_load_burst_sends_one_request_per_worker(jsonrpc_url: str) -> None:
    result = run_load(
        "burst",
        5,
        _worker(jsonrpc_url, "ping"),
        duration_s=30,
        max_requests=100,
        one_request_per_worker=True,
    )
    assert (result.requests, result.errors) == (5, 0)


def test_workflows_count_upstream_requests_and_write_json(tmp_path: Path) -> None:
    counts = run_workflows(Sizes(orders=3, items=4))
    names = [count.workflow for count in counts]
    assert len(names) == (3 if batch_accepts_code() else 2)
    for count in counts:
        for figure in (count.records, count.tool_calls, count.upstream_gets, count.upstream_total):
            assert isinstance(figure, int), (count.workflow, figure)
            assert figure > 0, (count.workflow, figure)
        assert count.upstream_writes >= 1
        assert count.upstream_gets + count.upstream_writes == count.upstream_total
        assert sum(count.by_endpoint.values()) == count.upstream_total
    triage, by_id = counts[0], counts[1]
    assert (triage.records, by_id.records) == (3, 4)
    assert triage.by_endpoint["POST /move-orders"] == 1
    out = tmp_path / "bench" / "workflows.json"
    write_results(counts, out)
    written = json.loads(out.read_text())
    assert [row["workflow"] for row in written["workflows"]] == names
    assert written["machine"]["cores"] >= 1


def test_cache_serializer_bench_runs_and_prints_both_serializers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.bench import cache_serializer

    monkeypatch.setattr("sys.argv", ["cache_serializer", "--ops", "3", "--rounds", "1"])
    cache_serializer.main()
    table = capsys.readouterr().out
    assert "| reply | operation | pickle | json | json / pickle |" in table
    assert table.count("| hit |") == 2
