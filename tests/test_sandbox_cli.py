"""The sandbox command as a real process: prints its URL, serves, saves state on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

LAUNCH = "from orderdesk_mcp.sandbox.cli import sandbox_command; sandbox_command()"


def test_sandbox_process_serves_and_saves_state_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = ["--port", "0", "--seed", "empty", "--state", str(state)]
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        base_url = lines[0].split()[-1]
        store_id = lines[1].split()[-1]
        api_key = lines[2].split()[1]
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/api/v2")
        headers = {"ORDERDESK-STORE-ID": store_id, "ORDERDESK-API-KEY": api_key}
        body = {"shipping": {"company": "Saved Co"}, "order_items": [{"name": "Saved"}]}
        created = requests.post(f"{base_url}/orders", json=body, headers=headers, timeout=10)
        assert created.status_code == 200
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 0
    assert "stopped" in out
    saved = json.loads(state.read_text())
    assert saved["stores"][store_id]["orders"][0]["shipping"]["company"] == "Saved Co"
    assert api_key not in state.read_text()


def test_sandbox_process_serves_extra_stores_and_forced_429s_from_flags() -> None:
    args = [
        "--port",
        "0",
        "--seed",
        "empty",
        "--extra-store",
        "200002:extra-key",
        "--force-429",
        "2",
    ]
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split()[-1]
        headers = {"ORDERDESK-STORE-ID": "200002", "ORDERDESK-API-KEY": "extra-key"}
        statuses = [
            requests.get(f"{base_url}/test", headers=headers, timeout=10).status_code
            for _ in range(3)
        ]
        assert statuses == [429, 429, 200]
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 0
