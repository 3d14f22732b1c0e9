"""Serving a WSGI app with waitress, stopping gracefully on SIGTERM or Ctrl-C.

systemd stops the service with SIGTERM. Waitress's own handling ends its loop at once, so
replies still being computed are lost. Here a stop signal first closes the drain gate: every
request that has not reached the app yet is answered 503 with Retry-After (so no new write
starts), while the requests in flight run on. The loop runs until they have been answered (or
the drain time is up, when the log names each call it cuts); then the listener and the
remaining connections close.

The listener stays open during the drain on purpose: a client connecting then gets a JSON 503
telling it to retry, instead of a refused connection (which nginx turns into an HTML 502).
Except when the port is shared (ORDERDESK_MCP_REUSE_PORT): then the other processes of the
group serve new connections, so the listener closes as the drain begins.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from waitress import wasyncore

from orderdesk_mcp.connection_guard import (
    ConnectionLimits,
    GuardedChannel,
    create_guarded_server,
)
from orderdesk_mcp.drain_gate import DrainGate

log = logging.getLogger(__name__)

# systemd's TimeoutStopSec in systemd/orderdesk-mcp.service is 30 s; the drain plus the
# final clean-up (up to 5 s for the thread pool, then the client machinery) must finish
# before it, or systemd kills the process mid-reply.
DEFAULT_DRAIN_SECONDS = 20.0
_POLL_SECONDS = 0.05
# waitress's listen backlog (1024) bounds what can be queued on the listener.
_MAX_QUEUED_ACCEPTS = 1024


class GracefulServer:
    """One waitress server plus the stop sequence; `run()` blocks until it has stopped."""

    def __init__(
        self,
        app: Any,
        *,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        limits: ConnectionLimits | None = None,
        reuse_port: bool = False,
        **options: Any,
    ) -> None:
        self.gate = DrainGate(app)
        self.server: Any = create_guarded_server(
            self.gate, limits=limits or ConnectionLimits(), reuse_port=reuse_port, **options
        )
        self.drain_seconds = drain_seconds
        self.shares_port = reuse_port
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    def run(self, on_ready: Callable[[GracefulServer], None] | None = None) -> None:
        """Serve until a stop; handles SIGTERM/SIGINT when called from the main thread."""
        handlers: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            if on_ready is not None:
                on_ready(self)
            self.server.run()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self.server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)

    def stop(self) -> None:
        """Begin the graceful stop (from any thread); `run()` returns when it is done."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        threading.Thread(target=self._drain_then_close, name="graceful-stop", daemon=True).start()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._stopping.is_set():
            log.warning("second %s: closing connections now", name)
            self._wake_loop(self._close_everything)
            return
        log.info("stop requested (%s); finishing requests in flight", name)
        self.stop()

    def _channels(self) -> list[Any]:
        """The client connections (not the listener, not the wake-up trigger)."""
        server = self.server
        return [
            channel
            for channel in list(server._map.values())
            if channel is not server and channel is not server.trigger
        ]

    @staticmethod
    def _idle(channel: Any) -> bool:
        # Between keep-alive requests: nothing being read, queued, served or written. A new
        # connection counts as reading its first request (it will get the 503 if it sends it).
        return not (
            getattr(channel, "request", None) is not None
            or getattr(channel, "requests", None)
            or getattr(channel, "total_outbufs_len", 0)
            or (isinstance(channel, GuardedChannel) and channel.request_read_started is not None)
        )

    def _in_flight(self) -> bool:
        # Requests the app admitted before the drain, and replies still being written. A
        # request still arriving is not waited for: it would only get the 503.
        if self.gate.in_flight():
            return True
        dispatcher = self.server.task_dispatcher
        if dispatcher.active_count > 0 or dispatcher.queue:
            return True
        return any(getattr(channel, "total_outbufs_len", 0) for channel in self._channels())

    def _close_idle(self) -> None:
        # Keep-alive connections (nginx keeps some) would otherwise be reset at the drain's
        # end; closing them between requests is clean.
        for channel in self._channels():
            if self._idle(channel):
                channel.close()

    def _stop_listening(self) -> None:
        """Leave the SO_REUSEPORT group: the kernel sends new connections to the siblings,
        which serve them, instead of to this process, which could only answer 503. The
        connections already queued are taken first (closing would reset them; Linux's
        net.ipv4.tcp_migrate_req=1 would hand them to a sibling instead)."""
        server = self.server
        if not server.accepting:
            return
        for _queued in range(_MAX_QUEUED_ACCEPTS):
            before = len(server._map)
            server.handle_accept()
            if len(server._map) == before:
                break
        wasyncore.dispatcher.close(server)
        log.info("stopped listening; the other processes on the port take new connections")

    def _close_everything(self) -> None:
        for channel in list(self.server._map.values()):
            channel.close()

    def _drain_then_close(self) -> None:
        server = self.server
        self.gate.close()  # first of all: no new request reaches the app
        if self.shares_port:
            self._wake_loop(self._stop_listening)
        deadline = time.monotonic() + self.drain_seconds
        while time.monotonic() < deadline:
            if not self._wake_loop(self._close_idle):
                return
            if not self._in_flight():
                break
            time.sleep(_POLL_SECONDS)
        cut = self.gate.in_flight()
        if cut:
            now = time.monotonic()
            log.warning(
                "drain time of %g s is up with %d request(s) still running; cutting them",
                self.drain_seconds,
                len(cut),
            )
            for call in cut:
                log.warning("cut by the stop: %s", call.describe(now))

        def close_all() -> None:  # in the loop's thread; with the map empty, the loop ends
            wasyncore.dispatcher.close(server)
            self._close_everything()

        self._wake_loop(close_all)

    def _wake_loop(self, thunk: Callable[[], None]) -> bool:
        """Run `thunk` in the loop's thread; False when the loop has already ended (its
        wake-up pipe closed), so there is nothing left to drain or close."""
        trigger = self.server.trigger
        if getattr(trigger, "_closed", False):
            return False
        try:
            trigger.pull_trigger(thunk)
        except OSError:  # closed between the check and the write
            return False
        return True
