"""Waitress, guarded against slow and greedy clients when it is reached without nginx.

Waitress only closes a connection that has been silent for `channel_timeout`; a client that
trickles one header line every few seconds resets that clock forever, and a hundred such
connections fill its whole connection pool. Two guards close that gap:

- a request deadline: a request's headers and body must arrive within `request_read_seconds`
  of its first byte (of the connection's opening, for a connection's first request); the
  sweep that waitress already runs for idle connections closes the laggards, answering a
  408 JSON reply when the client can still take it;
- a cap on connections per client address: one address cannot take the whole pool. The
  trusted proxy is exempt: behind nginx every client arrives from its address.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from socket import (
    AF_INET6,
    IPPROTO_IPV6,
    IPV6_V6ONLY,
    SO_REUSEADDR,
    SO_REUSEPORT,
    SOL_SOCKET,
    socket,
)
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

log = logging.getLogger(__name__)

# How often the sweep looks at the connections (waitress's own default is every 30 s,
# far coarser than a request deadline of a few seconds).
SWEEP_INTERVAL_SECONDS = 1
REFUSED_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ConnectionLimits:
    """The guards' settings; None switches a guard off."""

    request_read_seconds: float | None = None
    max_connections_per_address: int | None = None
    # Peer address exempt from the per-address cap; "*" (any peer may be the proxy) exempts all.
    trusted_proxy: str | None = None

    def caps(self, address: str) -> bool:
        if not self.max_connections_per_address:
            return False
        return self.trusted_proxy not in (address, "*")


def _json_reply(status: str, body: dict[str, Any], extra: tuple[str, ...] = ()) -> bytes:
    """A complete HTTP/1.1 reply that ends the connection (written before any request)."""
    payload = json.dumps(body).encode()
    head = [
        f"HTTP/1.1 {status}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        f"Date: {formatdate(usegmt=True)}",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


# JSON-RPC's "Invalid Request": what /mcp answers for every refusal of the HTTP request.
_JSON_RPC_INVALID_REQUEST = -32600


class JsonErrorTask(ErrorTask):
    """Waitress's own refusals (a body over its ceiling, a malformed request line, headers
    too large) in JSON, JSON-RPC shaped on /mcp: no client ever gets waitress's plain text."""

    def execute(self) -> None:
        request: Any = self.request  # waitress's parser; the stubs call it an Error
        error = request.error
        path = str(getattr(request, "path", "") or "")
        message = f"{error.reason}: {error.body}"[:300]
        body: dict[str, Any]
        if path == "/mcp" or path.startswith("/mcp/"):
            problem = {"code": _JSON_RPC_INVALID_REQUEST, "message": message}
            body = {"jsonrpc": "2.0", "id": None, "error": problem}
        else:
            body = {"error": error.reason, "message": message, "status": error.code}
        payload = json.dumps(body).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers = [*self.response_headers, ("Content-Type", "application/json")]
        self.set_close_on_finish()
        self.content_length = len(payload)
        self.write(payload)


class GuardedChannel(HTTPChannel):
    """An HTTPChannel that knows since when its current request has been arriving, and whose
    own error replies are JSON."""

    error_task_class = JsonErrorTask

    server: GuardedServer
    # monotonic time the request being read began; None while there is none (idle between
    # keep-alive requests, or a request being served). A new connection starts the clock.
    request_read_started: float | None
    refused = False

    def __init__(
        self, server: GuardedServer, sock: socket, addr: Any, adj: Adjustments, map: Any = None
    ) -> None:
        self.request_read_started = time.monotonic()
        self.address = str(addr[0]) if isinstance(addr, tuple) else str(addr)
        super().__init__(server, sock, addr, adj, map)
        if server.over_cap(self.address):
            self._refuse(sock)

    def add_channel(self, map: Any = None) -> None:
        super().add_channel(map)
        self.server.count_connection(self.address, +1)

    def del_channel(self, map: Any = None) -> None:
        # wasyncore's close() may run twice; only the first removal counts.
        counted = getattr(self, "_fileno", None) is not None
        super().del_channel(map)
        if counted:
            self.server.count_connection(self.address, -1)

    def received(self, data: bytes) -> bool:
        before = self.request
        if self.request_read_started is None:
            self.request_read_started = time.monotonic()
        result = super().received(data)
        if self.request is None:
            self.request_read_started = None  # nothing partial left: the clock stops
        elif self.request is not before and before is not None:
            # The previous request completed inside this chunk and the next one began.
            self.request_read_started = time.monotonic()
        return result

    def answer_and_close(self, reply: bytes) -> None:
        """Queue a final reply; the loop sends it, then closes the connection."""
        with self.outbuf_lock:
            self.outbufs[-1].append(reply)
            self.total_outbufs_len += len(reply)
        self.close_when_flushed = True

    def _refuse(self, sock: socket) -> None:
        self.refused = True
        limit = self.server.limits.max_connections_per_address
        # Read what the client already sent: closing a socket with unread input resets it,
        # and the client might lose the reply below.
        with contextlib.suppress(OSError):
            sock.recv(65536)  # non-blocking: whatever is there, if anything
        self.answer_and_close(
            _json_reply(
                "503 Service Unavailable",
                {
                    "error": "Service Unavailable",
                    "message": f"too many connections from your address (at most {limit}); "
                    "reuse or close open connections and retry",
                    "status": 503,
                },
                (f"Retry-After: {REFUSED_RETRY_AFTER_SECONDS}",),
            )
        )


class GuardedServer(TcpWSGIServer):
    """TcpWSGIServer whose channels are GuardedChannels and whose sweep enforces the limits."""

    channel_class = GuardedChannel

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        # Set before waitress's __init__, which starts accepting connections.
        self.limits = limits
        self.connections_by_address: Counter[str] = Counter()
        self._capped: set[str] = set()
        self._count_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def count_connection(self, address: str, change: int) -> None:
        with self._count_lock:
            self.connections_by_address[address] += change
            if self.connections_by_address[address] <= 0:
                del self.connections_by_address[address]
            if address in self._capped and self.connections_by_address[address] < (
                self.limits.max_connections_per_address or 0
            ):
                self._capped.discard(address)

    def over_cap(self, address: str) -> bool:
        """True when this address holds more connections than allowed (this one included)."""
        if not self.limits.caps(address):
            return False
        with self._count_lock:
            over = self.connections_by_address[address] > (
                self.limits.max_connections_per_address or 0
            )
            first = over and address not in self._capped
            if first:
                self._capped.add(address)
        if first:  # one line per episode, not one per refused connection
            log.warning(
                "connections from %s reached the cap of %s; refusing more until some close",
                address,
                self.limits.max_connections_per_address,
            )
        return over

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # type: ignore[arg-type]
        self.close_slow_requests(time.monotonic())

    def close_slow_requests(self, now: float) -> None:
        limit = self.limits.request_read_seconds
        if limit is None:
            return
        # The stubs type active_channels as one channel; it is waitress's {fd: channel}.
        channels: dict[int, HTTPChannel] = self.active_channels  # type: ignore[assignment]
        for channel in list(channels.values()):
            if not isinstance(channel, GuardedChannel):
                continue
            started = channel.request_read_started
            if channel.requests:
                # Served or queued: the server, not the client, is taking the time. A request
                # partly read behind it gets a fresh clock.
                if started is not None:
                    channel.request_read_started = now
                continue
            if started is None or now - started <= limit:
                continue
            if channel.close_when_flushed or channel.will_close:
                channel.will_close = True  # answered at the last sweep and still open: close
                continue
            log.info(
                "closing the connection from %s: its request did not arrive within %g s",
                channel.address,
                limit,
            )
            channel.answer_and_close(
                _json_reply(
                    "408 Request Timeout",
                    {
                        "error": "Request Timeout",
                        "message": f"the request did not arrive within {limit:g} seconds; "
                        "send it again on a new connection",
                        "status": 408,
                    },
                )
            )


def create_guarded_server(
    app: Any, *, limits: ConnectionLimits, reuse_port: bool = False, **options: Any
) -> GuardedServer:
    """Like waitress.create_server for one TCP address, with the guards installed.

    `reuse_port` binds the listener with SO_REUSEPORT, so several serve processes share the
    port and the kernel spreads new connections over them. Waitress has no such option; it
    accepts a socket bound by the caller (its `sockets` adjustment), which is used here.
    """
    adj = Adjustments(cleanup_interval=SWEEP_INTERVAL_SECONDS, **options)
    if len(adj.listen) != 1:
        # waitress would serve every address behind a MultiSocketServer, which the graceful
        # stop cannot drive; one address is what `serve` means anyway.
        raise OSError(
            f"{options.get('host')} resolves to {len(adj.listen)} addresses; bind one IP "
            "address, e.g. 127.0.0.1"
        )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    if not reuse_port:
        return GuardedServer(
            app, map={}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0], limits=limits
        )
    listener = bind_reuse_port(adj.listen[0])  # type: ignore[arg-type]  # stubs: a str
    others = {key: value for key, value in options.items() if key not in ("host", "port")}
    adj = Adjustments(cleanup_interval=SWEEP_INTERVAL_SECONDS, sockets=[listener], **others)
    sockinfo = (listener.family, listener.type, listener.proto, listener.getsockname())
    return GuardedServer(
        app,
        map={},
        _sock=listener,
        dispatcher=dispatcher,
        adj=adj,
        sockinfo=sockinfo,
        bind_socket=False,
        limits=limits,
    )


def bind_reuse_port(sockinfo: tuple[Any, ...]) -> socket:
    """A TCP socket bound to `sockinfo`'s address with SO_REUSEPORT (not yet listening)."""
    family, socktype, proto, address = sockinfo
    listener = socket(family, socktype, proto)
    try:
        listener.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        # Linux lets a second socket bind the port only if every one of them sets this and
        # all belong to the same user: another user's process cannot steal our connections.
        listener.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1)
        if family == AF_INET6:
            listener.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
        listener.bind(address)
    except OSError:
        listener.close()
        raise
    return listener
