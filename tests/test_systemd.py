"""The shipped systemd units: sandboxed, valid, and the env template in step with SETTINGS."""

from __future__ import annotations

import configparser
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from orderdesk_mcp.config import SETTINGS, load_settings

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD_DIR = ROOT / "systemd"
SERVICES = (
    "orderdesk-mcp.service",
    "orderdesk-mcp@.service",
    "orderdesk-mcp-backup.service",
    "orderdesk-mcp-maintain.service",
)
TIMERS = ("orderdesk-mcp-backup.timer", "orderdesk-mcp-maintain.timer")
INSTALLED_BINARY = "/opt/orderdesk-mcp/venv/bin/orderdesk-mcp"


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is required (Debian package systemd)"
    return found


def _unit(name: str) -> configparser.RawConfigParser:
    # strict=False: systemd allows a key to repeat (SystemCallFilter=, Environment=).
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD_DIR / name).read_text(encoding="utf-8"))
    return parser


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_env_example", ROOT / "scripts" / "gen_env_example.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("service", SERVICES)
def test_security_exposure_is_ok(service: str) -> None:
    result = subprocess.run(
        [_systemd_analyze(), "security", "--offline=true", str(SYSTEMD_DIR / service)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout
    assert match.group(2) in {"OK", "SAFE"}


def test_units_verify_clean(tmp_path: Path) -> None:
    # verify insists ExecStart exists: point it at a binary this machine has.
    names = [*SERVICES, *TIMERS]
    for name in names:
        text = (SYSTEMD_DIR / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(INSTALLED_BINARY, "/bin/true"))
    result = subprocess.run(
        [_systemd_analyze(), "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_server_unit_has_the_operational_contract() -> None:
    service = _unit("orderdesk-mcp.service")["Service"]
    assert service["User"] == "orderdesk-mcp"
    assert service["StateDirectory"] == "orderdesk-mcp"
    assert service["EnvironmentFile"] == "/etc/orderdesk-mcp/orderdesk-mcp.env"
    assert service["LoadCredential"] == "master-key:/etc/orderdesk-mcp/master-key"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecStart"] == f"{INSTALLED_BINARY} serve"


def test_group_template_matches_the_lone_unit_but_shares_port_and_metrics() -> None:
    lone = _unit("orderdesk-mcp.service")["Service"]
    group = _unit("orderdesk-mcp@.service")
    service = group["Service"]
    # Same user, files, credential, stop sequence and sandboxing as the lone server.
    expected = dict(lone)
    del expected["Environment"]  # a repeated key: compared line by line below
    assert {key: service.get(key) for key in expected} == expected
    text = (SYSTEMD_DIR / "orderdesk-mcp@.service").read_text(encoding="utf-8")
    environment = [
        line.split("=", 1)[1] for line in text.splitlines() if line.startswith("Environment=")
    ]
    assert environment == [
        "ORDERDESK_MCP_DATA_DIR=/var/lib/orderdesk-mcp",
        "ORDERDESK_MCP_REUSE_PORT=true",
        "PROMETHEUS_MULTIPROC_DIR=/run/orderdesk-mcp-metrics",
    ]
    assert service["RuntimeDirectory"] == "orderdesk-mcp-metrics"
    # Kept when one instance stops: the others still write there.
    assert service["RuntimeDirectoryPreserve"] == "yes"
    assert group["Unit"]["Conflicts"] == "orderdesk-mcp.service"


def test_backup_timer_is_daily_and_persistent() -> None:
    timer = _unit("orderdesk-mcp-backup.timer")["Timer"]
    assert timer["Persistent"] == "true"
    assert timer["OnCalendar"].startswith("*-*-* ")
    assert timer["Unit"] == "orderdesk-mcp-backup.service"
    backup = _unit("orderdesk-mcp-backup.service")["Service"]
    assert backup["Type"] == "oneshot"
    # ExecStart lines run in order (configparser keeps only the last of a repeated key); the
    # upload comes last, so its failure fails the unit after all the local work.
    text = (SYSTEMD_DIR / "orderdesk-mcp-backup.service").read_text(encoding="utf-8")
    starts = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ExecStart=")]
    assert starts == [
        f"{INSTALLED_BINARY} backup create",
        f"{INSTALLED_BINARY} audit prune",
        f"{INSTALLED_BINARY} oauth prune",
        f"{INSTALLED_BINARY} backup upload --if-configured",
    ]
    assert "LoadCredential" not in backup, "backups hold ciphertext only; no master key"


def test_maintain_timer_is_weekly_persistent_and_sandboxed() -> None:
    timer = _unit("orderdesk-mcp-maintain.timer")["Timer"]
    assert timer["Persistent"] == "true"
    assert timer["OnCalendar"].startswith("Sun *-*-* ")
    assert timer["Unit"] == "orderdesk-mcp-maintain.service"
    maintain = _unit("orderdesk-mcp-maintain.service")["Service"]
    assert maintain["Type"] == "oneshot"
    assert maintain["ExecStart"] == f"{INSTALLED_BINARY} db maintain"  # online: never --full
    assert "LoadCredential" not in maintain, "maintenance needs no master key"
    # It touches only the state directory and needs no network (exposure: test above).
    assert maintain["StateDirectory"] == "orderdesk-mcp"
    assert maintain["User"] == "orderdesk-mcp"
    assert maintain["PrivateNetwork"] == "yes"
    assert maintain["IPAddressDeny"] == "any"
    assert maintain["RestrictAddressFamilies"] == "AF_UNIX"
    assert maintain["ProtectSystem"] == "strict"
    assert maintain["IOSchedulingClass"] == "idle"


def test_env_example_and_settings_doc_match_the_generator() -> None:
    generator = _load_generator()
    assert (SYSTEMD_DIR / "orderdesk-mcp.env.example").read_text(
        encoding="utf-8"
    ) == generator.render_env_example(), "run python scripts/gen_env_example.py"
    assert (ROOT / "docs" / "SETTINGS.md").read_text(
        encoding="utf-8"
    ) == generator.render_settings_doc(), "run python scripts/gen_env_example.py"


def test_env_example_names_every_setting_and_loads() -> None:
    text = (SYSTEMD_DIR / "orderdesk-mcp.env.example").read_text(encoding="utf-8")
    for spec in SETTINGS:
        assert re.search(rf"^#?{spec.env}=", text, re.MULTILINE), spec.env
    settings = load_settings(environ={}, env_file=SYSTEMD_DIR / "orderdesk-mcp.env.example")
    assert settings.data_dir == Path("/var/lib/orderdesk-mcp")
    assert settings.host == "127.0.0.1"
    assert settings.trusted_proxy == "127.0.0.1"
