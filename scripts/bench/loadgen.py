"""A small load generator: threads, one keep-alive HTTP connection each, bounded in time and count.

Each worker opens its own connection (and MCP session where the server keeps sessions) before
the clock starts, then repeats one request until the deadline or the shared request budget is
spent. Latency is measured per request on the client, so it includes the loopback round trip
and this process's own (GIL-bound) client work; both servers pay the same client cost.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

LATEST_PROTOCOL_VERSION = "2025-11-25"
MODERN_PROTOCOL_VERSION = "2026-07-28"
CLIENT_INFO = {"name": "orderdesk-bench", "version": "1"}
# The methods whose target the 2026-07-28 revision mirrors into Mcp-Name, and where it lives.
NAMED_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
JSON_ACCEPT = "application/json, text/event-stream"


class McpCallError(Exception):
    """A request that did not end in a successful JSON-RPC result."""


@dataclass(frozen=True)
class LoadResult:
    label: str
    concurrency: int
    requests: int
    errors: int
    elapsed_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    error_samples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for no values)."""
    if not sorted_values:
        return 0.0
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])


def summarize(
    label: str,
    concurrency: int,
    latencies_s: Sequence[float],
    errors: int,
    elapsed_s: float,
    error_samples: Sequence[str] = (),
) -> LoadResult:
    """Requests, errors, successful requests per second and latency percentiles in ms."""
    ordered = sorted(latencies_s)
    requests = len(ordered) + errors
    rps = len(ordered) / elapsed_s if elapsed_s > 0 else 0.0
    return LoadResult(
        label=label,
        concurrency=concurrency,
        requests=requests,
        errors=errors,
        elapsed_s=round(elapsed_s, 3),
        rps=round(rps, 1),
        p50_ms=round(percentile(ordered, 0.50) * 1000, 3),
        p90_ms=round(percentile(ordered, 0.90) * 1000, 3),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 3),
        max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 3),
        error_samples=list(error_samples)[:5],
    )


class McpConnection:
    """One keep-alive connection to an MCP endpoint speaking JSON-RPC over POST."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the load generator only talks to loopback addresses")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.timeout = timeout
        self.token = token
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._next_id = 0
        self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": JSON_ACCEPT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def message_headers(self, _message: dict[str, Any]) -> dict[str, str]:
        """Headers that depend on the message (none before revision 2026-07-28)."""
        return {}

    def stamp(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """The params as sent (unchanged before revision 2026-07-28)."""
        return params

    def post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Send one message; reconnects once if the server closed the kept-alive socket."""
        body = json.dumps(message).encode()
        headers = {**self.headers(), **self.message_headers(message)}
        for attempt in (1, 2):
            try:
                self._conn.request("POST", self.path, body=body, headers=headers)
                response = self._conn.getresponse()
                payload = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON-RPC request; returns `result` or raises McpCallError."""
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        params = self.stamp(params)
        if params is not None:
            message["params"] = params
        status, headers, payload = self.post(message)
        if status != 200:
            raise McpCallError(f"{method}: HTTP {status}: {payload[:200]!r}")
        reply = json.loads(payload)
        if "error" in reply:
            raise McpCallError(f"{method}: JSON-RPC error {reply['error']}")
        if method == "initialize":
            self.session_id = headers.get("mcp-session-id")
        result: dict[str, Any] = reply["result"]
        return result

    def notify(self, method: str) -> None:
        status, _headers, payload = self.post({"jsonrpc": "2.0", "method": method})
        if status not in (200, 202):
            raise McpCallError(f"{method}: HTTP {status}: {payload[:200]!r}")

    def initialize(self) -> dict[str, Any]:
        """The handshake: initialize, then notifications/initialized on the new session."""
        self.session_id = None
        self.protocol_version = None
        result = self.request(
            "initialize",
            {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": CLIENT_INFO,
            },
        )
        self.protocol_version = str(result["protocolVersion"])
        self.notify("notifications/initialized")
        return result

    def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            text = result.get("content", [{}])[0].get("text", "")
            raise McpCallError(f"{name}: tool error: {text[:200]}")
        return result

    def close(self) -> None:
        self._conn.close()


class StatelessConnection(McpConnection):
    """Revision 2026-07-28: no handshake and no session; each request describes itself.

    Every request carries the version, client info and capabilities in `params._meta` and the
    headers the revision requires (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`).
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(url, token, timeout)
        self.protocol_version = MODERN_PROTOCOL_VERSION

    def initialize(self) -> dict[str, Any]:
        """No handshake in this revision: server/discover is what a client asks first."""
        return self.request("server/discover", {})

    def message_headers(self, message: dict[str, Any]) -> dict[str, str]:
        method = str(message["method"])
        headers = {"Mcp-Method": method}
        if method in NAMED_METHODS:
            headers["Mcp-Name"] = str(message["params"][NAMED_METHODS[method]])
        return headers

    def stamp(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        return modern_params(params)


def modern_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """`params` with the 2026-07-28 envelope: version, client info and capabilities."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN_PROTOCOL_VERSION,
        "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {**(params or {}), "_meta": meta}


Worker = Callable[[int], Callable[[], None]]
"""Given the worker index, set up (untimed) and return the request to repeat."""


def run_load(
    label: str,
    concurrency: int,
    make_request: Worker,
    *,
    duration_s: float,
    max_requests: int,
    warmup_requests: int = 0,
    one_request_per_worker: bool = False,
) -> LoadResult:
    """Run `concurrency` workers until `duration_s` passes or `max_requests` have been sent.

    `one_request_per_worker`: each worker sends exactly one request (a burst of `concurrency`
    simultaneous calls) instead of repeating until the deadline.
    """
    if concurrency < 1 or duration_s <= 0 or max_requests < 1:
        raise ValueError("concurrency, duration_s and max_requests must be positive")
    lock = threading.Lock()
    latencies: list[float] = []
    error_samples: list[str] = []
    counters = {"sent": 0, "errors": 0}
    ready = threading.Barrier(concurrency + 1)
    timing: dict[str, float] = {}

    def take_ticket() -> bool:
        with lock:
            if counters["sent"] >= max_requests:
                return False
            counters["sent"] += 1
            return True

    def worker(index: int) -> None:
        try:
            request = make_request(index)
            for _ in range(warmup_requests):
                request()
        except Exception as error:  # a worker that cannot start counts as one error
            with lock:
                counters["errors"] += 1
                error_samples.append(f"setup: {error}")
            ready.wait()
            return
        ready.wait()
        mine: list[float] = []
        while time.perf_counter() < timing["deadline"] and take_ticket():
            started = time.perf_counter()
            try:
                request()
            except Exception as error:
                with lock:
                    counters["errors"] += 1
                    if len(error_samples) < 5:
                        error_samples.append(str(error)[:300])
                if one_request_per_worker:
                    break
                continue
            mine.append(time.perf_counter() - started)
            if one_request_per_worker:
                break
        with lock:
            latencies.extend(mine)

    threads = [
        threading.Thread(target=worker, args=(index,), name=f"load-{index}", daemon=True)
        for index in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    timing["deadline"] = float("inf")
    ready.wait()
    started = time.perf_counter()
    timing["deadline"] = started + duration_s
    # Daemon threads plus a bounded join: a hung server cannot hold the run past its budget.
    hard_stop = started + duration_s + 60.0
    for thread in threads:
        thread.join(max(0.0, hard_stop - time.perf_counter()))
    elapsed = time.perf_counter() - started
    with lock:
        return summarize(
            label, concurrency, list(latencies), counters["errors"], elapsed, error_samples
        )
