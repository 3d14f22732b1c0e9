"""A throwaway S3-compatible server for the off-site backup tests: moto in server mode
(moto[server] in requirements-dev.txt) on a free loopback port, stopped when done.

moto accepts any credentials; the tests still set distinctive AWS_* values so they can check
that the secret never shows up in output.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.real_servers import _stop, _wait_for_port, free_port

TEST_ACCESS_KEY = "AKIAODMCPTESTKEY0001"
TEST_SECRET_KEY = "odmcp-test-aws-secret-never-printed-9f3c"


class S3Server:
    """`python -m moto.server` on 127.0.0.1; `.endpoint` is its http:// URL."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = Path(tempfile.mkdtemp(prefix="odmcp-moto-")) / "moto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port("127.0.0.1", self.port, self._process, "moto_server")

    def stop(self) -> None:
        _stop(self._process)
        self._process = None

    def log_text(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    @staticmethod
    def credentials_env() -> dict[str, str]:
        """AWS_* variables for boto3 (test credentials; nothing read from ~/.aws)."""
        return {
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/nonexistent/odmcp-aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/odmcp-aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            # One botocore try per request: the upload's own bounded loop still retries.
            "AWS_MAX_ATTEMPTS": "1",
        }
