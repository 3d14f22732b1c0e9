"""Bounded load on real serve processes for the Redis tests and the upstream benchmark:
worker threads call `get_order` with distinct order ids (each one an uncached upstream read)
until a deadline, and tally what came back."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.server_group import mcp_post, open_session

BUSY_PAUSE_SECONDS = 0.1
"""A busy answer means "try again shortly": a worker pauses instead of spinning."""


@dataclass
class LoadTally:
    http_statuses: Counter[int] = field(default_factory=Counter)
    ok: int = 0
    tool_errors: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def total(self) -> int:
        return sum(self.http_statuses.values()) + sum(self.transport_errors.values())


class DistinctIds:
    """Hands out each order id once, to any thread."""

    def __init__(self, ids: Sequence[str]) -> None:
        self._ids: Iterator[str] = iter(ids)
        self._lock = threading.Lock()

    def next(self) -> str | None:
        with self._lock:
            return next(self._ids, None)


def tool_reply(response: requests.Response) -> dict[str, Any]:
    if response.headers.get("Content-Type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                decoded: dict[str, Any] = json.loads(line[5:])
                return decoded
        return {}
    body: dict[str, Any] = response.json()
    return body


def _one_call(url: str, token: str, session: str, order_id: str, tally: LoadTally) -> bool:
    """One get_order; returns whether the answer was busy (then the worker pauses)."""
    try:
        response = mcp_post(
            url,
            token,
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {
                    "name": "get_order",
                    "arguments": {"order_id": order_id, "store": "demo"},
                },
            },
            session,
        )
    except requests.RequestException as exc:
        with tally.lock:
            tally.transport_errors[type(exc).__name__] += 1
        return False
    with tally.lock:
        tally.http_statuses[response.status_code] += 1
    if response.status_code != 200:
        return False
    result = tool_reply(response).get("result", {})
    if not result.get("isError"):
        with tally.lock:
            tally.ok += 1
        return False
    text = " ".join(part.get("text", "") for part in result.get("content", []))
    with tally.lock:
        tally.tool_errors[text[:160]] += 1
    return True


def hammer(
    urls: Sequence[str],
    token: str,
    ids: DistinctIds,
    seconds: float,
    *,
    workers_per_url: int = 2,
    tally: LoadTally | None = None,
) -> LoadTally:
    """Run the workers (each with its own MCP session) for `seconds`, then return the tally."""
    tally = tally or LoadTally()
    sessions = [(url, open_session(url, token)) for url in urls for _ in range(workers_per_url)]
    deadline = time.monotonic() + seconds

    def work(url: str, session: str) -> None:
        while time.monotonic() < deadline:
            order_id = ids.next()
            if order_id is None:
                return
            if _one_call(url, token, session, order_id, tally):
                time.sleep(BUSY_PAUSE_SECONDS)

    threads = [threading.Thread(target=work, args=pair, daemon=True) for pair in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)  # a call waits at most its rate-limit budget plus a read
    return tally
