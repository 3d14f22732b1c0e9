"""Serving a WSGI app with waitress, stopping gracefully on SIGTERM or Ctrl-C.

systemd stops the service with SIGTERM. Waitress's own handling ends its loop at once, so
replies still being computed are lost. Here a stop signal first closes the listening socket
(no new connections), then lets the loop run until every in-flight request has been answered
(or the drain time is up), and only then closes the remaining connections.
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
from waitress.server import create_server

log = logging.getLogger(__name__)

# systemd's TimeoutStopSec in systemd/orderdesk-mcp.service is 30 s; the drain plus the
# final clean-up (thread pool, client machinery) must finish well before it.
DEFAULT_DRAIN_SECONDS = 20.0
_POLL_SECONDS = 0.05


class GracefulServer:
    """One waitress server plus the stop sequence; `run()` blocks until it has stopped."""

    def __init__(
        self, app: Any, *, drain_seconds: float = DEFAULT_DRAIN_SECONDS, **options: Any
    ) -> None:
        self.server: Any = create_server(app, **options)
        self.drain_seconds = drain_seconds
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
            self.server.trigger.pull_trigger(self._close_everything)
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
    def _busy(channel: Any) -> bool:
        # A request being read (`request`), queued or running (`requests`), or a reply still
        # being written (`total_outbufs_len`).
        return bool(
            getattr(channel, "request", None) is not None
            or getattr(channel, "requests", None)
            or getattr(channel, "total_outbufs_len", 0)
        )

    def _in_flight(self) -> bool:
        dispatcher = self.server.task_dispatcher
        if dispatcher.active_count > 0 or dispatcher.queue:
            return True
        return any(self._busy(channel) for channel in self._channels())

    def _close_idle(self) -> None:
        # Keep-alive connections (nginx keeps some) would otherwise be served new requests
        # during the drain and be reset at its end; closing them between requests is clean.
        for channel in self._channels():
            if not self._busy(channel):
                channel.close()

    def _close_everything(self) -> None:
        for channel in list(self.server._map.values()):
            channel.close()

    def _drain_then_close(self) -> None:
        server = self.server
        # Runs in the loop's thread: drop the listening socket, keep the wake-up trigger.
        server.trigger.pull_trigger(lambda: wasyncore.dispatcher.close(server))
        deadline = time.monotonic() + self.drain_seconds
        while time.monotonic() < deadline:
            server.trigger.pull_trigger(self._close_idle)
            if not self._in_flight():
                break
            time.sleep(_POLL_SECONDS)
        if self._in_flight():
            log.warning("drain time of %.0f s is up; closing open connections", self.drain_seconds)
        server.trigger.pull_trigger(self._close_everything)
