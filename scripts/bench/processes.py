"""The benchmark's servers as loopback subprocesses: start, wait until ready, measure RSS, stop.

Separate processes keep the load generator's GIL out of the servers' way and let us read each
server's own resident memory from /proc.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SERVE_COMMAND = [PYTHON, "-m", "orderdesk_mcp"]


def free_port() -> int:
    """A free loopback port (the tiny race until the server binds it is fine on loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ManagedProcess:
    """A child process whose stdout/stderr go to a log file; `stop()` is SIGTERM then kill."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        capture_stdout: bool = False,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if capture_stdout else self._log,
            stderr=self._log,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def read_json_line(self, timeout: float = 30.0) -> dict[str, Any]:
        """The first stdout line, parsed (the child prints it when ready)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.strip():
                parsed: dict[str, Any] = json.loads(line)
                return parsed
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"{self.name} did not report ready; see {self.log_path}")

    def rss_mb(self) -> float:
        """Resident set size from /proc (VmRSS), in MiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise RuntimeError(f"no VmRSS for {self.name}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
        return self.process.returncode


def wait_for_200(url: str, process: ManagedProcess, timeout: float = 60.0) -> float:
    """Poll `url` until it answers 200; returns seconds since the process was started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited early; see {process.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - process.started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def wait_for_port(port: int, process: ManagedProcess, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited early; see {process.log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return time.perf_counter() - process.started
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"port {port} did not open within {timeout:.0f} s")


def start_sandbox(
    stores: list[tuple[str, str, str]], log_dir: Path
) -> tuple[ManagedProcess, str, str]:
    """(process, API base URL, admin URL) for stores given as (store id, API key, seed)."""
    command = [PYTHON, "-m", "scripts.bench.sandbox_proc"]
    for store_id, api_key, seed in stores:
        command += ["--store", f"{store_id}:{api_key}:{seed}"]
    process = ManagedProcess("sandbox", command, log_dir, capture_stdout=True)
    ready = process.read_json_line(timeout=120)
    return process, str(ready["base_url"]), str(ready["admin_url"])


def start_our_server(
    data_dir: Path, log_dir: Path, env: dict[str, str], name: str = "orderdesk-mcp"
) -> tuple[ManagedProcess, str, float]:
    """`orderdesk-mcp serve` on a free port: (process, /mcp URL, seconds to first /health 200)."""
    port = free_port()
    process = ManagedProcess(
        name,
        [*SERVE_COMMAND, "serve", "--port", str(port)],
        log_dir,
        env={**env, "ORDERDESK_MCP_DATA_DIR": str(data_dir)},
    )
    startup_s = wait_for_200(f"http://127.0.0.1:{port}/health", process)
    return process, f"http://127.0.0.1:{port}/mcp", startup_s


def start_reference_server(
    fixtures: Path, log_dir: Path, workers: int = 1
) -> tuple[ManagedProcess, str, float]:
    """The official SDK's server on a free port: (process, /mcp URL, seconds to accepting)."""
    port = free_port()
    command = [
        PYTHON,
        "-m",
        "scripts.bench.reference_server",
        "--port",
        str(port),
        "--fixtures",
        str(fixtures),
        "--workers",
        str(workers),
    ]
    name = "reference-sdk" if workers == 1 else f"reference-sdk-{workers}-workers"
    process = ManagedProcess(name, command, log_dir)
    startup_s = wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}/mcp", startup_s


def start_hello_server(log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    command = [PYTHON, "-m", "scripts.bench.hello_server", "--port", str(port)]
    process = ManagedProcess("hello-waitress", command, log_dir)
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}/mcp"


def fetch_json(url: str, timeout: float = 10.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        parsed: dict[str, Any] = json.loads(response.read())
        return parsed


def machine() -> dict[str, Any]:
    """The machine a figure ran on (every benchmark's JSON records it)."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
