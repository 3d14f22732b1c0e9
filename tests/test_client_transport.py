"""What the client puts on the wire, and how it takes replies the sandbox never sends
(HTML from a proxy, redirects, junk rate-limit headers). A tiny real HTTP server on a loopback
port records each request and answers as the test's scenario says."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orderdesk_mcp import __version__
from orderdesk_mcp.config import Settings
from orderdesk_mcp.orderdesk import (
    NotFound,
    OrderDeskClient,
    RetryPolicy,
    UpstreamCall,
    UpstreamError,
    UpstreamMachinery,
    UpstreamUnavailable,
)

KEY = "sk_transport_test_key"
ORDER = {"id": "1", "email": "a@example.com", "date_updated": "2026-01-01 00:00:00"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """The recording server: `scenario` picks the answers, `seen` lists the requests."""

    base_url: str = ""
    scenario: str = "ok"
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with upstream.lock:
                upstream.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                count = len(upstream.seen)
            scenario = upstream.scenario
            if scenario == "html502":
                self._send(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            elif scenario == "redirect":
                self._send(302, b"", "text/plain", [("Location", "http://127.0.0.1:9/elsewhere")])
            elif scenario == "lost_delete":  # the first DELETE worked but its reply was lost
                if count == 1:
                    self._send(502, b"<html>Bad Gateway</html>", "text/html")
                else:
                    self._send(404, b'{"status":"error","message":"Order 1 not found"}')
            elif scenario == "junk429" and count == 1:
                junk = [("X-Retry-After", "soon"), ("X-Tokens-Remaining", "lots")]
                self._send(429, b'{"status":"error","message":"Too Many Requests"}', extra=junk)
            else:
                reply = {"status": "success", "order": ORDER, "message": "ok"}
                self._send(200, json.dumps(reply).encode(), extra=[("X-Tokens-Remaining", "17")])

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "application/json",
            extra: list[tuple[str, str]] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra or []:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    return Handler


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def calls() -> list[UpstreamCall]:
    return []


@pytest.fixture
def client(
    upstream: Upstream, tmp_path: Path, calls: list[UpstreamCall]
) -> Iterator[OrderDeskClient]:
    with UpstreamMachinery(
        tmp_path / "cache.sqlite",
        retry=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.02),
        observer=calls.append,
    ) as machinery:
        yield OrderDeskClient("42", KEY, upstream.base_url, machinery)


def test_reads_carry_no_body_and_no_content_type(
    client: OrderDeskClient, upstream: Upstream
) -> None:
    client.get_order(1)
    client.delete_order(1)
    get, delete = upstream.seen
    for request in (get, delete):
        assert "Content-Type" not in request.headers
        assert request.body == b""
        assert request.headers["User-Agent"] == f"orderdesk-mcp/{__version__}"
        assert request.headers["ORDERDESK-STORE-ID"] == "42"
        assert request.headers["ORDERDESK-API-KEY"] == KEY
    assert get.method == "GET"
    assert get.path == "/api/v2/orders/1"
    assert "Content-Length" not in get.headers


def test_patch_is_get_put_with_a_json_body_never_patch(
    client: OrderDeskClient, upstream: Upstream
) -> None:
    client.patch_order("1", {"email": "b@example.com", "shipping": {"city": "Oslo"}})
    assert [r.method for r in upstream.seen] == ["GET", "PUT"]
    put = upstream.seen[-1]
    assert put.headers["Content-Type"] == "application/json"
    # id and date_updated are Order Desk's own: the body leaves them out.
    assert json.loads(put.body) == {"email": "b@example.com", "shipping": {"city": "Oslo"}}


def test_list_filters_go_in_the_query_string(client: OrderDeskClient, upstream: Upstream) -> None:
    client.list_orders(folder_id=[3, "4"], email="a@example.com", get_order_history=True, limit=5)
    assert upstream.seen[0].path == (
        "/api/v2/orders?limit=5&folder_id=3%2C4&email=a%40example.com&get_order_history=1"
    )


def test_aware_datetimes_are_sent_in_utc(client: OrderDeskClient, upstream: Upstream) -> None:
    oslo = dt.timezone(dt.timedelta(hours=1))
    client.list_orders(search_start_date=dt.datetime(2026, 3, 1, 1, 30, tzinfo=oslo))
    assert upstream.seen[0].path == "/api/v2/orders?search_start_date=2026-03-01+00%3A30%3A00"


def test_an_html_502_from_a_proxy_is_retried_then_explained(
    client: OrderDeskClient, upstream: Upstream, calls: list[UpstreamCall]
) -> None:
    upstream.scenario = "html502"
    with pytest.raises(UpstreamUnavailable) as caught:
        client.get_store()
    assert "not JSON" in caught.value.message
    assert "text/html" in caught.value.message
    assert caught.value.status == 502
    assert len(upstream.seen) == 3
    assert calls[-1].retries == 2


def test_a_post_under_an_html_502_is_sent_once(client: OrderDeskClient, upstream: Upstream) -> None:
    upstream.scenario = "html502"
    with pytest.raises(UpstreamUnavailable) as caught:
        client.create_order({"order_items": [{"name": "Mug"}]})
    assert caught.value.write_may_have_happened is True
    assert len(upstream.seen) == 1


def test_redirects_are_not_followed(client: OrderDeskClient, upstream: Upstream) -> None:
    upstream.scenario = "redirect"
    with pytest.raises(
        UpstreamError, match=re.escape("redirecting to http://127.0.0.1:9/elsewhere")
    ):
        client.get_store()
    assert len(upstream.seen) == 1


def test_a_retried_delete_that_finds_nothing_says_it_may_be_done(
    client: OrderDeskClient, upstream: Upstream
) -> None:
    upstream.scenario = "lost_delete"
    with pytest.raises(NotFound, match="earlier attempt of this DELETE"):
        client.delete_order(1)
    assert [r.method for r in upstream.seen] == ["DELETE", "DELETE"]


def test_junk_rate_limit_headers_fall_back_to_backoff(
    client: OrderDeskClient, upstream: Upstream, calls: list[UpstreamCall]
) -> None:
    upstream.scenario = "junk429"
    assert client.get_order(1)["order"]["id"] == "1"
    assert calls[-1].rate_limited_waits == 1
    assert calls[-1].tokens_remaining == 17


def test_machinery_from_settings_uses_the_data_dir(settings: Settings) -> None:
    with UpstreamMachinery.from_settings(settings) as machinery:
        assert machinery.cache.path == settings.data_dir / "http-cache.sqlite"
        assert machinery.cache.path.stat().st_mode & 0o077 == 0
        assert machinery.timeouts == (5.0, 30.0)
        assert machinery.ttls.store == 300
        assert machinery.ttls.orders == 30
