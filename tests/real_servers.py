"""Throwaway Redis and PostgreSQL servers for the tests: Debian's binaries, loopback only.

Each server listens on a free 127.0.0.1 port with its data in a fresh temp dir and is stopped
(and its dir removed) when the test session ends. `make test` installs the packages when they
are missing (Makefile, SYSTEM_TOOLS); a test that needs one fails loudly if it is absent
rather than being skipped, so a fresh machine cannot pass by not testing.

PostgreSQL refuses to run as root: under root, `initdb` and `postgres` run as the `postgres`
user that Debian's package creates, in a temp dir that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within 30 s")


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class RedisServer:
    """`redis-server` with AUTH on a loopback port; `stop()`/`start()` simulate an outage on
    the same port (the URL stays valid)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is missing: `make test` installs Debian's redis-server")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.dir = Path(tempfile.mkdtemp(prefix="odmcp-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", self.host,
                "--port", str(self.port),
                "--requirepass", self.password,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.host, self.port, self.process, "redis-server")

    def stop(self) -> None:
        """Stop at once (SIGKILL: an outage, not a clean shutdown)."""
        _stop(self.process, signal.SIGKILL)
        self.process = None

    def close(self) -> None:
        _stop(self.process)
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


def _postgres_bin_dir() -> Path:
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    if not found:
        pytest.fail("PostgreSQL is missing: `make test` installs Debian's postgresql")
    return Path(found[-1]).parent


class PostgresServer:
    """A PostgreSQL cluster in a temp dir on a loopback port, trust auth for loopback only.

    `create_database()` gives each test a database of its own and returns its URL.
    """

    superuser = "postgres"

    def __init__(self) -> None:
        self.bin = _postgres_bin_dir()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="odmcp-pg-"))
        self.data = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]

    def _command(self, *args: str) -> list[str]:
        return [*self._run_as, *args]

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                self._command(
                    str(self.bin / "initdb"),
                    "-D", str(self.data),
                    "-U", self.superuser,
                    "--auth=trust",
                    "-E", "UTF8",
                    "--no-sync",
                    "--locale=C",
                ),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
        self.process = subprocess.Popen(
            self._command(
                str(self.bin / "postgres"),
                "-D", str(self.data),
                "-p", str(self.port),
                "-k", str(self.dir),
                "-c", f"listen_addresses={self.host}",
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
                "-c", "max_connections=300",
                "-c", "log_min_messages=warning",
            ),
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "postgres.log").open("wb"),
        )  # fmt: skip
        _wait_for_port(self.host, self.port, self.process, "postgres")
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg2.connect(self.url("postgres")).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{database}"

    def admin_sql(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg2

        connection = psycopg2.connect(self.url("postgres"))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        self.admin_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
