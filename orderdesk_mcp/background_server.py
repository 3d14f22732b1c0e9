"""A WSGI app served by waitress on a background thread: the sandbox, tests and benchmarks.

Stopping it is the delicate part. The loop's wake-up pipe must outlive every worker thread:
a worker that finishes a reply pulls that pipe, and a pipe closed too early leaves its file
descriptor number free for the next server to reuse, so a stray write (or close) would land
on someone else's pipe. The stop therefore runs in three steps: close the listener and the
connections inside the loop, wait for the workers, and only then close the wake-up pipe,
which empties the loop's map and ends it.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, cast

from waitress import wasyncore
from waitress.server import create_server

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class BackgroundServer:
    """waitress on `host:port` (0 = any free port) in a daemon thread; `stop()` ends it."""

    def __init__(self, app: Any, *, name: str, host: str = "127.0.0.1", **options: Any) -> None:
        self.server: Any = cast(Any, create_server)(
            app, host=host, port=options.pop("port", 0), **options
        )
        self.host = host
        self.port = int(self.server.effective_port)
        self._stopped = False
        self._thread = threading.Thread(target=self.server.run, name=name, daemon=True)
        self._thread.start()
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        connect_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        connect_host = "::1" if connect_host == "::" else connect_host
        with socket.create_connection((connect_host, self.port), timeout=5):
            pass

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Close the listener and every connection, wait for the workers, end the loop.

        Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        server = self.server
        closed = threading.Event()

        def close_connections() -> None:  # runs in the loop's thread
            for channel in list(server._map.values()):
                if channel is not server.trigger and channel is not server:
                    channel.close()
            wasyncore.dispatcher.close(server)  # the listener, not the wake-up pipe
            closed.set()

        if not self._thread.is_alive():  # the loop died: nothing else touches the sockets
            close_connections()
        else:
            server.trigger.pull_trigger(close_connections)
            if not closed.wait(timeout):
                log.warning("%s: the loop did not close its connections", self._thread.name)
        server.task_dispatcher.shutdown(timeout=timeout)
        if self._thread.is_alive():
            server.trigger.pull_trigger(server.trigger.close)
            self._thread.join(timeout)
        else:
            server.trigger.close()
