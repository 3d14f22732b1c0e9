"""Review regressions: the restore / rotate-master-key guard of a server group."""

from __future__ import annotations

import socket
from pathlib import Path

from orderdesk_mcp.config import Settings
from orderdesk_mcp.server_group import live_server_reason


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_shared_database_refuses_instead_of_saying_no_server_is_live(
    settings: Settings,
) -> None:
    # Servers on other hosts are visible only through the heartbeat rows: when they cannot
    # be read, a live server cannot be ruled out, and restore/rotate must not go ahead.
    url = f"postgresql://odmcp:sup3rsecret@127.0.0.1:{_closed_port()}/odmcp"
    reason = live_server_reason(settings.replace(database_url=url))
    assert reason is not None
    assert "heartbeat" in reason
    assert "sup3rsecret" not in reason


def test_a_sqlite_database_without_the_heartbeat_table_has_no_live_server(
    settings: Settings, data_dir: Path
) -> None:
    import sqlite3

    sqlite3.connect(data_dir / "orderdesk-mcp.db").close()  # an empty, older database
    assert live_server_reason(settings) is None


def test_a_damaged_sqlite_file_can_still_be_restored_over(
    settings: Settings, data_dir: Path
) -> None:
    # One host only: the data dir's lock covers its servers, so a damaged file (the reason
    # for many restores) is not a reason to refuse.
    (data_dir / "orderdesk-mcp.db").write_bytes(b"not a database at all" * 100)
    assert live_server_reason(settings) is None
