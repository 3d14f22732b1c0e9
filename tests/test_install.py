"""scripts/install.sh: its dry-run plan, its argument errors, and shellcheck on all scripts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "scripts" / "install.sh"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALL), *args], capture_output=True, text=True, timeout=60, cwd="/"
    )


def test_dry_run_prints_the_whole_plan_and_changes_nothing() -> None:
    existed_before = Path("/etc/orderdesk-mcp").exists()
    result = _run("--dry-run", "--public-host", "mcp.test.example")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Dry run: nothing will be changed.")
    expected_in_order = [
        "==> System user orderdesk-mcp",
        "python3 -m venv /opt/orderdesk-mcp/venv",
        "pip install --quiet -r /opt/orderdesk-mcp/src/requirements.txt",
        "/etc/orderdesk-mcp/master-key (root:root, mode 0600)",
        "/etc/orderdesk-mcp/orderdesk-mcp.env (root:orderdesk-mcp, mode 0640)",
        "/etc/systemd/system/orderdesk-mcp.service",
        "/etc/systemd/system/orderdesk-mcp-backup.service",
        "/etc/systemd/system/orderdesk-mcp-backup.timer",
        "systemctl enable orderdesk-mcp.service orderdesk-mcp-backup.timer",
        "/usr/local/sbin/orderdesk-mcp-admin (root:root, mode 0755)",
        "orderdesk-mcp --env-file /etc/orderdesk-mcp/orderdesk-mcp.env db upgrade",
        "systemctl restart orderdesk-mcp.service",
    ]
    positions = [out.find(text) for text in expected_in_order]
    assert all(p >= 0 for p in positions), [
        t for t, p in zip(expected_in_order, positions, strict=True) if p < 0
    ]
    assert positions == sorted(positions)
    for line in out.splitlines():
        if "==>" in line or line.startswith("Dry run") or line.strip().startswith("Next"):
            continue
        assert line.startswith("    "), f"an unplanned action: {line!r}"
    # Nothing secret is generated into the output, and nothing was installed.
    # (A key or token is 43+ base64 characters without a slash-separated path shape.)
    assert not re.search(r"(?<![/\w.-])[A-Za-z0-9+_-]{40,}={0,2}", out)
    assert Path("/etc/orderdesk-mcp").exists() == existed_before


def test_no_start_leaves_the_service_alone() -> None:
    result = _run("--dry-run", "--no-start")
    assert result.returncode == 0
    assert "systemctl restart" not in result.stdout


def test_bad_arguments_get_one_clear_line() -> None:
    unknown = _run("--frobnicate")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: unknown option --frobnicate (see --help)"
    bad_host = _run("--dry-run", "--public-host", "https://x/")
    assert bad_host.returncode == 2
    assert "bare host name" in bad_host.stderr


def test_shell_scripts_are_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required: `make system-deps` installs it"
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))
    result = subprocess.run(
        [shellcheck, *scripts, str(ROOT / ".ci" / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


def test_an_upgrade_keeps_a_server_group_a_group(tmp_path: Path) -> None:
    # Re-running install.sh to upgrade must not enable or restart the lone unit: it conflicts
    # with orderdesk-mcp@N, so that would stop the whole group and leave one process.
    wants = tmp_path / "multi-user.target.wants"
    wants.mkdir()
    for instance in ("orderdesk-mcp@1.service", "orderdesk-mcp@2.service"):
        (wants / instance).touch()
    result = subprocess.run(
        [str(INSTALL), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "ODMCP_UNIT_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "orderdesk-mcp.service orderdesk-mcp-backup.timer" not in out  # not enabled
    assert "systemctl restart orderdesk-mcp.service" not in out
    first = out.find("systemctl restart orderdesk-mcp@1.service")
    second = out.find("systemctl restart orderdesk-mcp@2.service")
    assert 0 <= first < second, out
    assert "systemctl enable orderdesk-mcp-backup.timer orderdesk-mcp-maintain.timer" in out
